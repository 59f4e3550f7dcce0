// Package storetest is the contract every presence.Store must meet. A
// store's own test calls Run with a function that opens a fresh, empty
// store; run it with -race.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// Run runs the contract suite. open must return an empty store and arrange
// its cleanup with t.Cleanup; it is called once per subtest.
func Run(t *testing.T, open func(t *testing.T) presence.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s presence.Store)
	}{
		{"BoundSessionIsFoundByItsFullAndBareJID", testBoundSessionFound},
		{"BareLookupReturnsEverySessionOfTheAccountSortedByResource", testBareLookup},
		{"LookupOfAnUnboundJIDFindsNothing", testLookupUnbound},
		{"BindingABoundFullJIDReplacesAndReturnsTheOldSession_RFC6120_7_7_2_2", testReplace},
		{"BindingTheSameSessionAgainReplacesNothing", testRebindSameSession},
		{"UnbindRemovesOnlyTheSessionWithTheGivenID", testUnbind},
		{"ReplacedSessionCannotUnbindItsSuccessor", testReplacedCannotUnbind},
		{"SetPresenceUpdatesOnlyTheSessionWithTheGivenID", testSetPresence},
		{"ReplacedSessionCannotSetItsSuccessorsPresence", testReplacedCannotSetPresence},
		{"AccountWithAllSessionsUnboundFindsNothing", testAllUnbound},
		{"StoreKeepsNoReferenceToCallerBytes", testNoAliasing},
		{"CanceledContextFailsTheCallAndChangesNothing", testCanceledContext},
		{"ConcurrentBindsOfOneFullJIDReplaceEachOtherExactlyOnce", testConcurrentBinds},
		{"ConcurrentSessionsOfManyAccountsStayConsistent", testConcurrentWorkload},
		{"SessionsOfANodeWhoseHeartbeatExpiredAreReapedAndReturnedOnce", testReapExpired},
		{"NodeThatKeepsSendingHeartbeatsIsNeverReaped", testHeartbeatKeepsAlive},
		{"SessionsOfANodeThatNeverSentAHeartbeatAreNotReaped", testNoHeartbeatNoReap},
		{"ReapLeavesTheSessionsThatReplacedTheDeadNodesOnes", testReapSparesReplacements},
		{"DropNodeRemovesEverySessionOfThatNodeAndNoOther", testDropNode},
		{"EpochStaysTheSameUntilSessionsOfTheNodeAreRemoved", testEpoch},
		{"NodeBackAfterBeingReapedKeepsTheSessionsItBindsAgain", testNodeBackAfterReap},
		{"LateBindFromAReapedNodeIsReapedUnlessTheNodeSendsAHeartbeat", testLateBindOfReapedNode},
		{"ConcurrentReapsAndDropsReturnEachSessionExactlyOnce", testConcurrentReapers},
		{"CountByNodeFollowsBindsUnbindsAndReplacements", testCountByNode},
		{"CountByNodeForgetsReapedAndDroppedNodes", testCountByNodeAfterReapAndDrop},
		{"CountByNodeAgreesWithLookupsAfterConcurrentWork", testCountByNodeConcurrent},
	}
	for _, tc := range append(tests, imStateTests...) {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// session returns a fresh, unavailable session as c2s binds it.
func session(full, id string) presence.Session {
	return presence.Session{
		JID:   jid.MustParse(full),
		Node:  "node-a",
		ID:    id,
		Bound: time.UnixMilli(1_700_000_000_000),
	}
}

func bind(t *testing.T, s presence.Store, sess presence.Session) []presence.Session {
	t.Helper()
	replaced, err := s.Bind(ctx(t), sess)
	if err != nil {
		t.Fatalf("Bind(%s, %s): %v", sess.JID, sess.ID, err)
	}
	return replaced
}

func lookup(t *testing.T, s presence.Store, addr string) []presence.Session {
	t.Helper()
	got, err := s.Lookup(ctx(t), jid.MustParse(addr))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", addr, err)
	}
	return got
}

func unbind(t *testing.T, s presence.Store, full, id string) bool {
	t.Helper()
	removed, err := s.Unbind(ctx(t), jid.MustParse(full), id)
	if err != nil {
		t.Fatalf("Unbind(%s, %s): %v", full, id, err)
	}
	return removed
}

func setPresence(t *testing.T, s presence.Store, full, id string, available bool, priority int, raw string) bool {
	t.Helper()
	found, err := s.SetPresence(ctx(t), jid.MustParse(full), id, available, priority, []byte(raw))
	if err != nil {
		t.Fatalf("SetPresence(%s, %s): %v", full, id, err)
	}
	return found
}

func equal(a, b presence.Session) bool {
	return a.JID == b.JID && a.Node == b.Node && a.ID == b.ID && a.Available == b.Available &&
		a.Priority == b.Priority && bytes.Equal(a.LastPresence, b.LastPresence) && a.Bound.Equal(b.Bound) &&
		a.RosterRequested == b.RosterRequested
}

// wantSessions fails unless got holds exactly want, in order.
func wantSessions(t *testing.T, what string, got []presence.Session, want ...presence.Session) {
	t.Helper()
	if !slices.EqualFunc(got, want, equal) {
		t.Errorf("%s = %s, want %s", what, describe(got), describe(want))
	}
}

func describe(ss []presence.Session) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("{%s node=%s id=%s avail=%v prio=%d presence=%q bound=%d roster=%v}",
			s.JID, s.Node, s.ID, s.Available, s.Priority, s.LastPresence, s.Bound.UnixMilli(), s.RosterRequested))
	}
	return fmt.Sprint(out)
}

func testBoundSessionFound(t *testing.T, s presence.Store) {
	sess := session("juliet@example.com/balcony", "s1")
	sess.Node = "node-b"
	if replaced := bind(t, s, sess); len(replaced) != 0 {
		t.Fatalf("first Bind replaced %s", describe(replaced))
	}
	wantSessions(t, "Lookup(full)", lookup(t, s, "juliet@example.com/balcony"), sess)
	wantSessions(t, "Lookup(bare)", lookup(t, s, "juliet@example.com"), sess)
}

func testBareLookup(t *testing.T, s presence.Store) {
	balcony := session("juliet@example.com/balcony", "s1")
	garden := session("juliet@example.com/garden", "s2")
	chamber := session("juliet@example.com/chamber", "s3")
	for _, sess := range []presence.Session{garden, balcony, chamber} {
		bind(t, s, sess)
	}
	// Neighbours that must not show up: another user of the domain, the
	// same user at another domain.
	bind(t, s, session("romeo@example.com/balcony", "s4"))
	bind(t, s, session("juliet@example.org/balcony", "s5"))
	wantSessions(t, "Lookup(juliet@example.com)", lookup(t, s, "juliet@example.com"), balcony, chamber, garden)
	wantSessions(t, "Lookup(juliet@example.com/garden)", lookup(t, s, "juliet@example.com/garden"), garden)
}

func testLookupUnbound(t *testing.T, s presence.Store) {
	bind(t, s, session("juliet@example.com/balcony", "s1"))
	for _, addr := range []string{"romeo@example.com", "romeo@example.com/balcony", "juliet@example.com/garden"} {
		if got := lookup(t, s, addr); len(got) != 0 {
			t.Errorf("Lookup(%s) = %s, want nothing", addr, describe(got))
		}
	}
}

func testReplace(t *testing.T, s presence.Store) {
	old := session("juliet@example.com/balcony", "s1")
	bind(t, s, old)
	if !setPresence(t, s, "juliet@example.com/balcony", "s1", true, 5, "<presence/>") {
		t.Fatal("SetPresence of the bound session found nothing")
	}
	old.Available, old.Priority, old.LastPresence = true, 5, []byte("<presence/>")

	next := session("juliet@example.com/balcony", "s2")
	next.Node = "node-b"
	// The replaced session comes back as it was, presence included, so
	// that its node can close it and announce it unavailable.
	wantSessions(t, "replaced", bind(t, s, next), old)
	wantSessions(t, "Lookup after replace", lookup(t, s, "juliet@example.com"), next)
}

func testRebindSameSession(t *testing.T, s presence.Store) {
	sess := session("juliet@example.com/balcony", "s1")
	bind(t, s, sess)
	setPresence(t, s, "juliet@example.com/balcony", "s1", true, 1, "<presence/>")
	if replaced := bind(t, s, sess); len(replaced) != 0 {
		t.Fatalf("repeated Bind replaced %s, want nothing", describe(replaced))
	}
	got := lookup(t, s, "juliet@example.com/balcony")
	if len(got) != 1 || !got[0].Available {
		t.Errorf("after a repeated Bind: %s, want the session unchanged and available", describe(got))
	}
}

func testUnbind(t *testing.T, s presence.Store) {
	balcony := session("juliet@example.com/balcony", "s1")
	garden := session("juliet@example.com/garden", "s2")
	bind(t, s, balcony)
	bind(t, s, garden)
	if unbind(t, s, "juliet@example.com/balcony", "s2") {
		t.Error("Unbind with another session's id removed something")
	}
	if !unbind(t, s, "juliet@example.com/balcony", "s1") {
		t.Fatal("Unbind of a bound session removed nothing")
	}
	if unbind(t, s, "juliet@example.com/balcony", "s1") {
		t.Error("second Unbind removed something")
	}
	wantSessions(t, "Lookup after Unbind", lookup(t, s, "juliet@example.com"), garden)
}

func testReplacedCannotUnbind(t *testing.T, s presence.Store) {
	bind(t, s, session("juliet@example.com/balcony", "s1"))
	next := session("juliet@example.com/balcony", "s2")
	bind(t, s, next)
	// The old stream closes after its replacement bound.
	if unbind(t, s, "juliet@example.com/balcony", "s1") {
		t.Error("replaced session's Unbind removed something")
	}
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com/balcony"), next)
}

func testSetPresence(t *testing.T, s presence.Store) {
	balcony := session("juliet@example.com/balcony", "s1")
	garden := session("juliet@example.com/garden", "s2")
	bind(t, s, balcony)
	bind(t, s, garden)
	if !setPresence(t, s, "juliet@example.com/balcony", "s1", true, -1, "<presence><priority>-1</priority></presence>") {
		t.Fatal("SetPresence of a bound session found nothing")
	}
	balcony.Available, balcony.Priority = true, -1
	balcony.LastPresence = []byte("<presence><priority>-1</priority></presence>")
	wantSessions(t, "after SetPresence", lookup(t, s, "juliet@example.com"), balcony, garden)

	// Going unavailable replaces all three fields as well.
	if !setPresence(t, s, "juliet@example.com/balcony", "s1", false, 0, "<presence type='unavailable'/>") {
		t.Fatal("second SetPresence found nothing")
	}
	balcony.Available, balcony.Priority, balcony.LastPresence = false, 0, []byte("<presence type='unavailable'/>")
	wantSessions(t, "after going unavailable", lookup(t, s, "juliet@example.com/balcony"), balcony)

	if setPresence(t, s, "romeo@example.com/balcony", "s1", true, 0, "<presence/>") {
		t.Error("SetPresence of an unbound JID found a session")
	}
	if got := lookup(t, s, "romeo@example.com"); len(got) != 0 {
		t.Errorf("SetPresence of an unbound JID created %s", describe(got))
	}
}

func testReplacedCannotSetPresence(t *testing.T, s presence.Store) {
	bind(t, s, session("juliet@example.com/balcony", "s1"))
	next := session("juliet@example.com/balcony", "s2")
	bind(t, s, next)
	if setPresence(t, s, "juliet@example.com/balcony", "s1", true, 10, "<presence/>") {
		t.Error("replaced session's SetPresence found a session")
	}
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com/balcony"), next)
}

func testAllUnbound(t *testing.T, s presence.Store) {
	bind(t, s, session("juliet@example.com/balcony", "s1"))
	bind(t, s, session("juliet@example.com/garden", "s2"))
	unbind(t, s, "juliet@example.com/balcony", "s1")
	unbind(t, s, "juliet@example.com/garden", "s2")
	if got := lookup(t, s, "juliet@example.com"); len(got) != 0 {
		t.Errorf("Lookup = %s, want nothing", describe(got))
	}
	// And the account can come back.
	again := session("juliet@example.com/balcony", "s3")
	bind(t, s, again)
	wantSessions(t, "Lookup after binding again", lookup(t, s, "juliet@example.com"), again)
}

func testNoAliasing(t *testing.T, s presence.Store) {
	bind(t, s, session("juliet@example.com/balcony", "s1"))
	raw := []byte("<presence/>")
	found, err := s.SetPresence(ctx(t), jid.MustParse("juliet@example.com/balcony"), "s1", true, 0, raw)
	if err != nil || !found {
		t.Fatalf("SetPresence = %v, %v", found, err)
	}
	raw[1] = 'X'
	got := lookup(t, s, "juliet@example.com/balcony")
	if string(got[0].LastPresence) != "<presence/>" {
		t.Fatalf("after changing the caller's bytes: %q", got[0].LastPresence)
	}
	got[0].LastPresence[1] = 'X'
	if again := lookup(t, s, "juliet@example.com/balcony"); string(again[0].LastPresence) != "<presence/>" {
		t.Errorf("after changing returned bytes: %q", again[0].LastPresence)
	}
}

func testCanceledContext(t *testing.T, s presence.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	full := jid.MustParse("juliet@example.com/balcony")
	if _, err := s.Bind(c, session(full.String(), "s1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Bind = %v, want context.Canceled", err)
	}
	if got := lookup(t, s, "juliet@example.com"); len(got) != 0 {
		t.Errorf("canceled Bind bound %s", describe(got))
	}
	bind(t, s, session(full.String(), "s1"))
	if _, err := s.Unbind(c, full, "s1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Unbind = %v, want context.Canceled", err)
	}
	if _, err := s.SetPresence(c, full, "s1", true, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("SetPresence = %v, want context.Canceled", err)
	}
	if _, err := s.Lookup(c, full); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup = %v, want context.Canceled", err)
	}
	if _, err := s.Heartbeat(c, "node-a", time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Errorf("Heartbeat = %v, want context.Canceled", err)
	}
	if _, err := s.DropNode(c, "node-a"); !errors.Is(err, context.Canceled) {
		t.Errorf("DropNode = %v, want context.Canceled", err)
	}
	if _, err := s.ReapDeadNodes(c); !errors.Is(err, context.Canceled) {
		t.Errorf("ReapDeadNodes = %v, want context.Canceled", err)
	}
	if got := lookup(t, s, full.String()); len(got) != 1 || got[0].Available {
		t.Errorf("after canceled calls: %s, want the session bound and unavailable", describe(got))
	}
	// The canceled Heartbeat did not start node-a's liveness, so nothing
	// is ever reaped.
	if removed, err := s.ReapDeadNodes(ctx(t)); err != nil || len(removed) != 0 {
		t.Errorf("ReapDeadNodes = %s, %v; want nothing", describe(removed), err)
	}
}

func testConcurrentBinds(t *testing.T, s presence.Store) {
	const racers = 16
	var (
		mu       sync.Mutex
		replaced = map[string]int{}
		wg       sync.WaitGroup
	)
	for i := range racers {
		wg.Go(func() {
			r, err := s.Bind(ctx(t), session("juliet@example.com/balcony", fmt.Sprintf("s%d", i)))
			if err != nil {
				t.Errorf("Bind: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, old := range r {
				replaced[old.ID]++
			}
		})
	}
	wg.Wait()
	got := lookup(t, s, "juliet@example.com")
	if len(got) != 1 {
		t.Fatalf("%d sessions bound after the race, want 1", len(got))
	}
	// Every loser was handed back exactly once, so exactly one node closes
	// each of them; the winner never was.
	if n := replaced[got[0].ID]; n != 0 {
		t.Errorf("the bound session %s was also reported replaced %d times", got[0].ID, n)
	}
	for i := range racers {
		id := fmt.Sprintf("s%d", i)
		if id != got[0].ID && replaced[id] != 1 {
			t.Errorf("session %s reported replaced %d times, want once", id, replaced[id])
		}
	}
}

func testConcurrentWorkload(t *testing.T, s presence.Store) {
	const (
		accounts  = 8
		resources = 4
		rounds    = 50
	)
	var wg sync.WaitGroup
	// One goroutine per full JID plays a connection's life over and over:
	// bind, set presence, look itself up, unbind.
	for a := range accounts {
		for r := range resources {
			wg.Go(func() {
				full := jid.MustParse(fmt.Sprintf("user%d@example.com/res%d", a, r))
				for round := range rounds {
					id := fmt.Sprintf("a%d-r%d-%d", a, r, round)
					if _, err := s.Bind(ctx(t), presence.Session{JID: full, Node: "n", ID: id}); err != nil {
						t.Errorf("Bind: %v", err)
						return
					}
					if ok, err := s.SetPresence(ctx(t), full, id, true, round%128, []byte(id)); err != nil || !ok {
						t.Errorf("SetPresence(%s) = %v, %v; want true", id, ok, err)
						return
					}
					got, err := s.Lookup(ctx(t), full)
					if err != nil || len(got) != 1 || got[0].ID != id || string(got[0].LastPresence) != id {
						t.Errorf("Lookup(%s) = %s, %v; want its own session", full, describe(got), err)
						return
					}
					if ok, err := s.Unbind(ctx(t), full, id); err != nil || !ok {
						t.Errorf("Unbind(%s) = %v, %v; want true", id, ok, err)
						return
					}
				}
			})
		}
	}
	// Readers of whole accounts meanwhile only ever see that account's
	// sessions, in order.
	for a := range accounts {
		wg.Go(func() {
			bare := jid.MustParse(fmt.Sprintf("user%d@example.com", a))
			for range rounds {
				got, err := s.Lookup(ctx(t), bare)
				if err != nil {
					t.Errorf("Lookup(%s): %v", bare, err)
					return
				}
				if len(got) > resources {
					t.Errorf("Lookup(%s) returned %d sessions, at most %d exist", bare, len(got), resources)
				}
				for i, sess := range got {
					if sess.JID.Bare() != bare || (i > 0 && got[i-1].JID.Resourcepart() >= sess.JID.Resourcepart()) {
						t.Errorf("Lookup(%s) = %s: foreign or unsorted", bare, describe(got))
						break
					}
				}
			}
		})
	}
	wg.Wait()
	for a := range accounts {
		if got := lookup(t, s, fmt.Sprintf("user%d@example.com", a)); len(got) != 0 {
			t.Errorf("account %d still has %s after every session unbound", a, describe(got))
		}
	}
}
