package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/metrics/metricstest"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// The cluster test runs scripts/cluster-up.sh against the machine's
// Postgres, Redis and NATS (the addresses of docs/design and the design
// brief; POSTGRES_DSN, REDIS_ADDR and NATS_URL override them), with its own
// state directory, ports, schema, key prefix and subject prefix, so that it
// shares those servers with other tests safely.

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
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

type cluster struct {
	dir    string
	env    map[string]string
	root   string
	prefix string
	port   int // CLUSTER_PORT
}

func startCluster(t *testing.T) *cluster { return startClusterEnv(t) }

// startClusterEnv starts a cluster with extra environment settings for
// cluster-up.sh (NAME=value), such as backends behind a test's proxies.
func startClusterEnv(t *testing.T, extra ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole cluster")
	}
	for _, a := range []string{"127.0.0.1:5432", "127.0.0.1:6379", "127.0.0.1:4222"} {
		if !reachable(a) {
			t.Fatalf("no server at %s: the cluster test needs Postgres, Redis and NATS (scripts/services.sh starts them)", a)
		}
	}
	root := repoRoot(t)
	var id [4]byte
	rand.Read(id[:])
	prefix := "sbt" + hex.EncodeToString(id[:])
	base := freeBase(t, 20)
	c := &cluster{dir: t.TempDir(), root: root, prefix: prefix, port: base}
	cmd := exec.Command(filepath.Join(root, "scripts", "cluster-up.sh"))
	cmd.Env = append(os.Environ(),
		"CLUSTER_DIR="+c.dir,
		"CLUSTER_PREFIX="+prefix,
		"CLUSTER_PORT="+strconv.Itoa(base),
		"C2S1_LISTEN=127.0.0.1:"+strconv.Itoa(base+16),
		"C2S2_LISTEN=127.0.0.1:"+strconv.Itoa(base+17),
	)
	cmd.Env = append(cmd.Env, extra...)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { c.down(t) })
	if err != nil {
		t.Fatalf("cluster-up: %v\n%s", err, out)
	}
	t.Logf("cluster-up:\n%s", out)
	c.env = readEnv(t, filepath.Join(c.dir, "cluster.env"))
	return c
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

// down runs cluster-down.sh and checks that every process has ended.
func (c *cluster) down(t *testing.T) {
	pids, _ := filepath.Glob(filepath.Join(c.dir, "pids", "*.pid"))
	var procs []int
	for _, f := range pids {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			procs = append(procs, pid)
		}
	}
	cmd := exec.Command(filepath.Join(c.root, "scripts", "cluster-down.sh"))
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cluster-down: %v\n%s", err, out)
	}
	for _, pid := range procs {
		if p, err := os.FindProcess(pid); err == nil && p.Signal(syscallZero) == nil {
			t.Errorf("process %d still runs after cluster-down", pid)
		}
	}
	c.purge(t)
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(c.dir, "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", filepath.Base(l), tail(string(b), 30))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *cluster) tls() grpcx.TLSFiles {
	return grpcx.TLSFiles{Cert: c.env["SWITCHBOARD_GRPC_TLS_CERT"], Key: c.env["SWITCHBOARD_GRPC_TLS_KEY"], CA: c.env["SWITCHBOARD_GRPC_TLS_CA"]}
}

// addUser runs `switchboard user add --roster-grpc` as an operator would.
func (c *cluster) addUser(t *testing.T, addr, password string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.dir, "bin", "switchboard"), "user", "add", addr, password, "--roster-grpc", c.env["ROSTER_GRPC"], "--domain", c.env["CLUSTER_DOMAIN"])
	cmd.Env = os.Environ()
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "created "+addr) {
		t.Fatalf("switchboard user add %s: %v\n%s", addr, err, out)
	}
}

func login(t *testing.T, ctx context.Context, addr, user, password string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Config{
		JID:                jid.MustParse(user),
		Password:           password,
		Resource:           "cluster",
		Addr:               addr,
		InsecureSkipVerify: true, // the c2s nodes' self-signed certificate
	})
	if err != nil {
		t.Fatalf("log in %s at %s: %v", user, addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestLocalCluster starts one cluster with make cluster-up's script and
// checks it in subtests, since a start costs about 20 s on this machine.
func TestLocalCluster(t *testing.T) {
	// Two domains, localhost the default: every other subtest uses it.
	c := startClusterEnv(t, "CLUSTER_DOMAIN=localhost,other.test")
	t.Run("UsersOnTwoC2SNodesChatBothWaysThroughTwoRouters", func(t *testing.T) { usersChat(t, c) })
	t.Run("UsersOfTwoDomainsChatAcrossNodes", func(t *testing.T) { domainsChat(t, c) })
	t.Run("CredentialServiceIsOnlyOnTheInternalListener", func(t *testing.T) { credentialsInternal(t, c) })
	t.Run("MetricsCountTheChatAndAFailedLogin", func(t *testing.T) { metricsAfterChat(t, c) })
}

// metricsAfterChat scrapes every process after usersChat (five messages
// each way between c2s-1 and c2s-2) and a failed login: the series
// docs/operations.md lists are served by each binary on its health
// listener and counted the traffic.
func metricsAfterChat(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cl, err := client.Dial(ctx, client.Config{JID: jid.MustParse("alice@localhost"), Password: "not alice's",
		Resource: "bad", Addr: c.env["C2S1_LISTEN"], InsecureSkipVerify: true}); err == nil {
		cl.Close(ctx)
		t.Fatal("a login with a wrong password succeeded")
	}
	url := func(name string) string { return "http://" + c.env["HEALTH_"+name] + "/metrics" }
	const wait = 30 * time.Second
	for _, node := range []string{"C2S1", "C2S2"} {
		ss := metricstest.WaitFor(t, url(node), wait,
			metricstest.Positive("switchboard_c2s_stanzas_received_total", "kind", "message"),
			metricstest.Positive("switchboard_c2s_stanzas_delivered_total", "kind", "message"),
			metricstest.Present("switchboard_c2s_connections", "state", "bound"),
			metricstest.Positive("switchboard_c2s_nats_publish_seconds_count"),
			metricstest.Positive("switchboard_grpc_client_seconds_count", "method", "/switchboard.presence.v1.SessionRegistry/Bind", "code", "OK"),
			metricstest.Present("switchboard_nats_events_total", "client", "c2s", "event", "reconnected"),
			metricstest.Positive("process_resident_memory_bytes"),
		)
		if v, _ := ss.Sum("switchboard_c2s_stanzas_received_total", "kind", "message"); v < 5 {
			t.Errorf("%s: %v messages received, want at least the chat's 5", node, v)
		}
	}
	metricstest.WaitFor(t, url("C2S1"), wait,
		metricstest.Positive("switchboard_c2s_auth_failures_total", "condition", "not-authorized"))
	routers := metricstest.WaitForAll(t, []string{url("ROUTER1"), url("ROUTER2")}, wait,
		metricstest.Positive("switchboard_router_stanzas_total", "kind", "message", "outcome", "delivered"),
		metricstest.Positive("switchboard_router_routing_seconds_count"),
		metricstest.Positive("switchboard_grpc_client_seconds_count", "code", "OK"),
	)
	if v, _ := routers.Sum("switchboard_router_stanzas_total", "kind", "message", "outcome", "delivered"); v < 10 {
		t.Errorf("the routers delivered %v messages, want at least the chat's 10", v)
	}
	// Right after start the routers may still be handing partitions over
	// (one releases before the other takes), so the sum is polled.
	leased := func() float64 {
		var sum float64
		for _, name := range []string{"ROUTER1", "ROUTER2"} {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			ss, err := metricstest.Scrape(sctx, url(name))
			scancel()
			if err != nil {
				return -1
			}
			v, _ := ss.Sum("switchboard_router_partitions_leased")
			sum += v
		}
		return sum
	}
	if !poll(wait, func() bool { return leased() == 16 }) {
		t.Errorf("the routers lease %v partitions together, want 16", leased())
	}
	metricstest.WaitFor(t, url("ROSTER"), wait,
		metricstest.Positive("switchboard_roster_store_seconds_count", "op", "account"),
		metricstest.Positive("switchboard_grpc_server_seconds_count", "method", "/switchboard.roster.v1.CredentialService/GetCredentials"),
	)
	metricstest.WaitFor(t, url("PRESENCE"), wait,
		metricstest.Positive("switchboard_presence_store_seconds_count", "op", "bind"),
		metricstest.Positive("switchboard_grpc_server_seconds_count", "method", "/switchboard.presence.v1.SessionRegistry/Bind"),
	)
	metricstest.WaitFor(t, url("S2S"), wait, metricstest.Present("switchboard_s2s_streams", "direction", "inbound"))
}

func usersChat(t *testing.T, c *cluster) {
	c.addUser(t, "alice@localhost", "alice-secret")
	c.addUser(t, "bob@localhost", "bob-secret")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := login(t, ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-secret")
	bob := login(t, ctx, c.env["C2S2_LISTEN"], "bob@localhost", "bob-secret")

	const rounds = 5
	for i := range rounds {
		send := func(from, to *client.Client, body string) {
			t.Helper()
			if err := from.SendMessage(ctx, client.Message{To: to.JID(), Type: client.MessageChat, Body: body}); err != nil {
				t.Fatalf("send %q: %v", body, err)
			}
			m, err := to.NextMessage(ctx)
			if err != nil {
				t.Fatalf("%s waiting for %q: %v", to.JID(), body, err)
			}
			if m.Body != body || m.From.String() != from.JID().String() {
				t.Fatalf("%s got %q from %s, want %q from %s", to.JID(), m.Body, m.From, body, from.JID())
			}
		}
		send(alice, bob, fmt.Sprintf("alice to bob %d", i))
		send(bob, alice, fmt.Sprintf("bob to alice %d", i))
	}
}

func credentialsInternal(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := grpcx.NewClient(c.env["ROSTER_GRPC"], c.tls())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = rosterv1.NewCredentialServiceClient(cc).GetCredentials(ctx, &rosterv1.GetCredentialsRequest{Jid: "alice@localhost"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("GetCredentials on the public listener: %v, want Unimplemented", err)
	}
	if _, err := rosterv1.NewAccountServiceClient(cc).AccountExists(ctx, &rosterv1.AccountExistsRequest{Jid: "nobody@localhost"}); err != nil {
		t.Errorf("AccountExists on the public listener: %v", err)
	}
}

// purge removes what the cluster left on the shared servers: its route
// stream and lease bucket on NATS (each stream reserves its backlog on the
// server's disk), its Postgres schema and its Redis keys.
func (c *cluster) purge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if nc, err := nats.Connect("nats://127.0.0.1:4222"); err != nil {
		t.Errorf("purge: NATS: %v", err)
	} else {
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			err = bus.New(c.prefix, 0).DeleteState(ctx, js)
		}
		if err != nil {
			t.Errorf("purge: %v", err)
		}
	}
	if out, err := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q",
		"-c", "DROP SCHEMA IF EXISTS "+c.prefix+" CASCADE").CombinedOutput(); err != nil {
		t.Errorf("purge: drop schema %s: %v\n%s", c.prefix, err, out)
	}
	script := "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n"
	if out, err := exec.CommandContext(ctx, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "EVAL", script, "0", c.prefix+":*").CombinedOutput(); err != nil {
		t.Errorf("purge: redis keys %s:*: %v\n%s", c.prefix, err, out)
	}
}

// domainsChat logs carol@other.test in on c2s-1 and dave@localhost on
// c2s-2: each gets its own domain's certificate (chosen by SNI), and they
// chat across the domains without s2s.
func domainsChat(t *testing.T, c *cluster) {
	c.addUser(t, "carol@other.test", "carol-secret")
	c.addUser(t, "dave@localhost", "dave-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	carol := login(t, ctx, c.env["C2S1_LISTEN"], "carol@other.test", "carol-secret")
	dave := login(t, ctx, c.env["C2S2_LISTEN"], "dave@localhost", "dave-secret")
	for _, p := range []struct {
		c    *client.Client
		want string
	}{{carol, "other.test"}, {dave, "localhost"}} {
		st, ok := p.c.TLS()
		if !ok || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].VerifyHostname(p.want) != nil {
			t.Fatalf("%s: the server's certificate is not for %s", p.c.JID(), p.want)
		}
	}
	for _, pair := range [][2]*client.Client{{carol, dave}, {dave, carol}} {
		from, to := pair[0], pair[1]
		body := "from " + from.JID().String()
		if err := from.SendMessage(ctx, client.Message{To: to.JID(), Type: client.MessageChat, Body: body}); err != nil {
			t.Fatalf("send %q: %v", body, err)
		}
		m, err := to.NextMessage(ctx)
		if err != nil || m.Body != body || m.From != from.JID() {
			t.Fatalf("%s: got %+v, %v; want %q from %s", to.JID(), m, err, body, from.JID())
		}
	}
}
