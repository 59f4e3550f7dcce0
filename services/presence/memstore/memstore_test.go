package memstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/storetest"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) presence.Store { return New() })
}

// Accounts whose last session went must not stay behind as empty entries,
// or the registry would grow with every account that ever connected.
func TestStoreForgetsAccountsWithoutSessions(t *testing.T) {
	s := New()
	ctx := context.Background()
	for a := range 100 {
		full := jid.MustParse(fmt.Sprintf("user%d@example.com/res", a))
		if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "n", ID: "old"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "n", ID: "new"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unbind(ctx, full, "old"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Unbind(ctx, full, "new"); err != nil || !ok {
			t.Fatalf("Unbind = %v, %v", ok, err)
		}
		// Failed updates of an unknown account must not create it either.
		other := jid.MustParse(fmt.Sprintf("ghost%d@example.com/res", a))
		if _, err := s.SetPresence(ctx, other, "x", true, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unbind(ctx, other, "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, other.Bare()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s.shards {
		if n := len(s.shards[i].accounts); n != 0 {
			t.Errorf("shard %d keeps %d accounts without sessions", i, n)
		}
	}
}

func TestBindOfABareJIDIsRefused(t *testing.T) {
	s := New()
	if _, err := s.Bind(context.Background(), presence.Session{JID: jid.MustParse("juliet@example.com"), ID: "s1"}); err == nil {
		t.Fatal("Bind of a bare JID succeeded, want an error")
	}
}
