package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestOffCostsNothing: a nil Tracer starts no span, gives no traceparent
// and allocates nothing, so the hot paths may call it unconditionally.
func TestOffCostsNothing(t *testing.T) {
	var tr *Tracer
	if New(nil, "c2s") != nil {
		t.Fatal("New(nil) is not off")
	}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Start(ctx, "x", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Consumer)
		if tr.Traceparent(c) != "" {
			t.Fatal("traceparent while off")
		}
		span.End()
	})
	if allocs != 0 {
		t.Errorf("off: %v allocations per stanza, want 0", allocs)
	}
}

// TestTraceparentCarriesTheSpanAcross: what one side puts in an envelope
// makes the other side's span a child of the first, in the same trace.
func TestTraceparentCarriesTheSpanAcross(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	a, b := New(tp, "c2s"), New(tp, "router")

	ctx, first := a.Start(context.Background(), "first", "", Producer)
	tpv := a.Traceparent(ctx)
	first.End()
	if len(tpv) != 55 || tpv[:3] != "00-" {
		t.Fatalf("traceparent %q is not a W3C version 00 value", tpv)
	}
	_, second := b.Start(context.Background(), "second", tpv, Consumer)
	second.End()
	_, bad := b.Start(context.Background(), "third", "not a traceparent", Consumer)
	bad.End()

	spans := exp.GetSpans().Snapshots()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	f, s, th := spans[0], spans[1], spans[2]
	if s.SpanContext().TraceID() != f.SpanContext().TraceID() || s.Parent().SpanID() != f.SpanContext().SpanID() {
		t.Errorf("second span: trace %s parent %s; want trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID(),
			f.SpanContext().TraceID(), f.SpanContext().SpanID())
	}
	if th.Parent().IsValid() || th.SpanContext().TraceID() == f.SpanContext().TraceID() {
		t.Error("a malformed traceparent gave the span a parent; want a new trace")
	}
}

// TestSetupWithoutEndpointIsOff: no OTLP endpoint in the environment, no
// provider and no exporter.
func TestSetupWithoutEndpointIsOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, stop, err := Setup(context.Background(), "router")
	if err != nil || tp != nil {
		t.Fatalf("Setup = %v, %v; want nil, nil", tp, err)
	}
	if err := stop(context.Background()); err != nil {
		t.Error(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, _, err := Setup(context.Background(), "router"); err == nil {
		t.Error("Setup accepted an unknown OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	tp, stop, err = Setup(context.Background(), "router")
	if err != nil || tp == nil {
		t.Fatalf("Setup with an endpoint = %v, %v; want a provider", tp, err)
	}
	stop(context.Background())
}
