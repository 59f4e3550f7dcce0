package presence_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

func (brokenStore) SetRosterRequested(context.Context, jid.JID, string) (bool, error) {
	return false, errDown
}
func (brokenStore) UpdateDirected(context.Context, jid.JID, string, string, bool) (bool, error) {
	return false, errDown
}
func (brokenStore) TakeDirected(context.Context, jid.JID, string) ([]string, error) {
	return nil, errDown
}

// TestRosterRequestedAndDirectedOverGRPC_RFC6121_2_1_6_and_4_6 drives the
// IMState calls through the service: a session that requested its roster
// is reported by Lookup, directed-presence targets are taken once after
// Unbind, and Rebind's Bind restores what the session had.
func TestRosterRequestedAndDirectedOverGRPC_RFC6121_2_1_6_and_4_6(t *testing.T) {
	c := start(t, nil)
	ctx := testContext(t)
	bind(t, c, "juliet@example.com/phone", "n1", "s1")
	if r, err := c.SetRosterRequested(ctx, &presencev1.SetRosterRequestedRequest{Jid: "juliet@example.com/phone", SessionId: "s1"}); err != nil || !r.Found {
		t.Fatalf("SetRosterRequested: %v, %v", r, err)
	}
	if got := lookup(t, c, "juliet@example.com"); len(got) != 1 || !got[0].RosterRequested {
		t.Errorf("Lookup after SetRosterRequested: %v", got)
	}
	for _, to := range []string{"nurse@example.com/x", "capulet.example.org"} {
		if r, err := c.UpdateDirected(ctx, &presencev1.UpdateDirectedRequest{Jid: "juliet@example.com/phone", SessionId: "s1", Target: to}); err != nil || !r.Found {
			t.Fatalf("UpdateDirected(%s): %v, %v", to, r, err)
		}
	}
	if _, err := c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/phone", SessionId: "s1"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.TakeDirected(ctx, &presencev1.TakeDirectedRequest{Jid: "juliet@example.com/phone", SessionId: "s1"})
	if err != nil || !slices.Equal(r.GetTargets(), []string{"capulet.example.org", "nurse@example.com/x"}) {
		t.Errorf("TakeDirected after Unbind: %v, %v", r, err)
	}

	// Rebind: the node binds the session again with what it knows.
	if _, err := c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/phone", Node: "n1", SessionId: "s1",
		Available: true, Priority: 7, LastPresence: []byte("<presence/>"), RosterRequested: true}); err != nil {
		t.Fatal(err)
	}
	got := lookup(t, c, "juliet@example.com/phone")
	if len(got) != 1 || !got[0].Available || got[0].Priority != 7 || string(got[0].LastPresence) != "<presence/>" || !got[0].RosterRequested {
		t.Errorf("Lookup after a restoring Bind: %v", got)
	}
}

func TestIMStateCallsRefuseBadRequests(t *testing.T) {
	c := start(t, nil)
	ctx := testContext(t)
	_, err := c.SetRosterRequested(ctx, &presencev1.SetRosterRequestedRequest{Jid: "juliet@example.com", SessionId: "s1"})
	wantCode(t, "SetRosterRequested of a bare JID", err, codes.InvalidArgument)
	_, err = c.UpdateDirected(ctx, &presencev1.UpdateDirectedRequest{Jid: "juliet@example.com/phone", Target: "nurse@example.com"})
	wantCode(t, "UpdateDirected without a session id", err, codes.InvalidArgument)
	_, err = c.UpdateDirected(ctx, &presencev1.UpdateDirectedRequest{Jid: "juliet@example.com/phone", SessionId: "s1", Target: "@@"})
	wantCode(t, "UpdateDirected to a bad JID", err, codes.InvalidArgument)
	_, err = c.TakeDirected(ctx, &presencev1.TakeDirectedRequest{Jid: "not a jid/", SessionId: "s1"})
	wantCode(t, "TakeDirected of a bad JID", err, codes.InvalidArgument)
	_, err = c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/phone", Node: "n1", SessionId: "s1", Priority: 200})
	wantCode(t, "Bind with priority 200", err, codes.InvalidArgument)
	broken := start(t, brokenStore{})
	_, err = broken.TakeDirected(ctx, &presencev1.TakeDirectedRequest{Jid: "juliet@example.com/phone", SessionId: "s1"})
	wantCode(t, "TakeDirected on a failing store", err, codes.Unavailable)
}
