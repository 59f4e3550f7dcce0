package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// The contract of presence.IMState: interested resources (RFC 6121 2.1.6)
// and directed presence (4.6), kept in the registry so that every router
// sees them.

var imStateTests = []struct {
	name string
	fn   func(t *testing.T, s presence.Store)
}{
	{"RosterRequestedIsReportedForThatSessionOnly_RFC6121_2_1_6", testRosterRequested},
	{"BindRestoresAvailabilityPriorityPresenceAndRosterRequested", testBindRestores},
	{"DirectedTargetsAreTakenOnceSortedWithoutTheRemovedOnes_RFC6121_4_6", testDirectedTake},
	{"DirectedTargetsOutliveUnbindReapAndDrop_RFC6121_4_6_3", testDirectedOutlive},
	{"DirectedTargetsAreKeptOnlyForABoundSessionAndPerSession", testDirectedPerSession},
}

func setRosterRequested(t *testing.T, s presence.Store, full, id string) bool {
	t.Helper()
	found, err := s.SetRosterRequested(ctx(t), jid.MustParse(full), id)
	if err != nil {
		t.Fatalf("SetRosterRequested(%s, %s): %v", full, id, err)
	}
	return found
}

func updateDirected(t *testing.T, s presence.Store, full, id, target string, remove bool) bool {
	t.Helper()
	found, err := s.UpdateDirected(ctx(t), jid.MustParse(full), id, target, remove)
	if err != nil {
		t.Fatalf("UpdateDirected(%s, %s, %s, %v): %v", full, id, target, remove, err)
	}
	return found
}

func takeDirected(t *testing.T, s presence.Store, full, id string) []string {
	t.Helper()
	got, err := s.TakeDirected(ctx(t), jid.MustParse(full), id)
	if err != nil {
		t.Fatalf("TakeDirected(%s, %s): %v", full, id, err)
	}
	return got
}

func wantTargets(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func testRosterRequested(t *testing.T, s presence.Store) {
	phone, desk := session("juliet@example.com/phone", "s1"), session("juliet@example.com/desk", "s2")
	bind(t, s, phone)
	bind(t, s, desk)
	if !setRosterRequested(t, s, "juliet@example.com/phone", "s1") {
		t.Fatal("SetRosterRequested of a bound session: not found")
	}
	if setRosterRequested(t, s, "juliet@example.com/desk", "other") {
		t.Error("SetRosterRequested with another session id: found")
	}
	if setRosterRequested(t, s, "juliet@example.com/gone", "s1") {
		t.Error("SetRosterRequested of an unbound JID: found")
	}
	// It survives a presence change.
	setPresence(t, s, "juliet@example.com/phone", "s1", true, 3, "<presence/>")
	phone.RosterRequested, phone.Available, phone.Priority, phone.LastPresence = true, true, 3, []byte("<presence/>")
	wantSessions(t, "Lookup(bare)", lookup(t, s, "juliet@example.com"), desk, phone)
	wantSessions(t, "Lookup(full)", lookup(t, s, "juliet@example.com/phone"), phone)
	// A session that replaces it has not asked.
	next := session("juliet@example.com/phone", "s3")
	bind(t, s, next)
	wantSessions(t, "Lookup(full) after a replacement", lookup(t, s, "juliet@example.com/phone"), next)
}

func testBindRestores(t *testing.T, s presence.Store) {
	sess := session("romeo@example.net/orchard", "s1")
	sess.Available, sess.Priority, sess.LastPresence, sess.RosterRequested = true, -2, []byte("<presence><show>away</show></presence>"), true
	bind(t, s, sess)
	wantSessions(t, "Lookup(full)", lookup(t, s, "romeo@example.net/orchard"), sess)
	wantSessions(t, "Lookup(bare)", lookup(t, s, "romeo@example.net"), sess)
}

func testDirectedTake(t *testing.T, s presence.Store) {
	const me = "juliet@example.com/phone"
	bind(t, s, session(me, "s1"))
	for _, to := range []string{"nurse@example.com/x", "benvolio@example.net", "capulet.example.org", "nurse@example.com/x"} {
		if !updateDirected(t, s, me, "s1", to, false) {
			t.Fatalf("UpdateDirected(%s) of a bound session: not found", to)
		}
	}
	updateDirected(t, s, me, "s1", "benvolio@example.net", true)
	updateDirected(t, s, me, "s1", "never@example.net", true)
	wantTargets(t, "TakeDirected", takeDirected(t, s, me, "s1"), "capulet.example.org", "nurse@example.com/x")
	wantTargets(t, "TakeDirected again", takeDirected(t, s, me, "s1"))
	// After a take the session starts again from none.
	updateDirected(t, s, me, "s1", "tybalt@example.com", false)
	wantTargets(t, "TakeDirected after a new target", takeDirected(t, s, me, "s1"), "tybalt@example.com")
}

func testDirectedOutlive(t *testing.T, s presence.Store) {
	a, b, c := session("juliet@example.com/a", "s1"), session("juliet@example.com/b", "s2"), session("romeo@example.net/c", "s3")
	c.Node = "node-c"
	for _, sess := range []presence.Session{a, b, c} {
		bind(t, s, sess)
		if !updateDirected(t, s, sess.JID.String(), sess.ID, "nurse@example.com", false) {
			t.Fatalf("UpdateDirected of %s: not found", sess.JID)
		}
	}
	// c2s unbinds as it publishes the unavailable presence; the router
	// takes the targets after.
	unbind(t, s, "juliet@example.com/a", "s1")
	wantTargets(t, "TakeDirected after Unbind", takeDirected(t, s, "juliet@example.com/a", "s1"), "nurse@example.com")
	// A session removed with its node: the router routes the unavailable
	// presence of the SessionsRemoved event after.
	heartbeat(t, s, "node-a", time.Millisecond)
	if got := reapUntil(t, s, 1); len(got) != 1 || got[0].ID != "s2" {
		t.Fatalf("reap returned %s, want juliet@example.com/b", describe(got))
	}
	wantTargets(t, "TakeDirected after a reap", takeDirected(t, s, "juliet@example.com/b", "s2"), "nurse@example.com")
	if _, err := s.DropNode(ctx(t), "node-c"); err != nil {
		t.Fatal(err)
	}
	wantTargets(t, "TakeDirected after DropNode", takeDirected(t, s, "romeo@example.net/c", "s3"), "nurse@example.com")
	// Once gone, a session keeps no new targets.
	if updateDirected(t, s, "juliet@example.com/a", "s1", "late@example.com", false) {
		t.Error("UpdateDirected of an unbound session: found")
	}
	wantTargets(t, "TakeDirected of an unbound session", takeDirected(t, s, "juliet@example.com/a", "s1"))
}

func testDirectedPerSession(t *testing.T, s presence.Store) {
	const me = "juliet@example.com/phone"
	if updateDirected(t, s, me, "s1", "nurse@example.com", false) {
		t.Error("UpdateDirected before Bind: found")
	}
	bind(t, s, session(me, "s1"))
	if updateDirected(t, s, me, "other", "nurse@example.com", false) {
		t.Error("UpdateDirected with another session id: found")
	}
	updateDirected(t, s, me, "s1", "nurse@example.com", false)
	// A session that replaces s1 at the same full JID has its own list;
	// s1's stays for its unavailable presence.
	bind(t, s, session(me, "s2"))
	updateDirected(t, s, me, "s2", "romeo@example.net", false)
	wantTargets(t, "TakeDirected(s2)", takeDirected(t, s, me, "s2"), "romeo@example.net")
	wantTargets(t, "TakeDirected(s1)", takeDirected(t, s, me, "s1"), "nurse@example.com")
	wantTargets(t, "TakeDirected(other)", takeDirected(t, s, me, "other"))
}
