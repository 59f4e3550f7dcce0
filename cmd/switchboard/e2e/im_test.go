package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// IM end to end (RFC 6121 sections 2 to 4, XEP-0160): real clients over
// STARTTLS against the one-process app, whose roster service keeps its data
// in SQLite. Nothing is waited for by sleeping: a client proves that
// everything due to it arrived with a ping round trip (imConn.sync), since
// the router routes one sender's stanzas in order and publishes their
// deliveries before the ping's result.

const (
	nsRoster = "jabber:iq:roster"
	nsPing   = "urn:xmpp:ping"
	nsDelay  = "urn:xmpp:delay"
)

// imConn is a logged-in raw client.
type imConn struct {
	*rawConn
	local, resource string
	n               int
	// pushes counts the roster pushes received (and answered).
	pushes []*node
}

func (s *server) imLogin(t testing.TB, local, resource string) *imConn {
	t.Helper()
	return &imConn{rawConn: s.rawLogin(t, local, resource), local: local, resource: resource}
}

func (c *imConn) jid() string { return full(c.local, c.resource).String() }

// sync sends a ping to the server and returns every stanza that arrived
// before its result, answering roster pushes (RFC 6121 2.1.6) and keeping
// them in c.pushes rather than in the result.
func (c *imConn) sync() []*node {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("sync-%d", c.n)
	c.send("<iq type='get' id='" + id + "' to='" + domain + "'><ping xmlns='" + nsPing + "'/></iq>")
	var out []*node
	for {
		n := c.mustNext("stanzas before the ping result " + id)
		switch {
		case n.is(nsClient, "iq") && n.attr("id") == id:
			if n.attr("type") != "result" {
				c.t.Fatalf("ping %s answered with %s", id, n)
			}
			return out
		case n.is(nsClient, "iq") && n.attr("type") == "set" && n.child(nsRoster, "query") != nil:
			c.send("<iq type='result' id='" + n.attr("id") + "'/>")
			c.pushes = append(c.pushes, n)
		default:
			out = append(out, n)
		}
	}
}

// iq sends an IQ and returns its answer, with the stanzas that came first.
func (c *imConn) iq(typ, to, payload string) (*node, []*node) {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("iq-%d", c.n)
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.send("<iq type='" + typ + "' id='" + id + "'" + toAttr + ">" + payload + "</iq>")
	var before []*node
	for {
		n := c.mustNext("the answer to " + id)
		if n.is(nsClient, "iq") && n.attr("id") == id {
			return n, before
		}
		if n.is(nsClient, "iq") && n.attr("type") == "set" && n.child(nsRoster, "query") != nil {
			c.send("<iq type='result' id='" + n.attr("id") + "'/>")
			c.pushes = append(c.pushes, n)
			continue
		}
		before = append(before, n)
	}
}

// roster gets the roster and returns its items by JID.
func (c *imConn) roster() map[string]*node {
	c.t.Helper()
	res, _ := c.iq("get", "", "<query xmlns='"+nsRoster+"'/>")
	q := res.child(nsRoster, "query")
	if res.attr("type") != "result" || q == nil {
		c.t.Fatalf("roster get: %s", res)
	}
	items := map[string]*node{}
	for i := range q.Nodes {
		items[q.Nodes[i].attr("jid")] = &q.Nodes[i]
	}
	return items
}

// state is one side's item for the other as "subscription[+ask]", "-" for
// no item.
func (c *imConn) state(other string) string {
	it := c.roster()[bare(other).String()]
	if it == nil {
		return "-"
	}
	s := it.attr("subscription")
	if it.attr("ask") == "subscribe" {
		s += "+ask"
	}
	return s
}

// summary names the stanzas a client received: presence by type (or
// "available") and sender, messages by body.
func summary(ns []*node) []string {
	var out []string
	for _, n := range ns {
		switch {
		case n.is(nsClient, "presence"):
			typ := n.attr("type")
			if typ == "" {
				typ = "available"
			}
			out = append(out, typ+"<"+strings.SplitN(n.attr("from"), "@", 2)[0]+">")
		case n.is(nsClient, "message"):
			out = append(out, "message:"+n.child(nsClient, "body").Text)
		default:
			out = append(out, n.String())
		}
	}
	return out
}

// TestRosterSetPushedToEveryInterestedResource_RFC6121_2_1_6_and_2_3 adds,
// updates and removes an item from one resource and checks the pushes
// every resource that requested the roster gets, and the result.
func TestRosterSetPushedToEveryInterestedResource_RFC6121_2_1_6_and_2_3(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	phone := s.imLogin(t, "alice", "phone")
	laptop := s.imLogin(t, "alice", "laptop")
	phone.roster()
	laptop.roster()
	res, _ := phone.iq("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' name='Bob'><group>Friends</group></item></query>")
	if res.attr("type") != "result" {
		t.Fatalf("roster set: %s", res)
	}
	phone.sync()
	laptop.sync()
	for _, c := range []*imConn{phone, laptop} {
		if len(c.pushes) != 1 {
			t.Fatalf("%s got %d pushes, want 1", c.resource, len(c.pushes))
		}
		it := c.pushes[0].child(nsRoster, "query").child(nsRoster, "item")
		if it.attr("jid") != "bob@"+domain || it.attr("name") != "Bob" || it.attr("subscription") != "none" ||
			it.child(nsRoster, "group").Text != "Friends" || c.pushes[0].attr("to") != c.jid() {
			t.Errorf("%s push %s", c.resource, c.pushes[0])
		}
	}
	// 2.3.3: two items are refused.
	res, _ = phone.iq("set", "", "<query xmlns='"+nsRoster+"'><item jid='a@"+domain+"'/><item jid='b@"+domain+"'/></query>")
	if res.attr("type") != "error" || res.child(nsClient, "error").child("urn:ietf:params:xml:ns:xmpp-stanzas", "bad-request") == nil {
		t.Errorf("two items: %s, want bad-request", res)
	}
	// 2.5: remove, pushed with subscription='remove'.
	res, _ = laptop.iq("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' subscription='remove'/></query>")
	if res.attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	phone.sync()
	laptop.sync()
	for _, c := range []*imConn{phone, laptop} {
		last := c.pushes[len(c.pushes)-1].child(nsRoster, "query").child(nsRoster, "item")
		if last.attr("subscription") != "remove" {
			t.Errorf("%s last push %s, want a removal", c.resource, last)
		}
	}
	if items := phone.roster(); len(items) != 0 {
		t.Errorf("roster after remove has %d items", len(items))
	}
	// 2.5.3: removing what is not there.
	res, _ = phone.iq("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' subscription='remove'/></query>")
	if res.child(nsClient, "error").child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Errorf("removing a missing item: %s, want item-not-found", res)
	}
}

// TestRosterVersioningUnchangedAndIncremental_RFC6121_2_6 checks the
// stream feature, then a get with the current ver (empty result) and with
// an older one (empty result, then the pushes since).
func TestRosterVersioningUnchangedAndIncremental_RFC6121_2_6(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice")
	r := s.rawDial(t)
	r.open()
	r.startTLS()
	f := r.authPlain("alice", password("alice"))
	if f.child("urn:xmpp:features:rosterver", "ver") == nil || f.child("urn:xmpp:features:pre-approval", "sub") == nil {
		t.Errorf("features after authentication %s: want rosterver and pre-approval", f)
	}
	r.bind("phone")
	c := &imConn{rawConn: r, local: "alice", resource: "phone"}

	res, _ := c.iq("get", "", "<query xmlns='"+nsRoster+"' ver=''/>")
	v0 := res.child(nsRoster, "query").attr("ver")
	add := func(who string) {
		res, _ := c.iq("set", "", "<query xmlns='"+nsRoster+"'><item jid='"+who+"@"+domain+"'/></query>")
		if res.attr("type") != "result" {
			t.Fatalf("set: %s", res)
		}
	}
	add("bob")
	c.sync()
	res, _ = c.iq("get", "", "<query xmlns='"+nsRoster+"' ver=''/>")
	v1 := res.child(nsRoster, "query").attr("ver")
	if v1 == "" || v1 == v0 {
		t.Fatalf("ver after a change %q, before %q", v1, v0)
	}
	res, _ = c.iq("get", "", "<query xmlns='"+nsRoster+"' ver='"+v1+"'/>")
	if res.attr("type") != "result" || len(res.Nodes) != 0 {
		t.Errorf("get with the current ver: %s, want an empty result", res)
	}
	add("carol")
	add("dave")
	c.sync()
	c.pushes = nil
	res, _ = c.iq("get", "", "<query xmlns='"+nsRoster+"' ver='"+v1+"'/>")
	if res.attr("type") != "result" || len(res.Nodes) != 0 {
		t.Fatalf("incremental get: %s, want an empty result first", res)
	}
	c.sync()
	var got []string
	for _, p := range c.pushes {
		got = append(got, p.child(nsRoster, "query").child(nsRoster, "item").attr("jid"))
	}
	if want := []string{"carol@" + domain, "dave@" + domain}; !slices.Equal(got, want) {
		t.Errorf("pushes after the empty result: %v, want %v", got, want)
	}
}

// subState is one side's view in Appendix A: subscription and ask.
type subState struct {
	to, from, pendOut, pendIn bool
}

func (s subState) mirror() subState { return subState{s.from, s.to, s.pendIn, s.pendOut} }

// item is the roster item the state shows (RFC 6121 2.1.2.5): pending in
// is not in the roster item.
func (s subState) item() string {
	sub := map[[2]bool]string{{false, false}: "none", {true, false}: "to", {false, true}: "from", {true, true}: "both"}[[2]bool{s.to, s.from}]
	if s.pendOut {
		sub += "+ask"
	}
	return sub
}

// outbound applies a stanza sent by the side whose state s is, as
// Appendix A.2 (and 3.x) define the changes of the sender's state.
func (s subState) outbound(typ string) subState {
	switch typ {
	case "subscribe":
		if !s.to {
			s.pendOut = true
		}
	case "unsubscribe":
		s.to, s.pendOut = false, false
	case "subscribed":
		if s.pendIn {
			s.from, s.pendIn = true, false
		}
	case "unsubscribed":
		s.from, s.pendIn = false, false
	}
	return s
}

// TestSubscriptionStatesAppendixA_RFC6121_3_and_A drives every start state
// of Appendix A with real stanzas between two local users, then sends each
// of the four subscription stanzas in each direction, and checks both
// rosters and the subscription stanzas and presence each side received.
func TestSubscriptionStatesAppendixA_RFC6121_3_and_A(t *testing.T) {
	s := startServer(t)
	type step struct {
		byAlice bool
		typ     string
	}
	starts := []struct {
		name  string
		steps []step
	}{
		{"None", nil},
		{"None+PendingOut", []step{{true, "subscribe"}}},
		{"None+PendingIn", []step{{false, "subscribe"}}},
		{"None+PendingOut+PendingIn", []step{{true, "subscribe"}, {false, "subscribe"}}},
		{"To", []step{{true, "subscribe"}, {false, "subscribed"}}},
		{"To+PendingIn", []step{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}}},
		{"From", []step{{false, "subscribe"}, {true, "subscribed"}}},
		{"From+PendingOut", []step{{false, "subscribe"}, {true, "subscribed"}, {true, "subscribe"}}},
		{"Both", []step{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}, {true, "subscribed"}}},
	}
	types := []string{"subscribe", "subscribed", "unsubscribe", "unsubscribed"}
	n := 0
	for _, st := range starts {
		for _, byAlice := range []bool{true, false} {
			for _, typ := range types {
				dir := "outbound"
				if !byAlice {
					dir = "inbound"
				}
				n++
				aliceName, bobName := fmt.Sprintf("a%d", n), fmt.Sprintf("b%d", n)
				t.Run(st.name+"/"+dir+"-"+typ, func(t *testing.T) {
					s.createAccounts(t, aliceName, bobName)
					alice := s.imLogin(t, aliceName, "r")
					bob := s.imLogin(t, bobName, "r")
					for _, c := range []*imConn{alice, bob} {
						c.roster()
						c.send("<presence/>")
						c.sync()
					}
					var state subState // alice's
					// Whether each side has an item: made by sending a
					// subscribe, an approval or a pre-approval (3.1.2,
					// 3.1.5, 3.4), kept until a roster remove.
					var aliceIn, bobIn bool
					note := func(byAlice bool, typ string) {
						if typ == "subscribe" || typ == "subscribed" {
							if byAlice {
								aliceIn = true
							} else {
								bobIn = true
							}
						}
					}
					send := func(byAlice bool, typ string) {
						from, to := alice, bob
						if !byAlice {
							from, to = bob, alice
						}
						from.send("<presence to='" + bare(to.local).String() + "' type='" + typ + "'/>")
						from.sync()
						to.sync()
						note(byAlice, typ)
						if byAlice {
							state = state.outbound(typ)
						} else {
							state = state.mirror().outbound(typ).mirror()
						}
					}
					for _, p := range st.steps {
						send(p.byAlice, p.typ)
					}
					if got := alice.state(bobName); got != itemOrNone(state, aliceIn) {
						t.Fatalf("set-up: alice's item %s, want %s", got, itemOrNone(state, aliceIn))
					}
					before := state
					alice.sync()
					bob.sync()

					sender, receiver := alice, bob
					if !byAlice {
						sender, receiver = bob, alice
					}
					sender.send("<presence to='" + bare(receiver.local).String() + "' type='" + typ + "'/>")
					gotSender := summary(sender.sync())
					gotReceiver := summary(receiver.sync())
					note(byAlice, typ)
					if byAlice {
						state = state.outbound(typ)
					} else {
						state = state.mirror().outbound(typ).mirror()
					}
					if got := alice.state(bobName); got != itemOrNone(state, aliceIn) {
						t.Errorf("alice's item %s, want %s", got, itemOrNone(state, aliceIn))
					}
					if got := bob.state(aliceName); got != itemOrNone(state.mirror(), bobIn) {
						t.Errorf("bob's item %s, want %s", got, itemOrNone(state.mirror(), bobIn))
					}
					// What each side must have received, from the sender's
					// and receiver's states before and after.
					sb, sa, rb, ra := before, state, before.mirror(), state.mirror()
					if !byAlice {
						sb, sa, rb, ra = rb, ra, sb, sa
					}
					wantS, wantR := expectedDeliveries(typ, sender.local, receiver.local, sb, sa, rb, ra)
					if !slices.Equal(gotSender, wantS) {
						t.Errorf("sender got %v, want %v", gotSender, wantS)
					}
					if !slices.Equal(gotReceiver, wantR) {
						t.Errorf("receiver got %v, want %v", gotReceiver, wantR)
					}
				})
			}
		}
	}
}

// itemOrNone is the item the roster shows, "-" when the side has none (a
// pending request alone puts nothing in the roster, 3.1.3).
func itemOrNone(s subState, in bool) string {
	if !in {
		return "-"
	}
	return s.item()
}

// expectedDeliveries is what the sender and the receiver of a subscription
// stanza see (both available), from each side's state before and after:
//   - the receiver gets the stanza when its state changed, and a subscribe
//     also when nothing changed but it had no subscription from the sender
//     yet and a request was not already pending (3.1.3); a subscribe from a
//     contact that already has 'from' is answered by the server with
//     subscribed (3.1.3), which changes nothing on the sender's side, who
//     already has 'to', and is therefore not delivered to it (A.3.2);
//   - a side that gained 'from' sends its presence to the other; one that
//     lost it sends unavailable (3.1.5, 3.2.2, 3.3.3).
func expectedDeliveries(typ, sender, receiver string, sb, sa, rb, ra subState) (toSender, toReceiver []string) {
	delivered := sa != sb || ra != rb
	if typ == "subscribe" && !rb.from && !rb.pendIn {
		delivered = true
	}
	if typ == "subscribe" && rb.from {
		delivered = false
	}
	if typ == "subscribe" && rb.pendIn {
		delivered = false
	}
	if delivered {
		toReceiver = append(toReceiver, typ+"<"+sender+">")
	}
	// Presence effects follow the subscription stanza they come from
	// (RFC 6121 3.1.5: the contact's server routes subscribed, then sends
	// the contact's presence; 3.2.2 likewise for unavailable).
	if !sb.from && sa.from {
		toReceiver = append(toReceiver, "available<"+sender+">")
	}
	if sb.from && !sa.from {
		toReceiver = append(toReceiver, "unavailable<"+sender+">")
	}
	if !rb.from && ra.from {
		toSender = append(toSender, "available<"+receiver+">")
	}
	if rb.from && !ra.from {
		toSender = append(toSender, "unavailable<"+receiver+">")
	}
	return toSender, toReceiver
}

// TestPresenceToSubscribersProbesAndLogout_RFC6121_4 sets up a mutual
// subscription and checks broadcast on initial presence, the answer to the
// implied probe, an update, and unavailable at logout.
func TestPresenceToSubscribersProbesAndLogout_RFC6121_4(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob", "carol")
	alice := s.imLogin(t, "alice", "phone")
	bob := s.imLogin(t, "bob", "desk")
	for _, c := range []*imConn{alice, bob} {
		c.roster()
		c.send("<presence/>")
		c.sync()
	}
	for _, p := range [][2]*imConn{{alice, bob}, {bob, alice}} {
		p[0].send("<presence to='" + bare(p[1].local).String() + "' type='subscribe'/>")
		p[0].sync()
		p[1].sync()
		p[1].send("<presence to='" + bare(p[0].local).String() + "' type='subscribed'/>")
		p[1].sync()
		p[0].sync()
	}
	// Bob's second resource logs in: alice sees it; it learns alice's
	// presence from the probe answer.
	tablet := s.imLogin(t, "bob", "tablet")
	tablet.send("<presence><priority>3</priority></presence>")
	got := summary(tablet.sync())
	if !slices.Contains(got, "available<alice>") {
		t.Errorf("new resource got %v, want alice's presence (4.3.2)", got)
	}
	if got := summary(alice.sync()); !slices.Equal(got, []string{"available<bob>"}) {
		t.Errorf("alice got %v, want bob's new resource (4.2.2)", got)
	}
	if got := summary(bob.sync()); !slices.Equal(got, []string{"available<bob>"}) {
		t.Errorf("bob's other resource got %v, want the tablet's presence", got)
	}
	// Directed presence to carol, who is no contact.
	carol := s.imLogin(t, "carol", "x")
	carol.send("<presence/>")
	carol.sync()
	alice.send("<presence to='carol@" + domain + "/x'/>")
	alice.sync()
	if got := summary(carol.sync()); !slices.Equal(got, []string{"available<alice>"}) {
		t.Errorf("carol got %v, want the directed presence", got)
	}
	// Alice logs out: bob's two resources and carol learn it.
	alice.send("<presence type='unavailable'/>")
	alice.sync()
	for _, c := range []*imConn{bob, tablet, carol} {
		if got := summary(c.sync()); !slices.Equal(got, []string{"unavailable<alice>"}) {
			t.Errorf("%s/%s got %v, want alice unavailable (4.5.2, 4.6.3)", c.local, c.resource, got)
		}
	}
}

// TestOfflineMessagesDeliveredWithDelayInOrder_XEP0160 sends to an
// account with no available resource and checks the delivery after its
// next initial presence, in order, with the delay stamp, exactly once.
func TestOfflineMessagesDeliveredWithDelayInOrder_XEP0160(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.imLogin(t, "alice", "phone")
	alice.send("<presence/>")
	alice.sync()
	for i := 1; i <= 3; i++ {
		alice.send(fmt.Sprintf("<message to='bob@%s' type='chat' id='m%d'><body>%d</body><x xmlns='urn:example:ext'>kept</x></message>", domain, i, i))
	}
	if got := alice.sync(); len(got) != 0 {
		t.Errorf("sender got %v, want nothing (stored)", summary(got))
	}
	if res, _ := alice.iq("get", domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>"); !strings.Contains(res.String(), "msgoffline") {
		t.Errorf("server disco#info %s lacks msgoffline", res)
	}
	start := time.Now().UTC().Add(-time.Minute)
	bob := s.imLogin(t, "bob", "desk")
	bob.send("<presence/>")
	got := bob.sync()
	var bodies []string
	for _, n := range got {
		if !n.is(nsClient, "message") {
			continue
		}
		bodies = append(bodies, n.child(nsClient, "body").Text)
		d := n.child(nsDelay, "delay")
		if d == nil || d.attr("from") != domain {
			t.Errorf("offline message without delay from the domain: %s", n)
			continue
		}
		if ts, err := time.Parse(time.RFC3339Nano, d.attr("stamp")); err != nil || ts.Before(start) {
			t.Errorf("delay stamp %q: %v", d.attr("stamp"), err)
		}
		if n.child("urn:example:ext", "x") == nil {
			t.Errorf("extension lost: %s", n)
		}
	}
	if !slices.Equal(bodies, []string{"1", "2", "3"}) {
		t.Errorf("offline messages %v, want 1 2 3 in order", bodies)
	}
	// Deleted once delivered: the next login gets none.
	again := s.imLogin(t, "bob", "laptop")
	again.send("<presence/>")
	for _, n := range again.sync() {
		if n.is(nsClient, "message") {
			t.Errorf("offline message delivered twice: %s", n)
		}
	}
}

// TestPendingRequestDeliveredAtLogin_RFC6121_3_1_3 sends a subscription
// request to an offline user and checks that it arrives, extension
// included, with the user's next initial presence.
func TestPendingRequestDeliveredAtLogin_RFC6121_3_1_3(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.imLogin(t, "alice", "phone")
	alice.send("<presence to='bob@" + domain + "' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>")
	alice.sync()
	bob := s.imLogin(t, "bob", "desk")
	bob.send("<presence/>")
	var req *node
	for _, n := range bob.sync() {
		if n.is(nsClient, "presence") && n.attr("type") == "subscribe" {
			req = n
		}
	}
	if req == nil || req.attr("from") != "alice@"+domain || req.child("http://jabber.org/protocol/nick", "nick") == nil {
		t.Fatalf("pending request at login: %v", req)
	}
}

// TestExtensionContentRoutedUntouched_RFC6120_8_4 sends a message with
// unknown extension elements, attributes and text to a full JID and
// checks the recipient gets them byte for byte in meaning.
func TestExtensionContentRoutedUntouched_RFC6120_8_4(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.imLogin(t, "alice", "phone")
	bob := s.imLogin(t, "bob", "desk")
	bob.send("<presence/>")
	bob.sync()
	alice.send("<message to='bob@" + domain + "/desk' id='x1'><body>b</body>" +
		"<payload xmlns='urn:example:ext' a='1'><inner xmlns='urn:example:other' k='v'>text &amp; more</inner></payload></message>")
	alice.sync()
	got := bob.sync()
	if len(got) != 1 {
		t.Fatalf("bob got %v", summary(got))
	}
	p := got[0].child("urn:example:ext", "payload")
	in := p.child("urn:example:other", "inner")
	if p == nil || p.attr("a") != "1" || in == nil || in.attr("k") != "v" || in.Text != "text & more" {
		t.Errorf("extension changed: %s", got[0])
	}
}

// TestDiscoServerAndAccount_XEP0030 checks the server's and an account's
// disco#info and their empty disco#items.
func TestDiscoServerAndAccount_XEP0030(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.imLogin(t, "alice", "phone")
	for _, to := range []string{domain, "bob@" + domain} {
		res, _ := alice.iq("get", to, "<query xmlns='http://jabber.org/protocol/disco#items'/>")
		q := res.child("http://jabber.org/protocol/disco#items", "query")
		if res.attr("type") != "result" || q == nil || len(q.Nodes) != 0 {
			t.Errorf("disco#items of %s: %s", to, res)
		}
	}
	res, _ := alice.iq("get", "bob@"+domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	q := res.child("http://jabber.org/protocol/disco#info", "query")
	if q == nil || q.child("http://jabber.org/protocol/disco#info", "identity").attr("category") != "account" {
		t.Errorf("account disco#info: %s", res)
	}
}

// TestBareJIDDeliveryMatrix_RFC6121_8_5_2 sends each message type to the
// bare JID of an account whose resources have the given priorities and
// checks which resources get it (8.5.2.1.1), or that a message no resource
// may take is stored (normal, chat) or answered (groupchat) (8.5.2.2.1).
func TestBareJIDDeliveryMatrix_RFC6121_8_5_2(t *testing.T) {
	s := startServer(t)
	cases := [][]int{{1, 1, -1, 1}, {0}, {-1}, {5, 3}, {-1, -5}, {0, 0, 2}, {}}
	for i, prios := range cases {
		t.Run(fmt.Sprint(prios), func(t *testing.T) {
			sender, owner := fmt.Sprintf("s%d", i), fmt.Sprintf("o%d", i)
			s.createAccounts(t, sender, owner)
			from := s.imLogin(t, sender, "r")
			var res []*imConn
			best := -1
			for k, p := range prios {
				c := s.imLogin(t, owner, fmt.Sprintf("r%d", k))
				c.send(fmt.Sprintf("<presence><priority>%d</priority></presence>", p))
				res = append(res, c)
				best = max(best, p)
			}
			for _, c := range res {
				c.sync()
			}
			for _, typ := range []string{"normal", "chat", "headline", "groupchat"} {
				from.send("<message to='" + bare(owner).String() + "' type='" + typ + "'><body>" + typ + "</body></message>")
				answers := from.sync()
				var got []int
				for k, c := range res {
					for _, n := range c.sync() {
						if n.is(nsClient, "message") {
							got = append(got, k)
						}
					}
				}
				var want []int
				for k, p := range prios {
					switch typ {
					case "normal", "chat":
						if p >= 0 && p == best {
							want = append(want, k)
						}
					case "headline":
						if p >= 0 {
							want = append(want, k)
						}
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: resources %v got it, want %v", typ, got, want)
				}
				wantError := typ == "groupchat"
				if gotError := len(answers) == 1 && answers[0].attr("type") == "error"; gotError != wantError || (!wantError && len(answers) != 0) {
					t.Errorf("%s: sender got %v, want an error: %v", typ, summary(answers), wantError)
				}
			}
			if best < 0 {
				// Stored: delivered at the next initial presence.
				late := s.imLogin(t, owner, "late")
				late.send("<presence/>")
				var bodies []string
				for _, n := range late.sync() {
					if n.is(nsClient, "message") {
						bodies = append(bodies, n.child(nsClient, "body").Text)
					}
				}
				if !slices.Equal(bodies, []string{"normal", "chat"}) {
					t.Errorf("offline delivery %v, want normal and chat", bodies)
				}
			}
		})
	}
}

// TestSlixmppUsersSubscribeChatAndGetOfflineMessage_RFC6121_and_XEP0160 runs
// two slixmpp 1.8 users (testdata/slixmpp_im.py) against a server offering
// SCRAM-SHA-256 only: they subscribe to each other, see each other's
// presence, chat; one logs out, the other learns it and writes to it, and
// it gets the message with a delay stamp at its next login.
func TestSlixmppUsersSubscribeChatAndGetOfflineMessage_RFC6121_and_XEP0160(t *testing.T) {
	s := startServer(t, func(c *app.Config) { c.Mechanisms = []string{sasl.ScramSHA256} })
	s.createAccounts(t, "sa", "sb")
	_, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Add(-time.Second)
	p := startProc(t, "python3-slixmpp", nil, "", pythonPath, "testdata/slixmpp_im.py",
		"--a", full("sa", "py").String(), "--a-password", password("sa"),
		"--b", full("sb", "py").String(), "--b-password", password("sb"),
		"--host", "127.0.0.1", "--port", port, "--cafile", s.caFile, "--timeout", "45")
	p.waitLine(t, "SUBSCRIBED")
	if got, want := p.waitLine(t, "CHAT"), "CHAT "+full("sa", "py").String()+" hello B"; got != want {
		t.Fatalf("slixmpp printed %q, want %q", got, want)
	}
	p.waitLine(t, "OFFLINE")
	f := strings.Fields(p.waitLine(t, "DELAYED"))
	if len(f) != 4 || f[1] != full("sa", "py").String() || f[2] != "while_you_were_away" {
		t.Fatalf("slixmpp printed %q, want the offline message from sa", strings.Join(f, " "))
	}
	if ts, err := time.Parse(time.RFC3339Nano, f[3]); err != nil || ts.Before(start) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("delay stamp %q (%v): want a time during the test", f[3], err)
	}
	p.waitLine(t, "DONE")
	p.wait(t)
	s.checkMechanismLogged(t, "sa", sasl.ScramSHA256)
}

// subscribeDirect makes each contact a subscriber of user (contact has
// 'to', user has 'from') by applying the four sides of a request and its
// approval in the roster service, in process: the set-up of the
// benchmarks, which measure the routing, not the set-up.
func subscribeDirect(b *testing.B, s *server, user string, contacts []string) {
	ctx := context.Background()
	rs := s.app.Roster()
	u := bare(user).String()
	for _, c := range contacts {
		cj := bare(c).String()
		for _, step := range []struct {
			user, contact string
			d             roster.Direction
			t             roster.SubType
		}{
			{cj, u, roster.Outbound, roster.Subscribe},
			{u, cj, roster.Inbound, roster.Subscribe},
			{u, cj, roster.Outbound, roster.Subscribed},
			{cj, u, roster.Inbound, roster.Subscribed},
		} {
			if _, err := rs.ApplySubscription(ctx, step.user, step.contact, step.d, step.t, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPresenceBroadcastOneProcess measures RFC 6121 4.4.2 broadcast
// through the whole one-process server: one user with n subscribers, all
// logged in and available over TLS, sends presence updates; the router
// asks the roster service for the subscribers and the registry for their
// sessions and publishes one delivery per subscriber session, and c2s
// writes them. One operation is one update delivered to every subscriber;
// it reports deliveries/s and the p99 latency of one delivery (from the
// update's sending to its reading by a subscriber's client).
func BenchmarkPresenceBroadcastOneProcess(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
			s := startServer(b, quiet)
			var names []string
			for i := range n {
				names = append(names, fmt.Sprintf("c%d", i))
			}
			s.createAccounts(b, append([]string{"alice"}, names...)...)
			subscribeDirect(b, s, "alice", names)
			var mu sync.Mutex
			var lat []time.Duration
			got := make(chan struct{}, n*4)
			conns := make([]*imConn, n)
			for i, name := range names {
				c := &imConn{rawConn: s.rawLogin(b, name, "r"), local: name, resource: "r"}
				c.send("<presence/>")
				c.sync()
				conns[i] = c
			}
			for _, c := range conns {
				go func(c *imConn) {
					for {
						nd, err := c.next()
						if err != nil {
							return
						}
						if !nd.is(nsClient, "presence") || !strings.HasPrefix(nd.attr("from"), "alice@") {
							continue
						}
						if st := nd.child(nsClient, "status"); st != nil {
							if sent, err := strconv.ParseInt(st.Text, 10, 64); err == nil {
								d := time.Since(time.Unix(0, sent))
								mu.Lock()
								lat = append(lat, d)
								mu.Unlock()
							}
						}
						got <- struct{}{}
					}
				}(c)
			}
			for _, c := range conns {
				c.wait = 10 * time.Minute // readers idle between updates
			}
			alice := s.imLogin(b, "alice", "bench")
			alice.send("<presence/>")
			alice.sync()
			// The initial presence went to every subscriber too.
			for range n {
				select {
				case <-got:
				case <-time.After(30 * time.Second):
					b.Fatal("initial presence not delivered to every subscriber within 30s")
				}
			}
			mu.Lock()
			lat = lat[:0]
			mu.Unlock()
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				alice.send(fmt.Sprintf("<presence><status>%d</status></presence>", time.Now().UnixNano()))
				for range n {
					select {
					case <-got:
					case <-time.After(30 * time.Second):
						b.Fatal("broadcast not delivered to every subscriber within 30s")
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkRosterFetch1000OneProcess measures a roster get of a 1,000-item
// roster through the whole path: c2s, the route stream, the router, the
// roster service's GetRoster on SQLite (gRPC in process), the result
// written over TLS and parsed by the client.
func BenchmarkRosterFetch1000OneProcess(b *testing.B) {
	s := startServer(b, quiet)
	s.createAccounts(b, "alice")
	ctx := context.Background()
	for i := range 1000 {
		if _, _, err := s.app.Roster().SetItem(ctx, bare("alice").String(), "", []roster.ItemSet{
			{Contact: fmt.Sprintf("contact%d@example.org", i), Name: fmt.Sprintf("Contact %d", i), Groups: []string{"Friends"}},
		}); err != nil {
			b.Fatal(err)
		}
	}
	alice := s.imLogin(b, "alice", "bench")
	b.ReportAllocs()
	for b.Loop() {
		if items := alice.roster(); len(items) != 1000 {
			b.Fatalf("roster has %d items, want 1000", len(items))
		}
	}
}
