// Command router runs one router: it takes the stanzas c2s nodes publish
// on NATS and delivers them, asking the presence service where sessions
// are and the roster service whether accounts exist. Run several for
// capacity; run `router --help` for the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/natsconn"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/router"
)

type settings struct {
	domains       []string
	natsURL       string
	subjectPrefix string
	rosterAddr    string
	rosterIntAddr string
	presenceAddr  string
	healthListen  string
	node          string
	tls           grpcx.TLSFiles
	startup       time.Duration
	shutdown      time.Duration
	log           config.Log
	admin         adminSettings

	sessionCache    int
	sessionCacheTTL time.Duration
}

func declare(s *settings) *config.Set {
	set := config.New("router", "Usage: router [flags]\n\nRoutes stanzas between the c2s nodes until SIGINT or SIGTERM.")
	set.Domains(&s.domains)
	set.String(&s.natsURL, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated").Required()
	set.String(&s.subjectPrefix, "subject-prefix", bus.DefaultPrefix, "prefix of every NATS subject of this deployment").Required()
	set.String(&s.rosterAddr, "roster-grpc", "127.0.0.1:9090", "roster service's public gRPC address, host:port").Required()
	set.String(&s.rosterIntAddr, "roster-internal-grpc", "127.0.0.1:9091", "roster service's internal gRPC address (RosterService), host:port").Required()
	set.String(&s.presenceAddr, "presence-grpc", "127.0.0.1:9190", "presence service's gRPC address, host:port").Required()
	set.String(&s.healthListen, "health-listen", ":8080", "HTTP listen address of /healthz, /readyz and /metrics").Required()
	set.NodeID(&s.node)
	grpcx.DeclareTLS(set, &s.tls)
	set.Duration(&s.startup, "startup-timeout", 30*time.Second, "how long to wait for NATS, roster and presence at start")
	set.Duration(&s.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful stop may take")
	set.Int(&s.sessionCache, "session-cache", router.DefaultSessionCacheSize, "accounts whose sessions are cached from the presence service's answers (0: no cache)")
	set.Duration(&s.sessionCacheTTL, "session-cache-ttl", router.DefaultSessionCacheTTL, "longest time a cached answer is used")
	set.Logging(&s.log, "json")
	declareAdmin(set, &s.admin)
	return set
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
		fmt.Fprintf(stderr, "router: %v\n", err)
		return 2
	}
	if err := serve(ctx, set, &s, stderr); err != nil {
		fmt.Fprintf(stderr, "router: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, set *config.Set, s *settings, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("service", "router", "node", s.node)
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	mx := metrics.New()
	tp, stopTracing, err := tracing.Setup(ctx, "router")
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	obs := grpcx.Observer{Metrics: mx.GRPC(), Tracing: tp}
	rosterConn, err := health.DialServing(ctx, log, "roster", s.rosterAddr, s.tls, s.startup, obs.DialOptions()...)
	if err != nil {
		return set.Wrap("roster-grpc", err)
	}
	closers = append(closers, func() { rosterConn.Close() })
	rosterIntConn, err := health.DialServing(ctx, log, "roster internal", s.rosterIntAddr, s.tls, s.startup, obs.DialOptions()...)
	if err != nil {
		return set.Wrap("roster-internal-grpc", err)
	}
	closers = append(closers, func() { rosterIntConn.Close() })
	presenceConn, err := health.DialServing(ctx, log, "presence", s.presenceAddr, s.tls, s.startup, obs.DialOptions()...)
	if err != nil {
		return set.Wrap("presence-grpc", err)
	}
	closers = append(closers, func() { presenceConn.Close() })
	nc, err := natsconn.Connect(ctx, log, s.natsURL, "switchboard-router-"+s.node, s.startup, mx.NATS().Client("router"))
	if err != nil {
		return set.Wrap("nats-url", err)
	}
	closers = append(closers, nc.Close)

	r, err := router.New(router.Config{
		Domain:   s.domains[0],
		Domains:  s.domains[1:],
		Node:     s.node,
		NATS:     nc,
		Subjects: bus.New(s.subjectPrefix, bus.DefaultPartitions),
		Sessions: presencev1.NewSessionRegistryClient(presenceConn),
		Accounts: rosterv1.NewAccountServiceClient(rosterConn),
		Roster:   rosterv1.NewRosterServiceClient(rosterIntConn),
		Logger:   log,

		SessionCacheSize: s.sessionCache,
		SessionCacheTTL:  s.sessionCacheTTL,
		Metrics:          mx.Router(),
		Tracer:           tracing.New(tp, "router"),
	})
	if err != nil {
		return err
	}

	probe := health.New()
	probe.ServeMetrics(mx.Handler())
	probe.AddCheck("NATS", natsconn.Check(nc))
	p := &health.Process{Log: log, Probe: probe, ShutdownTimeout: s.shutdown}
	p.Go("router", r.Run)
	subjects := bus.New(s.subjectPrefix, bus.DefaultPartitions)
	if err := startNodeStatus(p, nc, subjects, s.node, probe, log); err != nil {
		return err
	}
	if err := startAdmin(set, s, p, probe, nc, subjects, rosterConn, rosterIntConn, presenceConn, log); err != nil {
		return err
	}
	p.OnStop("NATS", func(ctx context.Context) error { return natsconn.Drain(ctx, nc) })
	if p.HTTP, err = health.Listen(s.healthListen, probe); err != nil {
		return set.Wrap("health-listen", err)
	}
	log.Info("starting", "health", p.HTTP.Addr().String(), "nats", s.natsURL, "subject_prefix", s.subjectPrefix,
		"roster", s.rosterAddr, "presence", s.presenceAddr, "mtls", s.tls.Enabled())
	return p.Run(ctx)
}
