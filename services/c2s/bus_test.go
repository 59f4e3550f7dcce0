package c2s

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// deliverD publishes d on this node's subject, as a router does.
func (e *env) deliverD(d *busv1.Delivery) {
	e.t.Helper()
	b, err := proto.Marshal(d)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.spy.Publish(e.cfg.Subjects.Node(testNode), b); err != nil {
		e.t.Fatal(err)
	}
}

func chatFromAlice(to string, n int) string {
	return fmt.Sprintf("<message xmlns='jabber:client' from='alice@example.test/desk' to='%s' type='chat' id='m%d'><body>%d</body></message>", to, n, n)
}

// A router that takes a partition over routes again what its predecessor
// had not acknowledged: the receiving session gets each stanza once, and
// in order, whatever arrives twice.
func TestDuplicateDeliveriesDroppedPerOrigin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.login("bob", "home")
	sid := c.sessionID()
	alice := &busv1.Origin{Node: "node9", Session: "alice-session"}
	other := &busv1.Origin{Node: "node9", Session: "carol-session"}
	d := func(o *busv1.Origin, seq uint64, part uint32, late bool) *busv1.Delivery {
		return &busv1.Delivery{Session: sid, Action: busv1.Action_ACTION_DELIVER, From: "alice@example.test/desk",
			Raw: []byte(chatFromAlice("bob@example.test/home", int(seq)*10+int(part))), Origin: o, Seq: seq, Part: part, Late: late}
	}
	for _, x := range []struct {
		d    *busv1.Delivery
		want bool
	}{
		{d(alice, 1, 0, false), true},
		{d(alice, 2, 0, false), true},
		{d(alice, 1, 0, false), false}, // routed again after a takeover
		{d(alice, 2, 0, false), false},
		{d(other, 1, 0, false), true}, // another origin has its own mark
		{d(alice, 3, 0, false), true},
		{d(alice, 3, 1, false), true}, // a second delivery of the same stanza
		{d(alice, 3, 1, false), false},
		{d(alice, 2, 5, true), true}, // late: rerouted after a hand-back
		{d(alice, 2, 5, true), false},
		{d(alice, 4, 0, false), true},
	} {
		e.deliverD(x.d)
		if x.want {
			c.expect(string(x.d.Raw))
		}
	}
	c.probe("p1")
}

func TestDedupeForgetsIdleOrigins(t *testing.T) {
	var dd dedupe
	now := time.Now()
	o := &busv1.Origin{Node: "n", Session: "s"}
	dd.record(&busv1.Delivery{Origin: o, Seq: 7}, now)
	if !dd.dup(&busv1.Delivery{Origin: o, Seq: 7}) {
		t.Fatal("seq 7 not recognised as delivered")
	}
	// A new origin long after sweeps the idle one away.
	dd.record(&busv1.Delivery{Origin: &busv1.Origin{Node: "n", Session: "t"}, Seq: 1}, now.Add(originIdle+2*time.Minute))
	if dd.dup(&busv1.Delivery{Origin: o, Seq: 7}) || len(dd.hwm) != 1 {
		t.Errorf("idle origin kept: %d marks", len(dd.hwm))
	}
	for i := range maxOrigins + 10 {
		dd.record(&busv1.Delivery{Origin: &busv1.Origin{Node: "n", Session: fmt.Sprint(i)}, Seq: 1}, now)
	}
	if len(dd.hwm) > maxOrigins {
		t.Errorf("%d marks kept, want at most %d", len(dd.hwm), maxOrigins)
	}
}

// A delivery for a session this node no longer holds goes back to the
// routers, marked undeliverable with the session that failed, on the
// sender's partition, so that they apply RFC 6121 section 8.5.3.2.
func TestDeliveryForEndedSessionHandedBack_RFC6121_8_5_3_2(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	e.dial().login("bob", "home") // Run has subscribed to deliveries
	raw := chatFromAlice("bob@example.test/gone", 1)
	e.deliverD(&busv1.Delivery{
		Session: "gone-session", Action: busv1.Action_ACTION_DELIVER, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat",
		From: "alice@example.test/desk", To: "bob@example.test/gone", Id: "m1", Raw: []byte(raw),
		Origin: &busv1.Origin{Node: "node9", Session: "alice-session"}, Seq: 4,
		Failed: []*busv1.Origin{{Node: "node8", Session: "earlier"}},
	})
	st := recv(t, routed)
	u := st.GetUndeliverable()
	if u == nil || len(u.Failed) != 2 || u.Failed[1].Node != testNode || u.Failed[1].Session != "gone-session" || u.Failed[0].Session != "earlier" {
		t.Fatalf("handed back %v, want undeliverable with earlier and gone-session failed", st)
	}
	if st.From != "alice@example.test/desk" || st.To != "bob@example.test/gone" || string(st.Raw) != raw ||
		st.Seq != 4 || st.GetOrigin().GetSession() != "alice-session" || st.Kind != busv1.Kind_KIND_MESSAGE || st.Type != "chat" {
		t.Errorf("handed-back stanza lost fields of the delivery: %v", st)
	}
}

// The stream's acknowledgement is what accepts a stanza: when the stream
// cannot take it, the client is told with a stanza error it may retry on,
// rather than the stanza vanishing (RFC 6120 section 8.3.3.6 condition,
// type wait).
func TestPublishNotAcknowledgedAnsweredWithStanzaError_RFC6120_8_3_3_6(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublishTimeout = 2 * time.Second })
	c := e.dial()
	c.login("alice", "desk")
	c.send("<message to='bob@example.test' id='m1' type='chat'><body>kept</body></message>")
	c.probe("p0")
	js, err := jetstream.New(e.spy)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), e.cfg.Subjects.RouteStream()); err != nil {
		t.Fatal(err)
	}
	c.send("<message to='bob@example.test' id='m2' type='chat'><body>lost</body></message>")
	c.expectStanzaError("m2", stanza.Wait, stanza.InternalServerError)
	c.probe("p1")
}
