package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// serve runs a presence service over store on an in-process gRPC server.
func serve(t *testing.T, cfg presence.Config) presencev1.SessionRegistryClient {
	t.Helper()
	svc, err := presence.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	if cfg.ReapInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Reaper().Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return presencev1.NewSessionRegistryClient(cc)
}

func background(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventLog keeps the SessionsRemoved events a service publishes.
type eventLog struct {
	mu  sync.Mutex
	ids []string
	in  chan struct{}
}

func (e *eventLog) Publish(_ string, data []byte) error {
	ev := &presencev1.SessionsRemoved{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return err
	}
	e.mu.Lock()
	for _, s := range ev.Sessions {
		e.ids = append(e.ids, s.SessionId)
	}
	e.mu.Unlock()
	select {
	case e.in <- struct{}{}:
	default:
	}
	return nil
}

func (e *eventLog) removed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ids...)
}

// Every call fails within the store's deadline while Redis is cut off,
// and the same Store works again once Redis is back.
func TestCallsFailWithinTheDeadlineWhileRedisIsCutOffAndSucceedOnceItIsBack(t *testing.T) {
	const timeout = 200 * time.Millisecond
	p := startProxy(t, redisAddr())
	s := open(t, Config{Addr: p.Addr(), Timeout: timeout})
	full := jid.MustParse("juliet@example.com/balcony")
	ctx := background(t)
	if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: "s1"}); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	calls := map[string]func() error{
		"Bind": func() error {
			_, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: "s2"})
			return err
		},
		"Unbind":        func() error { _, err := s.Unbind(ctx, full, "s1"); return err },
		"SetPresence":   func() error { _, err := s.SetPresence(ctx, full, "s1", true, 0, nil); return err },
		"Lookup(full)":  func() error { _, err := s.Lookup(ctx, full); return err },
		"Lookup(bare)":  func() error { _, err := s.Lookup(ctx, full.Bare()); return err },
		"Heartbeat":     func() error { _, err := s.Heartbeat(ctx, "node-a", time.Second); return err },
		"ReapDeadNodes": func() error { _, err := s.ReapDeadNodes(ctx); return err },
		"DropNode":      func() error { _, err := s.DropNode(ctx, "node-b"); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if err == nil {
			t.Errorf("%s succeeded while Redis was cut off", name)
		}
		// The deadline, plus slack for a loaded machine; go-redis's own
		// defaults would be 5 s per attempt and three retries.
		if elapsed > timeout+time.Second {
			t.Errorf("%s failed after %v, want within about %v", name, elapsed, timeout)
		}
	}

	p.Restore()
	got := eventually(t, func() ([]presence.Session, error) { return s.Lookup(ctx, full) })
	if len(got) != 1 || got[0].ID != "s1" {
		t.Errorf("Lookup after Redis came back = %v, want s1, untouched by the failed calls", got)
	}
}

// eventually retries call until it succeeds, for at most 10 s: the first
// calls after an outage may still meet connections the outage broke.
func eventually[T any](t *testing.T, call func() (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := call()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 10 s after Redis came back: %v", err)
		}
		<-tick.C
	}
}

// A c2s node's presence pod loses Redis for longer than the node's TTL
// while another pod keeps reaping: the node's sessions are reaped and
// announced once. When Redis is back the node's heartbeat returns a new
// epoch, the node binds its sessions again, and they stay.
func TestNodeCutOffLongerThanItsTTLIsReapedThenKeepsWhatItBindsAgain(t *testing.T) {
	const ttl = 300 * time.Millisecond
	prefix := testPrefix(t)
	p := startProxy(t, redisAddr())
	storeA := open(t, Config{Addr: p.Addr(), Prefix: prefix, Timeout: 200 * time.Millisecond})
	storeB := open(t, Config{Prefix: prefix})
	c := serve(t, presence.Config{Store: storeA})
	events := &eventLog{in: make(chan struct{}, 1)}
	serve(t, presence.Config{Store: storeB, Events: events, ReapInterval: 20 * time.Millisecond})
	ctx := background(t)

	hb, err := c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "node-a", TtlMs: ttl.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	epoch := hb.Epoch
	bindReq := &presencev1.BindRequest{Jid: "juliet@example.com/balcony", Node: "node-a", SessionId: "s1"}
	if _, err := c.Bind(ctx, bindReq); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	// The node goes on sending heartbeats; its pod answers Unavailable
	// within the store's deadline, as for any store trouble.
	start := time.Now()
	_, err = c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "node-a", TtlMs: ttl.Milliseconds()})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("Heartbeat while cut off: %v, want Unavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Heartbeat while cut off took %v", elapsed)
	}
	select {
	case <-events.in:
	case <-time.After(10 * time.Second):
		t.Fatal("the other pod's reaper announced nothing within 10 s")
	}
	if got := events.removed(); fmt.Sprint(got) != "[s1]" {
		t.Fatalf("announced %v, want [s1]", got)
	}

	p.Restore()
	hb = eventually(t, func() (*presencev1.HeartbeatResponse, error) {
		return c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "node-a", TtlMs: ttl.Milliseconds()})
	})
	if hb.Epoch == epoch {
		t.Fatalf("heartbeat after the outage returned the old epoch %d: the node would not know to bind again", epoch)
	}
	if _, err := c.Bind(ctx, bindReq); err != nil {
		t.Fatal(err)
	}
	// Four TTLs of heartbeats with the reaper running: nothing more goes.
	tick := time.NewTicker(ttl / 6)
	defer tick.Stop()
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); {
		<-tick.C
		if _, err := c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "node-a", TtlMs: ttl.Milliseconds()}); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	if got := events.removed(); fmt.Sprint(got) != "[s1]" {
		t.Errorf("announced %v in all, want [s1] once", got)
	}
	resp, err := c.Lookup(ctx, &presencev1.LookupRequest{Jid: "juliet@example.com"})
	if err != nil || len(resp.Sessions) != 1 || resp.Sessions[0].SessionId != "s1" {
		t.Errorf("Lookup = %v, %v; want s1 bound again", resp, err)
	}
}

// A reap whose reply is lost after Redis ran it has removed sessions
// that nobody announced yet: the store's next reap returns them, once.
func TestSessionsOfAReapWhoseReplyWasLostAreReturnedByTheNextReap(t *testing.T) {
	prefix := testPrefix(t)
	p := startProxy(t, redisAddr())
	s := open(t, Config{Addr: p.Addr(), Prefix: prefix, Timeout: 300 * time.Millisecond})
	other := open(t, Config{Prefix: prefix}) // another pod, reaping too
	ctx := background(t)
	want := map[string]bool{}
	for i := range 3 {
		id := fmt.Sprintf("s%d", i)
		full := jid.MustParse(fmt.Sprintf("user%d@example.com/balcony", i))
		if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: id}); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	if _, err := s.Heartbeat(ctx, "node-a", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Wait until Redis's clock has the node expired, without reaping.
	eventually(t, func() (struct{}, error) {
		nodes, err := expiredScript.Run(ctx, other.rdb, []string{other.live}, scanBatch).StringSlice()
		if err == nil && len(nodes) == 0 {
			err = fmt.Errorf("node-a not expired yet")
		}
		return struct{}{}, err
	})

	// The step that removes the sessions runs; its reply is lost.
	p.Deafen()
	removed, err := s.drop(ctx, "node-a", false)
	if err == nil || len(removed) != 0 {
		t.Fatalf("deafened drop step = %v, %v; want an error and nothing", removed, err)
	}
	for i := range 3 {
		if got, err := other.Lookup(ctx, jid.MustParse(fmt.Sprintf("user%d@example.com", i))); err != nil || len(got) != 0 {
			t.Fatalf("user%d after the lost reply: %v, %v; want the reap to have run", i, got, err)
		}
	}
	if got, err := other.ReapDeadNodes(ctx); err != nil || len(got) != 0 {
		t.Errorf("the other pod reaped %v, %v; want nothing left to it", got, err)
	}

	p.Restore()
	got := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		removed, err := s.ReapDeadNodes(ctx)
		if err != nil {
			continue // a connection the outage broke
		}
		for _, r := range removed {
			got[r.ID]++
		}
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("session %s returned %d times after the lost reply, want once", id, got[id])
		}
	}
	if again, err := s.ReapDeadNodes(ctx); err != nil || len(again) != 0 {
		t.Errorf("a further reap returned %v, %v; want nothing", again, err)
	}
}

// Reapers in several pods, each with its own connections, share the work
// and report every session once.
func TestReapersOfSeveralPodsReportEachSessionOnce(t *testing.T) {
	const (
		pods    = 3
		nodes   = 5
		perNode = 100
		total   = nodes * perNode
	)
	prefix := testPrefix(t)
	var stores []*Store
	for range pods {
		stores = append(stores, open(t, Config{Prefix: prefix, ReapBatch: 7}))
	}
	ctx := background(t)
	for n := range nodes {
		node := fmt.Sprintf("node-%d", n)
		if _, err := stores[0].Heartbeat(ctx, node, time.Minute); err != nil {
			t.Fatal(err)
		}
		for i := range perNode {
			full := jid.MustParse(fmt.Sprintf("user%d@example.com/%s", i, node))
			if _, err := stores[n%pods].Bind(ctx, presence.Session{JID: full, Node: node, ID: fmt.Sprintf("%s/%d", node, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n := range nodes {
		if _, err := stores[1].Heartbeat(ctx, fmt.Sprintf("node-%d", n), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu    sync.Mutex
		count = map[string]int{}
		n     int
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range stores {
		for range 2 {
			wg.Go(func() {
				for {
					mu.Lock()
					done := n >= total
					mu.Unlock()
					if done || time.Now().After(deadline) {
						return
					}
					removed, err := s.ReapDeadNodes(ctx)
					if err != nil {
						t.Errorf("ReapDeadNodes: %v", err)
						return
					}
					mu.Lock()
					for _, r := range removed {
						count[r.ID]++
					}
					n += len(removed)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if n != total || len(count) != total {
		t.Errorf("%d sessions reported, %d distinct; want %d once each", n, len(count), total)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("session %s reported %d times", id, c)
		}
	}
}

// BenchmarkLookupBareJIDWithThreeSessions measures the router's most
// frequent registry call: one HGETALL and the decoding of three sessions.
func BenchmarkLookupBareJIDWithThreeSessions(b *testing.B) {
	s := open(b, Config{})
	ctx := context.Background()
	for _, r := range []string{"balcony", "garden", "chamber"} {
		full := jid.MustParse("juliet@example.com/" + r)
		if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: r, Bound: time.Now()}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.SetPresence(ctx, full, r, true, 1, []byte("<presence from='juliet@example.com/"+r+"'><show>away</show><status>out in the garden</status></presence>")); err != nil {
			b.Fatal(err)
		}
	}
	bare := jid.MustParse("juliet@example.com")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.Lookup(ctx, bare)
		if err != nil || len(got) != 3 {
			b.Fatalf("Lookup = %d sessions, %v", len(got), err)
		}
	}
}

// The same over several goroutines, as a router with many stanzas in
// flight calls it.
func BenchmarkLookupBareJIDWithThreeSessionsParallel(b *testing.B) {
	s := open(b, Config{})
	ctx := context.Background()
	for _, r := range []string{"balcony", "garden", "chamber"} {
		full := jid.MustParse("juliet@example.com/" + r)
		if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: r, Bound: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	bare := jid.MustParse("juliet@example.com")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if got, err := s.Lookup(ctx, bare); err != nil || len(got) != 3 {
				b.Errorf("Lookup = %d sessions, %v", len(got), err)
				return
			}
		}
	})
}
