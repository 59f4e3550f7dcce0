package grpcx

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
)

// Observer is what a process watches its gRPC calls with: metrics of every
// unary call by method and status code, and spans of every call whose
// trace context travels in the W3C traceparent metadata (otelgrpc). The
// zero value watches nothing.
type Observer struct {
	Metrics *metrics.GRPC
	Tracing trace.TracerProvider // nil: no spans
}

func (o Observer) otel() []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithTracerProvider(o.Tracing), otelgrpc.WithPropagators(propagation.TraceContext{})}
}

// DialOptions returns the options a client connection needs to be
// observed; add them to NewClient's or Dial's.
func (o Observer) DialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if o.Metrics != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(o.Metrics.UnaryClient()))
	}
	if o.Tracing != nil {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(o.otel()...)))
	}
	return opts
}

// ServerOptions returns the options a server needs to be observed; add
// them to grpc.NewServer's.
func (o Observer) ServerOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if o.Metrics != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(o.Metrics.UnaryServer()))
	}
	if o.Tracing != nil {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(o.otel()...)))
	}
	return opts
}
