package client

import (
	"errors"
	"slices"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

func rosterQuery(ver string, items ...*dom.Element) *dom.Element {
	q := dom.New(nsRoster, "query")
	if ver != "" {
		q.SetAttr("ver", ver)
	}
	return q.Append(items...)
}

func TestOnlineFetchesRosterBeforeInitialPresence_RFC6121_4_2_1(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	type result struct {
		r   Roster
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Online(testCtx(t), Presence{Status: "on the balcony"})
		done <- result{r, err}
	}()
	get := sc.answer(rosterQuery("v7",
		dom.New(nsRoster, "item", "jid", "romeo@example.net", "name", "Romeo", "subscription", "both").Append(
			dom.New(nsRoster, "group").AppendText("Friends")),
		dom.New(nsRoster, "item", "jid", "nurse@example.com", "ask", "subscribe"),
	))
	if get.Attr("type") != "get" || get.Child(nsRoster, "query") == nil {
		t.Fatalf("first stanza = %s, want the roster get", get)
	}
	pres := sc.next()
	if pres.Local != "presence" || pres.Attr("type") != "" || pres.Attr("to") != "" ||
		pres.ChildText(stream.NSClient, "status") != "on the balcony" {
		t.Fatalf("second stanza = %s, want initial presence", pres)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := Roster{Ver: "v7", Items: []RosterItem{
		{JID: jid.MustParse("romeo@example.net"), Name: "Romeo", Subscription: SubscriptionBoth, Groups: []string{"Friends"}},
		{JID: jid.MustParse("nurse@example.com"), Subscription: SubscriptionNone, Ask: true},
	}}
	if r.r.Ver != want.Ver || len(r.r.Items) != 2 {
		t.Fatalf("roster = %+v", r.r)
	}
	for i, it := range r.r.Items {
		w := want.Items[i]
		if it.JID != w.JID || it.Name != w.Name || it.Subscription != w.Subscription || it.Ask != w.Ask || !slices.Equal(it.Groups, w.Groups) {
			t.Errorf("item %d = %+v, want %+v", i, it, w)
		}
	}
}

func TestOnlineWithoutRosterSupportReturnsStanzaError_RFC6121_2_1_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	done := make(chan error, 1)
	go func() {
		_, err := c.Online(testCtx(t), Presence{})
		done <- err
	}()
	get := sc.next()
	sc.send(stanza.ErrorReply(get, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}))
	if err := <-done; !errors.Is(err, stanza.ServiceUnavailable) {
		t.Fatalf("Online = %v, want service-unavailable", err)
	}
}

func TestRosterSetAndRemove_RFC6121_2_3_and_2_5(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	nurse := jid.MustParse("nurse@example.com")

	done := make(chan error, 1)
	go func() {
		done <- c.SetRosterItem(testCtx(t), RosterItem{JID: nurse, Name: "Nurse", Groups: []string{"Servants", "Capulets"},
			Subscription: SubscriptionBoth, Ask: true})
	}()
	set := sc.answer(nil)
	item := set.Child(nsRoster, "query").Child(nsRoster, "item")
	if set.Attr("type") != "set" || item.Attr("jid") != "nurse@example.com" || item.Attr("name") != "Nurse" ||
		item.ChildCount() != 2 || item.Attr("subscription") != "" || item.Attr("ask") != "" {
		t.Errorf("roster set = %s (subscription and ask belong to the server)", set)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	go func() { done <- c.RemoveRosterItem(testCtx(t), nurse) }()
	rm := sc.next()
	item = rm.Child(nsRoster, "query").Child(nsRoster, "item")
	if item.Attr("subscription") != "remove" || item.Attr("jid") != "nurse@example.com" {
		t.Errorf("roster remove = %s", rm)
	}
	sc.send(stanza.ErrorReply(rm, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}))
	if err := <-done; !errors.Is(err, stanza.ItemNotFound) {
		t.Errorf("RemoveRosterItem = %v, want item-not-found", err)
	}
}

func TestRosterPushAcknowledged_RFC6121_2_1_6(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	push := dom.New(stream.NSClient, "iq", "type", "set", "id", "push1", "to", c.JID().String()).Append(
		rosterQuery("v8", dom.New(nsRoster, "item", "jid", "romeo@example.net", "subscription", "to")))
	sc.send(push)
	res := sc.next()
	if res.Attr("type") != "result" || res.Attr("id") != "push1" || res.ChildCount() != 0 {
		t.Fatalf("push answer = %s, want an empty result", res)
	}
	p, err := c.NextRosterPush(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.Ver != "v8" || p.Item.JID != jid.MustParse("romeo@example.net") || p.Item.Subscription != SubscriptionTo {
		t.Errorf("push = %+v", p)
	}

	// A push from the account's bare JID is also legitimate.
	sc.send(dom.New(stream.NSClient, "iq", "type", "set", "id", "push2", "from", testJID.String()).Append(
		rosterQuery("", dom.New(nsRoster, "item", "jid", "nurse@example.com", "subscription", "remove"))))
	if res := sc.next(); res.Attr("type") != "result" || res.Attr("id") != "push2" {
		t.Fatalf("push answer = %s", res)
	}
	if p, err := c.NextRosterPush(testCtx(t)); err != nil || p.Item.Subscription != SubscriptionRemove {
		t.Errorf("push = %+v, %v", p, err)
	}
}

func TestRosterPushFromOtherEntityRefused_RFC6121_2_1_6(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	sc.send(dom.New(stream.NSClient, "iq", "type", "set", "id", "evil", "from", "mallory@evil.test/x").Append(
		rosterQuery("", dom.New(nsRoster, "item", "jid", "mallory@evil.test", "subscription", "both"))))
	res := sc.next()
	if se, ok := stanza.ParseError(res); res.Attr("id") != "evil" || !ok || se.Condition != stanza.ServiceUnavailable {
		t.Fatalf("answer to a forged push = %s, want service-unavailable", res)
	}
	// A legitimate push after it is the first one queued.
	sc.send(dom.New(stream.NSClient, "iq", "type", "set", "id", "ok").Append(
		rosterQuery("", dom.New(nsRoster, "item", "jid", "romeo@example.net"))))
	_ = sc.next()
	p, err := c.NextRosterPush(testCtx(t))
	if err != nil || p.Item.JID != jid.MustParse("romeo@example.net") {
		t.Errorf("first queued push = %+v, %v; the forged one must not be queued", p, err)
	}
}

func TestSubscriptionPresences_RFC6121_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	ctx := testCtx(t)
	calls := []struct {
		send func() error
		typ  string
	}{
		{func() error { return c.Subscribe(ctx, romeo) }, "subscribe"},
		{func() error { return c.ApproveSubscription(ctx, romeo) }, "subscribed"},
		{func() error { return c.DenySubscription(ctx, romeo) }, "unsubscribed"},
		{func() error { return c.Unsubscribe(ctx, romeo) }, "unsubscribe"},
	}
	for _, call := range calls {
		if err := call.send(); err != nil {
			t.Fatal(err)
		}
		el := sc.next()
		// Subscription stanzas go to the bare JID (RFC 6121 3.1.1).
		if el.Local != "presence" || el.Attr("type") != call.typ || el.Attr("to") != romeo.Bare().String() {
			t.Errorf("sent %s, want presence type %s to %s", el, call.typ, romeo.Bare())
		}
	}
	// An incoming request shows up as a presence of type subscribe.
	sc.send(Presence{From: romeo.Bare(), Type: PresenceSubscribe}.Element())
	p, err := c.NextPresence(ctx)
	if err != nil || p.Type != PresenceSubscribe || p.From != romeo.Bare() {
		t.Errorf("NextPresence = %+v, %v", p, err)
	}
}
