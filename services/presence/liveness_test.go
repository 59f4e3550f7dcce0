package presence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/memstore"
)

// serve runs svc on a real gRPC server reached in process.
func serve(t *testing.T, svc *presence.Service) presencev1.SessionRegistryClient {
	t.Helper()
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return presencev1.NewSessionRegistryClient(cc)
}

func newService(t *testing.T, cfg presence.Config) *presence.Service {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memstore.New()
	}
	svc, err := presence.New(cfg)
	if err != nil {
		t.Fatalf("presence.New: %v", err)
	}
	return svc
}

// events is a Publisher that keeps what it is given.
type events struct {
	mu   sync.Mutex
	got  []*presencev1.SessionsRemoved
	subj []string
	// changed holds the PresenceChanged events (events_test.go).
	changed [][]string
	fail    error
	sent    chan struct{}
}

func newEvents() *events { return &events{sent: make(chan struct{}, 1000)} }

func (e *events) Publish(subject string, data []byte) error {
	if strings.HasSuffix(subject, ".presence.changed") {
		return e.publishChanged(data)
	}
	ev := &presencev1.SessionsRemoved{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.got = append(e.got, ev)
	e.subj = append(e.subj, subject)
	e.sent <- struct{}{}
	return nil
}

func (e *events) all() ([]*presencev1.SessionsRemoved, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*presencev1.SessionsRemoved(nil), e.got...), append([]string(nil), e.subj...)
}

func heartbeat(t *testing.T, c presencev1.SessionRegistryClient, node string, ttl time.Duration) uint64 {
	t.Helper()
	resp, err := c.Heartbeat(testContext(t), &presencev1.HeartbeatRequest{Node: node, TtlMs: ttl.Milliseconds()})
	if err != nil {
		t.Fatalf("Heartbeat(%s): %v", node, err)
	}
	return resp.Epoch
}

func dropNode(t *testing.T, c presencev1.SessionRegistryClient, node string) int32 {
	t.Helper()
	resp, err := c.DropNode(testContext(t), &presencev1.DropNodeRequest{Node: node})
	if err != nil {
		t.Fatalf("DropNode(%s): %v", node, err)
	}
	return resp.Removed
}

func TestHeartbeatEpochChangesOnlyOnceTheNodesSessionsWereDropped(t *testing.T) {
	c := serve(t, newService(t, presence.Config{}))
	e1 := heartbeat(t, c, "node-a", 5*time.Second)
	if e1 == 0 {
		t.Fatal("Heartbeat returned epoch 0")
	}
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	if e := heartbeat(t, c, "node-a", 5*time.Second); e != e1 {
		t.Errorf("second Heartbeat: epoch %d, want %d", e, e1)
	}
	if n := dropNode(t, c, "node-a"); n != 1 {
		t.Errorf("DropNode removed %d sessions, want 1", n)
	}
	if got := lookup(t, c, "juliet@example.com"); len(got) != 0 {
		t.Errorf("Lookup after DropNode = %v, want nothing", ids(got))
	}
	if e := heartbeat(t, c, "node-a", 5*time.Second); e == e1 {
		t.Errorf("Heartbeat after DropNode returned the old epoch %d; the node would not bind again", e)
	}
}

func TestHeartbeatAndDropNodeRefuseMalformedRequests(t *testing.T) {
	c := serve(t, newService(t, presence.Config{}))
	ctx := testContext(t)
	for _, node := range []string{"", "node\x00a", "node\na", strings.Repeat("n", 256)} {
		_, err := c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: node, TtlMs: 5000})
		wantCode(t, fmt.Sprintf("Heartbeat(node %q)", node), err, codes.InvalidArgument)
		_, err = c.DropNode(ctx, &presencev1.DropNodeRequest{Node: node})
		wantCode(t, fmt.Sprintf("DropNode(node %q)", node), err, codes.InvalidArgument)
		_, err = c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/balcony", Node: node, SessionId: "s1"})
		wantCode(t, fmt.Sprintf("Bind(node %q)", node), err, codes.InvalidArgument)
	}
	for _, ttl := range []int64{0, -1, presence.MaxHeartbeatTTL.Milliseconds() + 1} {
		_, err := c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "node-a", TtlMs: ttl})
		wantCode(t, fmt.Sprintf("Heartbeat(ttl %d ms)", ttl), err, codes.InvalidArgument)
	}
	_, err := c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/balcony", Node: "node-a", SessionId: "s\x001"})
	wantCode(t, "Bind with NUL in the session id", err, codes.InvalidArgument)
}

func TestDropNodeAnnouncesTheRemovedSessionsOnTheBus(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subjects := bus.New("test-drop", 0)
	sub, err := nc.SubscribeSync(subjects.SessionsRemoved())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := serve(t, newService(t, presence.Config{Events: nc, Subjects: subjects}))

	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	bind(t, c, "romeo@example.com/cell", "node-b", "s2")
	raw := []byte("<presence><show>away</show></presence>")
	if _, err := c.SetPresence(testContext(t), &presencev1.SetPresenceRequest{
		Jid: "juliet@example.com/balcony", SessionId: "s1", Available: true, Priority: 4, Presence: raw,
	}); err != nil {
		t.Fatal(err)
	}
	if n := dropNode(t, c, "node-a"); n != 1 {
		t.Fatalf("DropNode removed %d, want 1", n)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no event on %s: %v", subjects.SessionsRemoved(), err)
	}
	ev := &presencev1.SessionsRemoved{}
	if err := proto.Unmarshal(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
	if ev.Reason != presencev1.SessionsRemoved_REASON_NODE_DROPPED || len(ev.Sessions) != 1 {
		t.Fatalf("event = %v, want one session dropped", ev)
	}
	// The last presence comes along, so that contacts can be sent the
	// unavailable presence of the resource they saw.
	if s := ev.Sessions[0]; s.Jid != "juliet@example.com/balcony" || s.Node != "node-a" || s.SessionId != "s1" ||
		!s.Available || s.Priority != 4 || string(s.LastPresence) != string(raw) {
		t.Errorf("event session = %v", s)
	}
	if got := lookup(t, c, "romeo@example.com"); len(got) != 1 {
		t.Errorf("the other node's session: %v", ids(got))
	}
	if _, err := sub.NextMsg(50 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("second event or error after one drop: %v", err)
	}
}

func TestDropNodeOfAManySessionNodeIsAnnouncedInBoundedEvents(t *testing.T) {
	ev := newEvents()
	c := serve(t, newService(t, presence.Config{Events: ev}))
	const n = 1201
	for i := range n {
		bind(t, c, fmt.Sprintf("user%d@example.com/r", i), "node-a", "s")
	}
	if got := dropNode(t, c, "node-a"); got != n {
		t.Fatalf("DropNode removed %d, want %d", got, n)
	}
	got, subj := ev.all()
	var sizes []int
	seen := map[string]bool{}
	for i, e := range got {
		sizes = append(sizes, len(e.Sessions))
		if subj[i] != bus.New("", 0).SessionsRemoved() {
			t.Errorf("event on %s", subj[i])
		}
		for _, s := range e.Sessions {
			seen[s.Jid] = true
		}
	}
	if fmt.Sprint(sizes) != "[500 500 201]" || len(seen) != n {
		t.Errorf("events of %v sessions covering %d JIDs, want [500 500 201] covering %d", sizes, len(seen), n)
	}
}

func TestDropNodeSucceedsWhenTheBusRefusesTheEvent(t *testing.T) {
	ev := newEvents()
	ev.fail = errors.New("nats: connection closed")
	c := serve(t, newService(t, presence.Config{Events: ev}))
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	if n := dropNode(t, c, "node-a"); n != 1 {
		t.Errorf("DropNode removed %d, want 1", n)
	}
	if got := lookup(t, c, "juliet@example.com"); len(got) != 0 {
		t.Errorf("Lookup = %v, want nothing", ids(got))
	}
}

// runReaper runs svc's reaper until the test ends.
func runReaper(t *testing.T, svc *presence.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Reaper().Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Reaper.Run = %v, want nil after cancel", err)
		}
	})
}

func TestReaperRemovesTheSessionsOfANodeWhoseHeartbeatsStoppedAndAnnouncesThem(t *testing.T) {
	ev := newEvents()
	svc := newService(t, presence.Config{Events: ev, ReapInterval: 10 * time.Millisecond})
	c := serve(t, svc)
	heartbeat(t, c, "node-dead", 50*time.Millisecond)
	heartbeat(t, c, "node-live", time.Minute)
	bind(t, c, "juliet@example.com/balcony", "node-dead", "s1")
	bind(t, c, "juliet@example.com/garden", "node-live", "s2")
	runReaper(t, svc)

	select {
	case <-ev.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	got, _ := ev.all()
	if len(got) != 1 || got[0].Reason != presencev1.SessionsRemoved_REASON_NODE_EXPIRED ||
		len(got[0].Sessions) != 1 || got[0].Sessions[0].SessionId != "s1" {
		t.Fatalf("events = %v, want s1 expired", got)
	}
	if got := lookup(t, c, "juliet@example.com"); len(got) != 1 || got[0].SessionId != "s2" {
		t.Errorf("Lookup = %v, want only s2", ids(got))
	}
}

// The design's promise, with its own numbers: a c2s node that stops
// sending heartbeats of a 5 s TTL has no sessions left within 10 s.
func TestSessionsOfADeadNodeAreGoneWithin10SecondsWithA5SecondTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7 s")
	}
	svc := newService(t, presence.Config{}) // DefaultReapInterval
	c := serve(t, svc)
	runReaper(t, svc)
	heartbeat(t, c, "node-a", 5*time.Second)
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	died := time.Now()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(lookup(t, c, "juliet@example.com")) != 0 {
		if time.Since(died) > 10*time.Second {
			t.Fatal("the session is still bound 10 s after the node's last heartbeat")
		}
		<-tick.C
	}
	t.Logf("gone %v after the last heartbeat", time.Since(died).Round(time.Millisecond))
}

// countingStore counts reaps of a store that fails them.
type countingStore struct {
	brokenStore
	reaps atomic.Int64
	tick  chan struct{}
}

func (s *countingStore) ReapDeadNodes(context.Context) ([]presence.Session, error) {
	s.reaps.Add(1)
	select {
	case s.tick <- struct{}{}:
	default:
	}
	return nil, errDown
}

func TestReaperKeepsTryingWhileTheStoreFails(t *testing.T) {
	store := &countingStore{tick: make(chan struct{})}
	svc := newService(t, presence.Config{Store: store, ReapInterval: time.Millisecond})
	runReaper(t, svc)
	for range 3 {
		select {
		case <-store.tick:
		case <-time.After(10 * time.Second):
			t.Fatalf("the reaper stopped after %d failed reaps", store.reaps.Load())
		}
	}
}

func TestNewRefusesANegativeReapInterval(t *testing.T) {
	if _, err := presence.New(presence.Config{Store: memstore.New(), ReapInterval: -time.Second}); err == nil {
		t.Fatal("New with a negative ReapInterval succeeded")
	}
}
