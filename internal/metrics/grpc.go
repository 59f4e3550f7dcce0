package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// GRPC measures the unary gRPC calls a process makes and serves, by method
// and status code: the router's and c2s's calls to the roster and
// presence services, and those services' side of them.
type GRPC struct {
	client, server *prometheus.HistogramVec
}

// GRPC registers and returns the gRPC call metrics. A Registry holds at
// most one.
func (r *Registry) GRPC() *GRPC {
	return &GRPC{
		client: r.histogramVec("grpc_client_seconds",
			"Latency of gRPC calls made, by full method and status code (errors are codes other than OK).", "method", "code"),
		server: r.histogramVec("grpc_server_seconds",
			"Latency of gRPC calls served, by full method and status code (errors are codes other than OK).", "method", "code"),
	}
}

// UnaryClient is a client interceptor that measures every call; nil m
// gives an interceptor that only calls on.
func (m *GRPC) UnaryClient() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if m == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		m.client.WithLabelValues(method, status.Code(err).String()).Observe(time.Since(start).Seconds())
		return err
	}
}

// UnaryServer is a server interceptor that measures every call served.
func (m *GRPC) UnaryServer() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m == nil {
			return handler(ctx, req)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		m.server.WithLabelValues(info.FullMethod, status.Code(err).String()).Observe(time.Since(start).Seconds())
		return resp, err
	}
}
