// Package app runs every Switchboard service in one process, with embedded
// backends: an in-process NATS server, the SQLite account store and the
// in-memory session registry. The services talk to each other exactly as in
// a cluster, over NATS subjects and generated gRPC clients; only the
// transports are in-process.
//
// Several Apps can run side by side in one process (tests do): each has its
// own data directory, NATS server and gRPC server, and every listener takes
// port 0.
package app

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	"github.com/switchboard-xmpp/switchboard/internal/tlsconf"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/c2s"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/memstore"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore"
	"github.com/switchboard-xmpp/switchboard/services/router"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// App is one Switchboard node with all its services.
type App struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Registry // every service's, served at /metrics
	nm      *metrics.NATS

	store    *sqlitestore.Store
	nats     *natsembed.Server
	roster   *roster.Service
	presence *presence.Service
	grpc     *grpc.Server
	health   *health.Server
	inproc   *grpcx.Listener
	grpcTCP  net.Listener
	conn     *grpc.ClientConn
	routerNC *nats.Conn
	c2sNC    *nats.Conn
	router   *router.Router
	c2s      *c2s.Server
	fed      *federation // s2s (s2s.go)
	admin    *adminAPI   // admin API and node status (admin.go)
	certs    *certs.Store
	http     *http.Server
	httpLn   net.Listener

	ready      atomic.Bool
	stopping   atomic.Bool
	c2sStarted atomic.Bool

	mu      sync.Mutex
	running bool
	stop    context.CancelFunc // cancels a running Run
	done    chan struct{}      // closed when Run has returned
	readyCh chan struct{}      // closed when Run has started every service
	closers []closer           // what New built, in start order
	closed  bool
}

type closer struct {
	name string
	fn   func(ctx context.Context) error
}

// New checks cfg and builds every service in start order: data directory,
// account store, embedded NATS, the gRPC server with the roster, presence
// and health services, the client connection to it, the router, c2s. It
// binds every listener, so the addresses are known when it returns, but
// serves nothing until Run. On error it releases what it built.
func New(cfg Config) (*App, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger, metrics: metrics.New(), done: make(chan struct{}), readyCh: make(chan struct{})}
	a.nm = a.metrics.NATS()
	if err := a.build(); err != nil {
		a.release(context.Background())
		return nil, err
	}
	return a, nil
}

func (a *App) onClose(name string, fn func(ctx context.Context) error) {
	a.closers = append(a.closers, closer{name, fn})
}

func (a *App) build() error {
	cfg := a.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return &SettingError{SettingDataDir, cfg.DataDir, err}
	}

	var err error
	if a.certs, err = a.loadCertificates(); err != nil {
		return err
	}

	st, err := sqlitestore.Open(context.Background(), DBPath(cfg.DataDir))
	if err != nil {
		return fmt.Errorf("account store %s: %w", DBPath(cfg.DataDir), err)
	}
	a.store = st
	a.onClose("account store", func(context.Context) error { return st.Close() })

	if err := probeListen(cfg.NATSListen); err != nil {
		return &SettingError{SettingNATSListen, cfg.NATSListen, err}
	}
	// JetStream keeps accepted stanzas until a router has routed them
	// (design note 002); its directory is in the data directory.
	ns, err := natsembed.Start(natsembed.Options{Listen: cfg.NATSListen, JetStreamDir: filepath.Join(cfg.DataDir, "nats")})
	if err != nil {
		if cfg.NATSListen != "" {
			return &SettingError{SettingNATSListen, cfg.NATSListen, err}
		}
		return fmt.Errorf("embedded NATS: %w", err)
	}
	a.nats = ns
	a.onClose("embedded NATS", func(context.Context) error { ns.Shutdown(); return nil })
	if u := ns.ClientURL(); u != "" {
		a.log.Info("NATS listening", "url", u)
	}

	a.roster, err = roster.New(roster.Config{
		Store:     st,
		DigestMD5: cfg.DigestMD5,
		Logger:    a.log.With("service", "roster"),
		Metrics:   a.metrics.Roster(),
	})
	if err != nil {
		return err
	}
	// The presence service announces every change of an account's
	// sessions, which evicts the router's session cache.
	presenceNC, err := ns.Connect(append(a.nm.Client("presence").Options(), nats.Name("switchboard-presence-"+cfg.NodeID))...)
	if err != nil {
		return fmt.Errorf("NATS connection for presence: %w", err)
	}
	a.onClose("presence NATS connection", drainer(presenceNC))
	a.presence, err = presence.New(presence.Config{
		Store:   memstore.New(),
		Logger:  a.log.With("service", "presence"),
		Events:  presenceNC,
		Metrics: a.metrics.Presence(),
	})
	if err != nil {
		return err
	}

	obs := grpcx.Observer{Metrics: a.metrics.GRPC(), Tracing: cfg.TracerProvider}
	a.grpc = grpc.NewServer(obs.ServerOptions()...)
	a.health = health.NewServer()
	a.roster.Register(a.grpc)
	a.presence.Register(a.grpc)
	healthpb.RegisterHealthServer(a.grpc, a.health)
	grpcx.RegisterReflection(a.grpc)
	// Until Run has started everything, nothing is serving.
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	a.inproc = grpcx.Listen()
	a.onClose("gRPC server", a.stopGRPC)
	if cfg.GRPCListen != "" {
		ln, err := net.Listen("tcp", cfg.GRPCListen)
		if err != nil {
			return &SettingError{SettingGRPCListen, cfg.GRPCListen, err}
		}
		a.grpcTCP = ln
		a.log.Info("gRPC listening", "addr", ln.Addr().String())
	}

	a.conn, err = grpcx.Dial(a.inproc, obs.DialOptions()...)
	if err != nil {
		return fmt.Errorf("gRPC client: %w", err)
	}
	conn := a.conn
	a.onClose("gRPC client", func(context.Context) error { return conn.Close() })

	subjects := bus.New(bus.DefaultPrefix, bus.DefaultPartitions)
	// In one process the route stream is kept in memory: a crash ends
	// every session with the stanzas in flight, so files would buy
	// little, and they double a message's latency (design note 002).
	routeStream := bus.StreamOptions{Memory: true}

	a.routerNC, err = ns.Connect(append(a.nm.Client("router").Options(), nats.Name("switchboard-router-"+cfg.NodeID))...)
	if err != nil {
		return fmt.Errorf("NATS connection for the router: %w", err)
	}
	a.onClose("router NATS connection", drainer(a.routerNC))
	a.router, err = router.New(router.Config{
		Domain:   cfg.Domain,
		Domains:  cfg.Domains,
		Node:     cfg.NodeID,
		NATS:     a.routerNC,
		Subjects: subjects,
		Stream:   routeStream,
		Sessions: presencev1.NewSessionRegistryClient(conn),
		Accounts: rosterv1.NewAccountServiceClient(conn),
		Roster:   rosterv1.NewRosterServiceClient(conn),
		Logger:   a.log.With("service", "router"),

		SessionCacheSize: router.DefaultSessionCacheSize,
		Metrics:          a.metrics.Router(),
		Tracer:           tracing.New(cfg.TracerProvider, "router"),
	})
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}

	a.c2sNC, err = ns.Connect(append(a.nm.Client("c2s").Options(), nats.Name("switchboard-c2s-"+cfg.NodeID))...)
	if err != nil {
		return fmt.Errorf("NATS connection for c2s: %w", err)
	}
	a.onClose("c2s NATS connection", drainer(a.c2sNC))
	mechs := cfg.Mechanisms
	if mechs == nil && cfg.DigestMD5 {
		// The option both stores the hash and offers the mechanism, last.
		mechs = append(sasl.DefaultMechanisms(), sasl.DigestMD5)
	}
	a.c2s, err = c2s.New(c2s.Config{
		Domain:             cfg.Domain,
		Domains:            cfg.Domains,
		Node:               cfg.NodeID,
		Listen:             cfg.C2SListen,
		ListenDirectTLS:    cfg.C2SDirectTLSListen,
		TLS:                tlsconf.Dynamic(a.certs.GetCertificate, cfg.Legacy3DES),
		TLSOptional:        cfg.TLSOptional,
		AllowPlaintextAuth: cfg.AllowPlaintextAuth,
		Mechanisms:         mechs,
		Limits:             stream.Limits{MaxStanzaBytes: cfg.MaxStanzaBytes},
		MaxAuthFailures:    cfg.MaxAuthFailures,
		NegotiationTimeout: cfg.NegotiationTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		KeepaliveInterval:  cfg.KeepaliveInterval,
		Abuse:              cfg.Abuse,
		DrainSpread:        cfg.DrainSpread,
		Credentials:        rosterv1.NewCredentialServiceClient(conn),
		Sessions:           presencev1.NewSessionRegistryClient(conn),
		NATS:               a.c2sNC,
		Subjects:           subjects,
		Stream:             routeStream,
		Logger:             a.log, // c2s adds service=c2s itself
		Metrics:            a.metrics.C2S(),
		Tracer:             tracing.New(cfg.TracerProvider, "c2s"),
	})
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "listen" {
			// c2s could not bind: name the setting (c2s names its field).
			if strings.Contains(err.Error(), "ListenDirectTLS") {
				return &SettingError{SettingC2SDirectTLSListen, cfg.C2SDirectTLSListen, oe.Err}
			}
			return &SettingError{SettingC2SListen, cfg.C2SListen, oe.Err}
		}
		return err
	}
	a.onClose("c2s listeners", func(ctx context.Context) error {
		if a.c2sStarted.Load() {
			return nil // Run stopped it
		}
		// c2s bound its listeners in New and has no Close: a Run whose
		// context has already ended closes them and returns.
		done, cancel := context.WithCancel(ctx)
		cancel()
		return a.c2s.Run(done)
	})
	a.log.Info("c2s listening", "addr", addrString(a.c2s.Addr()), "direct_tls", addrString(a.c2s.DirectTLSAddr()))
	if a.fed, err = a.buildS2S(subjects); err != nil {
		return err
	}
	if a.admin, err = a.buildAdmin(subjects); err != nil {
		return err
	}

	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return &SettingError{SettingMetricsListen, cfg.MetricsListen, err}
		}
		a.httpLn = ln
		a.http = &http.Server{Handler: a.healthHandler(), ReadHeaderTimeout: 5 * time.Second}
		a.onClose("health HTTP server", func(ctx context.Context) error {
			err := a.http.Shutdown(ctx)
			a.httpLn.Close() // when never served
			return err
		})
		a.log.Info("health endpoints listening", "addr", ln.Addr().String())
	}
	return nil
}

// loadCertificates returns the store of the certificates c2s and s2s
// present: the operator's (CertFile, CertDir), reloaded as they change;
// without CertFile, a self-signed ECDSA certificate per domain kept in the
// data directory answers for the domains CertDir has none of; with
// Legacy3DES also an RSA one, which the legacy suite needs.
func (a *App) loadCertificates() (*certs.Store, error) {
	cfg := a.cfg
	var static []tls.Certificate
	hasRSA := false
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, &SettingError{SettingCertFile, cfg.CertFile, err}
		}
		_, hasRSA = c.PrivateKey.(*rsa.PrivateKey)
	} else {
		for _, d := range cfg.Domains {
			c, err := certs.LoadOrCreate(cfg.DataDir, "selfsigned-"+d+"-ecdsa", []string{d}, false)
			if err != nil {
				return nil, fmt.Errorf("self-signed certificate: %w", err)
			}
			static = append(static, c)
		}
	}
	if cfg.Legacy3DES && !hasRSA {
		if cfg.CertFile != "" {
			a.log.Warn("legacy 3DES is on but the configured certificate has no RSA key: adding a self-signed RSA certificate for legacy clients")
		}
		c, err := certs.LoadOrCreate(cfg.DataDir, "selfsigned-"+cfg.Domain+"-rsa", cfg.Domains, true)
		if err != nil {
			return nil, fmt.Errorf("self-signed RSA certificate: %w", err)
		}
		static = append(static, c)
	}
	st, err := certs.NewStore(certs.StoreOptions{
		CertFile:       cfg.CertFile,
		KeyFile:        cfg.KeyFile,
		Dir:            cfg.CertDir,
		Static:         static,
		ReloadInterval: cfg.CertReloadInterval,
		Logger:         a.log.With("component", "certificates"),
	})
	if err != nil {
		if cfg.CertDir != "" {
			return nil, &SettingError{SettingCertDir, cfg.CertDir, err}
		}
		return nil, &SettingError{SettingCertFile, cfg.CertFile, err}
	}
	return st, nil
}

// Run serves until ctx ends or a service fails, then stops every service in
// reverse start order within the shutdown timeout. It returns nil after a
// stop asked for by ctx, or the first service's error. Run may be called
// once.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running || a.closed {
		a.mu.Unlock()
		return errors.New("app: Run called twice or after Close")
	}
	a.running = true
	ctx, cancel := context.WithCancel(ctx)
	a.stop = cancel
	a.mu.Unlock()
	defer close(a.done)
	defer cancel()
	watchDone := make(chan struct{})
	go func() { a.certs.Watch(ctx); close(watchDone) }()
	defer func() { cancel(); <-watchDone }()

	errc := make(chan error, 6)
	serve := func(name string, fn func() error) {
		go func() {
			err := fn()
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	serve("gRPC (in-process)", func() error { return a.grpc.Serve(a.inproc) })
	if a.grpcTCP != nil {
		serve("gRPC", func() error { return a.grpc.Serve(a.grpcTCP) })
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, s := range []string{
		rosterv1.AccountService_ServiceDesc.ServiceName,
		rosterv1.CredentialService_ServiceDesc.ServiceName,
		presencev1.SessionRegistry_ServiceDesc.ServiceName,
	} {
		a.health.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
	}

	routerCtx, stopRouter := context.WithCancel(context.Background())
	routerDone := make(chan struct{})
	go func() {
		defer close(routerDone)
		if err := a.router.Run(routerCtx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("router: %w", err)
		}
	}()
	// Clients may send stanzas as soon as c2s accepts them: let the router
	// subscribe first.
	if err := a.waitRouterSubscribed(ctx, errc); err != nil {
		stopRouter()
		a.wait(context.Background(), "router", routerDone)
		a.release(context.Background())
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	stopS2S := a.fed.run(errc)
	c2sCtx, stopC2S := context.WithCancel(context.Background())
	c2sDone := make(chan struct{})
	a.c2sStarted.Store(true)
	go func() {
		defer close(c2sDone)
		err := a.c2s.Run(c2sCtx)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			errc <- fmt.Errorf("c2s: %w", err)
		case err == nil && a.c2s.Draining() && c2sCtx.Err() == nil:
			// Drained by a control request: the process ends.
			a.log.Info("c2s drained; stopping")
			cancel()
		}
	}()
	if a.http != nil {
		serve("health HTTP", func() error { return a.http.Serve(a.httpLn) })
	}
	stopAdmin := a.admin.run(serve)
	a.ready.Store(true)
	close(a.readyCh)
	a.log.Info("switchboard started", "domains", a.cfg.Domains, "node", a.cfg.NodeID,
		"c2s", addrString(a.C2SAddr()), "direct_tls", addrString(a.DirectTLSAddr()))

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case runErr = <-errc:
		a.log.Error("a service failed; stopping", "err", runErr)
	}
	a.ready.Store(false)
	if runErr == nil {
		a.drainC2S(c2sDone)
	}
	a.stopping.Store(true)

	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer scancel()
	// Reverse start order: first the edge, so no new stanzas come in, then
	// the router, then what they both use.
	stopAdmin()
	stopC2S()
	a.wait(sctx, "c2s", c2sDone)
	stopS2S()
	stopRouter()
	a.wait(sctx, "router", routerDone)
	a.release(sctx)
	a.log.Info("switchboard stopped")
	return runErr
}

// drainC2S sends the clients away (see-other-host to DrainRedirect, or
// system-shutdown) and waits, within the shutdown timeout, until c2s has
// no session left, before the services stop.
func (a *App) drainC2S(c2sDone <-chan struct{}) {
	n, err := a.c2s.Drain(c2s.DrainOptions{Redirect: a.cfg.DrainRedirect, Deadline: a.cfg.ShutdownTimeout})
	if err != nil {
		a.log.Error("drain at stop", "err", err)
		return
	}
	a.log.Info("draining the clients before the stop", "sessions", n, "redirect", a.cfg.DrainRedirect)
	t := time.NewTimer(a.cfg.ShutdownTimeout + time.Second)
	defer t.Stop()
	select {
	case <-c2sDone:
	case <-t.C:
		a.log.Warn("the drain did not end within the shutdown timeout; stopping anyway")
	}
}

// waitRouterSubscribed returns once the router's route subscription is
// known to the NATS server. The router's connection is its own, so its
// first subscription is the router's; a flush after it is the round trip
// that proves the server has it.
func (a *App) waitRouterSubscribed(ctx context.Context, errc chan error) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for a.routerNC.NumSubscriptions() == 0 {
		select {
		case <-tick.C:
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("router: not subscribed after 10s")
		}
	}
	if err := a.routerNC.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// Ready is closed once Run has started every service and clients can
// connect.
func (a *App) Ready() <-chan struct{} { return a.readyCh }

func (a *App) wait(ctx context.Context, name string, done <-chan struct{}) {
	select {
	case <-done:
	case <-ctx.Done():
		a.log.Warn("service did not stop within the shutdown timeout", "service", name)
	}
}

// stopGRPC marks every service NOT_SERVING and stops the gRPC server,
// letting calls in flight finish until ctx ends.
func (a *App) stopGRPC(ctx context.Context) error {
	a.health.Shutdown()
	done := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		a.grpc.Stop()
		<-done
	}
	// GracefulStop closes the listeners it served; these were maybe never
	// served (Close without Run).
	a.inproc.Close()
	if a.grpcTCP != nil {
		a.grpcTCP.Close()
	}
	return nil
}

// release runs the closers of what New built, in reverse order.
func (a *App) release(ctx context.Context) {
	a.mu.Lock()
	cl := a.closers
	a.closers = nil
	a.closed = true
	a.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		if err := cl[i].fn(ctx); err != nil {
			a.log.Warn("stop", "component", cl[i].name, "err", err)
		}
	}
}

// Close stops a running App (as when Run's context ends) and waits for
// Run to return, or releases what New built when Run was never called.
// It is safe to call more than once.
func (a *App) Close() error {
	a.mu.Lock()
	running, stop := a.running, a.stop
	a.mu.Unlock()
	if running {
		stop()
		<-a.done
		return nil
	}
	a.release(context.Background())
	return nil
}

// C2SAddr is the address of the STARTTLS client listener.
func (a *App) C2SAddr() net.Addr { return a.c2s.Addr() }

// DirectTLSAddr is the address of the direct TLS client listener, or nil.
func (a *App) DirectTLSAddr() net.Addr { return a.c2s.DirectTLSAddr() }

// GRPCAddr is the address of the gRPC TCP listener, or nil.
func (a *App) GRPCAddr() net.Addr {
	if a.grpcTCP == nil {
		return nil
	}
	return a.grpcTCP.Addr()
}

// MetricsAddr is the address of the health HTTP listener, or nil.
func (a *App) MetricsAddr() net.Addr {
	if a.httpLn == nil {
		return nil
	}
	return a.httpLn.Addr()
}

// NATSURL is the URL of the embedded NATS TCP listener, or "".
func (a *App) NATSURL() string { return a.nats.ClientURL() }

// Config returns the configuration in use, defaults filled in.
func (a *App) Config() Config { return a.cfg }

// Roster is the roster service, for in-process administration (tests
// create accounts with it).
func (a *App) Roster() *roster.Service { return a.roster }

// probeListen reports whether addr can be bound now. nats-server binds in
// the background and natsembed.Start then only notices a busy port by
// timing out after 10s; probing first turns the common case (the port is
// taken) into an immediate error. A port taken between probe and start
// still gets the timeout.
func probeListen(addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return oe.Err
		}
		return err
	}
	return ln.Close()
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func drainer(nc *nats.Conn) func(context.Context) error {
	return func(ctx context.Context) error {
		closed := make(chan struct{})
		nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := nc.Drain(); err != nil {
			nc.Close()
			return nil
		}
		select {
		case <-closed:
		case <-ctx.Done():
			nc.Close()
		}
		return nil
	}
}
