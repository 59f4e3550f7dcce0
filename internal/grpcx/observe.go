package grpcx

import (
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
)

// Observer is what a process watches its gRPC calls with: metrics of every
// unary call by method and status code. The zero value watches nothing.
type Observer struct {
	Metrics *metrics.GRPC
}

// DialOptions returns the options a client connection needs to be
// observed; add them to NewClient's or Dial's.
func (o Observer) DialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if o.Metrics != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(o.Metrics.UnaryClient()))
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
	return opts
}
