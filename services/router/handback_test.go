package router

import (
	"context"
	"google.golang.org/grpc/codes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// handBack publishes el from c as a node does with a delivery that the
// sessions failed could not take.
func (h *harness) handBack(c client, el *dom.Element, failed ...client) *busv1.Stanza {
	h.t.Helper()
	st := h.envelope(c, el)
	st.Undeliverable = &busv1.Undeliverable{}
	for _, f := range failed {
		st.Undeliverable.Failed = append(st.Undeliverable.Failed, &busv1.Origin{Node: f.node, Session: f.session})
	}
	h.publish(st)
	return st
}

// wantLate checks that every delivery in gs is marked late and lists the
// failed sessions, so that a node that cannot take it either hands it
// back with itself added.
func wantLate(t *testing.T, gs []got, failed int) {
	t.Helper()
	for _, g := range gs {
		if !g.d.Late || len(g.d.Failed) != failed {
			t.Errorf("delivery to %s: late=%v failed=%v, want late with %d failed sessions", g.d.Session, g.d.Late, g.d.Failed, failed)
		}
	}
}

// A chat message for a session that went away goes to the account's other
// resource, as for a full JID without a session.
func TestUndeliverableChatFallsBackToOtherResource_RFC6121_8_5_3_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 5) // still in the registry: it just ended
	h.bind(bobPhone, true, 0)
	st := h.handBack(alicePhone, msg(bobDesk.jid, "chat", "m1", "hi"), bobDesk)
	gs := h.collect(alicePhone)
	h.wantSessions(gs, st, bobPhone)
	wantLate(t, gs, 1)
}

// The same for a message sent to the bare JID whose best resource failed:
// RFC 6121 section 8.5.2 among the resources left.
func TestUndeliverableBareJIDMessageToNextBestResource_RFC6121_8_5_2_1_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	h.bind(bobPhone, true, 1)
	h.bind(bobTablet, true, 0)
	st := h.handBack(alicePhone, msg("bob@example.com", "normal", "m1", "hi"), bobDesk)
	h.wantSessions(h.collect(alicePhone), st, bobPhone)
	// Both failed: the last one.
	st = h.handBack(alicePhone, msg("bob@example.com", "normal", "m2", "hi"), bobDesk, bobPhone)
	h.wantSessions(h.collect(alicePhone), st, bobTablet)
}

// Without another resource a chat is stored offline, as section 8.5.2.2.1
// allows; a full box gets <service-unavailable/>.
func TestUndeliverableChatWithoutOtherResourceStoredOffline_RFC6121_8_5_3_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.handBack(alicePhone, msg(bobDesk.jid, "chat", "m1", "hi"), bobDesk)
	wantNothing(t, h.collect(alicePhone))
	if len(h.ros.stored) != 1 {
		t.Errorf("%d messages stored offline, want 1", len(h.ros.stored))
	}
	h.ros.errs["StoreOffline"] = xmppError(codes.ResourceExhausted, stanza.ServiceUnavailable)
	st := h.handBack(alicePhone, msg(bobDesk.jid, "chat", "m2", "hi"), bobDesk)
	gs := h.collect(alicePhone)
	wantError(t, gs, alicePhone, st, stanza.ServiceUnavailable)
	wantLate(t, gs, 1)
}

// A normal message for a session that went away is not sent to other
// resources; the sender learns it was not delivered.
func TestUndeliverableNormalMessageBounced_RFC6121_8_5_3_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.bind(bobPhone, true, 0)
	st := h.handBack(alicePhone, msg(bobDesk.jid, "normal", "m1", "hi"), bobDesk)
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

func TestUndeliverableIQRequestGetsServiceUnavailable_RFC6121_8_5_3_2_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.bind(bobPhone, true, 0)
	st := h.handBack(alicePhone, iq("", bobDesk.jid, "get", "q1", dom.New("urn:example", "query")), bobDesk)
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

// Presence, IQ responses and errors for a session that went away are
// silently ignored; so are the server's own replies to a sender that left.
func TestUndeliverableIgnoredKinds_RFC6121_8_5_3_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.bind(bobPhone, true, 0)
	h.handBack(alicePhone, pres(bobDesk.jid, "", "p1"), bobDesk)
	h.handBack(alicePhone, pres("", "", "p2"), bobDesk)
	h.handBack(alicePhone, iq("", bobDesk.jid, "result", "q1", nil), bobDesk)
	h.handBack(alicePhone, msg(bobDesk.jid, "error", "m1", ""), bobDesk)
	h.handBack(alicePhone, msg(bobDesk.jid, "headline", "m2", "news"), bobDesk)
	wantNothing(t, h.collect(alicePhone))
	if n := len(h.reg.setCalls()); n != 0 {
		t.Errorf("a handed-back presence changed the registry (%d calls)", n)
	}
}

// A delivery to a node that no longer exists (nothing subscribes to its
// subject) is noticed through NATS's no-responders status and handed back:
// the chat reaches the account's other resource, an IQ request gets
// <service-unavailable/>.
func TestDeliveryToVanishedNodeFollowsNoSessionRules_RFC6121_8_5_3_2(t *testing.T) {
	c := newCluster(t, 2, "n1") // nothing subscribes to n2
	c.reg.add(alicePhone.jid, alicePhone.node, alicePhone.session, true, 0, "")
	c.reg.add(bobDesk.jid, "n2", bobDesk.session, true, 5, "")
	c.reg.add(bobPhone.jid, bobPhone.node, bobPhone.session, true, 0, "")
	c.start("r1")
	c.publish(alicePhone, 1, msg(bobDesk.jid, "chat", "m1", "hi"))
	c.publish(alicePhone, 2, iq("", bobDesk.jid, "get", "q1", dom.New("urn:example", "query")))
	var chat, bounce *busv1.Delivery
	poll(t, 10*time.Second, "the chat rerouted and the IQ bounced", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, d := range c.got {
			switch {
			case d.Id == "m1" && d.Session == bobPhone.session:
				chat = d
			case d.Id == "q1" && d.Session == alicePhone.session && d.Type == "error":
				bounce = d
			}
		}
		return chat != nil && bounce != nil
	})
	if !chat.Late || len(chat.Failed) != 1 || chat.Failed[0].Node != "n2" {
		t.Errorf("rerouted chat: late=%v failed=%v, want late, failed on n2", chat.Late, chat.Failed)
	}
	el, err := decodeElement(bounce.Raw)
	if err != nil || el.Child("", "error") == nil || el.Child("", "error").Child(stanza.NS, string(stanza.ServiceUnavailable)) == nil {
		t.Errorf("IQ bounce is %s, want service-unavailable", bounce.Raw)
	}
}

// publish publishes el from c with seq.
func (c *cluster) publish(from client, seq uint64, el *dom.Element) {
	c.t.Helper()
	el.SetAttr("from", from.jid)
	st := &busv1.Stanza{
		From: from.jid, To: el.Attr("to"), Kind: kindOf(el), Type: el.Attr("type"), Id: el.Attr("id"),
		Origin: &busv1.Origin{Node: from.node, Session: from.session}, Raw: el.Marshal(), Seq: seq,
	}
	b, err := proto.Marshal(st)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.js.PublishMsg(context.Background(), &nats.Msg{Subject: c.subjects.RouteFor(bareOf(from.jid)), Data: b}); err != nil {
		c.t.Fatal(err)
	}
}
