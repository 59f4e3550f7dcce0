package grpcx

import (
	"context"

	"google.golang.org/grpc"
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
