package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Control requests (issue 6: kick, broadcast, drain) sent to the c2s
// processes of a cluster over NATS, as the admin service sends them, and
// observed from real clients. c2s-1 runs as this test's own child, so that
// its exit status after the drain can be read.

// control sends req to node and returns the answer.
func (c *cluster) control(t *testing.T, node string, req *busv1.ControlRequest) *busv1.ControlResponse {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(bus.New(c.prefix, bus.DefaultPartitions).Control(node), b, 10*time.Second)
	if err != nil {
		t.Fatalf("control request to %s: %v", node, err)
	}
	var resp busv1.ControlResponse
	if err := proto.Unmarshal(m.Data, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// createAccounts adds users (password user-secret) through the roster
// service's AccountService.
func (c *cluster) createAccounts(t *testing.T, users ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := grpcx.NewClient(c.env["ROSTER_GRPC"], c.tls())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	acc := rosterv1.NewAccountServiceClient(cc)
	for _, u := range users {
		if _, err := acc.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: u, Password: strings.SplitN(u, "@", 2)[0] + "-secret"}); err != nil {
			t.Fatalf("create %s: %v", u, err)
		}
	}
}

// child is a cluster process this test started and waits for.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // after exited
}

// adopt replaces the cluster's process name by a child of the test
// started with the same command line plus extra, and waits until it is
// ready.
func (c *cluster) adopt(t *testing.T, name, health string, extra ...string) *child {
	t.Helper()
	args := append(c.kill(t, name), extra...)
	log, err := os.OpenFile(filepath.Join(c.dir, "logs", name+".log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ch := &child{cmd: exec.Command(args[0], args[1:]...), exited: make(chan struct{})}
	ch.cmd.Stdout, ch.cmd.Stderr = log, log
	ch.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := ch.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { ch.err = ch.cmd.Wait(); close(ch.exited) }()
	if err := os.WriteFile(filepath.Join(c.dir, "pids", name+".pid"), []byte(strconv.Itoa(ch.cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !poll(30*time.Second, func() bool { return ready(health) }) {
		t.Fatalf("%s did not become ready", name)
	}
	return ch
}

func TestClusterControlKickBroadcastAndDrainUnderLoad(t *testing.T) {
	c := startCluster(t)
	node1 := c.adopt(t, "c2s-1", c.health("c2s-1"), "--drain-spread", "2s")
	t.Run("KickIsSeenByTheClientOnly_RFC6120_4_9_3_15", func(t *testing.T) { kickSeen(t, c) })
	t.Run("BroadcastReachesTheDomainsSessions", func(t *testing.T) { broadcastSeen(t, c) })
	t.Run("DrainUnderLoadLosesNothing_RFC6120_4_9_3_19", func(t *testing.T) { drainUnderLoad(t, c, node1) })
	t.Run("SIGTERMDrainsToTheRedirect", func(t *testing.T) { sigtermDrains(t, c) })
}

// sigtermDrains: c2s-2, run with --drain-redirect, sends its client to
// that host at SIGTERM, and exits 0.
func sigtermDrains(t *testing.T, c *cluster) {
	node2 := c.adopt(t, "c2s-2", c.health("c2s-2"), "--drain-redirect", "c2s-3.localhost:5999")
	c.createAccounts(t, "sig@localhost")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sig := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "sig@localhost", "sig-secret", "s")
	if err := node2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sig.Done():
	case <-ctx.Done():
		t.Fatal("the session did not end after SIGTERM")
	}
	if addr, ok := client.RedirectAddr(sig.Err()); !ok || addr != "c2s-3.localhost:5999" {
		t.Fatalf("session ended with %v, want see-other-host to the redirect", sig.Err())
	}
	select {
	case <-node2.exited:
	case <-ctx.Done():
		t.Fatal("c2s-2 did not exit after SIGTERM")
	}
	if node2.err != nil {
		t.Fatalf("c2s-2 exited with %v, want status 0", node2.err)
	}
}

func kickSeen(t *testing.T, c *cluster) {
	c.createAccounts(t, "kim@localhost", "kai@localhost")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desk := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "kim@localhost", "kim-secret", "desk")
	phone := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "kim@localhost", "kim-secret", "phone")
	kai := loginInbox(t, ctx, c.env["C2S1_LISTEN"], "kai@localhost", "kai-secret", "k")

	// Sent to the node that does not hold the session: nothing happens.
	if r := c.control(t, "c2s-1", kick("kim@localhost/desk", "x")); r.GetError() != "" || r.GetAffected() != 0 {
		t.Fatalf("kick on the other node: %v", r)
	}
	if r := c.control(t, "c2s-2", kick("kim@localhost/desk", "abuse reported by 3 users")); r.GetError() != "" || r.GetAffected() != 1 {
		t.Fatalf("kick: %v", r)
	}
	select {
	case <-desk.Done():
	case <-ctx.Done():
		t.Fatal("the kicked session did not end")
	}
	var serr *stream.Error
	if !errors.As(desk.Err(), &serr) || serr.Condition != stream.PolicyViolation || serr.Text != "abuse reported by 3 users" {
		t.Fatalf("kicked session ended with %v, want policy-violation with the reason", desk.Err())
	}
	// The account's other session and another user still chat.
	body := "still here"
	if err := kai.SendMessage(ctx, client.Message{To: phone.JID(), Type: client.MessageChat, Body: body}); err != nil {
		t.Fatal(err)
	}
	if !poll(10*time.Second, func() bool {
		_, ok := phone.find(func(m client.Message) bool { return m.Body == body })
		return ok
	}) {
		t.Fatal("the account's other session did not get a message after the kick")
	}
	select {
	case <-phone.Done():
		t.Fatalf("the other session ended: %v", phone.Err())
	case <-kai.Done():
		t.Fatalf("another user's session ended: %v", kai.Err())
	default:
	}
}

func kick(j, reason string) *busv1.ControlRequest {
	return &busv1.ControlRequest{Op: &busv1.ControlRequest_Kick{Kick: &busv1.Kick{Jid: j, Reason: reason}}}
}

func broadcastSeen(t *testing.T, c *cluster) {
	c.createAccounts(t, "bea@localhost", "ben@localhost", "bo@localhost")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bea := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "bea@localhost", "bea-secret", "b")
	ben := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "ben@localhost", "ben-secret", "b") // never available
	bo := loginInbox(t, ctx, c.env["C2S1_LISTEN"], "bo@localhost", "bo-secret", "b")    // other node
	for _, x := range []*inbox{bea, bo} {
		if err := x.SendPresence(ctx, client.Presence{}); err != nil {
			t.Fatal(err)
		}
	}
	// The presence must have reached c2s-2 before the broadcast: a
	// round trip on the same stream after it proves that.
	if _, err := bea.IQ(ctx, dom.New(stream.NSClient, "iq", "type", "get").Append(dom.New("urn:xmpp:ping", "ping"))); err != nil {
		t.Fatal(err)
	}
	raw := dom.New(stream.NSClient, "message", "type", "headline").Append(dom.New(stream.NSClient, "body").AppendText("maintenance tonight")).Marshal()
	req := func(domain string, availableOnly bool) *busv1.ControlRequest {
		return &busv1.ControlRequest{Op: &busv1.ControlRequest_Broadcast{Broadcast: &busv1.Broadcast{Domain: domain, Raw: raw, AvailableOnly: availableOnly}}}
	}
	if r := c.control(t, "c2s-2", req("localhost", true)); r.GetError() != "" || r.GetAffected() != 1 {
		t.Fatalf("broadcast to the available sessions of c2s-2: %v", r)
	}
	if r := c.control(t, "c2s-2", req("elsewhere.example", false)); r.GetError() != "" || r.GetAffected() != 0 {
		t.Fatalf("broadcast to another domain: %v", r)
	}
	if r := c.control(t, "c2s-2", req("localhost", false)); r.GetError() != "" || r.GetAffected() != 2 {
		t.Fatalf("broadcast to every session of c2s-2: %v", r)
	}
	got := func(x *inbox) int {
		n := 0
		for _, m := range x.snapshot() {
			if m.Body == "maintenance tonight" {
				n++
			}
		}
		return n
	}
	if !poll(10*time.Second, func() bool { return got(bea) == 2 && got(ben) == 1 }) {
		t.Fatalf("broadcasts received: bea %d (want 2), ben %d (want 1)", got(bea), got(ben))
	}
	// bo, on c2s-1, got none: a ping round trip after the broadcasts
	// proves nothing was on its way.
	if _, err := bo.IQ(ctx, dom.New(stream.NSClient, "iq", "type", "get").Append(dom.New("urn:xmpp:ping", "ping"))); err != nil {
		t.Fatal(err)
	}
	if n := got(bo); n != 0 {
		t.Fatalf("a session of another node got %d broadcasts", n)
	}
}

// recordingDialer dials and remembers where.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *recordingDialer) last() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs[len(d.addrs)-1]
}

func (d *recordingDialer) dials() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// peer is one client of the load, kept up by a Keeper.
type peer struct {
	user   string
	addr   string // the node it starts on
	k      *client.Keeper
	dialer *recordingDialer

	mu       sync.Mutex
	sessions int
	got      map[string]map[int]int // sender -> number -> times received
	delayed  int                    // of them, from offline storage
	errors   []string               // error messages bounced to it
}

func newPeer(user, addr string) *peer {
	p := &peer{user: user, addr: addr, dialer: &recordingDialer{}, got: map[string]map[int]int{}}
	p.k = &client.Keeper{
		Config: client.Config{
			JID:                jid.MustParse(user),
			Password:           strings.SplitN(user, "@", 2)[0] + "-secret",
			Resource:           "load",
			Addr:               addr,
			InsecureSkipVerify: true, // the c2s nodes' self-signed certificate
			Dialer:             p.dialer,
			Handler:            p.record,
		},
		MinDelay: 100 * time.Millisecond,
		MaxDelay: time.Second,
		OnSession: func(ctx context.Context, c *client.Client) {
			p.mu.Lock()
			p.sessions++
			p.mu.Unlock()
			// Available, so that offline messages come (RFC 6121 8.5.2).
			go func() {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_ = c.SendPresence(ctx, client.Presence{})
			}()
		},
	}
	return p
}

func (p *peer) record(_ *client.Client, el *dom.Element) bool {
	if el.Local != "message" {
		return false
	}
	from, _ := jid.Parse(el.Attr("from"))
	body := el.ChildText(stream.NSClient, "body")
	p.mu.Lock()
	defer p.mu.Unlock()
	if el.Attr("type") == "error" {
		p.errors = append(p.errors, el.String())
		return true
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		return true
	}
	s := from.Bare().String()
	if p.got[s] == nil {
		p.got[s] = map[int]int{}
	}
	p.got[s][n]++
	if el.Child("urn:xmpp:delay", "delay") != nil {
		p.delayed++
	}
	return true
}

// relogin logs the peer in once more, with a plain client that sends
// available presence, so that what offline storage holds for it is
// delivered (RFC 6121 8.5.2.2.1, XEP-0160), and waits until complete
// holds or 10 s passed.
func (p *peer) relogin(t *testing.T, complete func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := p.k.Config
	cfg.Addr = cfg.Dialer.(*recordingDialer).last()
	cfg.Resource = "relogin"
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("log %s in again: %v", p.user, err)
	}
	defer c.Close(context.Background())
	if err := c.SendPresence(ctx, client.Presence{}); err != nil {
		t.Fatal(err)
	}
	poll(10*time.Second, complete)
}

func (p *peer) sessionCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions
}

// tally checks the numbers 1..sent from sender: missing ones and extra
// copies.
func (p *peer) tally(sender string, sent int) (missing []int, dups int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := 1; n <= sent; n++ {
		switch k := p.got[sender][n]; {
		case k == 0:
			missing = append(missing, n)
		case k > 1:
			dups += k - 1
		}
	}
	for n := range p.got[sender] {
		if n < 1 || n > sent {
			dups++ // never sent
		}
	}
	return missing, dups
}

// send numbers messages 1, 2, ... to to until stop, one every interval,
// through whatever session the Keeper has; a number whose Send failed is
// sent again on the next session. It returns the last number sent.
func (p *peer) send(to string, interval time.Duration, stop <-chan struct{}) int {
	target := jid.MustParse(to)
	n := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return n
		case <-tick.C:
		}
		c := p.k.Client()
		if c == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.SendMessage(ctx, client.Message{To: target, Type: client.MessageChat, Body: strconv.Itoa(n + 1)})
		cancel()
		if err == nil {
			n++
		}
	}
}

func drain(mode busv1.Drain_Mode, redirect string) *busv1.ControlRequest {
	return &busv1.ControlRequest{Op: &busv1.ControlRequest_Drain{Drain: &busv1.Drain{Mode: mode, Redirect: redirect, DeadlineMs: 20000}}}
}

// drainUnderLoad: pairs of clients chat (every sender numbers its
// messages to one receiver's bare JID), half of them starting on c2s-1,
// which is drained by a control request with see-other-host to c2s-2
// while they do. Every number sent must be received exactly once:
// deliveries to sessions that went away follow RFC 6121 (other
// resources, or offline storage and delivery at the next available
// presence). c2s-1 exits 0.
func drainUnderLoad(t *testing.T, c *cluster, node1 *child) {
	const pairs = 8
	node1Addr, node2Addr := c.env["C2S1_LISTEN"], c.env["C2S2_LISTEN"]
	var users []string
	for i := range pairs {
		users = append(users, fmt.Sprintf("ls%d@localhost", i), fmt.Sprintf("lr%d@localhost", i))
	}
	c.createAccounts(t, users...)
	// Pair i: sender on c2s-1 when i is even, receiver on c2s-1 when
	// i/2 is even: every combination of nodes, twice.
	senders, receivers := make([]*peer, pairs), make([]*peer, pairs)
	onNode1 := 0
	for i := range pairs {
		sa, ra := node2Addr, node2Addr
		if i%2 == 0 {
			sa = node1Addr
			onNode1++
		}
		if (i/2)%2 == 0 {
			ra = node1Addr
			onNode1++
		}
		senders[i] = newPeer(users[2*i], sa)
		receivers[i] = newPeer(users[2*i+1], ra)
	}
	all := append(append([]*peer(nil), senders...), receivers...)
	ctx, cancel := context.WithCancel(context.Background())
	var keepers sync.WaitGroup
	for _, p := range all {
		keepers.Go(func() { p.k.Run(ctx) })
	}
	defer func() {
		cancel()
		keepers.Wait()
	}()
	if !poll(30*time.Second, func() bool {
		for _, p := range all {
			if p.k.Client() == nil {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every client logged in")
	}

	stop := make(chan struct{})
	sent := make([]int, pairs)
	var sending sync.WaitGroup
	for i := range pairs {
		sending.Go(func() { sent[i] = senders[i].send(receivers[i].user, 40*time.Millisecond, stop) })
	}
	// Chat for a while, drain c2s-1, chat on while its clients move.
	time.Sleep(1500 * time.Millisecond)
	r := c.control(t, "c2s-1", drain(busv1.Drain_MODE_SEE_OTHER_HOST, node2Addr))
	if r.GetError() != "" || int(r.GetAffected()) != onNode1 {
		t.Fatalf("drain: %v, want %d sessions affected", r, onNode1)
	}
	drained := time.Now()
	select {
	case <-node1.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("c2s-1 did not exit after the drain")
	}
	exitedAfter := time.Since(drained)
	if node1.err != nil {
		t.Fatalf("c2s-1 exited with %v, want status 0", node1.err)
	}
	// Every client of c2s-1 followed the redirect: its second dial went
	// to c2s-2, and it has a session again.
	if !poll(30*time.Second, func() bool {
		for _, p := range all {
			if p.k.Client() == nil || (p.addr == node1Addr && p.sessionCount() < 2) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every client of c2s-1 has a session again")
	}
	for _, p := range all {
		if p.addr != node1Addr {
			continue
		}
		if d := p.dialer.dials(); len(d) < 2 || d[1] != node2Addr {
			t.Errorf("%s dialed %v; want c2s-2 (%s) right after c2s-1", p.user, d, node2Addr)
		}
	}
	time.Sleep(time.Second) // chat on the remaining node
	close(stop)
	sending.Wait()

	total := 0
	for _, n := range sent {
		total += n
	}
	complete := func() bool {
		for i := range pairs {
			if m, _ := receivers[i].tally(senders[i].user, sent[i]); len(m) > 0 {
				return false
			}
		}
		return true
	}
	settled := poll(15*time.Second, complete)
	cancel()
	keepers.Wait()
	// RFC 6121: a message for an account with no available resource is
	// stored and delivered at its next available presence. One stored
	// while the receiver's new session was already fetching its offline
	// messages waits for the next login: log in once more.
	atRelogin := 0
	if !settled {
		before := 0
		for _, p := range receivers {
			p.mu.Lock()
			before += p.delayed
			p.mu.Unlock()
		}
		for i, p := range receivers {
			if m, _ := p.tally(senders[i].user, sent[i]); len(m) > 0 {
				t.Logf("%s misses %v before logging in again", p.user, head(m, 20))
				p.relogin(t, func() bool { m, _ := p.tally(senders[i].user, sent[i]); return len(m) == 0 })
			}
		}
		for _, p := range receivers {
			p.mu.Lock()
			atRelogin += p.delayed
			p.mu.Unlock()
		}
		atRelogin -= before
	}
	delayed := 0
	for _, p := range receivers {
		p.mu.Lock()
		delayed += p.delayed
		p.mu.Unlock()
	}
	lost, dups := 0, 0
	for i := range pairs {
		missing, d := receivers[i].tally(senders[i].user, sent[i])
		lost += len(missing)
		dups += d
		if len(missing) > 0 {
			t.Errorf("pair %d (%s on %s -> %s on %s): %d of %d numbers never arrived: %v",
				i, senders[i].user, senders[i].addr, receivers[i].user, receivers[i].addr, len(missing), sent[i], head(missing, 20))
		}
		if d > 0 {
			t.Errorf("pair %d: %d duplicates", i, d)
		}
		for _, p := range []*peer{senders[i], receivers[i]} {
			p.mu.Lock()
			if len(p.errors) > 0 {
				t.Errorf("%s got error messages: %v", p.user, head(p.errors, 3))
			}
			p.mu.Unlock()
		}
	}
	t.Logf("drain under load: %d pairs, %d clients on c2s-1 (drained, see-other-host to c2s-2), %d messages sent, %d lost, %d duplicated, %d delivered from offline storage (%d of them only at a later login); c2s-1 exited 0 %v after the request",
		pairs, onNode1, total, lost, dups, delayed, atRelogin, exitedAfter.Round(time.Millisecond))
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
