package s2s

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

const testLeaseTTL = time.Second

// cluster is a.test served by two s2s pods sharing a lease bucket on one
// JetStream-enabled NATS server, and b.test as a single peer server.
type cluster struct {
	e        *env
	subjects bus.Subjects
	kv       jetstream.KeyValue
	cert     tls.Certificate
	pods     map[string]*pod
	b        *node

	mu    sync.Mutex
	addrs []string // listeners of the a.test pods, for front
}

// pod is one a.test s2s pod with its own NATS connection, so that the
// test can cut it off as a crash would.
type pod struct {
	name   string
	srv    *Server
	nc     *nats.Conn
	logs   *logRecorder
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
}

// front is a.test's address as b.test sees it, as a Kubernetes Service
// would be: each connection goes to the first pod that accepts it.
func (c *cluster) front() string {
	t := c.e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				c.mu.Lock()
				addrs := slices.Clone(c.addrs)
				c.mu.Unlock()
				for _, a := range addrs {
					out, err := net.Dial("tcp", a)
					if err != nil {
						continue
					}
					defer out.Close()
					go io.Copy(out, in)
					io.Copy(in, out)
					return
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func newCluster(t *testing.T) *cluster {
	ns, err := natsembed.Start(natsembed.Options{JetStreamDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &cluster{e: &env{t: t, ns: ns, nc: nc}, subjects: bus.New("a_test", 4), cert: selfSigned(t, "a.test"), pods: map[string]*pod{}}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if c.kv, err = c.subjects.EnsureS2SLeaseBucket(context.Background(), js, testLeaseTTL, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	c.b = c.e.start("b.test", selfSigned(t, "b.test"), nil)
	c.b.srv.cfg.HostMap["a.test"] = c.front()
	return c
}

// start runs pod name of a.test.
func (c *cluster) start(name string, mod func(*Config)) *pod {
	t := c.e.t
	nc, err := c.e.ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// Its own handle on the bucket, over its own connection.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), c.subjects.S2SLeaseBucket())
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	cfg := Config{
		Domains:        []string{"a.test"},
		Node:           name,
		Listen:         "127.0.0.1:0",
		TLS:            &tls.Config{Certificates: []tls.Certificate{c.cert}, MinVersion: tls.VersionTLS12},
		Secret:         "secret of a.test",
		HostMap:        map[string]string{"b.test": c.b.srv.Addr().String()},
		ConnectTimeout: 5 * time.Second,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		Leases:         kv,
		LeaseTTL:       testLeaseTTL,
		NATS:           nc,
		Subjects:       c.subjects,
		Logger:         slog.New(logs),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.addrs = append(c.addrs, srv.Addr().String())
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pod{name: name, srv: srv, nc: nc, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := srv.Run(ctx); err != nil {
			t.Errorf("pod %s: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Errorf("pod %s did not stop", name)
		}
		if t.Failed() {
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for _, r := range logs.recs {
				t.Logf("%s log: %s", name, r)
			}
		}
	})
	select {
	case <-srv.Ready():
	case <-time.After(wait):
		t.Fatalf("pod %s not ready", name)
	}
	c.pods[name] = p
	return p
}

// send plays a router: message n from alice to bob.
func (c *cluster) send(n int) {
	c.e.t.Helper()
	raw := fmt.Sprintf(`<message xmlns='jabber:client' from='alice@a.test/phone' to='bob@b.test' type='chat' id='%d'><body>%d</body></message>`, n, n)
	el := parseRaw(c.e.t, raw)
	st := &busv1.Stanza{From: "alice@a.test/phone", To: "bob@b.test", Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: strconv.Itoa(n),
		Origin: &busv1.Origin{Node: "c2s-test", Session: "1"}, Raw: el.Marshal(), Seq: uint64(n + 1)}
	b, err := proto.Marshal(st)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if err := c.e.nc.Publish(c.subjects.S2SOut("b.test"), b); err != nil {
		c.e.t.Fatal(err)
	}
}

// received reads what b.test routed within d, as message numbers.
func (c *cluster) received(d time.Duration) (int, bool) {
	select {
	case st := <-c.b.routed:
		n, err := strconv.Atoi(st.Id)
		if err != nil {
			c.e.t.Fatalf("routed %+v", st)
		}
		return n, true
	case <-time.After(d):
		return 0, false
	}
}

// streamsUp is the number of outbound streams the a.test pods opened.
func (c *cluster) streamsUp() int {
	n := 0
	for _, p := range c.pods {
		n += p.logs.count("s2s outbound stream up")
	}
	return n
}

// holder is the node holding the (a.test, b.test) lease, or "".
func (c *cluster) holder() string {
	e, err := c.kv.Get(context.Background(), c.subjects.S2SLeaseKey("a.test", "b.test"))
	if err != nil {
		return ""
	}
	return string(e.Value())
}

func TestTwoPodsOpenOneStreamPerPairAndKeepOrder(t *testing.T) {
	c := newCluster(t)
	c.start("a1", nil)
	c.start("a2", nil)
	const total = 300
	for i := range total {
		c.send(i)
	}
	for want := range total {
		got, ok := c.received(wait)
		if !ok {
			t.Fatalf("message %d not delivered within %v", want, wait)
		}
		if got != want {
			t.Fatalf("b.test received message %d, want %d: out of order or duplicated", got, want)
		}
	}
	if extra, ok := c.received(200 * time.Millisecond); ok {
		t.Fatalf("message %d delivered twice", extra)
	}
	if got := c.streamsUp(); got != 1 {
		t.Errorf("%d outbound streams to b.test across the pods, want 1", got)
	}
	if got := c.b.logs.count("s2s inbound authenticated"); got != 1 {
		t.Errorf("b.test authenticated %d inbound streams, want 1", got)
	}
	h := c.holder()
	if h != "a1" && h != "a2" {
		t.Fatalf("lease holder %q", h)
	}
	if got := c.pods[h].logs.count("s2s outbound stream up"); got != 1 {
		t.Errorf("the lease holder %s opened %d streams, want the one", h, got)
	}
}

func TestSurvivingPodTakesOverThePairOfAPodThatDied(t *testing.T) {
	c := newCluster(t)
	c.start("a1", nil)
	c.start("a2", nil)
	c.send(0)
	if n, ok := c.received(wait); !ok || n != 0 {
		t.Fatalf("first message: %d, %v", n, ok)
	}
	dead := c.pods[c.holder()]
	if dead == nil {
		t.Fatalf("no pod holds the lease (%q)", c.holder())
	}
	survivor := c.pods["a1"]
	if dead == survivor {
		survivor = c.pods["a2"]
	}
	// A crash: the pod's NATS connection goes without a word, so its
	// lease stays until the TTL; then its streams close.
	t.Logf("holder %s killed", dead.name)
	dead.nc.Close()
	dead.cancel()
	killed := time.Now()

	// Keep sending, as routers would, until the survivor delivers.
	last := 0
	next := 1
	deadline := time.Now().Add(10 * testLeaseTTL)
	for {
		c.send(next)
		next++
		if n, ok := c.received(20 * time.Millisecond); ok {
			if n <= last {
				t.Fatalf("message %d after %d: out of order or duplicated", n, last)
			}
			last = n
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered %v after the holder died", 10*testLeaseTTL)
		}
	}
	if d := time.Since(killed); d > 2*testLeaseTTL {
		t.Errorf("takeover took %v, want under two lease TTLs", d)
	}
	t.Logf("takeover after %v (lease TTL %v); messages 1 to %d sent meanwhile, %d first delivered", time.Since(killed).Round(time.Millisecond), testLeaseTTL, next-1, last)
	if h := c.holder(); h != survivor.name {
		t.Fatalf("lease held by %q, want the survivor %s", h, survivor.name)
	}
	// From now on every message arrives, once and in order.
	first := next
	for i := range 100 {
		c.send(first + i)
	}
	for {
		n, ok := c.received(wait)
		if !ok {
			t.Fatalf("message after %d missing", last)
		}
		if n <= last {
			t.Fatalf("message %d after %d: out of order or duplicated", n, last)
		}
		if n >= first && n != max(last+1, first) {
			t.Fatalf("message %d after %d: one sent after the takeover is missing", n, last)
		}
		last = n
		if n == first+99 {
			break
		}
	}
	if got := survivor.logs.count("s2s outbound stream up"); got != 1 {
		t.Errorf("survivor opened %d streams, want 1", got)
	}
	if !strings.Contains(c.holder(), survivor.name) {
		t.Errorf("lease moved again to %q", c.holder())
	}
}

func TestCleanStopHandsThePairOverAtOnce(t *testing.T) {
	c := newCluster(t)
	c.start("a1", nil)
	c.start("a2", nil)
	c.send(0)
	if _, ok := c.received(wait); !ok {
		t.Fatal("first message not delivered")
	}
	h := c.pods[c.holder()]
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(wait):
		t.Fatal("holder did not stop")
	}
	checkFor(t, testLeaseTTL/2, 10*time.Millisecond, func() error {
		if got := c.holder(); got != "" {
			return fmt.Errorf("lease still held by %q", got)
		}
		return nil
	})
	// Stanzas published in the moment of the handover can be lost (core
	// NATS, at most once); the other pod takes the pair well within the
	// TTL, as the release is announced.
	released := time.Now()
	next := 1
	for {
		c.send(next)
		next++
		if n, ok := c.received(20 * time.Millisecond); ok {
			if n < 1 {
				t.Fatalf("message %d delivered again", n)
			}
			break
		}
		if time.Since(released) > testLeaseTTL/2 {
			t.Fatalf("no pod took the released pair within %v", testLeaseTTL/2)
		}
	}
	t.Logf("pair taken %v after the release", time.Since(released).Round(time.Millisecond))
}

func TestIdleStreamReleasesItsLease(t *testing.T) {
	c := newCluster(t)
	c.start("a1", func(cfg *Config) { cfg.IdleTimeout = 200 * time.Millisecond })
	c.send(0)
	if _, ok := c.received(wait); !ok {
		t.Fatal("message not delivered")
	}
	checkFor(t, wait, 20*time.Millisecond, func() error {
		if got := c.holder(); got != "" {
			return fmt.Errorf("lease still held by %q", got)
		}
		return nil
	})
}
