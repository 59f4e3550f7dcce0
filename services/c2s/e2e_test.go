package c2s

import (
	"context"
	"testing"
	"time"

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
	nc, err := e.nats.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	r, err := router.New(router.Config{
		Domain:   testDomain,
		Node:     "router1",
		NATS:     nc,
		Subjects: e.cfg.Subjects,
		Sessions: presencev1.NewSessionRegistryClient(e.cc),
		Accounts: rosterv1.NewAccountServiceClient(e.cc),
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
