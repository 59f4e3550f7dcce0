package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

func sess(full, id string) []*presencev1.Session {
	return []*presencev1.Session{{Jid: full, Node: "n1", SessionId: id, Available: true}}
}

// onCache returns a cache that is on, with a clock the test moves.
func onCache(max int, ttl time.Duration) (*sessionCache, *time.Time) {
	c := newSessionCache(max, ttl)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	c.setOn(true)
	return c, &now
}

func fillWith(c *sessionCache, key string, s []*presencev1.Session) {
	c.end(c.begin(key), s, true)
}

func wantCached(t *testing.T, c *sessionCache, key, id string) {
	t.Helper()
	got, ok := c.get(key)
	switch {
	case id == "" && ok:
		t.Errorf("%s cached as %v, want nothing", key, got)
	case id != "" && !ok:
		t.Errorf("%s not cached, want session %s", key, id)
	case id != "" && (len(got) != 1 || got[0].SessionId != id):
		t.Errorf("%s cached as %v, want session %s", key, got, id)
	}
}

func TestSessionCacheKeepsAnswersUntilInvalidated(t *testing.T) {
	c, _ := onCache(10, time.Minute)
	wantCached(t, c, "bob@example.com", "")
	fillWith(c, "bob@example.com", sess("bob@example.com/desk", "s1"))
	fillWith(c, "alice@example.com", sess("alice@example.com/phone", "s2"))
	wantCached(t, c, "bob@example.com", "s1")
	c.invalidate("bob@example.com")
	wantCached(t, c, "bob@example.com", "")
	wantCached(t, c, "alice@example.com", "s2")
	// An answer with no session at all is an answer too.
	fillWith(c, "carol@example.com", nil)
	if got, ok := c.get("carol@example.com"); !ok || len(got) != 0 {
		t.Errorf("empty answer: %v, %v", got, ok)
	}
	c.flush()
	wantCached(t, c, "alice@example.com", "")
	wantCached(t, c, "carol@example.com", "")
}

// An event that arrives while a lookup is in flight may concern a change
// the lookup did not see: the answer is not kept. One that arrived before
// the lookup began does not matter.
func TestSessionCacheDropsAnswersRacingAnEvent(t *testing.T) {
	c, _ := onCache(10, time.Minute)
	c.invalidate("bob@example.com")
	t1 := c.begin("bob@example.com")
	t2 := c.begin("bob@example.com")
	other := c.begin("alice@example.com")
	c.invalidate("bob@example.com")
	t3 := c.begin("bob@example.com") // after the event: sees the change
	c.end(t1, sess("bob@example.com/desk", "old1"), true)
	wantCached(t, c, "bob@example.com", "")
	c.end(t3, sess("bob@example.com/desk", "new"), true)
	wantCached(t, c, "bob@example.com", "new")
	c.end(t2, sess("bob@example.com/desk", "old2"), true)
	wantCached(t, c, "bob@example.com", "new")
	c.end(other, sess("alice@example.com/phone", "a"), true)
	wantCached(t, c, "alice@example.com", "a")
	if n := len(c.fills); n != 0 {
		t.Errorf("%d fills still tracked after every lookup ended", n)
	}
	if got := c.stale.Load(); got != 2 {
		t.Errorf("stale answers counted: %d, want 2", got)
	}
}

func TestSessionCacheFlushAndOffDropAnswersInFlight(t *testing.T) {
	c, _ := onCache(10, time.Minute)
	t1 := c.begin("bob@example.com")
	c.flush()
	c.end(t1, sess("bob@example.com/desk", "s1"), true)
	wantCached(t, c, "bob@example.com", "")

	t2 := c.begin("bob@example.com")
	c.setOn(false)
	c.end(t2, sess("bob@example.com/desk", "s1"), true)
	fillWith(c, "bob@example.com", sess("bob@example.com/desk", "s1"))
	wantCached(t, c, "bob@example.com", "")
	// Turned on again, a fill begun while off is still not kept.
	t3 := c.begin("bob@example.com")
	c.setOn(true)
	c.end(t3, sess("bob@example.com/desk", "s1"), true)
	wantCached(t, c, "bob@example.com", "")
	fillWith(c, "bob@example.com", sess("bob@example.com/desk", "s1"))
	wantCached(t, c, "bob@example.com", "s1")
	// A failed lookup keeps nothing and leaves nothing behind.
	c.invalidate("bob@example.com")
	c.end(c.begin("bob@example.com"), nil, false)
	wantCached(t, c, "bob@example.com", "")
	if n := len(c.fills); n != 0 {
		t.Errorf("%d fills still tracked", n)
	}
}

func TestSessionCacheEntriesExpire(t *testing.T) {
	c, now := onCache(10, time.Second)
	fillWith(c, "bob@example.com", sess("bob@example.com/desk", "s1"))
	*now = now.Add(time.Second)
	wantCached(t, c, "bob@example.com", "s1")
	*now = now.Add(time.Millisecond)
	wantCached(t, c, "bob@example.com", "")
	if c.len() != 0 {
		t.Errorf("expired entry still held")
	}
}

func TestSessionCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	c, _ := onCache(3, time.Minute)
	for i := range 3 {
		fillWith(c, fmt.Sprintf("u%d@example.com", i), sess(fmt.Sprintf("u%d@example.com/r", i), fmt.Sprint(i)))
	}
	wantCached(t, c, "u0@example.com", "0") // u1 is now the least recent
	fillWith(c, "u3@example.com", sess("u3@example.com/r", "3"))
	if c.len() != 3 {
		t.Errorf("%d entries, want the cap of 3", c.len())
	}
	wantCached(t, c, "u1@example.com", "")
	for _, i := range []int{0, 2, 3} {
		wantCached(t, c, fmt.Sprintf("u%d@example.com", i), fmt.Sprint(i))
	}
	// Refilling a key replaces its entry rather than adding one.
	fillWith(c, "u3@example.com", sess("u3@example.com/r", "3b"))
	if c.len() != 3 {
		t.Errorf("%d entries after a refill, want 3", c.len())
	}
	wantCached(t, c, "u3@example.com", "3b")
}

func TestSessionCacheOffIsANoOp(t *testing.T) {
	var c *sessionCache // Config.SessionCacheSize zero
	fillWith(c, "bob@example.com", sess("bob@example.com/desk", "s1"))
	c.invalidate("bob@example.com")
	c.flush()
	c.setOn(true)
	if _, ok := c.get("bob@example.com"); ok {
		t.Error("a nil cache answered")
	}
	off := newSessionCache(10, time.Minute) // made, not yet on
	fillWith(off, "bob@example.com", sess("bob@example.com/desk", "s1"))
	wantCached(t, off, "bob@example.com", "")
}

func TestSessionCacheConcurrentUse(t *testing.T) {
	c, _ := onCache(50, time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprintf("u%d@example.com", (i*7+g)%100)
				switch i % 5 {
				case 0:
					c.invalidate(key)
				case 1:
					if i%100 == 1 {
						c.flush()
					}
				default:
					if _, ok := c.get(key); !ok {
						fillWith(c, key, sess(key+"/r", "s"))
					}
				}
			}
		})
	}
	wg.Wait()
	if c.len() > 50 {
		t.Errorf("%d entries over the cap of 50", c.len())
	}
	if n := len(c.fills); n != 0 {
		t.Errorf("%d fills still tracked", n)
	}
}

// countingRegistry counts Lookups of a fakeRegistry.
type countingRegistry struct {
	*fakeRegistry
	mu      sync.Mutex
	lookups []string
}

func (c *countingRegistry) Lookup(ctx context.Context, in *presencev1.LookupRequest, opts ...grpc.CallOption) (*presencev1.LookupResponse, error) {
	c.mu.Lock()
	c.lookups = append(c.lookups, in.Jid)
	c.mu.Unlock()
	return c.fakeRegistry.Lookup(ctx, in, opts...)
}

func (c *countingRegistry) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lookups
	c.lookups = nil
	return l
}

// cachedRouter is a Router with its session cache on, routing without
// NATS (route only), over reg.
func cachedRouter(reg sessions) *Router {
	r := &Router{domain: domain, node: "cache", sessions: reg, accounts: &fakeAccounts{exists: map[string]bool{}}, rosters: newFakeRoster(),
		log: testLogger(), cache: newSessionCache(100, time.Minute)}
	r.cache.setOn(true)
	return r
}

func chatTo(to string) *busv1.Stanza {
	el := msg(to, "chat", "m1", "hi")
	el.SetAttr("from", alicePhone.jid)
	return &busv1.Stanza{From: alicePhone.jid, To: to, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: "m1",
		Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: 1}
}

func deliveredTo(out []outbound) []string {
	var s []string
	for _, o := range out {
		if o.d != nil && o.d.Action == busv1.Action_ACTION_DELIVER {
			s = append(s, o.node+"/"+o.d.Session)
		}
	}
	return s
}

func TestRoutingUsesTheCacheAndChecksWhatItWouldBounce(t *testing.T) {
	reg := &countingRegistry{fakeRegistry: &fakeRegistry{}}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	r := cachedRouter(reg)
	ctx := context.Background()

	for range 3 {
		if got := deliveredTo(r.route(ctx, chatTo(bobDesk.jid), nil)); len(got) != 1 {
			t.Fatalf("delivered to %v", got)
		}
	}
	if got := reg.take(); len(got) != 1 || got[0] != "bob@example.com" {
		t.Errorf("registry lookups %q, want one of the bare JID", got)
	}

	// A resource bound since the cache was filled (its event not yet
	// seen): the cache says it is missing, the registry is asked again
	// before the message falls back or bounces.
	reg.add(bobPhone.jid, bobPhone.node, bobPhone.session, true, 0, "")
	got := deliveredTo(r.route(ctx, chatTo(bobPhone.jid), nil))
	if len(got) != 1 || got[0] != bobPhone.node+"/"+bobPhone.session {
		t.Errorf("message to a new resource delivered to %v", got)
	}
	if l := reg.take(); len(l) != 1 {
		t.Errorf("registry lookups %q, want one", l)
	}

	// A handed-back delivery never trusts the cache.
	st := chatTo(bobDesk.jid)
	st.Undeliverable = &busv1.Undeliverable{Failed: []*busv1.Origin{{Node: bobDesk.node, Session: bobDesk.session}}}
	r.route(ctx, st, nil)
	if l := reg.take(); len(l) != 1 {
		t.Errorf("hand-back: registry lookups %q, want one", l)
	}
	// and the exclusion did not leak into the cache.
	if s, ok := r.cache.get("bob@example.com"); !ok || len(s) != 2 {
		t.Errorf("cache after a hand-back: %v, %v; want both of bob's sessions", s, ok)
	}
}

func TestMessageToBareJIDChecksTheRegistryBeforeStoringOffline(t *testing.T) {
	reg := &countingRegistry{fakeRegistry: &fakeRegistry{}}
	r := cachedRouter(reg)
	r.accounts = &fakeAccounts{exists: map[string]bool{"bob@example.com": true}}
	ctx := context.Background()
	// The cache holds "no session" for bob, then bob comes online.
	fillWith(r.cache, "bob@example.com", nil)
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	got := deliveredTo(r.route(ctx, chatTo("bob@example.com"), nil))
	if len(got) != 1 || got[0] != bobDesk.node+"/"+bobDesk.session {
		t.Errorf("delivered to %v, want bob's desk", got)
	}
}

func TestOwnPresenceChangeEvictsTheSender(t *testing.T) {
	reg := &countingRegistry{fakeRegistry: &fakeRegistry{}}
	reg.add(alicePhone.jid, alicePhone.node, alicePhone.session, false, 0, "")
	r := cachedRouter(reg)
	fillWith(r.cache, "alice@example.com", sess(alicePhone.jid, alicePhone.session))
	el := pres("", "", "p1")
	el.SetAttr("from", alicePhone.jid)
	st := &busv1.Stanza{From: alicePhone.jid, Kind: busv1.Kind_KIND_PRESENCE, Id: "p1",
		Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: 2}
	r.route(context.Background(), st, nil)
	if _, ok := r.cache.get("alice@example.com"); ok {
		t.Error("alice's entry survived her own presence change")
	}
}
