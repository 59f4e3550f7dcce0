// Package health tells an orchestrator, and the scripts that start a local
// cluster, whether a process is alive and ready: HTTP /healthz and /readyz,
// kept in step with the standard gRPC health service, and /metrics on the
// same listener (ServeMetrics). It also waits for the dependencies a
// process needs at start.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Probe is the state behind the health endpoints. The zero value is not
// usable; call New.
type Probe struct {
	ready    atomic.Bool
	stopping atomic.Bool

	metrics atomic.Pointer[http.Handler]

	mu       sync.Mutex
	grpc     []*health.Server
	services []string
	checks   []check
}

type check struct {
	name string
	fn   func() error
}

// New returns a Probe that is neither ready nor stopping.
func New() *Probe { return &Probe{} }

// NewGRPC returns a gRPC health server that p drives: NOT_SERVING until
// SetReady, for the whole server ("") and for each named service.
func (p *Probe) NewGRPC(services ...string) *health.Server {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	for _, s := range services {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	p.mu.Lock()
	p.grpc = append(p.grpc, hs)
	p.services = append(p.services, services...)
	p.mu.Unlock()
	return hs
}

// AddCheck makes /readyz also run fn, which reports whether a dependency
// the process needs right now (its NATS connection) is there.
func (p *Probe) AddCheck(name string, fn func() error) {
	p.mu.Lock()
	p.checks = append(p.checks, check{name, fn})
	p.mu.Unlock()
}

// SetReady marks the process ready: /readyz answers 200 (while the checks
// pass) and the gRPC services are SERVING.
func (p *Probe) SetReady() {
	p.ready.Store(true)
	p.setGRPC(healthpb.HealthCheckResponse_SERVING)
}

// Stopping marks the process as stopping: both endpoints answer 503 and
// the gRPC services are NOT_SERVING, so load balancers and clients move
// away before the servers drain.
func (p *Probe) Stopping() {
	p.stopping.Store(true)
	p.ready.Store(false)
	p.setGRPC(healthpb.HealthCheckResponse_NOT_SERVING)
}

func (p *Probe) setGRPC(st healthpb.HealthCheckResponse_ServingStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, hs := range p.grpc {
		hs.SetServingStatus("", st)
		for _, s := range p.services {
			hs.SetServingStatus(s, st)
		}
	}
}

// Ready reports whether the process is ready and every check passes; the
// error names the first failing check.
func (p *Probe) Ready() error {
	if !p.ready.Load() {
		if p.stopping.Load() {
			return errors.New("stopping")
		}
		return errors.New("starting")
	}
	p.mu.Lock()
	checks := append([]check(nil), p.checks...)
	p.mu.Unlock()
	for _, c := range checks {
		if err := c.fn(); err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
	}
	return nil
}

// ServeMetrics makes the health listener also serve h at GET /metrics
// (internal/metrics Registry.Handler). Without it /metrics answers 404.
func (p *Probe) ServeMetrics(h http.Handler) { p.metrics.Store(&h) }

// Handler serves GET /healthz (200 while the process is up and not
// stopping: liveness), GET /readyz (200 while Ready: readiness) and GET
// /metrics (see ServeMetrics).
func (p *Probe) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if h := p.metrics.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if p.stopping.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := p.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// Server serves a Probe's handler on its own listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr for p's endpoints; Serve starts answering.
func Listen(addr string, p *Probe) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{
		srv: &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second},
		ln:  ln,
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.ln.Close() // in case Serve never ran
	return err
}

// Await calls try until it succeeds, ctx ends or timeout has passed,
// waiting longer after each failure (from 100ms up to 2s) and logging it.
// The error it gives up with names the dependency and its address, for the
// start-up of a process whose dependency is unreachable:
// "NATS at nats://127.0.0.1:4222 unreachable after 30s: ...".
func Await(ctx context.Context, log *slog.Logger, name, addr string, timeout time.Duration, try func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 100 * time.Millisecond
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := try(ctx)
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("%s at %s: %w", name, addr, perm.err)
		}
		if err == nil {
			if attempt > 1 {
				log.Info("dependency reachable", "dependency", name, "addr", addr, "after", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		log.Warn("dependency unreachable; retrying", "dependency", name, "addr", addr, "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s at %s unreachable after %s: %w", name, addr, time.Since(start).Round(time.Second), err)
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// Permanent marks an error of Await's try function that waiting cannot
// cure (a schema newer than the program): Await returns it at once.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }
