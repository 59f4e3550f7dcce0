package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

// BenchmarkRouteChatToFullJID measures the routing decision for the most
// common stanza, a chat message to a bound full JID: prepare both
// addresses, one session lookup (an in-memory fake here, so the figure
// excludes gRPC), and the delivery built. Publishing is not included.
func BenchmarkRouteChatToFullJID(b *testing.B) {
	reg := &fakeRegistry{}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	r := &Router{
		domain:   domain,
		node:     "bench",
		subjects: bus.New("bench", 16),
		sessions: reg,
		accounts: &fakeAccounts{},
		log:      testLogger(),
	}
	el := msg(bobDesk.jid, "chat", "m1", "hello, this is a chat message of ordinary length")
	el.SetAttr("from", alicePhone.jid)
	st := &busv1.Stanza{
		From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: "m1",
		Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: 1,
	}
	ctx := context.Background()
	var out []outbound
	b.ReportAllocs()
	for b.Loop() {
		out = r.route(ctx, st, out[:0])
		if len(out) != 1 {
			b.Fatalf("routed to %d sessions, want 1", len(out))
		}
	}
}

// BenchmarkRunChatToFullJIDOverNATS measures the whole router path through
// an in-process NATS server: envelope decoded, routed, delivery encoded and
// published, until the test's subscriber has received it. b.N messages are
// pipelined; ns/op is the mean time per routed message.
func BenchmarkRunChatToFullJIDOverNATS(b *testing.B) {
	subjects := bus.New(fmt.Sprintf("bench%d", prefixes.Add(1)), 16)
	reg := &fakeRegistry{}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	rnc, err := natsServer.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer rnc.Close()
	nc, err := natsServer.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	r, err := New(Config{
		Domain: domain, Node: "bench", NATS: rnc, Subjects: subjects,
		Sessions: reg, Accounts: &fakeAccounts{}, Logger: testLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	received := make(chan struct{}, 1<<16)
	sub, err := nc.Subscribe(subjects.Node(bobDesk.node), func(*nats.Msg) { received <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	el := msg(bobDesk.jid, "chat", "m1", "hello, this is a chat message of ordinary length")
	el.SetAttr("from", alicePhone.jid)
	st := &busv1.Stanza{
		From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: "m1",
		Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: 1,
	}
	data, err := proto.Marshal(st)
	if err != nil {
		b.Fatal(err)
	}
	subject := subjects.RouteFor("alice@example.com")
	// Wait until Run has subscribed.
	waitFor := func(n int) {
		deadline := time.After(30 * time.Second)
		for range n {
			select {
			case <-received:
			case <-deadline:
				b.Fatal("deliveries did not arrive within 30s")
			}
		}
	}
	for {
		if err := nc.Publish(subject, data); err != nil {
			b.Fatal(err)
		}
		select {
		case <-received:
		case <-time.After(50 * time.Millisecond):
			continue // not subscribed yet; publish again
		}
		break
	}
	// Drain deliveries of extra warm-up messages, if any.
	for len(received) > 0 {
		<-received
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := nc.Publish(subject, data); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 1023 {
			waitFor(1024) // bound what is in flight
		}
	}
	waitFor(b.N % 1024)
}
