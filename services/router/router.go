package router

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// sessions is the part of the presence service's session registry the
// router uses; presencev1.SessionRegistryClient satisfies it.
type sessions interface {
	Lookup(ctx context.Context, in *presencev1.LookupRequest, opts ...grpc.CallOption) (*presencev1.LookupResponse, error)
	SetPresence(ctx context.Context, in *presencev1.SetPresenceRequest, opts ...grpc.CallOption) (*presencev1.SetPresenceResponse, error)
}

// accounts is the part of the roster service's account API the router uses;
// rosterv1.AccountServiceClient satisfies it.
type accounts interface {
	AccountExists(ctx context.Context, in *rosterv1.AccountExistsRequest, opts ...grpc.CallOption) (*rosterv1.AccountExistsResponse, error)
}

// Config configures a Router. Every field but Logger is required.
type Config struct {
	// Domain is the XMPP domain served here, such as "localhost".
	Domain string
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
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// callTimeout bounds the gRPC calls made for one stanza, together.
const callTimeout = 5 * time.Second

// queueLen is the number of stanzas waiting per partition worker before the
// NATS callback blocks (and NATS buffers further messages).
const queueLen = 256

// Router applies the server rules of RFC 6120 section 10 and RFC 6121
// section 8 to the stanzas that connection services publish on the route
// subjects, and publishes deliveries to the nodes holding the recipients.
type Router struct {
	domain   string // prepared domainpart
	node     string
	nc       *nats.Conn
	subjects bus.Subjects
	sessions sessions
	accounts accounts
	log      *slog.Logger

	running atomic.Bool
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
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Router{
		domain:   d.Domainpart(),
		node:     cfg.Node,
		nc:       cfg.NATS,
		subjects: cfg.Subjects,
		sessions: cfg.Sessions,
		accounts: cfg.Accounts,
		log:      log.With("node", cfg.Node),
	}, nil
}

// Run subscribes to every route partition in the queue group
// "<prefix>.routers" and routes stanzas until ctx is done. It then drains:
// stanzas already received are routed and their deliveries published before
// Run returns nil. It returns an error if the subscription fails or ends for
// another reason.
//
// Order: NATS hands one subscription's messages to one callback in order. The
// callback passes each message to the worker of its partition, and each
// worker routes its stanzas one after the other, so the stanzas of one sender
// (always on one partition) are routed in the order they were published
// (RFC 6120 section 10.1), while partitions proceed in parallel.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)

	// Routing outlives ctx while draining; each call has its own deadline.
	work := context.WithoutCancel(ctx)
	queues := make([]chan *nats.Msg, r.subjects.Partitions)
	var wg sync.WaitGroup
	for i := range queues {
		q := make(chan *nats.Msg, queueLen)
		queues[i] = q
		wg.Go(func() {
			w := r.newWorker()
			for m := range q {
				w.handle(work, m)
			}
		})
	}
	stopWorkers := func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}

	closed := make(chan struct{})
	var closeOnce sync.Once
	queue := r.subjects.Prefix + ".routers"
	sub, err := r.nc.QueueSubscribe(r.subjects.RouteAll(), queue, func(m *nats.Msg) {
		queues[r.partitionOf(m.Subject)] <- m
	})
	if err != nil {
		stopWorkers()
		return fmt.Errorf("router: subscribe %s: %w", r.subjects.RouteAll(), err)
	}
	// Called once the subscription's callback has returned for the last
	// time: after a drain, or when the connection closes.
	sub.SetClosedHandler(func(string) { closeOnce.Do(func() { close(closed) }) })
	if err := r.nc.Flush(); err != nil {
		r.log.Warn("router: flush after subscribe", "err", err)
	}
	r.log.Info("router: running", "subject", r.subjects.RouteAll(), "queue", queue,
		"partitions", r.subjects.Partitions, "domain", r.domain)

	var runErr error
	select {
	case <-ctx.Done():
		if err := sub.Drain(); err != nil {
			r.log.Warn("router: drain", "err", err)
		}
		<-closed
		r.log.Info("router: drained")
	case <-closed:
		runErr = ErrSubscriptionClosed
	}
	stopWorkers()
	return runErr
}

// partitionOf returns the partition index of a route subject.
func (r *Router) partitionOf(subject string) int {
	i := strings.LastIndexByte(subject, '.')
	p, err := strconv.Atoi(subject[i+1:])
	if err != nil || p < 0 || p >= r.subjects.Partitions {
		// Not one of ours; any fixed worker keeps its order.
		r.log.Warn("router: unexpected route subject", "subject", subject)
		return 0
	}
	return p
}

// worker routes the stanzas of one partition, one at a time.
type worker struct {
	r   *Router
	out []outbound // reused between stanzas
}

func (r *Router) newWorker() *worker { return &worker{r: r} }

// handle decodes one envelope, routes it and publishes what routing
// produced.
func (w *worker) handle(ctx context.Context, m *nats.Msg) {
	st := new(busv1.Stanza)
	if err := proto.Unmarshal(m.Data, st); err != nil {
		w.r.log.Warn("router: undecodable envelope dropped", "subject", m.Subject, "bytes", len(m.Data), "err", err)
		return
	}
	w.out = w.r.route(ctx, st, w.out[:0])
	for i := range w.out {
		o := &w.out[i]
		b, err := proto.Marshal(o.d)
		if err != nil {
			w.r.log.Error("router: marshal delivery", "err", err)
			continue
		}
		if err := w.r.nc.Publish(o.subject, b); err != nil {
			w.r.log.Error("router: publish delivery", "subject", o.subject, "session", o.d.GetSession(), "err", err)
		}
		o.d = nil
	}
}
