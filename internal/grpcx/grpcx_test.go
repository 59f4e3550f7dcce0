package grpcx_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

// serveHealth starts a real grpc.Server with the health service on an
// in-process listener and returns the health server and a client for it.
func serveHealth(t *testing.T) (*grpcx.Listener, *health.Server, healthpb.HealthClient) {
	t.Helper()
	l := grpcx.Listen()
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return l, hs, healthpb.NewHealthClient(cc)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnaryCallReachesServerThroughInProcessListener(t *testing.T) {
	_, hs, client := serveHealth(t)
	ctx := testContext(t)
	hs.SetServingStatus("roster", healthpb.HealthCheckResponse_NOT_SERVING)

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check(overall): %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("overall status = %v, want SERVING", resp.Status)
	}
	resp, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "roster"})
	if err != nil {
		t.Fatalf("Check(roster): %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("roster status = %v, want NOT_SERVING", resp.Status)
	}
}

func TestServerErrorStatusReachesClient(t *testing.T) {
	_, _, client := serveHealth(t)
	_, err := client.Check(testContext(t), &healthpb.HealthCheckRequest{Service: "nobody"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(unknown service) = %v, want code NotFound", err)
	}
}

func TestServerStreamDeliversUpdatesInOrder(t *testing.T) {
	_, hs, client := serveHealth(t)
	hs.SetServingStatus("presence", healthpb.HealthCheckResponse_SERVING)
	stream, err := client.Watch(testContext(t), &healthpb.HealthCheckRequest{Service: "presence"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	want := []healthpb.HealthCheckResponse_ServingStatus{
		healthpb.HealthCheckResponse_SERVING,
		healthpb.HealthCheckResponse_NOT_SERVING,
		healthpb.HealthCheckResponse_SERVING,
	}
	for i, w := range want {
		// Each change is made only after the previous one was seen: the
		// health service keeps only the latest status for a slow watcher.
		if i > 0 {
			hs.SetServingStatus("presence", w)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv #%d: %v", i, err)
		}
		if resp.Status != w {
			t.Fatalf("update #%d = %v, want %v", i, resp.Status, w)
		}
	}
}

func TestConcurrentCallsShareOneConnection(t *testing.T) {
	_, _, client := serveHealth(t)
	ctx := testContext(t)
	const callers, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range calls {
				if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Check: %v", err)
	}
}

func TestCallFailsUnavailableWhenListenerClosed(t *testing.T) {
	l := grpcx.Listen()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer cc.Close()
	_, err = healthpb.NewHealthClient(cc).Check(testContext(t), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Check on closed listener = %v, want code Unavailable", err)
	}
}

func TestDialOptionsAreApplied(t *testing.T) {
	l, _, _ := serveHealth(t)
	var intercepted int
	cc, err := grpcx.Dial(l, grpc.WithUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			intercepted++
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(testContext(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if intercepted != 1 {
		t.Errorf("interceptor ran %d times, want 1", intercepted)
	}
}

func TestReflectionListsTheRegisteredServices(t *testing.T) {
	srv := grpc.NewServer()
	grpcx.RegisterHealth(srv, health.NewServer())
	grpcx.RegisterReflection(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	got, err := grpcx.ListServices(testContext(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
	if !slices.Equal(got, want) {
		t.Errorf("ListServices = %q, want %q", got, want)
	}
}
