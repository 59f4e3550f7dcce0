// Package tracing carries OpenTelemetry trace context through Switchboard:
// across NATS in the bus.v1 envelopes' traceparent field (W3C trace
// context), and across gRPC with the otelgrpc stats handlers
// (internal/grpcx Observer). A stanza's trace is: c2s receives it
// ("c2s.stanza"), a router routes it ("router.route", with the roster and
// presence calls it makes as children), c2s delivers it ("c2s.deliver").
//
// Tracing is off unless a process is given a TracerProvider; the cluster
// binaries make one (Setup) only when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
// Off, a nil *Tracer makes every call a no-op that allocates nothing.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// scope names the instrumentation in the spans.
const scope = "github.com/switchboard-xmpp/switchboard"

// Tracer starts one service's spans. A nil *Tracer is off.
type Tracer struct {
	t    trace.Tracer
	prop propagation.TraceContext
}

// New returns the Tracer of service over tp, or nil (off) when tp is nil.
func New(tp trace.TracerProvider, service string) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(scope+"/"+service, trace.WithInstrumentationAttributes(attribute.String("switchboard.service", service)))}
}

// Start starts span name. Its parent is the remote span in traceparent (a
// W3C traceparent value from an envelope) when that is valid, else the span
// in ctx, else none. Off, it returns ctx and a span that does nothing.
func (t *Tracer) Start(ctx context.Context, name, traceparent string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	if traceparent != "" {
		v := traceparent // escapes; the parameter must not, or it would cost an allocation while off
		ctx = t.prop.Extract(ctx, carrier{&v})
	}
	return t.t.Start(ctx, name, trace.WithSpanKind(kind))
}

// Span kinds, so that callers need not import the trace API.
const (
	// Producer: a span that publishes to the bus (c2s receiving a stanza).
	Producer = trace.SpanKindProducer
	// Consumer: a span that handles what came from the bus (routing,
	// delivering).
	Consumer = trace.SpanKindConsumer
)

// Traceparent is the W3C traceparent of the span in ctx, for an envelope,
// or "" when tracing is off or there is no valid span.
func (t *Tracer) Traceparent(ctx context.Context) string {
	if t == nil {
		return ""
	}
	var tp string
	t.prop.Inject(ctx, carrier{&tp})
	return tp
}

// carrier is a TextMapCarrier holding only the traceparent header, so that
// no map is made per stanza. tracestate is not carried.
type carrier struct{ tp *string }

const traceparentKey = "traceparent"

func (c carrier) Get(key string) string {
	if key == traceparentKey {
		return *c.tp
	}
	return ""
}

func (c carrier) Set(key, value string) {
	if key == traceparentKey {
		*c.tp = value
	}
}

func (c carrier) Keys() []string { return []string{traceparentKey} }
