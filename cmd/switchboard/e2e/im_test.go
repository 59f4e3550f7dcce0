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
	"github.com/switchboard-xmpp/switchboard/internal/imtest"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// IM end to end (RFC 6121 sections 2 to 4, XEP-0160): real clients over
// STARTTLS against the one-process app, whose roster service keeps its data
// in SQLite. Nothing is waited for by sleeping: a client proves that
// everything due to it arrived with a ping round trip (imtest.Conn.Sync), since
// the router routes one sender's stanzas in order and publishes their
// deliveries before the ping's result.

const (
	nsRoster = imtest.NSRoster
	nsDelay  = "urn:xmpp:delay"
)

// imConn is a logged-in raw client (shared with the cluster suite).
type imConn = imtest.Conn

func (s *server) imLogin(t testing.TB, local, resource string) *imConn {
	t.Helper()
	return s.imEnv().Login(t, local, resource, 0)
}

// imEnv is the one-process server as the shared IM scenarios see it.
func (s *server) imEnv() *imtest.Env {
	return &imtest.Env{
		Domain:         domain,
		Addrs:          []string{s.addr},
		TLS:            s.tlsConfig(),
		Password:       password,
		CreateAccounts: s.createAccounts,
		Parallel:       4,
	}
}

func summary(ns []*node) []string { return imtest.Summary(ns) }

// TestRosterSetPushedToEveryInterestedResource_RFC6121_2_1_6_and_2_3 adds,
// updates and removes an item from one resource and checks the pushes
// every resource that requested the roster gets, and the result.
func TestRosterSetPushedToEveryInterestedResource_RFC6121_2_1_6_and_2_3(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	phone := s.imLogin(t, "alice", "phone")
	laptop := s.imLogin(t, "alice", "laptop")
	phone.Roster()
	laptop.Roster()
	res, _ := phone.IQ("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' name='Bob'><group>Friends</group></item></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("roster set: %s", res)
	}
	phone.Sync()
	laptop.Sync()
	for _, c := range []*imConn{phone, laptop} {
		if len(c.Pushes) != 1 {
			t.Fatalf("%s got %d pushes, want 1", c.Resource, len(c.Pushes))
		}
		it := c.Pushes[0].Child(nsRoster, "query").Child(nsRoster, "item")
		if it.Attr("jid") != "bob@"+domain || it.Attr("name") != "Bob" || it.Attr("subscription") != "none" ||
			it.Child(nsRoster, "group").Text != "Friends" || c.Pushes[0].Attr("to") != c.JID() {
			t.Errorf("%s push %s", c.Resource, c.Pushes[0])
		}
	}
	// 2.3.3: two items are refused.
	res, _ = phone.IQ("set", "", "<query xmlns='"+nsRoster+"'><item jid='a@"+domain+"'/><item jid='b@"+domain+"'/></query>")
	if res.Attr("type") != "error" || res.Child(nsClient, "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "bad-request") == nil {
		t.Errorf("two items: %s, want bad-request", res)
	}
	// 2.5: remove, pushed with subscription='remove'.
	res, _ = laptop.IQ("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' subscription='remove'/></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	phone.Sync()
	laptop.Sync()
	for _, c := range []*imConn{phone, laptop} {
		last := c.Pushes[len(c.Pushes)-1].Child(nsRoster, "query").Child(nsRoster, "item")
		if last.Attr("subscription") != "remove" {
			t.Errorf("%s last push %s, want a removal", c.Resource, last)
		}
	}
	if items := phone.Roster(); len(items) != 0 {
		t.Errorf("roster after remove has %d items", len(items))
	}
	// 2.5.3: removing what is not there.
	res, _ = phone.IQ("set", "", "<query xmlns='"+nsRoster+"'><item jid='bob@"+domain+"' subscription='remove'/></query>")
	if res.Child(nsClient, "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Errorf("removing a missing item: %s, want item-not-found", res)
	}
}

// TestRosterVersioningUnchangedAndIncremental_RFC6121_2_6 checks the
// stream feature, then a get with the current ver (empty result) and with
// an older one (empty result, then the pushes since).
func TestRosterVersioningUnchangedAndIncremental_RFC6121_2_6(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice")
	c := s.imLogin(t, "alice", "phone")
	if f := c.Features; f.Child("urn:xmpp:features:rosterver", "ver") == nil || f.Child("urn:xmpp:features:pre-approval", "sub") == nil {
		t.Errorf("features after authentication %s: want rosterver and pre-approval", f)
	}

	res, _ := c.IQ("get", "", "<query xmlns='"+nsRoster+"' ver=''/>")
	v0 := res.Child(nsRoster, "query").Attr("ver")
	add := func(who string) {
		res, _ := c.IQ("set", "", "<query xmlns='"+nsRoster+"'><item jid='"+who+"@"+domain+"'/></query>")
		if res.Attr("type") != "result" {
			t.Fatalf("set: %s", res)
		}
	}
	add("bob")
	c.Sync()
	res, _ = c.IQ("get", "", "<query xmlns='"+nsRoster+"' ver=''/>")
	v1 := res.Child(nsRoster, "query").Attr("ver")
	if v1 == "" || v1 == v0 {
		t.Fatalf("ver after a change %q, before %q", v1, v0)
	}
	res, _ = c.IQ("get", "", "<query xmlns='"+nsRoster+"' ver='"+v1+"'/>")
	if res.Attr("type") != "result" || len(res.Nodes) != 0 {
		t.Errorf("get with the current ver: %s, want an empty result", res)
	}
	add("carol")
	add("dave")
	c.Sync()
	c.Pushes = nil
	res, _ = c.IQ("get", "", "<query xmlns='"+nsRoster+"' ver='"+v1+"'/>")
	if res.Attr("type") != "result" || len(res.Nodes) != 0 {
		t.Fatalf("incremental get: %s, want an empty result first", res)
	}
	c.Sync()
	var got []string
	for _, p := range c.Pushes {
		got = append(got, p.Child(nsRoster, "query").Child(nsRoster, "item").Attr("jid"))
	}
	if want := []string{"carol@" + domain, "dave@" + domain}; !slices.Equal(got, want) {
		t.Errorf("pushes after the empty result: %v, want %v", got, want)
	}
}

// TestSubscriptionStatesAppendixA_RFC6121_3_and_A drives every start state
// of Appendix A with real stanzas between two local users, then sends each
// of the four subscription stanzas in each direction, and checks both
// rosters and the subscription stanzas and presence each side received
// (the cells are in internal/imtest, shared with the cluster suite).
func TestSubscriptionStatesAppendixA_RFC6121_3_and_A(t *testing.T) {
	imtest.RunAppendixA(t, startServer(t).imEnv())
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
		c.Roster()
		c.Send("<presence/>")
		c.Sync()
	}
	for _, p := range [][2]*imConn{{alice, bob}, {bob, alice}} {
		p[0].Send("<presence to='" + bare(p[1].Local).String() + "' type='subscribe'/>")
		p[0].Sync()
		p[1].Sync()
		p[1].Send("<presence to='" + bare(p[0].Local).String() + "' type='subscribed'/>")
		p[1].Sync()
		p[0].Sync()
	}
	// Bob's second resource logs in: alice sees it; it learns alice's
	// presence from the probe answer.
	tablet := s.imLogin(t, "bob", "tablet")
	tablet.Send("<presence><priority>3</priority></presence>")
	got := summary(tablet.Sync())
	if !slices.Contains(got, "available<alice>") {
		t.Errorf("new resource got %v, want alice's presence (4.3.2)", got)
	}
	if got := summary(alice.Sync()); !slices.Equal(got, []string{"available<bob>"}) {
		t.Errorf("alice got %v, want bob's new resource (4.2.2)", got)
	}
	if got := summary(bob.Sync()); !slices.Equal(got, []string{"available<bob>"}) {
		t.Errorf("bob's other resource got %v, want the tablet's presence", got)
	}
	// Directed presence to carol, who is no contact.
	carol := s.imLogin(t, "carol", "x")
	carol.Send("<presence/>")
	carol.Sync()
	alice.Send("<presence to='carol@" + domain + "/x'/>")
	alice.Sync()
	if got := summary(carol.Sync()); !slices.Equal(got, []string{"available<alice>"}) {
		t.Errorf("carol got %v, want the directed presence", got)
	}
	// Alice logs out: bob's two resources and carol learn it.
	alice.Send("<presence type='unavailable'/>")
	alice.Sync()
	for _, c := range []*imConn{bob, tablet, carol} {
		if got := summary(c.Sync()); !slices.Equal(got, []string{"unavailable<alice>"}) {
			t.Errorf("%s/%s got %v, want alice unavailable (4.5.2, 4.6.3)", c.Local, c.Resource, got)
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
	alice.Send("<presence/>")
	alice.Sync()
	for i := 1; i <= 3; i++ {
		alice.Send(fmt.Sprintf("<message to='bob@%s' type='chat' id='m%d'><body>%d</body><x xmlns='urn:example:ext'>kept</x></message>", domain, i, i))
	}
	if got := alice.Sync(); len(got) != 0 {
		t.Errorf("sender got %v, want nothing (stored)", summary(got))
	}
	if res, _ := alice.IQ("get", domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>"); !strings.Contains(res.String(), "msgoffline") {
		t.Errorf("server disco#info %s lacks msgoffline", res)
	}
	start := time.Now().UTC().Add(-time.Minute)
	bob := s.imLogin(t, "bob", "desk")
	bob.Send("<presence/>")
	got := bob.Sync()
	var bodies []string
	for _, n := range got {
		if !n.Is(nsClient, "message") {
			continue
		}
		bodies = append(bodies, n.Child(nsClient, "body").Text)
		d := n.Child(nsDelay, "delay")
		if d == nil || d.Attr("from") != domain {
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
	again := s.imLogin(t, "bob", "laptop")
	again.Send("<presence/>")
	for _, n := range again.Sync() {
		if n.Is(nsClient, "message") {
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
	alice.Send("<presence to='bob@" + domain + "' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>")
	alice.Sync()
	bob := s.imLogin(t, "bob", "desk")
	bob.Send("<presence/>")
	var req *node
	for _, n := range bob.Sync() {
		if n.Is(nsClient, "presence") && n.Attr("type") == "subscribe" {
			req = n
		}
	}
	if req == nil || req.Attr("from") != "alice@"+domain || req.Child("http://jabber.org/protocol/nick", "nick") == nil {
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
	bob.Send("<presence/>")
	bob.Sync()
	alice.Send("<message to='bob@" + domain + "/desk' id='x1'><body>b</body>" +
		"<payload xmlns='urn:example:ext' a='1'><inner xmlns='urn:example:other' k='v'>text &amp; more</inner></payload></message>")
	alice.Sync()
	got := bob.Sync()
	if len(got) != 1 {
		t.Fatalf("bob got %v", summary(got))
	}
	p := got[0].Child("urn:example:ext", "payload")
	in := p.Child("urn:example:other", "inner")
	if p == nil || p.Attr("a") != "1" || in == nil || in.Attr("k") != "v" || in.Text != "text & more" {
		t.Errorf("extension changed: %s", got[0])
	}
}

// TestEveryAdvertisedDiscoFeatureIsExercised_XEP0030 runs, for the server
// and an account, the check of each feature its disco#info advertises
// (internal/imtest); a feature with no check fails.
func TestEveryAdvertisedDiscoFeatureIsExercised_XEP0030(t *testing.T) {
	imtest.RunDiscoFeatures(t, startServer(t).imEnv())
}

// TestDiscoServerAndAccount_XEP0030 checks the server's and an account's
// disco#info and their empty disco#items.
func TestDiscoServerAndAccount_XEP0030(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.imLogin(t, "alice", "phone")
	for _, to := range []string{domain, "bob@" + domain} {
		res, _ := alice.IQ("get", to, "<query xmlns='http://jabber.org/protocol/disco#items'/>")
		q := res.Child("http://jabber.org/protocol/disco#items", "query")
		if res.Attr("type") != "result" || q == nil || len(q.Nodes) != 0 {
			t.Errorf("disco#items of %s: %s", to, res)
		}
	}
	res, _ := alice.IQ("get", "bob@"+domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	q := res.Child("http://jabber.org/protocol/disco#info", "query")
	if q == nil || q.Child("http://jabber.org/protocol/disco#info", "identity").Attr("category") != "account" {
		t.Errorf("account disco#info: %s", res)
	}
}

// TestDeliveryMatrix_RFC6121_8_5 sends messages of each type, presence and
// IQs to the bare JID, each full JID and a missing full JID of accounts
// whose resources have priority lists such as [1,1,-1,1], and to an account
// that does not exist, and checks who gets what (8.5.1, 8.5.2, 8.5.3), with
// offline storage where no resource may take a message (the cases are in
// internal/imtest, shared with the cluster suite).
func TestDeliveryMatrix_RFC6121_8_5(t *testing.T) {
	imtest.RunDeliveryMatrix(t, startServer(t).imEnv())
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
				c := s.imLogin(b, name, "r")
				c.Send("<presence/>")
				c.Sync()
				conns[i] = c
			}
			for _, c := range conns {
				go func(c *imConn) {
					for {
						nd, err := c.Next()
						if err != nil {
							return
						}
						if !nd.Is(nsClient, "presence") || !strings.HasPrefix(nd.Attr("from"), "alice@") {
							continue
						}
						if st := nd.Child(nsClient, "status"); st != nil {
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
				c.Wait = 10 * time.Minute // readers idle between updates
			}
			alice := s.imLogin(b, "alice", "bench")
			alice.Send("<presence/>")
			alice.Sync()
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
				alice.Send(fmt.Sprintf("<presence><status>%d</status></presence>", time.Now().UnixNano()))
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
		if items := alice.Roster(); len(items) != 1000 {
			b.Fatalf("roster has %d items, want 1000", len(items))
		}
	}
}
