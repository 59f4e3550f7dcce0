package health

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

// DialServing connects to the gRPC service name at addr and waits up to
// timeout until its standard health service answers SERVING, so a binary
// starts only once the services it needs are there (the error names the
// service and the address). opts are added to the connection's options
// (grpcx.Observe's).
func DialServing(ctx context.Context, log *slog.Logger, name, addr string, f grpcx.TLSFiles, timeout time.Duration, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	cc, err := grpcx.NewClient(addr, f, opts...)
	if err != nil {
		return nil, err
	}
	err = Await(ctx, log, name+" service", addr, timeout, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		r, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if r.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health status %s", r.Status)
		}
		return nil
	})
	if err != nil {
		cc.Close()
		return nil, err
	}
	return cc, nil
}
