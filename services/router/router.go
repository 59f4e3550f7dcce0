package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// sessions is the part of the presence service's session registry the
// router uses; presencev1.SessionRegistryClient satisfies it.
type sessions interface {
	Lookup(ctx context.Context, in *presencev1.LookupRequest, opts ...grpc.CallOption) (*presencev1.LookupResponse, error)
	SetPresence(ctx context.Context, in *presencev1.SetPresenceRequest, opts ...grpc.CallOption) (*presencev1.SetPresenceResponse, error)
	// Interested resources and directed presence (RFC 6121 2.1.6, 4.6),
	// kept in the registry so that every router sees them.
	SetRosterRequested(ctx context.Context, in *presencev1.SetRosterRequestedRequest, opts ...grpc.CallOption) (*presencev1.SetRosterRequestedResponse, error)
	UpdateDirected(ctx context.Context, in *presencev1.UpdateDirectedRequest, opts ...grpc.CallOption) (*presencev1.UpdateDirectedResponse, error)
	TakeDirected(ctx context.Context, in *presencev1.TakeDirectedRequest, opts ...grpc.CallOption) (*presencev1.TakeDirectedResponse, error)
}

// accounts is the part of the roster service's account API the router uses;
// rosterv1.AccountServiceClient satisfies it.
type accounts interface {
	AccountExists(ctx context.Context, in *rosterv1.AccountExistsRequest, opts ...grpc.CallOption) (*rosterv1.AccountExistsResponse, error)
}

// Config configures a Router. Every field but Logger is required.
type Config struct {
	// Domain is the XMPP domain served here, such as "localhost": the
	// default one when Domains lists more.
	Domain string
	// Domains are further domains served (repeating Domain is allowed).
	// Every served domain is local: its accounts and the server itself
	// are handled here, and stanzas between two of them never leave the
	// cluster. Any other domain is remote (the s2s service).
	Domains []string
	// Node is the id of this process, for logs.
	Node string
	// NATS is the connection the router subscribes and publishes on.
	NATS *nats.Conn
	// Subjects names the route and node subjects.
	Subjects bus.Subjects
	// Sessions is the presence service's session registry.
	Sessions sessions
	// Accounts tells whether an account exists.
	Accounts accounts
	// Roster is the roster service: rosters, subscriptions and offline
	// messages (RFC 6121, XEP-0160).
	Roster rosters
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Stream tunes the route stream, which a Router creates when it does
	// not exist yet.
	Stream bus.StreamOptions
	// LeaseTTL is how long a partition stays leased to a router that
	// stopped renewing it: the time a dead router's partitions wait before
	// another takes them. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// SessionCacheSize is how many accounts' sessions the router keeps
	// from the registry's answers (cache.go), evicted on the presence
	// service's PresenceChanged events; DefaultSessionCacheSize is a
	// good value. Zero turns the cache off: every stanza asks the
	// registry. Only turn it on when the presence service publishes
	// those events (presence.Config.Events).
	SessionCacheSize int
	// SessionCacheTTL bounds the age of a cached answer;
	// DefaultSessionCacheTTL when zero.
	SessionCacheTTL time.Duration
	// Metrics receives the router's metrics; nil means none.
	Metrics *metrics.Router
	// Tracer traces the routing of stanzas; nil means off.
	Tracer *tracing.Tracer
}

// DefaultLeaseTTL is the lease lifetime when Config.LeaseTTL is zero.
const DefaultLeaseTTL = 3 * time.Second

// callTimeout bounds the gRPC calls made for one stanza, together.
const callTimeout = 5 * time.Second

// Router applies the server rules of RFC 6120 section 10 and RFC 6121
// section 8 to the stanzas that connection services publish on the route
// subjects, and publishes deliveries to the nodes holding the recipients.
type Router struct {
	domain   string          // prepared domainpart of Config.Domain
	domains  []string        // every served domain, domain first
	served   map[string]bool // domains as a set
	node     string
	nc       *nats.Conn
	subjects bus.Subjects
	sessions sessions
	accounts accounts
	rosters  rosters
	cache    *sessionCache // nil when off
	log      *slog.Logger
	metrics  *metrics.Router
	tracer   *tracing.Tracer
	stream   bus.StreamOptions
	leaseTTL time.Duration
	// instance names this run of the router in leases and subjects; a
	// restarted process is a new instance.
	instance string

	running atomic.Bool

	// afterFlush, when set (by tests), runs after a batch's deliveries
	// were flushed and before its stanzas are acknowledged.
	afterFlush atomic.Pointer[func()]
}

// New checks cfg and returns a Router. Errors wrap ErrConfig and name the
// setting at fault.
func New(cfg Config) (*Router, error) {
	if cfg.Domain == "" {
		return nil, fmt.Errorf("%w: Domain is empty", ErrConfig)
	}
	d, err := jid.Parse(cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("%w: Domain %q: %v", ErrConfig, cfg.Domain, err)
	}
	if d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("%w: Domain %q is not a bare domain", ErrConfig, cfg.Domain)
	}
	domains := []string{d.Domainpart()}
	served := map[string]bool{d.Domainpart(): true}
	for _, name := range cfg.Domains {
		e, err := jid.Parse(name)
		if err != nil || e.Localpart() != "" || e.Resourcepart() != "" {
			return nil, fmt.Errorf("%w: Domains: %q is not a bare domain", ErrConfig, name)
		}
		if !served[e.Domainpart()] {
			served[e.Domainpart()] = true
			domains = append(domains, e.Domainpart())
		}
	}
	if cfg.Node == "" {
		return nil, fmt.Errorf("%w: Node is empty", ErrConfig)
	}
	if cfg.NATS == nil {
		return nil, fmt.Errorf("%w: NATS is nil", ErrConfig)
	}
	if cfg.Subjects.Prefix == "" {
		return nil, fmt.Errorf("%w: Subjects.Prefix is empty", ErrConfig)
	}
	if cfg.Subjects.Partitions <= 0 {
		return nil, fmt.Errorf("%w: Subjects.Partitions is %d, want > 0", ErrConfig, cfg.Subjects.Partitions)
	}
	if cfg.Sessions == nil {
		return nil, fmt.Errorf("%w: Sessions is nil", ErrConfig)
	}
	if cfg.Accounts == nil {
		return nil, fmt.Errorf("%w: Accounts is nil", ErrConfig)
	}
	if cfg.Roster == nil {
		return nil, fmt.Errorf("%w: Roster is nil", ErrConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ttl := cfg.LeaseTTL
	switch {
	case ttl == 0:
		ttl = DefaultLeaseTTL
	case ttl < 100*time.Millisecond:
		return nil, fmt.Errorf("%w: LeaseTTL %v is below 100ms", ErrConfig, cfg.LeaseTTL)
	}
	cacheTTL := cfg.SessionCacheTTL
	switch {
	case cfg.SessionCacheSize < 0:
		return nil, fmt.Errorf("%w: SessionCacheSize %d is negative", ErrConfig, cfg.SessionCacheSize)
	case cacheTTL < 0:
		return nil, fmt.Errorf("%w: SessionCacheTTL %v is negative", ErrConfig, cacheTTL)
	case cacheTTL == 0:
		cacheTTL = DefaultSessionCacheTTL
	}
	return &Router{
		domain:   d.Domainpart(),
		domains:  domains,
		served:   served,
		node:     cfg.Node,
		nc:       cfg.NATS,
		subjects: cfg.Subjects,
		sessions: cfg.Sessions,
		accounts: cfg.Accounts,
		rosters:  cfg.Roster,
		cache:    newSessionCache(cfg.SessionCacheSize, cacheTTL),
		log:      log.With("node", cfg.Node),
		metrics:  cfg.Metrics,
		tracer:   cfg.Tracer,
		stream:   cfg.Stream,
		leaseTTL: ttl,
		instance: instanceID(cfg.Node),
	}, nil
}

// local reports whether domain (a prepared domainpart) is served here.
// The default domain is checked on its own too, for a Router built
// without New (tests and benchmarks set only domain).
func (r *Router) local(domain string) bool { return domain == r.domain || r.served[domain] }
