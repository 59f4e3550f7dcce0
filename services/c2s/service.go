// Package c2s serves XMPP client streams (RFC 6120 sections 4 to 8): TLS,
// SASL, resource binding, and then stanzas, which it checks, stamps and
// publishes on NATS for the routers; deliveries for its sessions come back
// on its node subject.
//
// Each connection has one reader goroutine, which runs the negotiation
// state machine (negotiate.go) and then reads stanzas, and one writer
// goroutine, which owns every byte written; between them is a bounded
// queue. A client that does not read its stream fills its queue and is
// closed with <policy-violation/>; nobody else waits for it.
//
// Decisions where RFC 6120 leaves a choice:
//
//   - A stream header without 'version' (0.9) or with a 0.x version gets a
//     response header without 'version' and <unsupported-version/>; a
//     version above 1.0 is answered with 1.0 (section 4.7.5). A missing
//     'to' is taken as the served domain; any other unserved 'to' gets
//     <host-unknown/>.
//   - After MaxAuthFailures failed SASL attempts (aborts included) the
//     stream is closed with <policy-violation/> (section 6.4.5).
//   - Stanzas before a resource is bound get <not-authorized/>.
//   - A stanza is accepted once the route stream acknowledged it (design
//     note 002); one that it refused or did not acknowledge in time is
//     answered with a wait/internal-server-error stanza error, so the
//     client may retry.
//   - A delivery for a session that ended, is closing or whose queue is
//     full goes back to the routers, which apply the no-session rules of
//     RFC 6121 section 8.5.3.2; a delivery already made to the session
//     (same origin, seq and part, after a router failover) is dropped.
//   - A full outbound queue closes that session with <policy-violation/>:
//     the limit is our policy, not a lack of resources on the server.
//   - Once we sent </stream:stream>, elements the client still sends are
//     read (to find its closing tag) but not processed.
package c2s

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// rpcTimeout bounds one call to the roster or presence service.
const rpcTimeout = 10 * time.Second

// Server is a c2s node.
type Server struct {
	cfg    Config
	log    *slog.Logger
	served map[string]bool // Config.Domains
	tlsSrv tlsServer
	guard  *guard // abuse controls (limits.go)

	ln    net.Listener // STARTTLS; nil when off
	lnTLS net.Listener // direct TLS; nil when off

	running atomic.Bool
	wg      sync.WaitGroup // connections
	js      jetstream.JetStream

	draining atomic.Bool
	drainReq chan DrainOptions // the one drain, for Run

	mu       sync.Mutex
	stopping bool
	conns    map[*conn]struct{}
	sessions map[string]*conn // by session id, from the bind on
}

// New validates cfg and binds the listeners; Run serves them.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("service", "c2s", "node", cfg.Node),
		guard:    newGuard(cfg.Abuse),
		served:   make(map[string]bool, len(cfg.Domains)),
		conns:    make(map[*conn]struct{}),
		sessions: make(map[string]*conn),
		drainReq: make(chan DrainOptions, 1),
	}
	for _, d := range cfg.Domains {
		s.served[d] = true
	}
	if cfg.TLS != nil {
		s.tlsSrv = tlsServer{base: cfg.TLS}
	}
	if cfg.Listen != "" {
		if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("c2s: Config.Listen: %w", err)
		}
	}
	if cfg.ListenDirectTLS != "" {
		if s.lnTLS, err = net.Listen("tcp", cfg.ListenDirectTLS); err != nil {
			if s.ln != nil {
				s.ln.Close()
			}
			return nil, fmt.Errorf("c2s: Config.ListenDirectTLS: %w", err)
		}
	}
	return s, nil
}

// Addr is the address of the STARTTLS listener, or nil when it is off.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// DirectTLSAddr is the address of the direct TLS listener, or nil when it
// is off.
func (s *Server) DirectTLSAddr() net.Addr {
	if s.lnTLS == nil {
		return nil
	}
	return s.lnTLS.Addr()
}

// SessionCount is the number of sessions with a bound resource.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.sessions {
		if c.isBound() {
			n++
		}
	}
	return n
}

// Run serves until ctx is done or a drain (Drain) ended. It then closes
// the listeners, closes every stream with <system-shutdown/> (or the
// drain's error), and waits for them to end, at most about twice
// CloseTimeout plus the time to unregister the sessions. It also answers
// the control requests of Subjects.Control(Node) while it serves.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("c2s: Run called twice")
	}
	js, err := jetstream.New(s.cfg.NATS, jetstream.WithPublishAsyncTimeout(s.cfg.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(maxPendingAcks))
	if err != nil {
		s.closeListeners()
		return fmt.Errorf("c2s: JetStream: %w", err)
	}
	// A Run cancelled while it starts still starts, then stops as usual.
	setup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err = s.cfg.Subjects.EnsureRouteStream(setup, js, s.cfg.Stream)
	cancel()
	if err != nil {
		s.closeListeners()
		return fmt.Errorf("c2s: %w", err)
	}
	s.js = js
	s.cfg.Metrics.SetState(s.metricsState)
	sub, err := s.cfg.NATS.Subscribe(s.cfg.Subjects.Node(s.cfg.Node), s.onDelivery)
	if err != nil {
		s.closeListeners()
		return fmt.Errorf("c2s: subscribing to deliveries: %w", err)
	}
	// Deliveries are only queued by the callback, so NATS's default pending
	// limits are never reached by a slow client.
	ctl, err := s.cfg.NATS.Subscribe(s.cfg.Subjects.Control(s.cfg.Node), s.onControl)
	if err != nil {
		sub.Unsubscribe()
		s.closeListeners()
		return fmt.Errorf("c2s: subscribing to control requests: %w", err)
	}
	var accepting sync.WaitGroup
	for _, l := range []struct {
		ln     net.Listener
		direct bool
	}{{s.ln, false}, {s.lnTLS, true}} {
		if l.ln == nil {
			continue
		}
		accepting.Add(1)
		go func() {
			defer accepting.Done()
			s.accept(ctx, l.ln, l.direct)
		}()
	}
	s.log.Info("c2s serving", "starttls", addrString(s.Addr()), "directtls", addrString(s.DirectTLSAddr()), "domains", s.cfg.Domains)

	stopErr := &stream.Error{Condition: stream.SystemShutdown}
	select {
	case <-ctx.Done():
	case o := <-s.drainReq:
		stopErr = s.drain(ctx, o, &accepting)
	}
	s.closeListeners()
	accepting.Wait()

	s.mu.Lock()
	s.stopping = true
	open := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		// The node goes away through no fault of the client: what it
		// sends before its closing tag is still routed.
		c.closeWith(stopErr, true, true)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2*s.cfg.CloseTimeout + rpcTimeout):
		s.log.Warn("connections still open after the shutdown wait; closing their sockets")
		s.mu.Lock()
		for c := range s.conns {
			c.raw.Close()
		}
		s.mu.Unlock()
		<-done
	}
	// Deliveries the server sent before it saw the unsubscription are
	// still taken (and handed back: no session is left); a plain
	// Unsubscribe would drop them.
	for _, sb := range []*nats.Subscription{sub, ctl} {
		closed := sb.StatusChanged(nats.SubscriptionClosed)
		if err := sb.Drain(); err != nil {
			s.log.Debug("unsubscribing", "subject", sb.Subject, "err", err)
			continue
		}
		select {
		case <-closed:
		case <-time.After(s.cfg.CloseTimeout):
			s.log.Warn("deliveries still pending at shutdown", "subject", sb.Subject)
		}
	}
	// The final unavailable presences and the hand-backs must reach the
	// stream.
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(s.cfg.CloseTimeout):
		s.log.Warn("stanzas still unacknowledged by the route stream at shutdown", "pending", js.PublishAsyncPending())
	}
	if err := s.cfg.NATS.FlushTimeout(s.cfg.CloseTimeout); err != nil {
		s.log.Warn("flushing NATS at shutdown", "err", err)
	}
	s.log.Info("c2s stopped")
	return nil
}

func (s *Server) closeListeners() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.lnTLS != nil {
		s.lnTLS.Close()
	}
}

// accept serves one listener until it is closed.
func (s *Server) accept(ctx context.Context, ln net.Listener, direct bool) {
	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		c := s.newConn(raw, direct)
		if !s.admit(c) {
			continue
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			s.release(c)
			raw.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		c.logger().Debug("connection accepted", "direct_tls", direct)
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
		}()
	}
}

// register publishes a session: locally first, so that no delivery for it
// is missed, then in the registry. Sessions the registry replaced (the same
// full JID bound elsewhere, RFC 6120 section 7.7.2.2) are told to close
// with <conflict/> through their node's subject.
func (s *Server) register(ctx context.Context, c *conn) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return errors.New("c2s: shutting down")
	}
	s.sessions[c.sessionID] = c
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.cfg.Sessions.Bind(ctx, &presencev1.BindRequest{Jid: c.jid.String(), Node: s.cfg.Node, SessionId: c.sessionID})
	if err != nil {
		s.mu.Lock()
		delete(s.sessions, c.sessionID)
		s.mu.Unlock()
		return err
	}
	for _, r := range resp.GetReplaced() {
		if r.GetNode() == s.cfg.Node && r.GetSessionId() == c.sessionID {
			continue
		}
		s.closeReplaced(r, c)
	}
	return nil
}

// closeReplaced asks the session r, which c replaced in the registry, to
// close with <conflict/> through its node's subject.
func (s *Server) closeReplaced(r *presencev1.Session, c *conn) {
	d := &busv1.Delivery{Session: r.GetSessionId(), Action: busv1.Action_ACTION_CLOSE_CONFLICT, To: r.GetJid()}
	b, err := proto.Marshal(d)
	if err == nil {
		err = s.cfg.NATS.Publish(s.cfg.Subjects.Node(r.GetNode()), b)
	}
	if err != nil {
		s.log.Warn("asking a replaced session to close failed", "jid", r.GetJid(), "node", r.GetNode(), "err", err)
	} else {
		c.logger().Info("replacing a session bound to the same address", "replaced_node", r.GetNode(), "replaced_session", r.GetSessionId())
	}
}

// Rebind binds every session this node holds in the registry again and
// returns how many it bound. A node calls it when its heartbeat epoch
// changed, that is when the registry removed the node's sessions while
// the node was out of its reach (services/presence/doc.go); a Bind of a
// session still bound changes nothing. A session that ends while it is
// being bound again is unbound again, so Rebind never leaves a finished
// session in the registry. It tries every session and returns the first
// error.
func (s *Server) Rebind(ctx context.Context) (int, error) {
	s.mu.Lock()
	held := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		if c.isBound() {
			held = append(held, c)
		}
	}
	s.mu.Unlock()
	var first error
	n := 0
	for _, c := range held {
		cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		resp, err := s.cfg.Sessions.Bind(cctx, c.bindRequest(s.cfg.Node))
		cancel()
		if err != nil {
			if first == nil {
				first = fmt.Errorf("c2s: binding %s again: %w", c.jid, err)
			}
			continue
		}
		s.mu.Lock()
		gone := s.sessions[c.sessionID] != c
		s.mu.Unlock()
		if gone {
			// end() forgot the session before its Unbind, which may have
			// run before this Bind: undo it.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
			_, err := s.cfg.Sessions.Unbind(uctx, &presencev1.UnbindRequest{Jid: c.jid.String(), SessionId: c.sessionID})
			cancel()
			if err != nil && first == nil {
				first = fmt.Errorf("c2s: unbinding %s, which ended during Rebind: %w", c.jid, err)
			}
			continue
		}
		for _, r := range resp.GetReplaced() {
			if r.GetNode() != s.cfg.Node || r.GetSessionId() != c.sessionID {
				// Bound elsewhere while this node was out of reach: the
				// registry now names this session; tell the other to go,
				// as register does.
				s.closeReplaced(r, c)
			}
		}
		n++
	}
	return n, first
}

// forget drops a finished connection.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.sessions[c.sessionID] == c {
		delete(s.sessions, c.sessionID)
	}
	s.mu.Unlock()
	s.release(c)
}

// onDelivery handles one message on the node subject. It runs on the
// subscription's goroutine and never blocks on a session.
func (s *Server) onDelivery(m *nats.Msg) {
	var d busv1.Delivery
	if err := proto.Unmarshal(m.Data, &d); err != nil {
		s.log.Warn("undecodable delivery", "err", err)
		return
	}
	_, span := s.cfg.Tracer.Start(context.Background(), "c2s.deliver", d.GetTraceparent(), tracing.Consumer)
	defer span.End()
	s.mu.Lock()
	c := s.sessions[d.GetSession()]
	s.mu.Unlock()
	if c == nil {
		if d.GetAction() == busv1.Action_ACTION_DELIVER {
			// The session ended while the router was deciding: the
			// routers apply the no-session rules instead.
			s.handBack(&d, "no such session")
			return
		}
		s.log.Debug("delivery for an unknown session", "session", d.GetSession(), "action", d.GetAction().String(), "to", d.GetTo())
		return
	}
	switch d.GetAction() {
	case busv1.Action_ACTION_DELIVER:
		if len(d.GetRaw()) == 0 {
			s.log.Warn("empty delivery", "session", d.GetSession())
			return
		}
		if c.seen.dup(&d) {
			// Routed twice: a router took the partition over before the
			// first routing was acknowledged.
			s.log.Debug("duplicate delivery dropped", "session", d.GetSession(), "seq", d.GetSeq(), "part", d.GetPart())
			return
		}
		if !c.deliver(d.GetRaw()) {
			s.handBack(&d, "session closing or its queue full")
			return
		}
		c.seen.record(&d, time.Now())
		s.cfg.Metrics.StanzaOut(int32(d.GetKind()))
	case busv1.Action_ACTION_CLOSE_CONFLICT:
		c.close(&stream.Error{Condition: stream.Conflict, Text: "replaced by a new session bound to the same address"}, true)
	default:
		s.log.Warn("delivery with an unknown action", "action", d.GetAction().String(), "session", d.GetSession())
	}
}

// metricsState counts the node's connections by state and what waits in
// their outbound queues, when the metrics are scraped.
func (s *Server) metricsState() metrics.C2SState {
	var st metrics.C2SState
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		switch {
		case c.closing.Load():
			st.Closing++
		case c.isBound():
			st.Bound++
		default:
			st.Negotiating++
		}
		st.Queued += len(c.queue)
	}
	return st
}

// randomID returns 128 random bits in lower-case base32, for stream ids,
// session ids and generated resources (RFC 6120 section 4.7.3 asks stream
// ids to be unpredictable).
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
