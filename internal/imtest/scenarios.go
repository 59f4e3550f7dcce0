package imtest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The roster, presence and offline scenarios of RFC 6121 sections 2 to 4
// and XEP-0160, each with its own accounts, the users (and the resources
// of one user) spread over the nodes: with two c2s nodes no two parties
// of a scenario share one.

// RunScenarios runs every scenario as a subtest.
func RunScenarios(t *testing.T, e *Env) {
	for i, sc := range []struct {
		name string
		fn   func(t *testing.T, e *Env, p string)
	}{
		{"RosterSetPushedToEveryInterestedResource_RFC6121_2_1_6_and_2_3", rosterPushes},
		{"PresenceToSubscribersProbesDirectedAndLogout_RFC6121_4", presenceScenario},
		{"OfflineMessagesDeliveredWithDelayInOrderOnce_XEP0160", offlineScenario},
		{"PendingRequestDeliveredAtLogin_RFC6121_3_1_3", pendingScenario},
		{"ExtensionContentRoutedUntouched_RFC6120_8_4", extensionScenario},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, e, fmt.Sprintf("%ssc%d", e.Prefix, i)) })
	}
}

// rosterPushes adds, updates and removes an item from one resource and
// checks the pushes every resource that requested the roster gets, and
// the result; the two resources are on different nodes.
func rosterPushes(t *testing.T, e *Env, p string) {
	alice, bob := p+"alice", p+"bob"
	e.CreateAccounts(t, alice, bob)
	phone := e.Login(t, alice, "phone", 0)
	laptop := e.Login(t, alice, "laptop", 1)
	phone.Roster()
	laptop.Roster()
	res, _ := phone.IQ("set", "", "<query xmlns='"+NSRoster+"'><item jid='"+phone.Bare(bob)+"' name='Bob'><group>Friends</group></item></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("roster set: %s", res)
	}
	phone.Sync()
	laptop.Sync()
	for _, c := range []*Conn{phone, laptop} {
		if len(c.Pushes) != 1 {
			t.Fatalf("%s got %d pushes, want 1", c.Resource, len(c.Pushes))
		}
		it := c.Pushes[0].Child(NSRoster, "query").Child(NSRoster, "item")
		if it.Attr("jid") != c.Bare(bob) || it.Attr("name") != "Bob" || it.Attr("subscription") != "none" ||
			it.Child(NSRoster, "group").Text != "Friends" || c.Pushes[0].Attr("to") != c.JID() {
			t.Errorf("%s push %s", c.Resource, c.Pushes[0])
		}
	}
	// 2.3.3: two items are refused.
	res, _ = phone.IQ("set", "", "<query xmlns='"+NSRoster+"'><item jid='"+phone.Bare("a")+"'/><item jid='"+phone.Bare("b")+"'/></query>")
	if condition(res) != "bad-request" {
		t.Errorf("two items: %s, want bad-request", res)
	}
	// 2.5: remove, pushed with subscription='remove'.
	res, _ = laptop.IQ("set", "", "<query xmlns='"+NSRoster+"'><item jid='"+laptop.Bare(bob)+"' subscription='remove'/></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	phone.Sync()
	laptop.Sync()
	for _, c := range []*Conn{phone, laptop} {
		last := c.Pushes[len(c.Pushes)-1].Child(NSRoster, "query").Child(NSRoster, "item")
		if last.Attr("subscription") != "remove" {
			t.Errorf("%s last push %s, want a removal", c.Resource, last)
		}
	}
	if items := phone.Roster(); len(items) != 0 {
		t.Errorf("roster after remove has %d items", len(items))
	}
	// 2.5.3: removing what is not there.
	res, _ = phone.IQ("set", "", "<query xmlns='"+NSRoster+"'><item jid='"+phone.Bare(bob)+"' subscription='remove'/></query>")
	if condition(res) != "item-not-found" {
		t.Errorf("removing a missing item: %s, want item-not-found", res)
	}
}

// presenceScenario sets up a mutual subscription and checks broadcast on
// initial presence, the answer to the implied probe, directed presence to
// a non-contact, and unavailable at logout to subscribers and the
// directed target.
func presenceScenario(t *testing.T, e *Env, p string) {
	aliceName, bobName, carolName := p+"alice", p+"bob", p+"carol"
	e.CreateAccounts(t, aliceName, bobName, carolName)
	alice := e.Login(t, aliceName, "phone", 0)
	bob := e.Login(t, bobName, "desk", 1)
	for _, c := range []*Conn{alice, bob} {
		c.Roster()
		c.Send("<presence/>")
		c.Sync()
	}
	for _, pair := range [][2]*Conn{{alice, bob}, {bob, alice}} {
		pair[0].Send("<presence to='" + pair[0].Bare(pair[1].Local) + "' type='subscribe'/>")
		pair[0].Sync()
		pair[1].Sync()
		pair[1].Send("<presence to='" + pair[1].Bare(pair[0].Local) + "' type='subscribed'/>")
		pair[1].Sync()
		pair[0].Sync()
	}
	// Bob's second resource logs in on the other node: alice sees it; it
	// learns alice's presence from the probe answer.
	tablet := e.Login(t, bobName, "tablet", 0)
	tablet.Send("<presence><priority>3</priority></presence>")
	if got := Summary(tablet.Sync()); !slices.Contains(got, "available<"+aliceName+">") {
		t.Errorf("new resource got %v, want alice's presence (4.3.2)", got)
	}
	if got := Summary(alice.Sync()); !slices.Equal(got, []string{"available<" + bobName + ">"}) {
		t.Errorf("alice got %v, want bob's new resource (4.2.2)", got)
	}
	if got := Summary(bob.Sync()); !slices.Equal(got, []string{"available<" + bobName + ">"}) {
		t.Errorf("bob's other resource got %v, want the tablet's presence", got)
	}
	// Directed presence to carol, who is no contact.
	carol := e.Login(t, carolName, "x", 1)
	carol.Send("<presence/>")
	carol.Sync()
	alice.Send("<presence to='" + carol.JID() + "'/>")
	alice.Sync()
	if got := Summary(carol.Sync()); !slices.Equal(got, []string{"available<" + aliceName + ">"}) {
		t.Errorf("carol got %v, want the directed presence", got)
	}
	// Alice logs out: bob's two resources and carol learn it.
	alice.Send("<presence type='unavailable'/>")
	alice.Sync()
	for _, c := range []*Conn{bob, tablet, carol} {
		if got := Summary(c.Sync()); !slices.Equal(got, []string{"unavailable<" + aliceName + ">"}) {
			t.Errorf("%s/%s got %v, want alice unavailable (4.5.2, 4.6.3)", c.Local, c.Resource, got)
		}
	}
}

// offlineScenario sends to an account with no available resource and
// checks the delivery after its next initial presence on the other node,
// in order, with the delay stamp, extension kept, exactly once.
func offlineScenario(t *testing.T, e *Env, p string) {
	aliceName, bobName := p+"alice", p+"bob"
	e.CreateAccounts(t, aliceName, bobName)
	alice := e.Login(t, aliceName, "phone", 0)
	alice.Send("<presence/>")
	alice.Sync()
	for i := 1; i <= 3; i++ {
		alice.Send(fmt.Sprintf("<message to='%s' type='chat' id='m%d'><body>%d</body><x xmlns='urn:example:ext'>kept</x></message>", alice.Bare(bobName), i, i))
	}
	if got := alice.Sync(); len(got) != 0 {
		t.Errorf("sender got %v, want nothing (stored)", Summary(got))
	}
	start := time.Now().UTC().Add(-time.Minute)
	bob := e.Login(t, bobName, "desk", 1)
	bob.Send("<presence/>")
	var bodies []string
	for _, n := range bob.Sync() {
		if !n.Is(NSClient, "message") {
			continue
		}
		bodies = append(bodies, n.Child(NSClient, "body").Text)
		d := n.Child("urn:xmpp:delay", "delay")
		if d == nil || d.Attr("from") != e.Domain {
			t.Errorf("offline message without delay from the domain: %s", n)
			continue
		}
		if ts, err := time.Parse(time.RFC3339Nano, d.Attr("stamp")); err != nil || ts.Before(start) {
			t.Errorf("delay stamp %q: %v", d.Attr("stamp"), err)
		}
		if n.Child("urn:example:ext", "x") == nil {
			t.Errorf("extension lost: %s", n)
		}
	}
	if !slices.Equal(bodies, []string{"1", "2", "3"}) {
		t.Errorf("offline messages %v, want 1 2 3 in order", bodies)
	}
	// Deleted once delivered: the next login gets none.
	again := e.Login(t, bobName, "laptop", 0)
	again.Send("<presence/>")
	for _, n := range again.Sync() {
		if n.Is(NSClient, "message") {
			t.Errorf("offline message delivered twice: %s", n)
		}
	}
}

// pendingScenario sends a subscription request to an offline user and
// checks that it arrives, extension included, with the user's next
// initial presence on the other node.
func pendingScenario(t *testing.T, e *Env, p string) {
	aliceName, bobName := p+"alice", p+"bob"
	e.CreateAccounts(t, aliceName, bobName)
	alice := e.Login(t, aliceName, "phone", 0)
	alice.Send("<presence to='" + alice.Bare(bobName) + "' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>")
	alice.Sync()
	bob := e.Login(t, bobName, "desk", 1)
	bob.Send("<presence/>")
	var req *Node
	for _, n := range bob.Sync() {
		if n.Is(NSClient, "presence") && n.Attr("type") == "subscribe" {
			req = n
		}
	}
	if req == nil || req.Attr("from") != alice.Bare(aliceName) || req.Child("http://jabber.org/protocol/nick", "nick") == nil {
		t.Fatalf("pending request at login: %v", req)
	}
}

// extensionScenario sends a message with unknown extension elements,
// attributes and text to a full JID on the other node and checks the
// recipient gets them unchanged in meaning.
func extensionScenario(t *testing.T, e *Env, p string) {
	aliceName, bobName := p+"alice", p+"bob"
	e.CreateAccounts(t, aliceName, bobName)
	alice := e.Login(t, aliceName, "phone", 0)
	bob := e.Login(t, bobName, "desk", 1)
	bob.Send("<presence/>")
	bob.Sync()
	alice.Send("<message to='" + bob.JID() + "' id='x1'><body>b</body>" +
		"<payload xmlns='urn:example:ext' a='1'><inner xmlns='urn:example:other' k='v'>text &amp; more</inner></payload></message>")
	alice.Sync()
	got := bob.Sync()
	if len(got) != 1 {
		t.Fatalf("bob got %v", Summary(got))
	}
	pl := got[0].Child("urn:example:ext", "payload")
	in := pl.Child("urn:example:other", "inner")
	if pl == nil || pl.Attr("a") != "1" || in == nil || in.Attr("k") != "v" || in.Text != "text & more" {
		t.Errorf("extension changed: %s", got[0])
	}
}
