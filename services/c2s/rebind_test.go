package c2s

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// hookedRegistry forwards to the real registry and runs beforeBind, when
// set, before each Bind.
type hookedRegistry struct {
	sessionRegistry
	beforeBind atomic.Pointer[func()]
}

func (h *hookedRegistry) Bind(ctx context.Context, in *presencev1.BindRequest, opts ...grpc.CallOption) (*presencev1.BindResponse, error) {
	if f := h.beforeBind.Load(); f != nil {
		(*f)()
	}
	return h.sessionRegistry.Bind(ctx, in, opts...)
}

func TestRebindRestoresSessionsTheRegistryDropped(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial(), e.dial()
	a.login("alice", "desk")
	b.login("bob", "phone")
	idA, idB := a.sessionID(), b.sessionID()

	// What the reaper does to a node whose heartbeats stopped.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if _, err := e.reg.DropNode(ctx, &presencev1.DropNodeRequest{Node: testNode}); err != nil {
		t.Fatal(err)
	}
	if e.lookup(a.jid) != nil || e.lookup(b.jid) != nil {
		t.Fatal("DropNode left sessions in the registry")
	}

	n, err := e.srv.Rebind(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rebind = %d, %v; want 2, nil", n, err)
	}
	for _, c := range []struct {
		cl *client
		id string
	}{{a, idA}, {b, idB}} {
		s := e.lookup(c.cl.jid)
		if s == nil || s.GetSessionId() != c.id || s.GetNode() != testNode {
			t.Fatalf("%s after Rebind: %v, want session %s on %s", c.cl.jid, s, c.id, testNode)
		}
	}
	// The sessions were never interrupted: a delivery still reaches them.
	e.deliver(idB, "<message xmlns='jabber:client' to='bob@example.test/phone' from='alice@example.test/desk'><body>still here</body></message>")
	b.expect("<message xmlns='jabber:client' to='bob@example.test/phone' from='alice@example.test/desk'><body>still here</body></message>")

	// A second Rebind while everything is bound changes nothing.
	if n, err := e.srv.Rebind(ctx); err != nil || n != 2 {
		t.Fatalf("second Rebind = %d, %v; want 2, nil", n, err)
	}
	if s := e.lookup(a.jid); s == nil || s.GetSessionId() != idA {
		t.Fatalf("%s after a second Rebind: %v", a.jid, s)
	}
}

func TestRebindLeavesNoSessionThatEndedMeanwhile(t *testing.T) {
	var reg *hookedRegistry
	e := newEnv(t, func(c *Config) {
		reg = &hookedRegistry{sessionRegistry: c.Sessions}
		c.Sessions = reg
	})
	a := e.dial()
	full := a.login("alice", "desk")

	// The session ends (its end() forgets it and unbinds it) after Rebind
	// took its list and before its Bind reaches the registry.
	end := func() {
		reg.beforeBind.Store(nil)
		a.raw.Close()
		waitFor(t, "the session to end and unbind", func() bool {
			return e.srv.SessionCount() == 0 && e.lookup(full) == nil
		})
	}
	reg.beforeBind.Store(&end)

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	n, err := e.srv.Rebind(ctx)
	if err != nil || n != 0 {
		t.Fatalf("Rebind = %d, %v; want 0, nil", n, err)
	}
	if s := e.lookup(full); s != nil {
		t.Fatalf("the ended session %s is in the registry after Rebind: %v", full, s)
	}
}
