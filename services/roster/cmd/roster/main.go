// Command roster runs the roster service on Postgres: AccountService (the
// admin API) on the public gRPC listener, and CredentialService (the
// password keys c2s fetches for SASL) only on the internal one. `roster
// migrate` brings the database schema up to date and exits, for a
// Kubernetes Job. Run `roster --help` for the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/pgstore"
)

type settings struct {
	grpcListen     string
	internalListen string
	healthListen   string
	dsn            string
	schema         string
	migrate        bool
	digestMD5      bool
	node           string
	tls            grpcx.TLSFiles
	startup        time.Duration
	shutdown       time.Duration
	log            config.Log
}

const summary = `Usage:
  roster [flags]          serve until SIGINT or SIGTERM
  roster migrate [flags]  bring the database schema up to date and exit

Serves AccountService on --grpc-listen, and CredentialService, which hands
out password keys, and RosterService, which the routers use for rosters,
subscriptions and offline messages, only on --internal-grpc-listen: keep
that address on the cluster's internal network. With --grpc-tls-* set, both require client
certificates.`

func declare(s *settings) *config.Set {
	set := config.New("roster", summary)
	set.String(&s.grpcListen, "grpc-listen", ":9090", "public gRPC listen address: AccountService and health").Required()
	set.String(&s.internalListen, "internal-grpc-listen", ":9091", "internal gRPC listen address: CredentialService, RosterService and health").Required()
	set.String(&s.healthListen, "health-listen", ":8080", "HTTP listen address of /healthz, /readyz and /metrics").Required()
	set.SecretString(&s.dsn, "postgres-dsn", "postgres://127.0.0.1:5432/switchboard", "Postgres connection string (URL or key=value); it may hold the password").Required()
	set.String(&s.schema, "postgres-schema", "", "Postgres schema of the tables, created by the migrations; empty: the DSN's search_path")
	set.Bool(&s.migrate, "migrate-at-start", true, "apply the schema migrations at start; false when a migrate Job owns them")
	set.Bool(&s.digestMD5, "digest-md5", false, "also store DIGEST-MD5 hashes of new passwords (historic, weak)")
	set.NodeID(&s.node)
	grpcx.DeclareTLS(set, &s.tls)
	set.Duration(&s.startup, "startup-timeout", 30*time.Second, "how long to wait for Postgres at start")
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
	pos, err := set.Parse(args, env)
	if errors.Is(err, config.ErrHelp) {
		set.Usage(stdout)
		return 0
	}
	if err == nil && len(pos) > 0 && (len(pos) > 1 || pos[0] != "migrate") {
		err = fmt.Errorf("unexpected arguments %q (want none, or migrate)", pos)
	}
	if err != nil {
		fmt.Fprintf(stderr, "roster: %v\n", err)
		return 2
	}
	if len(pos) == 1 {
		err = migrate(ctx, set, &s, stdout, stderr)
	} else {
		err = serve(ctx, set, &s, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "roster: %v\n", err)
		return 1
	}
	return 0
}

func (s *settings) storeOptions() []pgstore.Option {
	var o []pgstore.Option
	if s.schema != "" {
		o = append(o, pgstore.WithSchema(s.schema))
	}
	return o
}

func migrate(ctx context.Context, set *config.Set, s *settings, stdout, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("service", "roster", "node", s.node)
	err := health.Await(ctx, log, "Postgres", redact(s.dsn), s.startup, func(ctx context.Context) error {
		return pgstore.Migrate(ctx, s.dsn, s.storeOptions()...)
	})
	if err != nil {
		return dsnError(set, s.dsn, err)
	}
	fmt.Fprintf(stdout, "schema at version %d\n", pgstore.SchemaVersion())
	return nil
}

func serve(ctx context.Context, set *config.Set, s *settings, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("service", "roster", "node", s.node)
	opts := s.storeOptions()
	if !s.migrate {
		opts = append(opts, pgstore.SkipMigrations())
	}
	var store *pgstore.Store
	err := health.Await(ctx, log, "Postgres", redact(s.dsn), s.startup, func(ctx context.Context) error {
		var err error
		store, err = pgstore.Open(ctx, s.dsn, opts...)
		if errors.Is(err, pgstore.ErrSchemaNewer) || errors.Is(err, pgstore.ErrSchemaOutdated) {
			return health.Permanent(err)
		}
		return err
	})
	if err != nil {
		return dsnError(set, s.dsn, err)
	}
	closeStore := func(context.Context) error { store.Close(); return nil }
	mx := metrics.New()
	tp, stopTracing, err := tracing.Setup(ctx, "roster")
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	svc, err := roster.New(roster.Config{Store: store, DigestMD5: s.digestMD5, Logger: log, Metrics: mx.Roster()})
	if err != nil {
		closeStore(ctx)
		return err
	}

	sopts, err := grpcx.ServerOptions(s.tls)
	if err != nil {
		closeStore(ctx)
		return set.Wrap("grpc-tls-cert", err)
	}
	sopts = append(sopts, grpcx.Observer{Metrics: mx.GRPC(), Tracing: tp}.ServerOptions()...)
	probe := health.New()
	probe.ServeMetrics(mx.Handler())
	public := grpc.NewServer(sopts...)
	svc.Register(only{public, rosterv1.AccountService_ServiceDesc.ServiceName})
	grpcx.RegisterHealth(public, probe.NewGRPC(rosterv1.AccountService_ServiceDesc.ServiceName))
	grpcx.RegisterReflection(public)
	internal := grpc.NewServer(sopts...)
	svc.Register(only{internal, rosterv1.CredentialService_ServiceDesc.ServiceName})
	svc.Register(only{internal, rosterv1.RosterService_ServiceDesc.ServiceName})
	grpcx.RegisterHealth(internal, probe.NewGRPC(rosterv1.CredentialService_ServiceDesc.ServiceName))
	grpcx.RegisterReflection(internal)

	p := &health.Process{Log: log, Probe: probe, ShutdownTimeout: s.shutdown}
	p.OnStop("Postgres", closeStore)
	pubLn, err := grpcx.ListenTCP(s.grpcListen)
	if err != nil {
		closeStore(ctx)
		return set.Wrap("grpc-listen", err)
	}
	intLn, err := grpcx.ListenTCP(s.internalListen)
	if err != nil {
		pubLn.Close()
		closeStore(ctx)
		return set.Wrap("internal-grpc-listen", err)
	}
	p.GRPC("public", public, pubLn)
	p.GRPC("internal", internal, intLn)
	if p.HTTP, err = health.Listen(s.healthListen, probe); err != nil {
		pubLn.Close()
		intLn.Close()
		closeStore(ctx)
		return set.Wrap("health-listen", err)
	}
	if !s.tls.Enabled() {
		log.Warn("gRPC runs without TLS: keep --internal-grpc-listen on a trusted network")
	}
	log.Info("starting", "grpc", pubLn.Addr().String(), "internal_grpc", intLn.Addr().String(),
		"health", p.HTTP.Addr().String(), "schema", s.schema, "mtls", s.tls.Enabled())
	return p.Run(ctx)
}

// only registers on a server just the named service of those offered, so
// that one Register call can be split over two listeners.
type only struct {
	srv  *grpc.Server
	name string
}

func (o only) RegisterService(d *grpc.ServiceDesc, impl any) {
	if d.ServiceName == o.name {
		o.srv.RegisterService(d, impl)
	}
}

// dsnError is err about --postgres-dsn, without the DSN's password.
func dsnError(set *config.Set, dsn string, err error) error {
	return &config.SettingError{Setting: set.Source("postgres-dsn"), Value: redact(dsn), Err: err}
}

// redact hides the password of a URL connection string, for logs and
// errors.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
