package presence_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
)

// publishChanged records a PresenceChanged payload as its list of bare
// JIDs (nil for "every account").
func (e *events) publishChanged(data []byte) error {
	var jids []string
	bus.DecodeChanged(data, func(b string) { jids = append(jids, b) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.changed = append(e.changed, jids)
	return nil
}

// takeChanged returns the PresenceChanged events so far and forgets them.
func (e *events) takeChanged() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.changed
	e.changed = nil
	return got
}

func wantChanged(t *testing.T, ev *events, what string, want ...[]string) {
	t.Helper()
	got := ev.takeChanged()
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after %s: PresenceChanged events %q, want %q", what, got, want)
	}
}

func TestEveryChangeOfAnAccountsSessionsIsAnnouncedOnce(t *testing.T) {
	ev := newEvents()
	svc := newService(t, presence.Config{Events: ev})
	c := serve(t, svc)
	ctx := testContext(t)
	juliet := []string{"juliet@example.com"}

	bind(t, c, "Juliet@example.com/balcony", "node-a", "s1")
	wantChanged(t, ev, "Bind", juliet)
	if _, err := c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "s1", Available: true, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	wantChanged(t, ev, "SetPresence", juliet)
	// Nothing changes for a session that is not bound: no event.
	if _, err := c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "other", Available: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony", SessionId: "other"}); err != nil {
		t.Fatal(err)
	}
	wantChanged(t, ev, "SetPresence and Unbind of an unknown session")
	if _, err := c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony", SessionId: "s1"}); err != nil {
		t.Fatal(err)
	}
	wantChanged(t, ev, "Unbind", juliet)
	// Malformed requests change nothing.
	if _, err := c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com", Node: "node-a", SessionId: "s2"}); err == nil {
		t.Fatal("Bind of a bare JID accepted")
	}
	wantChanged(t, ev, "a refused Bind")

	// Removal by node: each account once, whatever its sessions.
	bind(t, c, "juliet@example.com/balcony", "node-a", "s3")
	bind(t, c, "juliet@example.com/garden", "node-a", "s4")
	bind(t, c, "romeo@example.net/orchard", "node-a", "s5")
	bind(t, c, "nurse@example.com/kitchen", "node-b", "s6")
	ev.takeChanged()
	dropNode(t, c, "node-a")
	wantChanged(t, ev, "DropNode", []string{"juliet@example.com", "romeo@example.net"})

	// And the reaper's removals likewise.
	heartbeat(t, c, "node-b", time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for svc.Reaper().Reap(ctx) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node-b's session was never reaped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantChanged(t, ev, "a reap", []string{"nurse@example.com"})
}
