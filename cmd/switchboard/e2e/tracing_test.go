package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
)

// TestOneTraceFollowsAMessageThroughC2SRouterAndC2S records the spans of
// the one-process binary in memory: the message alice sends is one trace,
// c2s receiving it (c2s.stanza), the router routing it (router.route, a
// child through the envelope's traceparent), and c2s delivering it to bob
// (c2s.deliver, a child through the delivery's traceparent); the gRPC call
// the router made for it is in the trace too.
func TestOneTraceFollowsAMessageThroughC2SRouterAndC2S(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	s := startServer(t, func(c *app.Config) { c.TracerProvider = tp })
	s.createAccounts(t, "alice", "bob")
	alice := s.dial(t, "alice", "laptop")
	bob := s.dial(t, "bob", "desk")

	m := client.Message{ID: "traced-1", To: bob.JID(), Type: client.MessageChat, Body: "follow me"}
	send(t, alice, m)
	m.From = alice.JID()
	checkMessage(t, "bob", nextMessage(t, bob), m)

	// The delivery span ends just after bob's message was queued: wait for
	// it.
	var chain []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(ioTimeout)
	for {
		var err error
		chain, err = messageTrace(exp.GetSpans().Snapshots())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v; spans recorded:\n%s", err, describe(exp.GetSpans().Snapshots()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	recv, route, deliver := chain[0], chain[1], chain[2]
	if recv.SpanKind() != trace.SpanKindProducer || route.SpanKind() != trace.SpanKindConsumer || deliver.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span kinds %v, %v, %v; want producer, consumer, consumer", recv.SpanKind(), route.SpanKind(), deliver.SpanKind())
	}
	// The router's session cache starts empty, so routing asked the
	// presence service where bob is: the gRPC client span is a child of
	// router.route and the server's span a child of that, through the
	// traceparent in the call's metadata.
	const lookup = "switchboard.presence.v1.SessionRegistry/Lookup"
	var client, server sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == lookup && s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == route.SpanContext().SpanID() {
			client = s
		}
	}
	for _, s := range exp.GetSpans().Snapshots() {
		if client != nil && s.Name() == lookup && s.SpanKind() == trace.SpanKindServer && s.Parent().SpanID() == client.SpanContext().SpanID() {
			server = s
		}
	}
	if client == nil || server == nil {
		t.Errorf("no %s client span under router.route with its server span under it; spans:\n%s", lookup, describe(exp.GetSpans().Snapshots()))
	}
}

// messageTrace finds a c2s.deliver span whose parent is a router.route
// span whose parent is a c2s.stanza span, all of one trace, and returns
// them in that order (stanza, route, deliver).
func messageTrace(spans []sdktrace.ReadOnlySpan) ([]sdktrace.ReadOnlySpan, error) {
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, d := range spans {
		if d.Name() != "c2s.deliver" {
			continue
		}
		r, ok := byID[d.Parent().SpanID()]
		if !ok || r.Name() != "router.route" {
			continue
		}
		c, ok := byID[r.Parent().SpanID()]
		if !ok || c.Name() != "c2s.stanza" {
			continue
		}
		id := c.SpanContext().TraceID()
		if r.SpanContext().TraceID() != id || d.SpanContext().TraceID() != id {
			return nil, fmt.Errorf("c2s.stanza, router.route and c2s.deliver are in different traces")
		}
		if c.Parent().IsValid() {
			return nil, fmt.Errorf("c2s.stanza has a parent %s; want it to start the trace", c.Parent().SpanID())
		}
		return []sdktrace.ReadOnlySpan{c, r, d}, nil
	}
	return nil, fmt.Errorf("no c2s.deliver span under a router.route span under a c2s.stanza span")
}

func describe(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s trace=%s span=%s parent=%s\n", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID())
	}
	return b.String()
}
