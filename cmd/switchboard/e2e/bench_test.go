package e2e

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
)

// quiet drops the server's log: a benchmark must not measure a log that
// grows with every message. It also turns off the per-session stanza and
// byte limits, meant for people, which a benchmark's sender exceeds at
// once (its messages would be refused with policy-violation and the
// receiver would wait for them for ever).
func quiet(c *app.Config) {
	c.Logger = slog.New(slog.DiscardHandler)
	c.Abuse.StanzaRate, c.Abuse.ByteRate = -1, -1
}

// benchPair starts a quiet server and logs alice and bob in.
func benchPair(b *testing.B) (alice, bob *client.Client) {
	s := startServer(b, quiet)
	s.createAccounts(b, "alice", "bob")
	return s.dial(b, "alice", "bench"), s.dial(b, "bob", "bench")
}

// BenchmarkMessagePathOneProcess measures one chat message from a client to
// another through the whole one-process server: c2s reads and checks it,
// publishes it on the embedded NATS, the router asks the presence service
// (gRPC, in-process) for the session and publishes the delivery, and c2s
// writes it to the receiver. One operation sends one message and waits for
// its arrival, so ns/op is the latency of the path plus both clients' own
// work (TLS both ways, XML writing and parsing); allocs/op counts every
// allocation in the process, clients included.
func BenchmarkMessagePathOneProcess(b *testing.B) {
	alice, bob := benchPair(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m := client.Message{To: bob.JID(), Type: client.MessageChat, Body: "Are we still on for lunch at noon?"}
	b.ReportAllocs()
	for b.Loop() {
		if err := alice.SendMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
		got, err := bob.NextMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if got.Body != m.Body {
			b.Fatalf("received %+v", got)
		}
	}
}

// BenchmarkMessagePathOneProcessWindow measures throughput on the same
// path: the sender keeps up to window messages in flight, the receiver
// takes them and checks their order (RFC 6120 section 10.1). It reports
// messages per second; ns/op is the time per message at that rate.
func BenchmarkMessagePathOneProcessWindow(b *testing.B) {
	for _, window := range []int{16, 128} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			alice, bob := benchPair(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			credit := make(chan struct{}, window)
			for range window {
				credit <- struct{}{}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			sendErr := make(chan error, 1)
			go func() {
				for i := range b.N {
					select {
					case <-credit:
					case <-ctx.Done():
						sendErr <- ctx.Err()
						return
					}
					m := client.Message{ID: strconv.Itoa(i), To: bob.JID(), Type: client.MessageChat, Body: "Are we still on for lunch at noon?"}
					if err := alice.SendMessage(ctx, m); err != nil {
						sendErr <- err
						return
					}
				}
				sendErr <- nil
			}()
			for i := range b.N {
				got, err := bob.NextMessage(ctx)
				if err != nil {
					b.Fatalf("message %d: %v", i, err)
				}
				if got.ID != strconv.Itoa(i) {
					b.Fatalf("message %d arrived with id %q: order lost", i, got.ID)
				}
				credit <- struct{}{}
			}
			if err := <-sendErr; err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}
