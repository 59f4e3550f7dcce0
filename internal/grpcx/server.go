package grpcx

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// GracefulStop stops srv: it refuses new calls and waits for those in
// flight until ctx ends, then cuts what is left.
func GracefulStop(ctx context.Context, srv *grpc.Server) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		srv.Stop()
		<-done
	}
}

// NewClient returns a client connection to addr (host:port) with the
// transport credentials of f (see DialOptions). Like grpc.NewClient it
// connects lazily and reconnects by itself with backoff when the server
// goes away; calls made meanwhile fail with Unavailable.
func NewClient(addr string, f TLSFiles, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds, err := DialOptions(f)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient("dns:///"+addr, append(creds, opts...)...)
}

// RegisterHealth registers hs as srv's standard gRPC health service.
func RegisterHealth(srv *grpc.Server, hs *health.Server) {
	healthpb.RegisterHealthServer(srv, hs)
}

// RegisterReflection registers gRPC server reflection (v1 and the older
// v1alpha) on srv, so that grpcurl and similar tools can list and call its
// services without the .proto files. It describes only the services
// registered on srv, so call it after them.
func RegisterReflection(srv *grpc.Server) {
	reflection.Register(srv)
}

// ListenTCP binds addr for a gRPC server.
func ListenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
