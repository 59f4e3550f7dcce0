package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

// Process runs the servers and loops of one service binary, marks it
// ready once they all run, and stops it the way an orchestrator expects:
// health NOT_SERVING first, then the loops end, then the gRPC servers
// drain under the shutdown timeout, then what OnStop registered is
// released in reverse order.
type Process struct {
	Log             *slog.Logger
	Probe           *Probe
	HTTP            *Server       // may be nil
	ShutdownTimeout time.Duration // zero: 10s

	grpc  []grpcServer
	tasks []task
	stops []task
}

type grpcServer struct {
	name string
	srv  *grpc.Server
	ln   net.Listener
}

type task struct {
	name string
	fn   func(ctx context.Context) error
}

// GRPC serves srv on ln while the process runs.
func (p *Process) GRPC(name string, srv *grpc.Server, ln net.Listener) {
	p.grpc = append(p.grpc, grpcServer{name, srv, ln})
}

// Go runs fn while the process runs: its context ends when the process
// stops, and an error it returns before then stops the process.
func (p *Process) Go(name string, fn func(ctx context.Context) error) {
	p.tasks = append(p.tasks, task{name, fn})
}

// OnStop registers fn to run at the end of a stop, after the servers and
// loops; the functions run in reverse order of registration.
func (p *Process) OnStop(name string, fn func(ctx context.Context) error) {
	p.stops = append(p.stops, task{name, fn})
}

// Run serves until ctx ends (nil) or a server or loop fails (its error),
// then stops.
func (p *Process) Run(ctx context.Context) error {
	timeout := p.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	errc := make(chan error, len(p.grpc)+len(p.tasks)+1)
	if p.HTTP != nil {
		go func() {
			if err := p.HTTP.Serve(); err != nil {
				errc <- fmt.Errorf("health HTTP: %w", err)
			}
		}()
	}
	for _, g := range p.grpc {
		go func() {
			if err := g.srv.Serve(g.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("%s: %w", g.name, err)
			}
		}()
		p.Log.Info("gRPC listening", "server", g.name, "addr", g.ln.Addr().String())
	}
	tctx, stopTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTasks()
	var wg sync.WaitGroup
	for _, t := range p.tasks {
		wg.Go(func() {
			if err := t.fn(tctx); err != nil && tctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", t.name, err)
			}
		})
	}
	p.Probe.SetReady()
	p.Log.Info("ready")

	var runErr error
	select {
	case <-ctx.Done():
		p.Log.Info("stopping")
	case runErr = <-errc:
		p.Log.Error("stopping after a failure", "err", runErr)
	}
	p.Probe.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	stopTasks()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		p.Log.Warn("loops did not stop within the shutdown timeout")
	}
	var gw sync.WaitGroup
	for _, g := range p.grpc {
		gw.Go(func() { grpcx.GracefulStop(sctx, g.srv) })
	}
	gw.Wait()
	for i := len(p.stops) - 1; i >= 0; i-- {
		if err := p.stops[i].fn(sctx); err != nil {
			p.Log.Warn("stop", "what", p.stops[i].name, "err", err)
		}
	}
	if p.HTTP != nil {
		p.HTTP.Shutdown(sctx)
	}
	p.Log.Info("stopped")
	return runErr
}
