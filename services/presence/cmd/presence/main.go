// Command presence runs the presence service, the session registry, on
// Redis. Run `presence --help` for its settings.
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
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/natsconn"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/redisstore"
)

type settings struct {
	grpcListen   string
	healthListen string
	redisAddr    string
	redisPrefix  string
	redisUser    string
	redisPass    string
	natsURL      string
	prefix       string
	reapInterval time.Duration
	node         string
	tls          grpcx.TLSFiles
	startup      time.Duration
	shutdown     time.Duration
	log          config.Log
}

func declare(s *settings) *config.Set {
	set := config.New("presence", "Usage: presence [flags]\n\nRuns the presence service (session registry) on Redis until SIGINT or SIGTERM.")
	set.String(&s.grpcListen, "grpc-listen", ":9190", "gRPC listen address of SessionRegistry and health").Required()
	set.String(&s.healthListen, "health-listen", ":8080", "HTTP listen address of /healthz, /readyz and /metrics").Required()
	set.String(&s.redisAddr, "redis-addr", redisstore.DefaultAddr, "Redis server, host:port").Required()
	set.String(&s.redisPrefix, "redis-prefix", redisstore.DefaultPrefix, "prefix of every Redis key of this deployment")
	set.String(&s.redisUser, "redis-username", "", "Redis ACL user; empty: the default user")
	set.SecretString(&s.redisPass, "redis-password", "", "Redis password (AUTH); empty: none")
	set.String(&s.natsURL, "nats-url", nats.DefaultURL, "NATS server URL(s), where removed sessions are announced").Required()
	set.String(&s.prefix, "subject-prefix", bus.DefaultPrefix, "prefix of every NATS subject of this deployment").Required()
	set.Duration(&s.reapInterval, "reap-interval", presence.DefaultReapInterval, "how often the sessions of c2s nodes whose heartbeat expired are removed")
	set.NodeID(&s.node)
	grpcx.DeclareTLS(set, &s.tls)
	set.Duration(&s.startup, "startup-timeout", 30*time.Second, "how long to wait for Redis at start")
	set.Duration(&s.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful stop may take")
	set.Logging(&s.log, "json")
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
		fmt.Fprintf(stderr, "presence: %v\n", err)
		return 2
	}
	if err := serve(ctx, set, &s, stderr); err != nil {
		fmt.Fprintf(stderr, "presence: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, set *config.Set, s *settings, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("service", "presence", "node", s.node)
	var store *redisstore.Store
	err := health.Await(ctx, log, "Redis", s.redisAddr, s.startup, func(ctx context.Context) error {
		var err error
		store, err = redisstore.Open(ctx, redisstore.Config{Addr: s.redisAddr, Prefix: s.redisPrefix, Username: s.redisUser, Password: s.redisPass})
		return err
	})
	if err != nil {
		return set.Wrap("redis-addr", err)
	}
	mx := metrics.New()
	tp, stopTracing, err := tracing.Setup(ctx, "presence")
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	nc, err := natsconn.Connect(ctx, log, s.natsURL, "switchboard-presence-"+s.node, s.startup, mx.NATS().Client("presence"))
	if err != nil {
		store.Close()
		return set.Wrap("nats-url", err)
	}
	svc, err := presence.New(presence.Config{
		Store:        store,
		Logger:       log,
		Events:       nc,
		Subjects:     bus.New(s.prefix, bus.DefaultPartitions),
		ReapInterval: s.reapInterval,
		Metrics:      mx.Presence(),
	})
	if err != nil {
		nc.Close()
		store.Close()
		return err
	}

	opts, err := grpcx.ServerOptions(s.tls)
	if err != nil {
		store.Close()
		return set.Wrap("grpc-tls-cert", err)
	}
	opts = append(opts, grpcx.Observer{Metrics: mx.GRPC(), Tracing: tp}.ServerOptions()...)
	probe := health.New()
	probe.ServeMetrics(mx.Handler())
	srv := grpc.NewServer(opts...)
	svc.Register(srv)
	grpcx.RegisterHealth(srv, probe.NewGRPC(presencev1.SessionRegistry_ServiceDesc.ServiceName))
	grpcx.RegisterReflection(srv)

	p := &health.Process{Log: log, Probe: probe, ShutdownTimeout: s.shutdown}
	p.OnStop("Redis", func(context.Context) error { return store.Close() })
	p.OnStop("NATS", func(ctx context.Context) error { return natsconn.Drain(ctx, nc) })
	p.Go("reaper", svc.Reaper().Run)
	status, err := nodes.New(nodes.Config{NATS: nc, Subjects: bus.New(s.prefix, bus.DefaultPartitions), Service: "presence", Node: s.node, Ready: probe.Ready, Logger: log})
	if err != nil {
		return err
	}
	p.Go("node status", status.Run)
	ln, err := grpcx.ListenTCP(s.grpcListen)
	if err != nil {
		store.Close()
		return set.Wrap("grpc-listen", err)
	}
	p.GRPC("presence", srv, ln)
	if p.HTTP, err = health.Listen(s.healthListen, probe); err != nil {
		ln.Close()
		store.Close()
		return set.Wrap("health-listen", err)
	}
	log.Info("starting", "grpc", ln.Addr().String(), "health", p.HTTP.Addr().String(), "redis", s.redisAddr, "prefix", s.redisPrefix, "mtls", s.tls.Enabled())
	return p.Run(ctx)
}
