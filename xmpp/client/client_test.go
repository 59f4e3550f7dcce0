package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

var romeo = jid.MustParse("romeo@example.net/orchard")

func TestMessageRoundTrip_RFC6121_5_2(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	ctx := testCtx(t)

	receipt := dom.New("urn:xmpp:receipts", "request")
	err := c.SendMessage(ctx, Message{
		ID: "m1", To: romeo, Type: MessageChat, Lang: "en",
		Subject: "balcony", Body: "Art thou not Romeo?", Thread: "t-1",
		Extra: []*dom.Element{receipt},
	})
	if err != nil {
		t.Fatal(err)
	}
	el := sc.next()
	m, err := ParseMessage(el)
	if err != nil {
		t.Fatal(err)
	}
	if el.Attr("from") != "" {
		t.Errorf("client set from=%q; the server stamps it", el.Attr("from"))
	}
	if m.To != romeo || m.Type != MessageChat || m.ID != "m1" || m.Lang != "en" ||
		m.Subject != "balcony" || m.Body != "Art thou not Romeo?" || m.Thread != "t-1" ||
		len(m.Extra) != 1 || m.Extra[0].Space != "urn:xmpp:receipts" {
		t.Errorf("server received %s", el)
	}

	// The reply comes back through NextMessage.
	reply := Message{ID: "m2", From: romeo, To: c.JID(), Type: MessageChat, Body: "Neither, fair saint."}
	sc.send(reply.Element())
	got, err := c.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.From != romeo || got.Body != reply.Body || got.ID != "m2" || got.Type != MessageChat {
		t.Errorf("NextMessage = %+v", got)
	}
}

func TestMessageWithoutTypeIsNormal_RFC6121_5_2_2(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	sc.send(dom.New(stream.NSClient, "message", "from", romeo.String()).Append(
		dom.New(stream.NSClient, "body").AppendText("hi")))
	m, err := c.NextMessage(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != MessageNormal {
		t.Errorf("type = %q, want normal", m.Type)
	}
}

func TestHandlerConsumesStanzas(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	got := make(chan *dom.Element, 1)
	cfg.Handler = func(_ *Client, st *dom.Element) bool {
		if st.Local == "message" {
			got <- st
			return true
		}
		return false
	}
	c, sc := s.dial(t, cfg)
	sc.send(Message{From: romeo, Body: "one"}.Element())
	sc.send(Presence{From: romeo, Status: "here"}.Element())
	select {
	case st := <-got:
		if st.ChildText(stream.NSClient, "body") != "one" {
			t.Errorf("handler got %s", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	// The presence was not consumed, so it is queued.
	p, err := c.NextPresence(testCtx(t))
	if err != nil || p.Status != "here" || p.From != romeo {
		t.Fatalf("NextPresence = %+v, %v", p, err)
	}
	// The message was consumed, so the queue is empty.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if m, err := c.NextMessage(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextMessage = %+v, %v; want nothing queued", m, err)
	}
}

func TestPresenceFields_RFC6121_4_7(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	err := c.SendPresence(testCtx(t), Presence{Show: ShowDND, Status: "busy", Priority: -1})
	if err != nil {
		t.Fatal(err)
	}
	el := sc.next()
	p, err := ParsePresence(el)
	if err != nil {
		t.Fatal(err)
	}
	if el.Attr("to") != "" || el.Attr("type") != "" || p.Show != ShowDND || p.Status != "busy" || p.Priority != -1 {
		t.Errorf("server received %s", el)
	}
}

func TestIQResponsesMatchedByIDAndSender_RFC6120_8_2_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	ctx := testCtx(t)

	type result struct {
		res *dom.Element
		err error
	}
	ask := func(to jid.JID, payload string) chan result {
		ch := make(chan result, 1)
		go func() {
			iq := dom.New(stream.NSClient, "iq", "type", "get", "to", to.String()).Append(dom.New("urn:test", payload))
			res, err := c.IQ(ctx, iq)
			ch <- result{res, err}
		}()
		return ch
	}
	first := ask(romeo, "first")
	q1 := sc.next()
	second := ask(romeo, "second")
	q2 := sc.next()
	if q1.Attr("id") == "" || q1.Attr("id") == q2.Attr("id") {
		t.Fatalf("ids %q and %q are not distinct", q1.Attr("id"), q2.Attr("id"))
	}
	// A forged answer from another entity with the first id is ignored.
	sc.send(dom.New(stream.NSClient, "iq", "type", "result", "id", q1.Attr("id"), "from", "mallory@evil.test/x").Append(dom.New("urn:test", "forged")))
	// Answer in reverse order.
	sc.send(dom.New(stream.NSClient, "iq", "type", "result", "id", q2.Attr("id"), "from", romeo.String()).Append(dom.New("urn:test", "second")))
	sc.send(dom.New(stream.NSClient, "iq", "type", "result", "id", q1.Attr("id"), "from", romeo.String()).Append(dom.New("urn:test", "first")))
	for name, ch := range map[string]chan result{"first": first, "second": second} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if r.res.FirstChild().Local != name {
			t.Errorf("%s got the response %s", name, r.res)
		}
	}
}

func TestIQTimeoutLeavesSessionUsable_RFC6120_8_2_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.IQ(ctx, dom.New(stream.NSClient, "iq", "type", "get").Append(dom.New("urn:test", "slow")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IQ error = %v, want DeadlineExceeded", err)
	}
	late := sc.next()
	// The late answer is dropped; the session goes on.
	sc.send(dom.New(stream.NSClient, "iq", "type", "result", "id", late.Attr("id")))
	done := make(chan error, 1)
	go func() { done <- c.Ping(testCtx(t), jid.JID{}) }()
	ping := sc.answer(nil)
	if ping.Child(nsPing, "ping") == nil {
		t.Errorf("expected a ping, got %s", ping)
	}
	if err := <-done; err != nil {
		t.Fatalf("Ping after a timed-out IQ: %v", err)
	}
}

func TestIQErrorIsStanzaError_RFC6120_8_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	done := make(chan error, 1)
	go func() {
		_, err := c.IQ(testCtx(t), dom.New(stream.NSClient, "iq", "type", "get").Append(dom.New("urn:test", "q")))
		done <- err
	}()
	iq := sc.next()
	sc.send(stanza.ErrorReply(iq, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound, Text: "no such thing"}))
	err := <-done
	var se *stanza.Error
	if !errors.As(err, &se) || !errors.Is(err, stanza.ItemNotFound) || se.Text != "no such thing" {
		t.Fatalf("IQ error = %v, want *stanza.Error item-not-found", err)
	}
}

func TestUnhandledIQRequestGetsServiceUnavailable_RFC6120_8_4(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	_, sc := s.dial(t, s.config())
	sc.send(dom.New(stream.NSClient, "iq", "type", "get", "id", "q1", "from", romeo.String()).Append(dom.New("urn:unknown", "query")))
	res := sc.next()
	se, ok := stanza.ParseError(res)
	if res.Attr("id") != "q1" || res.Attr("type") != "error" || !ok || se.Condition != stanza.ServiceUnavailable {
		t.Fatalf("answer = %s, want service-unavailable", res)
	}
	if res.Attr("to") != romeo.String() {
		t.Errorf("answer to=%q, want the requester", res.Attr("to"))
	}
}

func TestPingAnsweredAndHandlersRegistered_XEP0199(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	sc.send(dom.New(stream.NSClient, "iq", "type", "get", "id", "p1", "from", testDomain).Append(dom.New(nsPing, "ping")))
	if res := sc.next(); res.Attr("id") != "p1" || res.Attr("type") != "result" {
		t.Fatalf("ping answer = %s", res)
	}
	c.HandleIQ("jabber:iq:version", "query", func(_ context.Context, iq *dom.Element) (*dom.Element, error) {
		return dom.New("jabber:iq:version", "query").Append(dom.New("jabber:iq:version", "name").AppendText("switchboard-client")), nil
	})
	sc.send(dom.New(stream.NSClient, "iq", "type", "get", "id", "v1", "from", romeo.String()).Append(dom.New("jabber:iq:version", "query")))
	res := sc.next()
	if res.Attr("type") != "result" || res.Child("jabber:iq:version", "query").ChildText("jabber:iq:version", "name") != "switchboard-client" {
		t.Fatalf("version answer = %s", res)
	}
}

func TestStreamErrorSurfacedTyped_RFC6120_4_9(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	if err := sc.w.WriteError(&stream.Error{Condition: stream.Conflict, Text: "replaced by new connection"}); err != nil {
		t.Fatal(err)
	}
	if err := sc.w.Flush(); err != nil {
		t.Fatal(err)
	}
	// The client answers with its own closing tag (RFC 6120 4.9.1.1).
	sc.expectClosed()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end")
	}
	err := c.Err()
	var se *stream.Error
	if !errors.Is(err, stream.Conflict) || !errors.As(err, &se) || se.Text != "replaced by new connection" {
		t.Fatalf("Err() = %v, want *stream.Error conflict", err)
	}
	if _, err := c.NextMessage(testCtx(t)); !errors.Is(err, stream.Conflict) {
		t.Errorf("NextMessage after the end = %v, want the stream error", err)
	}
	if err := c.SendMessage(testCtx(t), Message{To: romeo, Body: "x"}); !errors.Is(err, stream.Conflict) {
		t.Errorf("SendMessage after the end = %v, want the stream error", err)
	}
	if Retryable(err) {
		t.Error("conflict should not be retried")
	}
}

func TestClosingHandshake_RFC6120_4_4(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())

	closed := make(chan error, 1)
	go func() { closed <- c.Close(testCtx(t)) }()
	sc.expectClosed()
	// Stanzas still flow to the client until the server closes its side.
	sc.send(Message{From: romeo, Body: "last words"}.Element())
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the server closed its stream", err)
	default:
	}
	if err := sc.w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	m, err := c.NextMessage(testCtx(t))
	if err != nil || m.Body != "last words" {
		t.Errorf("message sent during the close = %+v, %v", m, err)
	}
	if _, err := c.NextMessage(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("NextMessage on an empty closed queue = %v, want ErrClosed", err)
	}
}

func TestClosingHandshakeIsBounded_RFC6120_4_4(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.CloseTimeout = 100 * time.Millisecond
	c, sc := s.dial(t, cfg)
	closed := make(chan error, 1)
	go func() { closed <- c.Close(context.Background()) }()
	sc.expectClosed()
	// The server never closes its side: Close gives up after CloseTimeout.
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session not ended after Close")
	}
}

func TestServerCloseIsAnswered_RFC6120_4_4(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	if err := sc.w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.w.Flush(); err != nil {
		t.Fatal(err)
	}
	sc.expectClosed()
	<-c.Done()
	if !errors.Is(c.Err(), stream.ErrClosed) {
		t.Errorf("Err() = %v, want stream.ErrClosed", c.Err())
	}
}

func TestSendHonoursContext(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, _ := s.dial(t, s.config())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SendMessage(ctx, Message{To: romeo, Body: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("SendMessage with a cancelled context = %v", err)
	}
	// Nothing was written, so the session is still up.
	select {
	case <-c.Done():
		t.Fatalf("session ended: %v", c.Err())
	default:
	}
}
