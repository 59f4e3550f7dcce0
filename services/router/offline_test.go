package router

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// The fake roster's offline box: StoreOffline keeps the message (Delayed
// is the raw stanza), ClaimOffline hands out what no claim holds (a claim
// never lapses here; the stores' contract tests cover that), DeleteOffline
// removes by IDs or up to an ID.

func (f *fakeRoster) keepOffline(in *rosterv1.StoreOfflineRequest) int64 {
	for _, m := range f.offline[in.User] {
		f.lastID = max(f.lastID, m.Id)
	}
	f.lastID++
	f.offline[in.User] = append(f.offline[in.User], &rosterv1.OfflineMessage{Id: f.lastID, Raw: in.Raw, Delayed: in.Raw})
	return f.lastID
}

func (f *fakeRoster) ClaimOffline(_ context.Context, in *rosterv1.ClaimOfflineRequest, _ ...grpc.CallOption) (*rosterv1.FetchOfflineResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["ClaimOffline"]; err != nil {
		return nil, err
	}
	if f.claimed == nil {
		f.claimed = map[int64]bool{}
	}
	resp := &rosterv1.FetchOfflineResponse{}
	for _, m := range f.offline[in.User] {
		if !f.claimed[m.Id] {
			f.claimed[m.Id] = true
			resp.Messages = append(resp.Messages, m)
		}
	}
	return resp, nil
}

func (f *fakeRoster) dropOffline(in *rosterv1.DeleteOfflineRequest) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(f.offline[in.User])
	f.offline[in.User] = slices.DeleteFunc(f.offline[in.User], func(m *rosterv1.OfflineMessage) bool {
		if len(in.Ids) > 0 {
			return slices.Contains(in.Ids, m.Id)
		}
		return m.Id <= in.UpToId
	})
	return int32(before - len(f.offline[in.User]))
}

func (f *fakeRoster) box(user string) []*rosterv1.OfflineMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.offline[user])
}

// hookedRoster runs a test's function at a chosen point of a call, to
// force one interleaving of two routers. Each hook runs once.
type hookedRoster struct {
	*fakeRoster
	beforeStore func() // before StoreOffline stores
	afterStore  func() // once StoreOffline has stored, before it returns
	beforeClaim func() // before ClaimOffline claims
}

func once(f *func()) {
	if g := *f; g != nil {
		*f = nil
		g()
	}
}

func (h *hookedRoster) StoreOffline(ctx context.Context, in *rosterv1.StoreOfflineRequest, opts ...grpc.CallOption) (*rosterv1.StoreOfflineResponse, error) {
	once(&h.beforeStore)
	resp, err := h.fakeRoster.StoreOffline(ctx, in, opts...)
	once(&h.afterStore)
	return resp, err
}

func (h *hookedRoster) ClaimOffline(ctx context.Context, in *rosterv1.ClaimOfflineRequest, opts ...grpc.CallOption) (*rosterv1.FetchOfflineResponse, error) {
	once(&h.beforeClaim)
	return h.fakeRoster.ClaimOffline(ctx, in, opts...)
}

// hookedRegistry runs a test's function after the first Lookup.
type hookedRegistry struct {
	*fakeRegistry
	afterLookup func()
}

func (h *hookedRegistry) Lookup(ctx context.Context, in *presencev1.LookupRequest, opts ...grpc.CallOption) (*presencev1.LookupResponse, error) {
	resp, err := h.fakeRegistry.Lookup(ctx, in, opts...)
	once(&h.afterLookup)
	return resp, err
}

// offlinePair is two routers sharing one registry and one roster service,
// each with its own hooks: a stands for the router of alice's partition,
// b for the router of bob's. The test makes their route calls, so it
// orders every backend call; nothing is published.
type offlinePair struct {
	reg  *fakeRegistry
	ros  *fakeRoster
	aReg *hookedRegistry
	aRos *hookedRoster
	bRos *hookedRoster
	a, b *Router

	mu   sync.Mutex
	seq  uint64
	outs map[string][]outbound // by router: a or b
}

func newOfflinePair(t *testing.T) *offlinePair {
	t.Helper()
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p := &offlinePair{reg: &fakeRegistry{}, ros: newFakeRoster(), outs: map[string][]outbound{}}
	p.aReg = &hookedRegistry{fakeRegistry: p.reg}
	p.aRos = &hookedRoster{fakeRoster: p.ros}
	p.bRos = &hookedRoster{fakeRoster: p.ros}
	acc := &fakeAccounts{exists: map[string]bool{"alice@example.com": true, "bob@example.com": true}}
	subjects := bus.New(testPrefix("off"), 4)
	mk := func(node string, reg sessions, ros rosters) *Router {
		r, err := New(Config{
			Domain: domain, Node: node, NATS: nc, Subjects: subjects,
			Sessions: reg, Accounts: acc, Roster: ros, Logger: testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	p.a = mk("router-a", p.aReg, p.aRos)
	p.b = mk("router-b", p.reg, p.bRos)
	p.reg.add(alicePhone.jid, alicePhone.node, alicePhone.session, true, 0, "")
	p.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, false, 0, "") // bound, not yet available
	return p
}

func (p *offlinePair) envelope(c client, el *dom.Element) *busv1.Stanza {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	el.SetAttr("from", c.jid)
	return &busv1.Stanza{
		From: c.jid, To: el.Attr("to"), Kind: kindOf(el), Type: el.Attr("type"), Id: el.Attr("id"),
		Origin: &busv1.Origin{Node: c.node, Session: c.session}, Raw: el.Marshal(), Seq: p.seq,
	}
}

func (p *offlinePair) record(router string, out []outbound) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outs[router] = append(p.outs[router], out...)
}

// aliceWrites routes alice's chat message to bob's bare JID on router a.
func (p *offlinePair) aliceWrites() {
	p.record("a", p.a.route(context.Background(), p.envelope(alicePhone, msg("bob@example.com", "chat", "m1", "hi")), nil))
}

// bobComesOnline routes bob's initial presence on router b.
func (p *offlinePair) bobComesOnline() {
	p.record("b", p.b.route(context.Background(), p.envelope(bobDesk, pres("", "", "p1")), nil))
}

// finish does what each router does once its batch's deliveries are
// flushed (the then steps), and returns which router delivered each
// message bob's session got ("a:m1"), and how many deliveries alice got.
func (p *offlinePair) finish() (bob []string, toAlice int) {
	for _, router := range []string{"a", "b"} {
		for _, o := range p.outs[router] {
			switch {
			case o.then != nil:
				o.then()
			case o.d == nil:
			case o.d.Session == bobDesk.session && o.d.Kind == busv1.Kind_KIND_MESSAGE:
				bob = append(bob, router+":"+o.d.Id)
			case o.d.Session == alicePhone.session:
				toAlice++
			}
		}
	}
	return bob, toAlice
}

func (p *offlinePair) check(t *testing.T, want string) {
	t.Helper()
	bob, toAlice := p.finish()
	if !slices.Equal(bob, []string{want}) {
		t.Errorf("bob got %v, want exactly %s", bob, want)
	}
	if toAlice != 0 {
		t.Errorf("alice got %d deliveries, want none (no error for a message delivered or stored)", toAlice)
	}
	if box := p.ros.box("bob@example.com"); len(box) != 0 {
		t.Errorf("%d messages left in bob's box after delivery, want none", len(box))
	}
}

// RFC 6121 8.5.2.1.1 with XEP-0160, the race seen in the cluster: router a
// finds bob without an available resource; router b handles bob's initial
// presence and empties the box; only then does a's store land. Router a
// looks bob up again, finds him available and delivers the box itself.
func TestOfflineStoreAfterTheLoginsClaimDeliveredByTheStoringRouter_RFC6121_8_5_2_1_1(t *testing.T) {
	p := newOfflinePair(t)
	p.aRos.beforeStore = p.bobComesOnline
	p.aliceWrites()
	p.check(t, "a:m1")
}

// The store lands before bob's login reads the box, and a's second lookup
// sees bob available too: both routers flush, and the claim hands the
// message to b, the first to claim.
func TestOfflineStoreBeforeTheLoginDeliveredOnceByTheLogin_XEP0160(t *testing.T) {
	p := newOfflinePair(t)
	p.aRos.afterStore = p.bobComesOnline
	p.aliceWrites()
	p.check(t, "b:m1")
}

// As above with the claims the other way round: a stores and claims
// between b's SetPresence and b's claim, so a delivers and b finds an
// empty box. Two goroutines, paused at the hooks, force the order.
func TestOfflineBothRoutersFlushTheStoringRouterClaimsFirst_XEP0160(t *testing.T) {
	p := newOfflinePair(t)
	aLookedUp, aGo := make(chan struct{}), make(chan struct{})
	bAtClaim, bGo := make(chan struct{}), make(chan struct{})
	p.aReg.afterLookup = func() { close(aLookedUp); <-aGo }
	p.bRos.beforeClaim = func() { close(bAtClaim); <-bGo }
	aDone, bDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(aDone); p.aliceWrites() }()
	<-aLookedUp // a: bob has no available resource
	go func() { defer close(bDone); p.bobComesOnline() }()
	<-bAtClaim // b: bob is available, the box not yet read
	close(aGo)
	<-aDone // a: stored, looked up again, claimed
	close(bGo)
	<-bDone
	p.check(t, "a:m1")
}

// A failed second lookup leaves the stored message to the next login and
// answers alice nothing: it is stored.
func TestOfflineFailedRecheckLeavesTheMessageStored_XEP0160(t *testing.T) {
	p := newOfflinePair(t)
	p.aReg.afterLookup = func() {
		p.reg.mu.Lock()
		p.reg.lookupErr = errors.New("registry down")
		p.reg.mu.Unlock()
	}
	p.aliceWrites()
	bob, toAlice := p.finish()
	if len(bob) != 0 || toAlice != 0 {
		t.Errorf("deliveries to bob %v, to alice %d; want none", bob, toAlice)
	}
	if box := p.ros.box("bob@example.com"); len(box) != 1 {
		t.Errorf("bob's box holds %d messages, want the stored one", len(box))
	}
}
