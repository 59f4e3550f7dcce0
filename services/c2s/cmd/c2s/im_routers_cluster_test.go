package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/imtest"
)

// IM state that must be the same for both routers (RFC 6121 2.1.6
// interested resources, 4.6 directed presence): it is in the presence
// registry, not in a router's memory.

// usersOnRouters returns n fresh localparts (prefix, then a number) whose
// route partitions are held by router-1 and router-2 in turn.
func usersOnRouters(t *testing.T, c *cluster, prefix string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; len(out) < n && i < 1000; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		want := fmt.Sprintf("router-%d", len(out)%2+1)
		if node, _ := c.routerHolding(t, name+"@localhost"); node == want {
			out = append(out, name)
		}
	}
	if len(out) < n {
		t.Fatalf("found %d of %d users with partitions on alternating routers", len(out), n)
	}
	return out
}

// interestedAcrossRouters: dave requests his roster through the router
// holding his partition and sends no presence; erin's approval, routed by
// the other router, changes dave's roster: dave gets the push (2.1.6).
func interestedAcrossRouters(t *testing.T, c *cluster, env *imtest.Env) {
	u := usersOnRouters(t, c, "ri", 2)
	dave, erin := u[0], u[1]
	env.CreateAccounts(t, dave, erin)
	d := env.Login(t, dave, "r", 0)
	e := env.Login(t, erin, "r", 1)
	d.Roster()
	e.Roster()
	e.Send("<presence/>")
	e.Sync()
	d.Send("<presence to='" + d.Bare(erin) + "' type='subscribe'/>")
	d.Sync()
	e.Sync()
	d.Pushes = nil
	e.Send("<presence to='" + e.Bare(dave) + "' type='subscribed'/>")
	e.Sync()
	d.Sync()
	if len(d.Pushes) != 1 {
		t.Fatalf("dave (roster requested through the other router, not available) got %d pushes, want 1", len(d.Pushes))
	}
	it := d.Pushes[0].Child(imtest.NSRoster, "query").Child(imtest.NSRoster, "item")
	if it.Attr("jid") != d.Bare(erin) || it.Attr("subscription") != "to" {
		t.Errorf("push %s: want erin with subscription to", d.Pushes[0])
	}
}

// directedAfterRouterCrash: frank sends directed presence to grace (no
// contact of his) through the router holding his partition; that router
// is killed; frank logs out and grace still gets his unavailable presence
// (4.6.3), routed by the router that took the partition over.
func directedAfterRouterCrash(t *testing.T, c *cluster, env *imtest.Env) {
	u := usersOnRouters(t, c, "rd", 2)
	frank, grace := u[0], u[1]
	env.CreateAccounts(t, frank, grace)
	f := env.Login(t, frank, "r", 0)
	g := env.Login(t, grace, "r", 1)
	g.Send("<presence/>")
	g.Sync()
	f.Send("<presence/>")
	f.Send("<presence to='" + g.JID() + "'><status>hello</status></presence>")
	f.Sync()
	if got := imtest.Summary(g.Sync()); len(got) != 1 || got[0] != "available<"+frank+">" {
		t.Fatalf("grace got %v, want frank's directed presence", got)
	}
	node, _ := c.routerHolding(t, frank+"@localhost")
	args := c.kill(t, node)
	defer c.restart(t, node, args, c.health(node))
	// The unavailable presence waits in the route stream until the other
	// router leases the partition.
	f.Send("<presence type='unavailable'/></stream:stream>")
	g.Wait = time.Minute
	for {
		n, err := g.Next()
		if err != nil {
			t.Fatalf("grace waiting for frank's unavailable presence after %s was killed: %v", node, err)
		}
		if got := imtest.Summary([]*imtest.Node{n}); got[0] == "unavailable<"+frank+">" {
			break
		}
		t.Logf("grace got %s meanwhile", n)
	}
	if now, _ := c.routerHolding(t, frank+"@localhost"); now == node {
		t.Errorf("frank's partition is still held by the killed %s", node)
	}
}
