// Package s2s is the server-to-server service (RFC 6120, XEP-0220,
// XEP-0178, XEP-0368): it accepts streams from other XMPP servers and
// publishes the stanzas they carry for the routers, and it takes the
// stanzas the routers publish for remote domains and sends them over
// streams it opens, one per (local domain, remote domain) pair.
//
// # Authentication
//
// Every stream is encrypted: STARTTLS is required inbound and demanded
// outbound (or direct TLS, XEP-0368). A peer whose certificate is valid
// for its domain (RFC 6125 DNS-ID, Config.RootCAs) authenticates with
// SASL EXTERNAL; any other peer with Server Dialback, unless
// Config.RefuseDialback or VerifyRequired turns that off. Dialback keys
// are those of XEP-0185 from Config.Secret, which every s2s process of a
// deployment shares, so any of them can answer a <db:verify/> as the
// authoritative server.
//
// # Across pods
//
// With Config.Leases (the s2s binary of a cluster) every pod receives
// every outbound stanza, and only the pod holding the lease of a (local
// domain, remote domain) pair in the NATS key-value bucket sends it: one
// stream per pair across the cluster, and one sender's stanzas leave in
// the order the routers published them. A free pair is taken by the first
// pod that sees one of its stanzas; a dead pod's pairs move after the
// lease TTL (docs/design/006-s2s-cluster.md). Without leases (the
// one-process binary) the outbound subject is shared in a queue group.
//
// # Checks on inbound stanzas
//
// RFC 6120 section 8.1 and 4.9.3: a stanza without from or to ends the
// stream with <improper-addressing/>, a from outside the domains
// authenticated on that stream with <invalid-from/>, a to outside ours with
// <host-unknown/>; one stream's error never touches another stream.
package s2s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/limits"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Server is the s2s service of one process.
type Server struct {
	cfg Config
	log *slog.Logger
	ln  net.Listener
	ctx context.Context // Run's, for the goroutines it starts

	mu       sync.Mutex
	links    map[pair]*link
	streams  map[*xconn]struct{}
	stopping bool

	leases *leases // nil without Config.Leases

	perIP     *limits.Counter[netip.Addr] // open inbound streams by address
	refusals  *limits.Gate                // of the log line about refused ones
	bounceSeq atomic.Uint64
	running   atomic.Bool
	ready     chan struct{}
	wg        sync.WaitGroup
}

// New validates cfg and opens the listener.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("service", "s2s"), links: map[pair]*link{}, streams: map[*xconn]struct{}{}, ready: make(chan struct{}),
		perIP: limits.NewCounter[netip.Addr](), refusals: limits.NewGate(time.Second)}
	if cfg.Listen != "" {
		if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("s2s: Config.Listen: %w", err)
		}
	}
	return s, nil
}

// Addr is the address of the inbound listener, or nil when it is off.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Ready is closed once Run takes outbound stanzas.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx is done, then closes every stream and bounces what
// still waits.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("s2s: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	var sub *nats.Subscription
	var err error
	if s.cfg.Leases != nil {
		s.leases = newLeases(s)
		sub, err = s.cfg.NATS.Subscribe(s.cfg.Subjects.S2SOutAll(), s.onMsg)
	} else {
		sub, err = s.cfg.NATS.QueueSubscribe(s.cfg.Subjects.S2SOutAll(), bus.S2SQueue, s.onMsg)
	}
	if err != nil {
		if s.ln != nil {
			s.ln.Close()
		}
		return fmt.Errorf("s2s: subscribing to outbound stanzas: %w", err)
	}
	if err := s.cfg.NATS.Flush(); err != nil {
		s.log.Warn("s2s: flushing the subscription", "err", err)
	}
	close(s.ready)
	var renewing sync.WaitGroup
	if s.leases != nil {
		renewing.Go(func() { s.leases.renew(ctx) })
		renewing.Go(func() { s.leases.watch(ctx) })
	}
	var accepting sync.WaitGroup
	if s.ln != nil {
		accepting.Add(1)
		go func() {
			defer accepting.Done()
			s.accept(ctx)
		}()
	}
	s.log.Info("s2s serving", "listen", addrString(s.Addr()), "domains", s.cfg.Domains)
	<-ctx.Done()
	if err := sub.Unsubscribe(); err != nil {
		s.log.Debug("unsubscribing", "err", err)
	}
	if s.ln != nil {
		s.ln.Close()
	}
	accepting.Wait()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("s2s streams still open after the shutdown wait; closing their sockets")
		s.mu.Lock()
		for x := range s.streams {
			x.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	renewing.Wait()
	if s.leases != nil {
		s.leases.releaseAll()
	}
	if err := s.cfg.NATS.FlushTimeout(5 * time.Second); err != nil {
		s.log.Warn("flushing NATS at shutdown", "err", err)
	}
	s.log.Info("s2s stopped")
	return nil
}

func (s *Server) accept(ctx context.Context) {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("s2s accept", "err", err)
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		ip := limits.IPKey(nc.RemoteAddr())
		admitted := s.perIP.Acquire(ip, s.cfg.MaxInboundPerIP)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !admitted {
				s.refuse(nc)
				return
			}
			defer s.perIP.Release(ip)
			s.serveInbound(ctx, nc)
		}()
	}
}

// refuse answers a connection over MaxInboundPerIP with our header and
// <policy-violation/>, without waiting for the peer's header, and closes
// it. The log line about it is written at most once a second.
func (s *Server) refuse(nc net.Conn) {
	if ok, held := s.refusals.Pass(time.Now()); ok {
		s.log.Warn("abuse limit hit", "limit", "inbound_per_ip", "peer", nc.RemoteAddr().String(),
			"max", s.cfg.MaxInboundPerIP, "more_hits_not_logged", held)
	}
	nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	w := stream.NewWriter(nc, stream.NSServer)
	w.WriteHeader(stream.Header{From: s.cfg.Domains[0], ID: newStreamID(), Version: "1.0"})
	w.WriteError(&stream.Error{Condition: stream.PolicyViolation,
		Text: fmt.Sprintf("too many streams from your address (limit %d)", s.cfg.MaxInboundPerIP)})
	nc.Close()
}

// onMsg is the NATS callback of the outbound subject.
func (s *Server) onMsg(m *nats.Msg) {
	var env busv1.Stanza
	if err := proto.Unmarshal(m.Data, &env); err != nil {
		s.log.Warn("s2s: undecodable outbound envelope dropped", "err", err, "subject", m.Subject)
		return
	}
	if s.leases != nil {
		s.leases.offer(s.ctx, &env)
		return
	}
	s.onOutbound(&env)
}

// StreamCount is the number of open server-to-server streams, inbound
// and outbound.
func (s *Server) StreamCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// track records the open streams, for shutdown.
func (s *Server) track(x *xconn, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.streams[x] = struct{}{}
	} else {
		delete(s.streams, x)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
