package client

import (
	"context"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// benchSession returns a bound client over TLS and its server side.
func benchSession(b *testing.B) (*Client, *srvConn) {
	b.Helper()
	s := newTestServer(b, serverOpts{})
	cfg := s.config()
	cfg.QueueLimit = b.N + 1 // the reader may run ahead of NextMessage
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	sc := <-s.bound
	b.Cleanup(func() {
		sc.serveClose()
		_ = c.Close(context.Background())
	})
	return c, sc
}

// BenchmarkSendMessage measures SendMessage over TLS with the server
// reading and parsing every stanza.
func BenchmarkSendMessage(b *testing.B) {
	c, sc := benchSession(b)
	go func() {
		for {
			if _, err := sc.r.Next(); err != nil {
				return
			}
		}
	}()
	ctx := context.Background()
	m := Message{To: romeo, Type: MessageChat, Body: "Art thou not Romeo, and a Montague?"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIQRoundTrip measures IQ: send, server answers, response matched.
func BenchmarkIQRoundTrip(b *testing.B) {
	c, sc := benchSession(b)
	go func() {
		for {
			iq, err := sc.r.Next()
			if err != nil {
				return
			}
			if sc.write(dom.New(stream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))) != nil {
				return
			}
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Ping(ctx, jid.JID{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiveMessage measures reading, parsing and queueing incoming
// messages until NextMessage returns them.
func BenchmarkReceiveMessage(b *testing.B) {
	c, sc := benchSession(b)
	raw := Message{From: romeo, To: c.JID(), Type: MessageChat, Body: "Neither, fair saint, if either thee dislike."}.Element()
	go func() {
		for i := 0; i < b.N; i++ {
			if sc.w.WriteElement(raw) != nil {
				return
			}
			if i%64 == 63 || i == b.N-1 {
				if sc.w.Flush() != nil {
					return
				}
			}
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.NextMessage(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
