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

const nsRoster = imtest.NSRoster

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

// TestIMScenarios_RFC6121_2_to_4_and_XEP0160 runs the roster, presence,
// offline and extension scenarios of internal/imtest (each a subtest named
// after its section), shared with the cluster suite: pushes to every
// interested resource (2.1.6), presence broadcast, probes, directed
// presence and logout (4), offline messages in order with delay
// (XEP-0160), the pending request at login (3.1.3), extension content
// untouched (RFC 6120 8.4).
func TestIMScenarios_RFC6121_2_to_4_and_XEP0160(t *testing.T) {
	imtest.RunScenarios(t, startServer(t).imEnv())
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
