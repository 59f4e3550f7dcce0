package c2s

import (
	"context"
	"strings"
	"testing"
	"time"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// TestRebindRestoresAvailabilityPriorityPresenceAndRosterRequest: after the
// registry removed the node's sessions (a new epoch), Rebind binds each
// again with what the registry knew of it: available, its priority and
// last presence (RFC 6121 4.2 to 4.4: probes and bare-JID routing need
// them) and that it requested the roster (2.1.6: it gets roster pushes);
// a session that never sent presence stays unavailable.
func TestRebindRestoresAvailabilityPriorityPresenceAndRosterRequest(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	a, b := e.dial(), e.dial()
	a.login("alice", "desk")
	b.login("bob", "phone")
	a.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
	a.send("<presence><priority>-3</priority><show>away</show></presence>")
	// Stanzas are handled in order: once the marker is routed, the session
	// has noted the two before it.
	a.send("<message to='bob@example.test' id='marker'><body>m</body></message>")
	deadline := time.After(ioTimeout)
	for done := false; !done; {
		select {
		case st := <-routed:
			done = st.GetId() == "marker"
		case <-deadline:
			t.Fatal("the marker message was not routed")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if _, err := e.reg.DropNode(ctx, &presencev1.DropNodeRequest{Node: testNode}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.srv.Rebind(ctx); err != nil || n != 2 {
		t.Fatalf("Rebind = %d, %v; want 2, nil", n, err)
	}
	s := e.lookup(a.jid)
	if s == nil || !s.GetAvailable() || s.GetPriority() != -3 || !s.GetRosterRequested() ||
		!strings.Contains(string(s.GetLastPresence()), "<show>away</show>") {
		t.Errorf("alice after Rebind: %v; want available, priority -3, roster requested, the away presence", s)
	}
	if s := e.lookup(b.jid); s == nil || s.GetAvailable() || s.GetRosterRequested() || len(s.GetLastPresence()) != 0 {
		t.Errorf("bob after Rebind: %v; want bound, unavailable, no roster request", s)
	}

	// Unavailable presence is restored as such.
	a.send("<presence type='unavailable'/>")
	a.send("<message to='bob@example.test' id='marker2'><body>m</body></message>")
	for done := false; !done; {
		select {
		case st := <-routed:
			done = st.GetId() == "marker2"
		case <-deadline:
			t.Fatal("the second marker message was not routed")
		}
	}
	if _, err := e.reg.DropNode(ctx, &presencev1.DropNodeRequest{Node: testNode}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Rebind(ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.lookup(a.jid); s == nil || s.GetAvailable() || !s.GetRosterRequested() {
		t.Errorf("alice after unavailable and Rebind: %v; want unavailable, still roster requested", s)
	}
}
