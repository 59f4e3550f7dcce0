// Command c2s runs one client-to-server node: it accepts XMPP clients,
// authenticates them against the roster service's internal listener,
// registers their sessions with the presence service and exchanges their
// stanzas with the routers over NATS. Run `c2s --help` for the settings.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/natsconn"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	"github.com/switchboard-xmpp/switchboard/internal/tlsconf"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/c2s"
)

type settings struct {
	domains       []string
	certDir       string
	listen        string
	directTLS     string
	certFile      string
	keyFile       string
	dataDir       string
	natsURL       string
	subjectPrefix string
	rosterAddr    string
	presenceAddr  string
	healthListen  string
	node          string
	tls           grpcx.TLSFiles
	startup       time.Duration
	heartbeatTTL  time.Duration
	shutdown      time.Duration
	drainRedirect string
	drainSpread   time.Duration
	drainDeadline time.Duration
	log           config.Log
	abuse         c2s.AbuseLimits
}

func declare(s *settings) *config.Set {
	set := config.New("c2s", "Usage: c2s [flags]\n\nServes XMPP clients (RFC 6120) until SIGINT or SIGTERM.")
	set.Domains(&s.domains)
	set.String(&s.listen, "c2s-listen", ":5222", "client (STARTTLS) listen address, host:port").Required()
	set.String(&s.directTLS, "c2s-direct-tls-listen", ":5223", `client direct TLS (XEP-0368) listen address; "off" disables it`)
	set.String(&s.certFile, "cert-file", "", "PEM certificate chain for clients, the default one; empty: a self-signed one per domain in --data-dir (local use only)")
	set.String(&s.keyFile, "key-file", "", "PEM private key of --cert-file").Check(func() error {
		if (s.certFile == "") != (s.keyFile == "") {
			return errors.New("--cert-file and --key-file go together")
		}
		return nil
	})
	set.String(&s.certDir, "cert-dir", "", "directory of one certificate per domain, <dir>/<domain>/tls.crt and tls.key (a Kubernetes TLS Secret mounted per domain), chosen by the name the client asks for (SNI); re-read when changed")
	set.String(&s.dataDir, "data-dir", "./data", "directory of the self-signed certificate when --cert-file is empty")
	set.String(&s.natsURL, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated").Required()
	set.String(&s.subjectPrefix, "subject-prefix", bus.DefaultPrefix, "prefix of every NATS subject of this deployment").Required()
	set.String(&s.rosterAddr, "roster-internal-grpc", "127.0.0.1:9091", "roster service's internal gRPC address (CredentialService), host:port").Required()
	set.String(&s.presenceAddr, "presence-grpc", "127.0.0.1:9190", "presence service's gRPC address, host:port").Required()
	set.String(&s.healthListen, "health-listen", ":8080", "HTTP listen address of /healthz, /readyz and /metrics").Required()
	set.NodeID(&s.node)
	grpcx.DeclareTLS(set, &s.tls)
	set.Duration(&s.startup, "startup-timeout", 30*time.Second, "how long to wait for NATS, roster and presence at start")
	set.Duration(&s.heartbeatTTL, "heartbeat-ttl", 5*time.Second, "how long the presence service keeps this node's sessions after its last heartbeat; heartbeats go every third of it").Check(func() error {
		if s.heartbeatTTL < 30*time.Millisecond || s.heartbeatTTL > time.Hour {
			return errors.New("must be between 30ms and 1h")
		}
		return nil
	})
	set.Duration(&s.shutdown, "shutdown-timeout", 10*time.Second, "how long each phase of a graceful stop may take: the drain of the clients at SIGTERM, then the stop of the process")
	set.String(&s.drainRedirect, "drain-redirect", "", "at SIGTERM, send clients to this host[:port] with <see-other-host/>; empty: <system-shutdown/>").Check(func() error {
		if s.drainRedirect == "" {
			return nil
		}
		return c2s.CheckRedirect(s.drainRedirect)
	})
	set.Duration(&s.drainSpread, "drain-spread", c2s.DefaultDrainSpread, "a drain closes the client streams one after the other over this period (at most half the drain's deadline)").Check(func() error {
		if s.drainSpread < 0 {
			return errors.New("negative")
		}
		return nil
	})
	set.Duration(&s.drainDeadline, "drain-deadline", c2s.DefaultDrainDeadline, "deadline of a drain asked for by a control request that gives none").Check(func() error {
		if s.drainDeadline <= 0 {
			return errors.New("must be positive")
		}
		return nil
	})
	set.Logging(&s.log, "json")
	declareLimits(set, &s.abuse)
	return set
}

// declareLimits declares the abuse controls' settings (see the c2s
// package's limits.go and docs/operations.md).
func declareLimits(set *config.Set, a *c2s.AbuseLimits) {
	for _, l := range a.LimitSettings() {
		if l.Int != nil {
			set.Int(l.Int, l.Name, l.Default, l.Usage).Check(l.Check)
		} else {
			set.Duration(l.Duration, l.Name, l.DefaultD, l.Usage).Check(l.Check)
		}
	}
	a.Exempt, _ = c2s.ParseExempt(c2s.DefaultExempt)
	set.Func("c2s-limit-exempt", c2s.DefaultExempt, `networks the per-address limits skip, comma-separated CIDR prefixes or addresses; "none": none`,
		func(v string) (err error) {
			a.Exempt, err = c2s.ParseExempt(v)
			return err
		})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, env config.LookupEnv, stdout, stderr io.Writer) int {
	var s settings
	set := declare(&s)
	if _, err := set.Parse(args, env); err != nil {
		if errors.Is(err, config.ErrHelp) {
			set.Usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "c2s: %v\n", err)
		return 2
	}
	if s.directTLS == "off" {
		s.directTLS = ""
	}
	s.abuse.FlagsDone()
	if err := serve(ctx, set, &s, stderr); err != nil {
		fmt.Fprintf(stderr, "c2s: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, set *config.Set, s *settings, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("node", s.node)
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	mx := metrics.New()
	tp, stopTracing, err := tracing.Setup(ctx, "c2s")
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	obs := grpcx.Observer{Metrics: mx.GRPC(), Tracing: tp}
	store, err := certificates(s, log)
	if err != nil {
		if s.certDir != "" {
			return fmt.Errorf("--cert-file/--cert-dir: %w", err)
		}
		return set.Wrap("cert-file", err)
	}
	rosterConn, err := health.DialServing(ctx, log, "roster (internal)", s.rosterAddr, s.tls, s.startup, obs.DialOptions()...)
	if err != nil {
		return set.Wrap("roster-internal-grpc", err)
	}
	closers = append(closers, func() { rosterConn.Close() })
	presenceConn, err := health.DialServing(ctx, log, "presence", s.presenceAddr, s.tls, s.startup, obs.DialOptions()...)
	if err != nil {
		return set.Wrap("presence-grpc", err)
	}
	closers = append(closers, func() { presenceConn.Close() })
	nc, err := natsconn.Connect(ctx, log, s.natsURL, "switchboard-c2s-"+s.node, s.startup, mx.NATS().Client("c2s"))
	if err != nil {
		return set.Wrap("nats-url", err)
	}
	closers = append(closers, nc.Close)

	srv, err := c2s.New(c2s.Config{
		Domain:          s.domains[0],
		Domains:         s.domains[1:],
		Node:            s.node,
		Listen:          s.listen,
		ListenDirectTLS: s.directTLS,
		TLS:             tlsconf.Dynamic(store.GetCertificate, false),
		Credentials:     rosterv1.NewCredentialServiceClient(rosterConn),
		Sessions:        presencev1.NewSessionRegistryClient(presenceConn),
		NATS:            nc,
		Subjects:        bus.New(s.subjectPrefix, bus.DefaultPartitions),
		Abuse:           s.abuse,
		DrainSpread:     s.drainSpread,
		DrainDeadline:   s.drainDeadline,
		Logger:          log,
		Metrics:         mx.C2S(),
		Tracer:          tracing.New(tp, "c2s"),
	})
	if err != nil {
		return err
	}

	// Whatever an earlier process under this node name left in the
	// registry goes before any client can bind (services/presence/doc.go).
	registry := presencev1.NewSessionRegistryClient(presenceConn)
	hb := &heartbeater{log: log, registry: registry, node: s.node, ttl: s.heartbeatTTL, srv: srv}
	startCtx, cancelStart := context.WithTimeout(ctx, s.startup)
	err = hb.start(startCtx)
	cancelStart()
	if err != nil {
		done, cancel := context.WithCancel(ctx)
		cancel()
		srv.Run(done)
		return set.Wrap("presence-grpc", err)
	}

	probe := health.New()
	probe.ServeMetrics(mx.Handler())
	probe.AddCheck("NATS", natsconn.Check(nc))
	probe.AddCheck("c2s", func() error {
		if srv.Draining() {
			return errors.New("draining")
		}
		return nil
	})
	p := &health.Process{Log: log, Probe: probe, ShutdownTimeout: s.shutdown}
	// A drain ends the process: once asked by a control request, when the
	// node is empty (c2s Run returns); at SIGTERM, before the usual stop.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	c2sDone := make(chan struct{})
	p.Go("c2s", func(ctx context.Context) error {
		defer close(c2sDone)
		err := srv.Run(ctx)
		if err == nil && srv.Draining() && ctx.Err() == nil {
			log.Info("drained; stopping the process")
			stopRun()
		}
		return err
	})
	go drainOnSignal(ctx, runCtx, log, srv, s, c2sDone, stopRun)
	p.Go("heartbeat", hb.run)
	status, err := nodes.New(nodes.Config{NATS: nc, Subjects: bus.New(s.subjectPrefix, bus.DefaultPartitions), Service: "c2s", Node: s.node, Ready: probe.Ready, Logger: log,
		Connections: srv.SessionCount, Draining: srv.Draining,
	})
	if err != nil {
		return err
	}
	p.Go("node status", status.Run)
	p.Go("certificates", func(ctx context.Context) error { store.Watch(ctx); return nil })
	// Runs after c2s has stopped and unbound what it could: whatever is
	// left of this node in the registry goes now, not at the reap.
	p.OnStop("sessions", func(ctx context.Context) error {
		r, err := registry.DropNode(ctx, &presencev1.DropNodeRequest{Node: s.node})
		if err != nil {
			return fmt.Errorf("DropNode: %w", err)
		}
		log.Info("dropped this node's sessions from the registry", "removed", r.Removed)
		return nil
	})
	p.OnStop("NATS", func(ctx context.Context) error { return natsconn.Drain(ctx, nc) })
	if p.HTTP, err = health.Listen(s.healthListen, probe); err != nil {
		// c2s bound its listeners in New: a Run whose context has ended
		// closes them.
		done, cancel := context.WithCancel(ctx)
		cancel()
		srv.Run(done)
		return set.Wrap("health-listen", err)
	}
	log.Info("starting", "service", "c2s", "c2s", addr(srv.Addr()), "direct_tls", addr(srv.DirectTLSAddr()),
		"health", p.HTTP.Addr().String(), "nats", s.natsURL, "subject_prefix", s.subjectPrefix,
		"roster", s.rosterAddr, "presence", s.presenceAddr, "mtls", s.tls.Enabled())
	return p.Run(runCtx)
}

// drainOnSignal waits for the signal (ctx ends) and drains the node
// within the shutdown timeout before the process stops: clients are sent
// to --drain-redirect or told <system-shutdown/>, spread over
// --drain-spread, while the node still routes their last stanzas.
func drainOnSignal(ctx, runCtx context.Context, log *slog.Logger, srv *c2s.Server, s *settings, c2sDone <-chan struct{}, stop func()) {
	select {
	case <-ctx.Done():
	case <-runCtx.Done():
		return
	}
	defer stop()
	n, err := srv.Drain(c2s.DrainOptions{Redirect: s.drainRedirect, Deadline: s.shutdown})
	if err != nil {
		log.Error("drain at stop", "err", err)
		return
	}
	log.Info("stop requested; draining the clients first", "sessions", n, "redirect", s.drainRedirect, "deadline", s.shutdown)
	t := time.NewTimer(s.shutdown + time.Second)
	defer t.Stop()
	select {
	case <-c2sDone:
	case <-t.C:
		log.Warn("the drain did not end within the shutdown timeout; stopping anyway")
	case <-runCtx.Done():
	}
}

// rebinder is what the heartbeat needs of the c2s server.
type rebinder interface {
	Rebind(ctx context.Context) (int, error)
}

// heartbeater keeps this node alive in the presence service's registry,
// as services/presence/doc.go asks of a c2s node.
type heartbeater struct {
	log      *slog.Logger
	registry presencev1.SessionRegistryClient
	node     string
	ttl      time.Duration
	srv      rebinder
	epoch    uint64
}

// start drops what an earlier process of this node left in the registry,
// then sends the first heartbeat and keeps its epoch. Both are retried
// until ctx ends (the start-up timeout) or they succeed: a node that
// cannot clear its name must not accept clients.
func (h *heartbeater) start(ctx context.Context) error {
	interval := h.ttl / 3
	for {
		err := h.dropAndBeat(ctx)
		if err == nil {
			return nil
		}
		h.log.Warn("clearing this node in the registry failed; retrying", "err", err, "retry_in", interval)
		select {
		case <-ctx.Done():
			return fmt.Errorf("clearing node %s in the registry: %w", h.node, err)
		case <-time.After(interval):
		}
	}
}

func (h *heartbeater) dropAndBeat(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, h.ttl)
	defer cancel()
	r, err := h.registry.DropNode(cctx, &presencev1.DropNodeRequest{Node: h.node})
	if err != nil {
		return fmt.Errorf("DropNode: %w", err)
	}
	if r.Removed > 0 {
		h.log.Info("removed sessions an earlier process of this node left in the registry", "removed", r.Removed)
	}
	hb, err := h.registry.Heartbeat(cctx, &presencev1.HeartbeatRequest{Node: h.node, TtlMs: h.ttl.Milliseconds()})
	if err != nil {
		return fmt.Errorf("Heartbeat: %w", err)
	}
	h.epoch = hb.Epoch
	return nil
}

// run sends a heartbeat every third of the TTL until ctx ends. When the
// epoch changed, the registry removed this node's sessions while it was
// out of reach: every session the node still holds is bound again. A
// failed heartbeat or re-bind is logged and retried at the next tick: the
// node keeps serving while the presence service is away.
func (h *heartbeater) run(ctx context.Context) error {
	interval := h.ttl / 3
	t := time.NewTicker(interval)
	defer t.Stop()
	rebind := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		r, err := h.registry.Heartbeat(cctx, &presencev1.HeartbeatRequest{Node: h.node, TtlMs: h.ttl.Milliseconds()})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("heartbeat failed", "err", err)
			}
			continue
		}
		if r.Epoch != h.epoch {
			h.log.Warn("the registry removed sessions of this node (heartbeat epoch changed); binding them again", "old", h.epoch, "new", r.Epoch)
			h.epoch = r.Epoch
			rebind = true
		}
		if rebind {
			n, err := h.srv.Rebind(ctx)
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("binding this node's sessions again failed; retrying at the next heartbeat", "rebound", n, "err", err)
				}
				continue
			}
			h.log.Info("bound this node's sessions again", "sessions", n)
			rebind = false
		}
	}
}

// certificates returns the certificates presented to clients: the
// operator's (--cert-file, --cert-dir), or without --cert-file a
// self-signed one per domain kept in the data directory, used for the
// domains --cert-dir has no certificate of.
func certificates(s *settings, log *slog.Logger) (*certs.Store, error) {
	var static []tls.Certificate
	if s.certFile == "" {
		for _, d := range s.domains {
			c, err := selfSigned(s, d)
			if err != nil {
				return nil, err
			}
			static = append(static, c)
		}
	}
	return certs.NewStore(certs.StoreOptions{
		CertFile: s.certFile,
		KeyFile:  s.keyFile,
		Dir:      s.certDir,
		Static:   static,
		Logger:   log,
	})
}

// selfSigned returns the self-signed certificate of domain kept in the
// data directory, made on first use.
func selfSigned(s *settings, domain string) (tls.Certificate, error) {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	// Nodes sharing a data directory (make cluster-up's two) must not
	// write the pair at the same time: one would read the other's key
	// with its own certificate.
	lock, err := os.OpenFile(filepath.Join(s.dataDir, ".selfsigned.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return tls.Certificate{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return tls.Certificate{}, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	return certs.LoadOrCreate(s.dataDir, "selfsigned-"+domain+"-ecdsa", []string{domain}, false)
}

func addr(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}
