// Package grpcx carries gRPC between the services of one process without a
// socket: the all-in-one binary registers every service on one grpc.Server
// that serves a Listener, and c2s and the router reach it with Dial, through
// the same generated clients they use in a cluster.
package grpcx

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// bufferSize is the capacity of each direction of an in-memory connection.
// A writer blocks when the reader lags this far behind, which bounds memory
// like a socket buffer does; HTTP/2 flow control keeps streams well below it.
const bufferSize = 1 << 20

// target is what clients dial. The passthrough resolver hands it unchanged
// to the context dialer, which ignores it, so it only shows up in logs.
const target = "passthrough:///inprocess"

// Listener is a net.Listener whose connections are in-memory pipes. It is
// safe for concurrent use. Closing it fails pending and later Dials; open
// connections stay up until either end closes them.
type Listener struct {
	bl *bufconn.Listener
}

// Listen returns a new in-memory Listener.
func Listen() *Listener {
	return &Listener{bl: bufconn.Listen(bufferSize)}
}

// Accept waits for and returns the next connection.
func (l *Listener) Accept() (net.Conn, error) { return l.bl.Accept() }

// Close stops the listener.
func (l *Listener) Close() error { return l.bl.Close() }

// Addr returns a placeholder address of network "bufconn".
func (l *Listener) Addr() net.Addr { return l.bl.Addr() }

// DialContext opens a connection to the listener. It waits until the
// listener accepts it, ctx ends or the listener is closed.
func (l *Listener) DialContext(ctx context.Context) (net.Conn, error) {
	return l.bl.DialContext(ctx)
}

// Dial returns a client connection to the server serving l. Like
// grpc.NewClient it connects lazily, on the first call; opts are appended
// to the defaults (insecure transport credentials, since nothing leaves the
// process, and the in-memory dialer).
func Dial(l *Listener, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return l.DialContext(ctx)
		}),
	}
	return grpc.NewClient(target, append(all, opts...)...)
}
