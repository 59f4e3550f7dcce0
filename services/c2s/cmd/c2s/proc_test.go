package main

import (
	"context"
	"fmt"
	"io"
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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Helpers of the process-level tests: a TCP proxy the test owns (to make a
// backend unreachable without touching the shared server), killing and
// restarting one process of a cluster, and clients that record what they
// receive.

// proxy forwards TCP connections to a target. Cut closes every forwarded
// connection and closes each new one at once, as a server that went away
// would; Restore forwards again, on the same address.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]struct{}
	refused int // connections closed at once while cut
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.refused++
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.mu.Unlock()
		out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// Cut drops every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.refused = 0
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Refused is the number of connections refused since the last Cut.
func (p *proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *proxy) close() {
	p.ln.Close()
	p.Cut()
}

// poll calls cond every 20 ms until it is true or d has passed, and
// reports which.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// pid returns the process id of the cluster process name (c2s-1, router-2,
// ...).
func (c *cluster) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "pids", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// kill sends SIGKILL to the cluster process name, waits until it is dead,
// and returns its command line so that restart can start it again.
func (c *cluster) kill(t *testing.T, name string) []string {
	t.Helper()
	pid := c.pid(t, name)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("%s (pid %d): %v", name, pid, err)
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", name, err)
	}
	if !poll(10*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("%s (pid %d) still runs 10 s after SIGKILL", name, pid)
	}
	t.Logf("killed %s (pid %d) with SIGKILL", name, pid)
	return args
}

// restart starts args (from kill) again as the cluster process name, in
// its own session and logging to its log as cluster-up.sh does, and waits
// until its /readyz answers at health.
func (c *cluster) restart(t *testing.T, name string, args []string, health string) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(c.dir, "logs", name+".log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
	go cmd.Wait() // reap it when cluster-down stops it
	if err := os.WriteFile(filepath.Join(c.dir, "pids", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !poll(30*time.Second, func() bool { return ready(health) }) {
		t.Fatalf("%s did not become ready after its restart", name)
	}
}

// ready reports whether a process's /readyz answers 200.
func ready(health string) bool {
	conn, err := net.DialTimeout("tcp", health, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n", health)
	b := make([]byte, 12)
	n, _ := io.ReadFull(conn, b)
	return n == 12 && string(b[9:12]) == "200"
}

// health returns the health address cluster-up.sh gave a process.
func (c *cluster) health(name string) string {
	off := map[string]int{"roster": 10, "presence": 11, "router-1": 12, "router-2": 13, "c2s-1": 14, "c2s-2": 15}[name]
	return "127.0.0.1:" + strconv.Itoa(c.port+off)
}

// routerHolding returns the cluster process (router-1 or router-2) that
// holds the lease of the route partition of sender's stanzas.
func (c *cluster) routerHolding(t *testing.T, sender string) (node, instance string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := bus.New(c.prefix, bus.DefaultPartitions)
	kv, err := js.KeyValue(ctx, subj.LeaseBucket())
	if err != nil {
		t.Fatalf("lease bucket %s: %v", subj.LeaseBucket(), err)
	}
	p := subj.Partition(sender)
	e, err := kv.Get(ctx, subj.LeaseKey(p))
	if err != nil {
		t.Fatalf("lease of partition %d: %v", p, err)
	}
	instance = string(e.Value())
	m, err := kv.Get(ctx, subj.MemberKey(instance))
	if err != nil {
		t.Fatalf("member %s: %v", instance, err)
	}
	return string(m.Value()), instance
}

// inbox is a logged-in client whose messages are recorded as they arrive,
// so that nothing is dropped from the client's bounded queue.
type inbox struct {
	*client.Client
	mu   sync.Mutex
	msgs []client.Message
}

func (b *inbox) record(_ *client.Client, el *dom.Element) bool {
	if el.Local != "message" {
		return false
	}
	m := client.Message{Type: client.MessageType(el.Attr("type")), Body: el.ChildText(stream.NSClient, "body")}
	m.From, _ = jid.Parse(el.Attr("from"))
	if m.Type == client.MessageError {
		m.Error, _ = stanza.ParseError(el)
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	return true
}

// snapshot returns the messages received so far.
func (b *inbox) snapshot() []client.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]client.Message(nil), b.msgs...)
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// find returns the first message received that satisfies match.
func (b *inbox) find(match func(client.Message) bool) (client.Message, bool) {
	for _, m := range b.snapshot() {
		if match(m) {
			return m, true
		}
	}
	return client.Message{}, false
}

// dialInbox logs user in at addr with resource and records its messages.
func dialInbox(ctx context.Context, addr, user, password, resource string) (*inbox, error) {
	b := &inbox{}
	c, err := client.Dial(ctx, client.Config{
		JID:                jid.MustParse(user),
		Password:           password,
		Resource:           resource,
		Addr:               addr,
		InsecureSkipVerify: true, // the c2s nodes' self-signed certificate
		Handler:            b.record,
	})
	if err != nil {
		return nil, err
	}
	b.Client = c
	return b, nil
}

func loginInbox(t *testing.T, ctx context.Context, addr, user, password, resource string) *inbox {
	t.Helper()
	b, err := dialInbox(ctx, addr, user, password, resource)
	if err != nil {
		t.Fatalf("log in %s/%s at %s: %v", user, resource, addr, err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}
