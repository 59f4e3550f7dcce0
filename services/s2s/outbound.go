package s2s

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// pair is a (local domain, remote domain) pair: one outbound stream each.
type pair struct{ local, remote string }

// link is the outbound side of one pair: the stanzas waiting, and the
// goroutine that connects, authenticates, sends and reconnects.
type link struct {
	s        *Server
	pair     pair
	wake     chan struct{} // a stanza was queued
	queue    []*busv1.Stanza
	failures int // attempts failed in a row
}

// onOutbound takes a stanza the routers published for a remote domain.
func (s *Server) onOutbound(env *busv1.Stanza) {
	to, err1 := jid.Parse(env.GetTo())
	from, err2 := jid.Parse(env.GetFrom())
	if err1 != nil || err2 != nil {
		s.log.Warn("s2s: outbound envelope with bad addresses dropped", "from", env.GetFrom(), "to", env.GetTo())
		return
	}
	p := pair{local: from.Domainpart(), remote: to.Domainpart()}
	switch {
	case !s.cfg.ours(p.local):
		s.log.Warn("s2s: outbound envelope not from one of our domains dropped", "from", env.GetFrom())
		return
	case s.cfg.ours(p.remote):
		s.log.Warn("s2s: outbound envelope for one of our own domains dropped", "to", env.GetTo())
		return
	case !s.cfg.permitted(p.remote):
		s.bounce(env, stanza.RemoteServerNotFound, "federation with this domain is not allowed")
		return
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		s.bounce(env, stanza.RemoteServerTimeout, "the server is shutting down")
		return
	}
	l := s.links[p]
	if l == nil {
		l = &link{s: s, pair: p, wake: make(chan struct{}, 1)}
		s.links[p] = l
		s.wg.Add(1)
		go l.run(s.ctx)
	}
	full := len(l.queue) >= s.cfg.QueueSize
	if !full {
		l.queue = append(l.queue, env)
	}
	s.mu.Unlock()
	if full {
		s.bounce(env, stanza.ResourceConstraint, "too many stanzas waiting for this domain")
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the waiting stanzas.
func (l *link) take() []*busv1.Stanza {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	q := l.queue
	l.queue = nil
	return q
}

// putBack returns unsent stanzas to the front of the queue.
func (l *link) putBack(q []*busv1.Stanza) {
	if len(q) == 0 {
		return
	}
	l.s.mu.Lock()
	l.queue = append(q, l.queue...)
	l.s.mu.Unlock()
}

// retire removes the link when nothing waits; it reports whether it did.
func (l *link) retire() bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if len(l.queue) > 0 {
		return false
	}
	delete(l.s.links, l.pair)
	return true
}

// run connects when stanzas wait, sends them, keeps the stream while it is
// used and closes it after the idle time. After a failed attempt it bounces
// what waited and waits a backoff before the next attempt.
func (l *link) run(ctx context.Context) {
	defer l.s.wg.Done()
	log := l.s.log.With("local", l.pair.local, "remote", l.pair.remote)
	idle := time.NewTimer(l.s.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		if ctx.Err() != nil {
			l.drain(stanza.RemoteServerTimeout, "the server is shutting down")
			return
		}
		l.s.mu.Lock()
		waiting := len(l.queue)
		l.s.mu.Unlock()
		if waiting == 0 {
			idle.Reset(l.s.cfg.IdleTimeout)
			select {
			case <-ctx.Done():
				l.drain(stanza.RemoteServerTimeout, "the server is shutting down")
				return
			case <-l.wake:
				continue
			case <-idle.C:
				if l.retire() {
					return
				}
				continue
			}
		}
		if l.failures > 0 {
			if !sleep(ctx, backoff(l.failures, l.s.cfg.MinBackoff, l.s.cfg.MaxBackoff)) {
				continue // ctx done: the next turn drains
			}
		}
		actx, cancel := context.WithTimeout(ctx, l.s.cfg.ConnectTimeout)
		p, err := l.s.open(actx, l.pair.local, l.pair.remote)
		method := ""
		if err == nil {
			if method, err = l.s.authenticate(actx, p); err != nil {
				p.fail(&stream.Error{Condition: stream.UndefinedCondition, Text: "authentication failed"})
				l.s.cfg.Metrics.Auth(metrics.Outbound, "unknown", "error")
			} else {
				l.s.cfg.Metrics.Auth(metrics.Outbound, strings.ToLower(method), "valid")
			}
		}
		timedOut := actx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			l.failures++
			c := stanza.RemoteServerNotFound
			if timedOut || isTimeout(err) {
				c = stanza.RemoteServerTimeout
			}
			log.Info("s2s outbound stream failed", "err", err, "failures", l.failures, "bounce", string(c))
			l.drain(c, "")
			continue
		}
		l.failures = 0
		log.Info("s2s outbound stream up", "method", method)
		l.session(ctx, p)
		log.Info("s2s outbound stream closed")
	}
}

// drain bounces every waiting stanza with c.
func (l *link) drain(c stanza.Condition, text string) {
	for _, env := range l.take() {
		l.s.bounce(env, c, text)
	}
}

// session sends over an authenticated stream until it breaks, goes idle,
// or ctx ends.
func (l *link) session(ctx context.Context, p *peer) {
	l.s.track(p.xconn, true)
	defer l.s.track(p.xconn, false)
	ms := l.s.cfg.Metrics.Stream(metrics.Outbound)
	ms.Authenticated()
	defer ms.Closed()
	closed := make(chan struct{})
	go func() {
		// The receiving server sends nothing we need on this stream but
		// its closing tag or a stream error (RFC 6120 section 4.9).
		defer close(closed)
		for {
			el, err := p.next(time.Time{})
			if err != nil {
				if !errors.Is(err, stream.ErrClosed) && !errors.Is(err, net.ErrClosed) {
					l.s.log.Debug("s2s outbound stream read", "remote", l.pair.remote, "err", err)
				}
				return
			}
			if isElem(el, stream.NS, "error") {
				l.s.log.Info("s2s outbound stream error from peer", "remote", l.pair.remote, "condition", string(stream.ParseError(el).Condition))
				return
			}
		}
	}()
	idle := time.NewTimer(l.s.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		q := l.take()
		for i, env := range q {
			el, err := decodeRaw(env.GetRaw())
			if err != nil {
				l.s.log.Warn("s2s: undecodable outbound stanza dropped", "err", err)
				continue
			}
			setSpace(el, stream.NSClient, stream.NSServer)
			if err := p.send(el); err != nil {
				// What was written before may be lost with the socket;
				// without stream management (XEP-0198) nobody can tell.
				l.putBack(q[i:])
				p.nc.Close()
				<-closed
				return
			}
			l.s.cfg.Metrics.Stanza(metrics.Outbound)
		}
		if len(q) > 0 {
			idle.Reset(l.s.cfg.IdleTimeout)
		}
		select {
		case <-l.wake:
		case <-closed:
			p.nc.Close()
			return
		case <-idle.C:
			p.close()
			<-closed
			return
		case <-ctx.Done():
			p.fail(&stream.Error{Condition: stream.SystemShutdown})
			<-closed
			return
		}
	}
}

// backoff is the wait before attempt n+1 after n failures: doubling from
// lo, capped at hi, plus up to 50% random jitter so that servers do not
// retry in step.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
