package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// The admin API through the router binary's admin port, in a cluster that
// scripts/cluster-up.sh starts as separate processes (roster, presence,
// two routers, two c2s nodes, s2s) against the machine's Postgres, Redis
// and NATS, with its own ports, schema, key prefix and subject prefix.

type cluster struct {
	dir, root, prefix string
	env               map[string]string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole cluster")
	}
	for _, a := range []string{"127.0.0.1:5432", "127.0.0.1:6379", "127.0.0.1:4222"} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err != nil {
			t.Fatalf("no server at %s: the cluster test needs Postgres, Redis and NATS (scripts/services.sh starts them)", a)
		} else {
			c.Close()
		}
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	var id [4]byte
	rand.Read(id[:])
	c := &cluster{dir: t.TempDir(), root: root, prefix: "sba" + hex.EncodeToString(id[:])}
	base := freeBase(t, 20)
	cmd := exec.Command(filepath.Join(root, "scripts", "cluster-up.sh"))
	cmd.Env = append(os.Environ(),
		"CLUSTER_DIR="+c.dir, "CLUSTER_PREFIX="+c.prefix, "CLUSTER_PORT="+strconv.Itoa(base),
		"C2S1_LISTEN=127.0.0.1:"+strconv.Itoa(base+16), "C2S2_LISTEN=127.0.0.1:"+strconv.Itoa(base+17),
	)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { c.down(t) })
	if err != nil {
		t.Fatalf("cluster-up: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(c.dir, "cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.env = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			c.env[k] = v
		}
	}
	return c
}

// freeBase finds n consecutive free loopback ports.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		var b [2]byte
		rand.Read(b[:])
		base := 20000 + int(b[0])<<8%20000 + int(b[1])
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// down stops the cluster and removes what it left on the shared servers.
func (c *cluster) down(t *testing.T) {
	cmd := exec.Command(filepath.Join(c.root, "scripts", "cluster-down.sh"))
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cluster-down: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if nc, err := nats.Connect("nats://127.0.0.1:4222"); err == nil {
		if js, err := jetstream.New(nc); err == nil {
			if err := bus.New(c.prefix, 0).DeleteState(ctx, js); err != nil {
				t.Errorf("purge NATS: %v", err)
			}
		}
		nc.Close()
	}
	if out, err := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q",
		"-c", "DROP SCHEMA IF EXISTS "+c.prefix+" CASCADE").CombinedOutput(); err != nil {
		t.Errorf("purge: drop schema %s: %v\n%s", c.prefix, err, out)
	}
	script := "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n"
	if out, err := exec.CommandContext(ctx, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "EVAL", script, "0", c.prefix+":*").CombinedOutput(); err != nil {
		t.Errorf("purge: redis keys %s:*: %v\n%s", c.prefix, err, out)
	}
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(c.dir, "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			t.Logf("%s:\n%s", filepath.Base(l), strings.Join(lines, "\n"))
		}
	}
}

// api dials a router's admin port with the cluster's CA.
func (c *cluster) api(t *testing.T, addr string) adminv1.AdminServiceClient {
	t.Helper()
	pem, err := os.ReadFile(c.env["XMPPCTL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in " + c.env["XMPPCTL_CA_FILE"])
	}
	conf := &tls.Config{RootCAs: pool}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return adminv1.NewAdminServiceClient(cc)
}

// recorder is a client that keeps the messages it receives.
type recorder struct {
	*client.Client
	mu   sync.Mutex
	msgs []*dom.Element
}

func login(t *testing.T, ctx context.Context, addr, user, password string) *recorder {
	t.Helper()
	r := &recorder{}
	c, err := client.Dial(ctx, client.Config{
		JID: jid.MustParse(user), Password: password, Resource: "ops", Addr: addr, InsecureSkipVerify: true,
		Handler: func(_ *client.Client, el *dom.Element) bool {
			if el.Local != "message" {
				return false
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, el)
			r.mu.Unlock()
			return true
		},
	})
	if err != nil {
		t.Fatalf("log in %s at %s: %v", user, addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if _, err := c.Online(ctx, client.Presence{}); err != nil {
		t.Fatalf("%s online: %v", user, err)
	}
	r.Client = c
	return r
}

func (r *recorder) wait(t *testing.T, body string) *dom.Element {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, m := range r.msgs {
			if m.ChildText(stream.NSClient, "body") == body {
				r.mu.Unlock()
				return m
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no message %q after 15s", r.JID(), body)
	return nil
}

func ended(t *testing.T, c *client.Client) *stream.Error {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still connected 15s later", c.JID())
	}
	var se *stream.Error
	if !errors.As(c.Err(), &se) {
		t.Fatalf("%s ended with %v, want a stream error", c.JID(), c.Err())
	}
	return se
}

func TestAdminAPIThroughTheRouterBinary(t *testing.T) {
	c := startCluster(t)
	token, err := os.ReadFile(c.env["XMPPCTL_TOKEN_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(token))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	auth := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+fields[len(fields)-1])
	api1 := c.api(t, c.env["XMPPCTL_SERVER"])
	port, _ := strconv.Atoi(c.env["XMPPCTL_SERVER"][strings.LastIndexByte(c.env["XMPPCTL_SERVER"], ':')+1:])
	api2 := c.api(t, "127.0.0.1:"+strconv.Itoa(port+1)) // router-2

	if _, err := api1.ListAccounts(ctx, &adminv1.ListAccountsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a token: %v, want Unauthenticated", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer wrong-token-0123456789abcdef")
	if _, err := api2.CreateAccount(bad, &adminv1.CreateAccountRequest{Jid: "mallory@localhost", Password: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("with a wrong token: %v, want Unauthenticated", err)
	}

	// Accounts through router-1 and router-2 alike: the state is shared.
	if _, err := api1.CreateAccount(auth, &adminv1.CreateAccountRequest{Jid: "alice@localhost", Password: "alice-pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api2.CreateAccount(auth, &adminv1.CreateAccountRequest{Jid: "bob@localhost", Password: "bob-pw"}); err != nil {
		t.Fatal(err)
	}
	l, err := api2.ListAccounts(auth, &adminv1.ListAccountsRequest{})
	if err != nil || len(l.Accounts) != 2 {
		t.Fatalf("ListAccounts: %v %v", l, err)
	}

	alice := login(t, ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-pw")
	bob := login(t, ctx, c.env["C2S2_LISTEN"], "bob@localhost", "bob-pw")

	cnt, err := api1.CountSessions(auth, &adminv1.CountSessionsRequest{})
	if err != nil || cnt.Total != 2 || len(cnt.Nodes) != 2 || cnt.Nodes[0].Node != "c2s-1" || cnt.Nodes[1].Node != "c2s-2" {
		t.Errorf("CountSessions %v %v, want one on c2s-1 and one on c2s-2", cnt, err)
	}
	ls, err := api2.ListSessions(auth, &adminv1.ListSessionsRequest{Jid: "bob@localhost"})
	if err != nil || len(ls.Sessions) != 1 || ls.Sessions[0].Node != "c2s-2" {
		t.Errorf("ListSessions bob: %v %v", ls, err)
	}

	if _, err := api1.SendMessage(auth, &adminv1.SendMessageRequest{To: "bob@localhost", Body: "from the operators"}); err != nil {
		t.Fatal(err)
	}
	if m := bob.wait(t, "from the operators"); m.Attr("from") != "localhost" {
		t.Errorf("bob got %s", m)
	}
	br, err := api2.Broadcast(auth, &adminv1.BroadcastRequest{Type: adminv1.MessageType_MESSAGE_TYPE_HEADLINE, Body: "maintenance tonight"})
	if err != nil || br.Delivered != 2 || len(br.FailedNodes) != 0 {
		t.Errorf("Broadcast %v %v, want 2 delivered", br, err)
	}
	alice.wait(t, "maintenance tonight")
	bob.wait(t, "maintenance tonight")

	if _, err := api1.AddRosterItem(auth, &adminv1.AddRosterItemRequest{User: "alice@localhost", Item: &adminv1.RosterItem{Jid: "bob@localhost", Name: "Bob"}}); err != nil {
		t.Fatal(err)
	}
	push, err := alice.NextRosterPush(ctx)
	if err != nil || push.Item.JID.String() != "bob@localhost" || push.Item.Name != "Bob" {
		t.Errorf("alice's push %+v %v", push, err)
	}

	// Every process but roster writes its status; roster is reported by
	// its health check.
	want := []string{"c2s/c2s-1", "c2s/c2s-2", "presence/presence-1", "roster/" + c.env["ROSTER_GRPC"], "router/router-1", "router/router-2", "s2s/s2s-1"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := api2.ClusterStatus(auth, &adminv1.ClusterStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		ready := true
		for _, n := range st.Nodes {
			got = append(got, n.Service+"/"+n.Node)
			ready = ready && n.Ready
			if n.Service == "c2s" && n.Connections != 1 {
				ready = false
			}
		}
		if strings.Join(got, " ") == strings.Join(want, " ") && ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ClusterStatus %v, want %v all ready with one connection per c2s node", st.Nodes, want)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if _, err := api1.KickSession(auth, &adminv1.KickSessionRequest{Jid: "alice@localhost/ops", Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	if se := ended(t, alice.Client); se.Condition != stream.PolicyViolation || se.Text != "bye" {
		t.Errorf("alice kicked with %v", se)
	}

	// xmppctl, as cluster-up.sh prints it, against the same cluster.
	cmd := exec.Command(filepath.Join(c.dir, "bin", "xmppctl"), "session", "count")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "c2s-2") {
		t.Errorf("xmppctl session count: %v\n%s", err, out)
	}

	// Drain c2s-2: bob is told to go to c2s-1, and the node exits.
	dr, err := api1.DrainNode(auth, &adminv1.DrainNodeRequest{Node: "c2s-2", Redirect: c.env["C2S1_LISTEN"], DeadlineSeconds: 10})
	if err != nil || dr.Sessions != 1 {
		t.Fatalf("DrainNode c2s-2: %v %v", dr, err)
	}
	if se := ended(t, bob.Client); se.Condition != stream.SeeOtherHost || se.Host != c.env["C2S1_LISTEN"] {
		t.Errorf("bob drained with %v (host %q), want see-other-host %s", se, se.Host, c.env["C2S1_LISTEN"])
	}
	pid, _ := os.ReadFile(filepath.Join(c.dir, "pids", "c2s-2.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	deadline = time.Now().Add(20 * time.Second)
	for syscall.Kill(n, 0) == nil && !zombie(n) {
		if time.Now().After(deadline) {
			t.Fatal("c2s-2 still runs 20s after its drain began")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
