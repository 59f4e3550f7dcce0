// Package admin serves the admin API (proto/admin/v1 AdminService): the
// one gRPC endpoint of a deployment, on the admin port of every router pod
// and of the one-process binary. It holds no state of its own: accounts
// and rosters are the roster service's, sessions the presence service's,
// the process list is the node bucket on NATS, and what must happen on a
// c2s node (kick, drain, broadcast) is a control request to that node.
// Any router can therefore answer any call.
//
// Messages and roster changes go through the routing path like a client's
// stanzas: published on the route stream with the origin of this admin
// server, routed by whichever router holds the partition, which applies
// the delivery rules (RFC 6121 section 8, offline storage included) and
// sends roster pushes with the router's own code. Answers the router
// makes to the origin (IQ results and errors, message bounces) come back
// on this server's own node subject.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// Sessions is the part of the presence service's registry the admin API
// uses; presencev1.SessionRegistryClient satisfies it.
type Sessions interface {
	Lookup(ctx context.Context, in *presencev1.LookupRequest, opts ...grpc.CallOption) (*presencev1.LookupResponse, error)
	CountByNode(ctx context.Context, in *presencev1.CountByNodeRequest, opts ...grpc.CallOption) (*presencev1.CountByNodeResponse, error)
}

// Rosters is the part of RosterService read directly; changes go through
// the routers. rosterv1.RosterServiceClient satisfies it.
type Rosters interface {
	GetRoster(ctx context.Context, in *rosterv1.GetRosterRequest, opts ...grpc.CallOption) (*rosterv1.GetRosterResponse, error)
}

// Config configures a Server. Fields are required unless said otherwise.
type Config struct {
	// Domains are the XMPP domains served; the first is the default for
	// messages and broadcasts.
	Domains []string
	// Node is the node id of the process serving the API; the admin
	// origin on the bus is "admin-" + Node.
	Node string
	// NATS is the connection for control requests, the route stream and
	// answers.
	NATS *nats.Conn
	// Subjects names the deployment's subjects and buckets.
	Subjects bus.Subjects
	// Accounts is the roster service's AccountService.
	Accounts rosterv1.AccountServiceClient
	// Rosters is the roster service's RosterService.
	Rosters Rosters
	// Sessions is the presence service's SessionRegistry.
	Sessions Sessions
	// Tokens checks the bearer tokens of callers.
	Tokens *Tokens
	// RosterHealth, optional, is the roster service's gRPC health, which
	// ClusterStatus reports as service "roster" (the roster service has
	// no NATS connection to write a node status with); RosterAddr names
	// it there.
	RosterHealth healthpb.HealthClient
	RosterAddr   string
	// ControlTimeout bounds one control request to a c2s node; 0 means
	// 5s.
	ControlTimeout time.Duration
	// ReplyTimeout bounds the wait for a router's answer to a roster
	// change; 0 means 10s.
	ReplyTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server implements adminv1.AdminServiceServer.
type Server struct {
	adminv1.UnimplementedAdminServiceServer

	cfg     Config
	domains []string // prepared
	origin  string   // the admin origin's node name
	session string   // base of the origin sessions of this run
	js      jetstream.JetStream
	log     *slog.Logger

	// pubMu serialises publishes on the route stream: the c2s nodes drop
	// a delivery whose (origin, seq) is not above the last one they had,
	// so each origin's stanzas must reach its partition in seq order.
	pubMu sync.Mutex
	seqs  map[int]uint64 // partition -> last seq of its origin session

	mu      sync.Mutex
	waiters map[string]chan *busv1.Delivery // IQ id -> waiting call
	sub     *nats.Subscription
}

// New checks cfg and returns a Server; Start subscribes it to its answers.
func New(cfg Config) (*Server, error) {
	switch {
	case len(cfg.Domains) == 0:
		return nil, errors.New("admin: no domain")
	case cfg.Node == "":
		return nil, errors.New("admin: Node is empty")
	case cfg.NATS == nil:
		return nil, errors.New("admin: NATS is nil")
	case cfg.Subjects.Prefix == "" || cfg.Subjects.Partitions <= 0:
		return nil, errors.New("admin: Subjects not set")
	case cfg.Accounts == nil || cfg.Rosters == nil || cfg.Sessions == nil:
		return nil, errors.New("admin: Accounts, Rosters and Sessions are required")
	case cfg.Tokens == nil:
		return nil, errors.New("admin: Tokens is nil")
	}
	var domains []string
	for _, d := range cfg.Domains {
		j, err := jid.Parse(d)
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			return nil, fmt.Errorf("admin: bad domain %q", d)
		}
		domains = append(domains, j.Domainpart())
	}
	if cfg.ControlTimeout <= 0 {
		cfg.ControlTimeout = 5 * time.Second
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("admin: JetStream: %w", err)
	}
	var b [6]byte
	rand.Read(b[:])
	return &Server{
		cfg:     cfg,
		domains: domains,
		origin:  "admin-" + cfg.Node,
		session: "adm" + hex.EncodeToString(b[:]),
		js:      js,
		log:     log,
		seqs:    map[int]uint64{},
		waiters: map[string]chan *busv1.Delivery{},
	}, nil
}

// Register adds the AdminService to g.
func (s *Server) Register(g *grpc.Server) { adminv1.RegisterAdminServiceServer(g, s) }

// Start subscribes to the admin origin's node subject, where routers send
// their answers to what this server published.
func (s *Server) Start() error {
	sub, err := s.cfg.NATS.Subscribe(s.cfg.Subjects.Node(s.origin), s.onDelivery)
	if err != nil {
		return fmt.Errorf("admin: subscribe: %w", err)
	}
	s.mu.Lock()
	s.sub = sub
	s.mu.Unlock()
	return s.cfg.NATS.Flush()
}

// Stop unsubscribes; calls waiting for an answer time out.
func (s *Server) Stop() {
	s.mu.Lock()
	sub := s.sub
	s.sub = nil
	s.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
}

// onDelivery takes a router's answer: a waiting roster change gets it; a
// message bounce is logged.
func (s *Server) onDelivery(m *nats.Msg) {
	d := new(busv1.Delivery)
	if err := proto.Unmarshal(m.Data, d); err != nil {
		s.log.Warn("admin: undecodable delivery", "err", err)
		return
	}
	s.mu.Lock()
	ch := s.waiters[d.Id]
	s.mu.Unlock()
	if ch != nil && d.Kind == busv1.Kind_KIND_IQ {
		select {
		case ch <- d:
		default:
		}
		return
	}
	if d.Type == "error" {
		cond, text := errorCondition(d.Raw)
		s.log.Info("admin: a stanza the admin API sent came back with an error",
			"id", d.Id, "from", d.From, "condition", cond, "text", text)
		return
	}
	s.log.Debug("admin: delivery to the admin origin ignored", "kind", d.Kind.String(), "id", d.Id, "from", d.From)
}

// publish puts a stanza from the admin origin on the route stream, in the
// partition of from's bare JID, and waits for the stream to store it.
func (s *Server) publish(ctx context.Context, st *busv1.Stanza) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	bare := st.From
	if j, err := jid.Parse(st.From); err == nil {
		bare = j.Bare().String()
	}
	p := s.cfg.Subjects.Partition(bare)
	seq := s.seqs[p] + 1
	session := fmt.Sprintf("%s-p%d", s.session, p)
	// The seq is used up even if the publish fails: the stream may have
	// stored it, and a retry under the same message id would be dropped.
	s.seqs[p] = seq
	st.Origin = &busv1.Origin{Node: s.origin, Session: session}
	st.Seq = seq
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: s.cfg.Subjects.Route(p), Data: b},
		jetstream.WithMsgID(bus.StanzaMsgID(s.origin, session, seq)))
	if err != nil {
		return unavailable("route stream", err)
	}
	return nil
}

// await registers a waiter for the answer to IQ id.
func (s *Server) await(id string) (<-chan *busv1.Delivery, func()) {
	ch := make(chan *busv1.Delivery, 1)
	s.mu.Lock()
	s.waiters[id] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.waiters, id)
		s.mu.Unlock()
	}
}

// served reports whether d (prepared) is a domain of this deployment.
func (s *Server) served(d string) bool {
	for _, x := range s.domains {
		if x == d {
			return true
		}
	}
	return false
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return "admin-" + hex.EncodeToString(b[:])
}
