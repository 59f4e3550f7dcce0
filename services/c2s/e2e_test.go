package c2s

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/router"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// startRouter runs the real router on the test's NATS server and waits
// until it is subscribed.
func (e *env) startRouter() {
	e.t.Helper()
	e.startRouterNamed("router1")
}

// startRouterNamed runs a router with node id name and returns its NATS
// connection, which the test may close to kill it.
func (e *env) startRouterNamed(name string) *nats.Conn {
	e.t.Helper()
	nc, err := e.nats.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	r, err := router.New(router.Config{
		Domain:   testDomain,
		Node:     name,
		NATS:     nc,
		Subjects: e.cfg.Subjects,
		Sessions: presencev1.NewSessionRegistryClient(e.cc),
		Accounts: rosterv1.NewAccountServiceClient(e.cc),
		Roster:   rosterv1.NewRosterServiceClient(e.cc),
		Logger:   e.cfg.Logger,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			e.t.Error("router did not stop")
		}
	})
	// The subscription is registered on the connection before it is
	// sent; a flush afterwards proves the server has it.
	waitFor(e.t, "the router's subscription", func() bool { return nc.NumSubscriptions() > 0 })
	if err := nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return nc
}

// TestMessageReachesAnotherClientThroughTheRouter runs the whole message
// path of design note 001 in one process: c2s publishes, the router looks
// the recipient up in the presence service and delivers through this
// node's subject, and c2s writes it to the other client.
func TestMessageReachesAnotherClientThroughTheRouter(t *testing.T) {
	e := newEnv(t, nil)
	e.startRouter()
	alice := e.dial()
	alice.login("alice", "desk")
	bob := e.dialDirect()
	bob.open()
	bob.header()
	bob.next()
	bob.auth("SCRAM-SHA-256-PLUS", "bob", testPassword, true)
	bob.r.Reset(bob.r2())
	bob.open()
	bob.header()
	bob.next()
	bob.bind("home")

	alice.send("<message to='bob@example.test/home' type='chat' id='c1'><body>hello bob</body></message>")
	el := bob.next()
	if el.Local != "message" || el.Attr("from") != "alice@example.test/desk" || el.Attr("id") != "c1" || el.ChildText("jabber:client", "body") != "hello bob" {
		t.Fatalf("bob received %s", el)
	}
	bob.send("<message to='alice@example.test/desk' type='chat' id='c2'><body>hi alice</body></message>")
	if el := alice.next(); el.Attr("from") != "bob@example.test/home" || el.ChildText("jabber:client", "body") != "hi alice" {
		t.Fatalf("alice received %s", el)
	}
}

// until reads elements until match accepts one, at most 20.
func (c *client) until(what string, match func(*dom.Element) bool) *dom.Element {
	c.t.Helper()
	for range 20 {
		if el := c.next(); match(el) {
			return el
		}
	}
	c.t.Fatalf("never received %s", what)
	return nil
}

func TestUnavailableAtSessionEndReachesOtherResources_RFC6121_4_5_2(t *testing.T) {
	e := newEnv(t, nil)
	e.startRouter()
	desk := e.dial()
	desk.login("alice", "desk")
	phone := e.dial()
	phone.login("alice", "phone")
	desk.send("<presence/>")
	phone.send("<presence/>")
	// Each resource learns of the other's availability.
	phone.until("desk's available presence", func(el *dom.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.test/desk" && el.Attr("type") == ""
	})

	desk.send("</stream:stream>")
	phone.until("desk's unavailable presence", func(el *dom.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.test/desk" && el.Attr("type") == "unavailable"
	})
}

// A delivery whose session is gone follows the no-session rules of RFC
// 6121 section 8.5.3.2 instead of vanishing, through the real router and
// presence service: a chat falls back to the account's available resource
// and an IQ request is answered with <service-unavailable/>. The session
// is still in the registry, either on this node, which no longer holds it
// (it just ended: c2s hands the delivery back), or on a node that crashed
// and is not reaped yet (nothing subscribes to its subject: the router
// notices and hands it back itself).
func TestDeliveryToGoneSessionFollowsNoSessionRules_RFC6121_8_5_3_2(t *testing.T) {
	for _, c := range []struct{ name, node string }{
		{"ended on this node", testNode},
		{"on a crashed node", "crashed-node"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.startRouter()
			alice := e.dial()
			alice.login("alice", "desk")
			bob := e.dial()
			bob.login("bob", "home")
			bob.send("<presence/>")
			bob.until("bob's own presence", func(el *dom.Element) bool { return el.Local == "presence" })
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			if _, err := e.reg.Bind(ctx, &presencev1.BindRequest{Jid: "bob@example.test/gone", Node: c.node, SessionId: "gone-session"}); err != nil {
				t.Fatal(err)
			}

			alice.send("<message to='bob@example.test/gone' type='chat' id='c1'><body>still there?</body></message>")
			el := bob.until("the chat, fallen back to bob/home", func(el *dom.Element) bool { return el.Local == "message" })
			if el.Attr("id") != "c1" || el.Attr("to") != "bob@example.test/gone" || el.ChildText("jabber:client", "body") != "still there?" {
				t.Fatalf("bob/home received %s", el)
			}
			alice.send("<iq to='bob@example.test/gone' type='get' id='q1'><query xmlns='urn:example:q'/></iq>")
			el = alice.until("the IQ's error", func(el *dom.Element) bool { return el.Local == "iq" })
			if serr, ok := stanza.ParseError(el); el.Attr("id") != "q1" || !ok || serr.Condition != stanza.ServiceUnavailable {
				t.Fatalf("alice received %s, want a service-unavailable error for q1", el)
			}
			bob.probe("p1")
		})
	}
}

// TestOrderAcrossTwoRoutersOneKilled_RFC6120_10_1 sends 10,000 numbered
// messages from one client to another through c2s and two routers, and
// kills the router that routes the sender's partition halfway (its NATS
// connection closed without draining). The other router takes the
// partition over; bob receives every message once, in order.
func TestOrderAcrossTwoRoutersOneKilled_RFC6120_10_1(t *testing.T) {
	// Bob's test client parses slowly; his queue must not be what fails.
	// Alice sends as fast as she can, far above what a person's client
	// sends: the session limits are off.
	e := newEnv(t, func(c *Config) {
		c.QueueSize = 20000
		c.Abuse.StanzaRate, c.Abuse.ByteRate = -1, -1
	})
	routers := map[string]*nats.Conn{"router1": e.startRouterNamed("router1"), "router2": e.startRouterNamed("router2")}
	alice := e.dial()
	alice.login("alice", "desk")
	bob := e.dial()
	bob.login("bob", "home")

	js, err := jetstream.New(e.spy)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var kv jetstream.KeyValue
	waitFor(t, "the lease bucket", func() bool {
		kv, err = js.KeyValue(ctx, e.cfg.Subjects.LeaseBucket())
		return err == nil
	})
	// owner returns the router holding partition p's lease, "" if none.
	owner := func(p int) string {
		en, err := kv.Get(ctx, e.cfg.Subjects.LeaseKey(p))
		if err != nil {
			return ""
		}
		name, _, _ := strings.Cut(string(en.Value()), "-")
		return name
	}
	// Once the routers share the partitions evenly, no lease moves until
	// one of them leaves.
	waitFor(t, "the routers holding half the partitions each", func() bool {
		held := map[string]int{}
		for p := range e.cfg.Subjects.Partitions {
			held[owner(p)]++
		}
		half := e.cfg.Subjects.Partitions / 2
		return held["router1"] == half && held["router2"] == half
	})
	victim := owner(e.cfg.Subjects.Partition("alice@example.test"))

	const n = 10000
	sent := make(chan error, 1)
	go func() {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "<message to='bob@example.test/home' type='chat' id='m%d'><body>%d</body></message>", i, i)
			if i%100 == 0 {
				alice.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
				if _, err := io.WriteString(alice.conn, b.String()); err != nil {
					sent <- err
					return
				}
				b.Reset()
			}
		}
		sent <- nil
	}()
	var killedAt time.Time
	for i := 1; i <= n; i++ {
		el := bob.next()
		if want := fmt.Sprintf("m%d", i); el.Local != "message" || el.Attr("id") != want {
			t.Fatalf("bob's message %d is %s, want id %s", i, el, want)
		}
		if i == n/2 {
			killedAt = time.Now()
			routers[victim].Close()
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("alice's writes: %v", err)
	}
	bob.probe("p1")
	t.Logf("killed %s after %d messages; the other %d arrived %v later", victim, n/2, n/2, time.Since(killedAt))
}
