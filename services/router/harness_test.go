package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

const (
	domain = "example.com"
)

// natsServer is one embedded nats-server for the whole package; each test
// uses its own subject prefix on it.
var natsServer *natsembed.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "router-test-jetstream-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := natsembed.Start(natsembed.Options{JetStreamDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded NATS:", err)
		os.Exit(1)
	}
	natsServer = s
	code := m.Run()
	s.Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

// natsURLEnv names a NATS server (with JetStream) to run the tests against
// instead of the embedded one, such as the machine's older build, to check
// the minimum version design note 002 states.
const natsURLEnv = "SWITCHBOARD_TEST_NATS_URL"

// connectNATS connects to the test's NATS server.
func connectNATS() (*nats.Conn, error) {
	if u := os.Getenv(natsURLEnv); u != "" {
		return nats.Connect(u)
	}
	return natsServer.Connect()
}

// testLeaseTTL keeps takeovers quick in tests.
const testLeaseTTL = time.Second

// testStream keeps the space each test's stream reserves small, in memory:
// the tests kill routers, never the NATS server, and file stores were seen
// to fail to be created under a loaded CI run ("error creating store").
var testStream = bus.StreamOptions{MaxBacklog: 8 << 20, Memory: true}

// dropStreams deletes the route stream and lease bucket of subjects when
// the test ends (after its routers stopped).
func dropStreams(t testing.TB, js jetstream.JetStream, subjects bus.Subjects) {
	t.Cleanup(func() {
		ctx := context.Background()
		js.DeleteStream(ctx, subjects.RouteStream())
		js.DeleteKeyValue(ctx, subjects.LeaseBucket())
	})
}

// fakeRegistry is an in-memory stand-in for the presence service's session
// registry.
type fakeRegistry struct {
	mu        sync.Mutex
	sessions  []*presencev1.Session
	sets      []*presencev1.SetPresenceRequest
	lookupErr error
	// changed, when set, is told of the account of every session added
	// or changed, as the presence service announces them.
	changed  func(bare string)
	directed map[directedKey]map[string]bool // imstate_fake_test.go
}

// add registers a session bound to full on node.
func (f *fakeRegistry) add(full, node, id string, available bool, prio int32, last string) {
	s := &presencev1.Session{Jid: full, Node: node, SessionId: id, Available: available, Priority: prio}
	if last != "" {
		s.LastPresence = []byte(last)
	}
	f.mu.Lock()
	f.sessions = append(f.sessions, s)
	changed := f.changed
	f.mu.Unlock()
	if changed != nil {
		changed(bareOf(full))
	}
}

func (f *fakeRegistry) Lookup(_ context.Context, in *presencev1.LookupRequest, _ ...grpc.CallOption) (*presencev1.LookupResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return nil, f.lookupErr
	}
	resp := &presencev1.LookupResponse{}
	for _, s := range f.sessions {
		if s.Jid == in.Jid || (!strings.Contains(in.Jid, "/") && bareOf(s.Jid) == in.Jid) {
			resp.Sessions = append(resp.Sessions, proto.Clone(s).(*presencev1.Session))
		}
	}
	return resp, nil
}

func (f *fakeRegistry) SetPresence(_ context.Context, in *presencev1.SetPresenceRequest, _ ...grpc.CallOption) (*presencev1.SetPresenceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed != nil {
		// Announced before the change is made, unlike the presence
		// service, so that a router relying on the event alone would
		// be caught out: the router must evict the sender itself.
		f.changed(bareOf(in.Jid))
	}
	f.sets = append(f.sets, proto.Clone(in).(*presencev1.SetPresenceRequest))
	for _, s := range f.sessions {
		if s.Jid == in.Jid && s.SessionId == in.SessionId {
			s.Available = in.Available
			s.Priority = in.Priority
			if in.Available {
				s.LastPresence = in.Presence
			} else {
				s.LastPresence = nil
			}
			return &presencev1.SetPresenceResponse{Found: true}, nil
		}
	}
	return &presencev1.SetPresenceResponse{}, nil
}

func (f *fakeRegistry) setCalls() []*presencev1.SetPresenceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*presencev1.SetPresenceRequest(nil), f.sets...)
}

// fakeAccounts is a fixed set of existing accounts.
type fakeAccounts struct {
	mu     sync.Mutex
	exists map[string]bool
	calls  int
}

func (f *fakeAccounts) AccountExists(_ context.Context, in *rosterv1.AccountExistsRequest, _ ...grpc.CallOption) (*rosterv1.AccountExistsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &rosterv1.AccountExistsResponse{Exists: f.exists[in.Jid]}, nil
}

// client is a bound session of a test user.
type client struct {
	jid, node, session string
}

var (
	alicePhone  = client{"alice@example.com/phone", "n1", "a-phone"}
	aliceLaptop = client{"alice@example.com/laptop", "n2", "a-laptop"}
	bobDesk     = client{"bob@example.com/desk", "n2", "b-desk"}
	bobPhone    = client{"bob@example.com/phone", "n1", "b-phone"}
	bobTablet   = client{"bob@example.com/tablet", "n1", "b-tablet"}
)

// got is one delivery the router published.
type got struct {
	subject string
	d       *busv1.Delivery
}

type harness struct {
	t        *testing.T
	subjects bus.Subjects
	nc       *nats.Conn
	js       jetstream.JetStream
	rnc      *nats.Conn
	reg      *fakeRegistry
	acc      *fakeAccounts
	ros      *fakeRoster
	router   *Router
	in       chan got
	seq      atomic.Uint64
	barrier  int
	cancel   context.CancelFunc
	done     chan error
}

var prefixes atomic.Int64

// runID tells this test process's subjects and streams from those of other
// processes sharing a NATS server.
var runID = fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)

// testPrefix is a subject prefix no other test uses.
func testPrefix(kind string) string {
	return fmt.Sprintf("%s%s-%d", kind, runID, prefixes.Add(1))
}

// newHarness starts a router on a fresh subject prefix with alice and bob
// as existing accounts and no sessions.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		subjects: bus.New(testPrefix("t"), 4),
		reg:      &fakeRegistry{},
		acc:      &fakeAccounts{exists: map[string]bool{"alice@example.com": true, "bob@example.com": true}},
		ros:      newFakeRoster(),
		in:       make(chan got, 1024),
	}
	var err error
	if h.nc, err = connectNATS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nc.Close)
	if h.js, err = jetstream.New(h.nc); err != nil {
		t.Fatal(err)
	}
	if err := h.subjects.EnsureRouteStream(context.Background(), h.js, testStream); err != nil {
		t.Fatal(err)
	}
	dropStreams(t, h.js, h.subjects)
	if h.rnc, err = connectNATS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.rnc.Close)
	sub, err := h.nc.Subscribe(h.subjects.Prefix+".node.*", func(m *nats.Msg) {
		d := new(busv1.Delivery)
		if err := proto.Unmarshal(m.Data, d); err != nil {
			t.Errorf("undecodable delivery on %s: %v", m.Subject, err)
			return
		}
		h.in <- got{m.Subject, d}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	h.router, err = New(Config{
		Domain:   domain,
		Node:     "test-router",
		NATS:     h.rnc,
		Subjects: h.subjects,
		Sessions: h.reg,
		Accounts: h.acc,
		Roster:   h.ros,
		Logger:   testLogger(),
		LeaseTTL: testLeaseTTL, Stream: testStream,

		SessionCacheSize: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	// The router's session cache is on; every session the test binds
	// is announced as the presence service would, and bind waits for
	// the router to have seen it.
	waitUntil(t, "the session cache on", h.router.cache.isOn)
	h.reg.mu.Lock()
	h.reg.changed = func(bare string) {
		if err := h.nc.Publish(h.subjects.PresenceChanged(), bus.EncodeChanged(bare)); err != nil {
			t.Error(err)
		}
	}
	h.reg.mu.Unlock()
	return h
}

// waitUntil polls cond until it holds, or fails the test after 10s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs the router until the test ends, and returns once it routes
// alice's stanzas.
func (h *harness) start() {
	h.run()
	h.waitSubscribed()
}

// run runs the router until the test ends.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.router.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// waitSubscribed pings the server until Run answers: the stream keeps the
// ping until the router has taken alice's partition.
func (h *harness) waitSubscribed() {
	h.t.Helper()
	h.send(alicePhone, iq("", domain, "get", "warmup", dom.New(nsPing, "ping")))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case g := <-h.in:
			if g.d.Id == "warmup" {
				return
			}
		case <-deadline:
			h.t.Fatal("router not consuming within 10s")
		}
	}
}

// stop cancels Run and returns its result.
func (h *harness) stop() error {
	h.t.Helper()
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return within 10s of cancel")
		return nil
	}
}

// bind registers c's session, and returns once the router's session
// cache has seen the change announced.
func (h *harness) bind(c client, available bool, prio int32) {
	h.t.Helper()
	before := h.router.cache.invalidations.Load()
	h.reg.add(c.jid, c.node, c.session, available, prio, "")
	waitUntil(h.t, "the router to see "+c.jid+" bound", func() bool { return h.router.cache.invalidations.Load() > before })
}

// send publishes el as c's stanza, with from stamped as c2s does.
func (h *harness) send(c client, el *dom.Element) *busv1.Stanza {
	h.t.Helper()
	st := h.envelope(c, el)
	h.publish(st)
	return st
}

func kindOf(el *dom.Element) busv1.Kind {
	return map[string]busv1.Kind{
		"message":  busv1.Kind_KIND_MESSAGE,
		"presence": busv1.Kind_KIND_PRESENCE,
		"iq":       busv1.Kind_KIND_IQ,
	}[el.Local]
}

// envelope is el as c2s publishes it for c, with the next seq.
func (h *harness) envelope(c client, el *dom.Element) *busv1.Stanza {
	el.SetAttr("from", c.jid)
	return &busv1.Stanza{
		From:   c.jid,
		To:     el.Attr("to"),
		Kind:   kindOf(el),
		Type:   el.Attr("type"),
		Id:     el.Attr("id"),
		Origin: &busv1.Origin{Node: c.node, Session: c.session},
		Raw:    el.Marshal(),
		Seq:    h.seq.Add(1),
	}
}

func (h *harness) publish(st *busv1.Stanza) {
	h.t.Helper()
	b, err := proto.Marshal(st)
	if err != nil {
		h.t.Fatal(err)
	}
	id := bus.StanzaMsgID(st.GetOrigin().GetNode(), st.GetOrigin().GetSession(), st.Seq)
	if st.Undeliverable != nil {
		id += "/undeliverable"
	}
	if _, err := h.js.PublishMsg(context.Background(), &nats.Msg{Subject: h.subjects.RouteFor(bareOf(st.From)), Data: b}, jetstream.WithMsgID(id)); err != nil {
		h.t.Fatal(err)
	}
}

// collect returns every delivery the router made for c's stanzas sent so
// far. It sends c a ping to the server as a barrier: c's stanzas are routed
// in order, so all deliveries they caused are published before the
// barrier's result.
func (h *harness) collect(c client) []got {
	h.t.Helper()
	h.barrier++
	id := fmt.Sprintf("barrier-%d", h.barrier)
	h.send(c, iq("", domain, "get", id, dom.New(nsPing, "ping")))
	var out []got
	deadline := time.After(10 * time.Second)
	for {
		select {
		case g := <-h.in:
			if g.d.Id == id && g.d.Session == c.session {
				if g.d.Type != "result" {
					h.t.Fatalf("barrier %s answered with %s", id, g.d.Raw)
				}
				return out
			}
			out = append(out, g)
		case <-deadline:
			h.t.Fatalf("barrier %s not answered within 10s; got so far: %v", id, describe(out))
			return nil
		}
	}
}

func describe(gs []got) string {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "\n  %s session=%s %s", g.subject, g.d.Session, g.d.Raw)
	}
	return b.String()
}

// Stanza builders.

func msg(to, typ, id, body string) *dom.Element {
	el := dom.New(nsClient, "message", "to", to, "type", typ, "id", id)
	el.Attrs = nonEmpty(el.Attrs)
	if body != "" {
		el.Append(dom.New(nsClient, "body").AppendText(body))
	}
	return el
}

func iq(_ string, to, typ, id string, payload *dom.Element) *dom.Element {
	el := dom.New(nsClient, "iq", "to", to, "type", typ, "id", id)
	el.Attrs = nonEmpty(el.Attrs)
	if payload != nil {
		el.Append(payload)
	}
	return el
}

func pres(to, typ, id string, children ...*dom.Element) *dom.Element {
	el := dom.New(nsClient, "presence", "to", to, "type", typ, "id", id)
	el.Attrs = nonEmpty(el.Attrs)
	el.Append(children...)
	return el
}

func priorityEl(v string) *dom.Element { return dom.New(nsClient, "priority").AppendText(v) }

func nonEmpty(as []dom.Attr) []dom.Attr {
	var out []dom.Attr
	for _, a := range as {
		if a.Value != "" {
			out = append(out, a)
		}
	}
	return out
}

// Assertions.

// wantSessions checks that gs are forwards of st, exactly one to each of
// cs, with the raw stanza untouched.
func (h *harness) wantSessions(gs []got, st *busv1.Stanza, cs ...client) {
	t := h.t
	t.Helper()
	if len(gs) != len(cs) {
		t.Fatalf("got %d deliveries, want %d (to %v):%s", len(gs), len(cs), cs, describe(gs))
	}
	seen := map[string]bool{}
	for _, g := range gs {
		if string(g.d.Raw) != string(st.Raw) {
			t.Errorf("delivered raw changed:\n got %s\nwant %s", g.d.Raw, st.Raw)
		}
		if g.d.Action != busv1.Action_ACTION_DELIVER || g.d.Kind != st.Kind || g.d.From != st.From || g.d.To != st.To || g.d.Id != st.Id || g.d.Type != st.Type {
			t.Errorf("delivery fields %v do not match the stanza %v", g.d, st)
		}
		seen[g.subject+" "+g.d.Session] = true
	}
	for _, c := range cs {
		if !seen[h.subjects.Node(c.node)+" "+c.session] {
			t.Errorf("no delivery to %s (node %s, session %s):%s", c.jid, c.node, c.session, describe(gs))
		}
	}
}

// wantError checks that gs is exactly one error reply to c carrying cond,
// built from the original st: from and to swapped, same id, type error.
func wantError(t *testing.T, gs []got, c client, st *busv1.Stanza, cond stanza.Condition) *dom.Element {
	t.Helper()
	if len(gs) != 1 {
		t.Fatalf("got %d deliveries, want one %s error to %s:%s", len(gs), cond, c.jid, describe(gs))
	}
	g := gs[0]
	if !strings.HasSuffix(g.subject, ".node."+c.node) || g.d.Session != c.session {
		t.Errorf("error went to %s session %s, want node %s session %s", g.subject, g.d.Session, c.node, c.session)
	}
	el, err := decodeElement(g.d.Raw)
	if err != nil {
		t.Fatalf("error reply does not parse: %v: %s", err, g.d.Raw)
	}
	if el.Attr("type") != "error" || g.d.Type != "error" {
		t.Errorf("reply type %q (envelope %q), want error: %s", el.Attr("type"), g.d.Type, g.d.Raw)
	}
	wantFrom := st.To
	if cond == stanza.JIDMalformed {
		wantFrom = domain // not the address that could not be prepared
	}
	if el.Attr("id") != st.Id || el.Attr("to") != st.From || el.Attr("from") != wantFrom {
		t.Errorf("reply id/to/from = %q/%q/%q, want %q/%q/%q: %s",
			el.Attr("id"), el.Attr("to"), el.Attr("from"), st.Id, st.From, wantFrom, g.d.Raw)
	}
	e := el.Child("", "error")
	if e == nil {
		t.Fatalf("no <error/> in %s", g.d.Raw)
	}
	if e.Child(stanza.NS, string(cond)) == nil {
		t.Errorf("want condition %s in %s", cond, g.d.Raw)
	}
	return el
}

func wantNothing(t *testing.T, gs []got) {
	t.Helper()
	if len(gs) != 0 {
		t.Errorf("got %d deliveries, want none:%s", len(gs), describe(gs))
	}
}

var errBackend = errors.New("backend down")

// awaitReply returns the first delivery to c with the given stanza id,
// waiting up to 10s: for answers that may follow a barrier's result.
func (h *harness) awaitReply(c client, id string) []got {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case g := <-h.in:
			if g.d.Session == c.session && g.d.Id == id {
				return []got{g}
			}
		case <-deadline:
			h.t.Fatalf("no delivery with id %s to %s within 10s", id, c.jid)
			return nil
		}
	}
}
