package c2s

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// This file is the bus side of c2s: stanzas published to the route stream
// and acknowledged by it, deliveries taken in with duplicates dropped, and
// deliveries no session here can take handed back to the routers.

// ackWindow is how many stanzas of one session may wait for the stream's
// acknowledgement; the session's reader waits when it is full, which slows
// that client only.
const ackWindow = 128

// pendingAck is a published stanza waiting for the stream's answer.
type pendingAck struct {
	f  jetstream.PubAckFuture
	el *dom.Element // for the error reply
	at time.Time    // when it was published
}

// publish sends a stamped stanza to the route partition of this session's
// account, which keeps one sender's stanzas in order. The stream's
// acknowledgement is awaited by ackLoop, so a session has up to ackWindow
// stanzas in flight; the message id (node, session, seq) lets the stream
// drop a second copy of a publish that is retried.
func (c *conn) publish(el *dom.Element, to jid.JID) error {
	var toStr string
	if !to.IsZero() {
		toStr = to.String()
	}
	c.seq++
	env := &busv1.Stanza{
		From:   c.jid.String(),
		To:     toStr,
		Kind:   kinds[el.Local],
		Type:   el.Attr("type"),
		Id:     el.Attr("id"),
		Origin: &busv1.Origin{Node: c.srv.cfg.Node, Session: c.sessionID},
		Raw:    el.Marshal(),
		Seq:    c.seq,
	}
	at := time.Now()
	env.SentUnixNano = at.UnixNano()
	tctx, span := c.srv.cfg.Tracer.Start(context.Background(), "c2s.stanza", "", tracing.Producer)
	defer span.End()
	env.Traceparent = c.srv.cfg.Tracer.Traceparent(tctx)
	b, err := proto.Marshal(env)
	var f jetstream.PubAckFuture
	if err == nil {
		m := &nats.Msg{Subject: c.srv.cfg.Subjects.RouteFor(c.jid.Bare().String()), Data: b}
		// No automatic retry: a retry after a later stanza was stored
		// would reorder them. A failure is answered to the client.
		// With the node's whole window in flight, the session's reader
		// waits for room up to the publish timeout.
		f, err = c.srv.js.PublishMsgAsync(m, jetstream.WithMsgID(bus.StanzaMsgID(c.srv.cfg.Node, c.sessionID, c.seq)),
			jetstream.WithRetryAttempts(0), jetstream.WithStallWait(c.srv.cfg.PublishTimeout))
	}
	if err != nil {
		c.seq--
		return fmt.Errorf("c2s: publish: %w", err)
	}
	c.srv.cfg.Metrics.StanzaIn(int32(env.Kind))
	c.acks <- pendingAck{f: f, el: el, at: at}
	return nil
}

// ackLoop waits, in publish order, for the stream's answer to each stanza
// of the session. A stanza the stream refused or did not confirm within
// Config.PublishTimeout is answered with a stanza error (RFC 6120 section
// 8.3.3.6, wait/internal-server-error) so that the client may send it
// again: it may or may not have been stored.
func (c *conn) ackLoop() {
	defer close(c.acksDone)
	for p := range c.acks {
		select {
		case <-p.f.Ok():
			c.srv.cfg.Metrics.Published(p.at, true)
		case err := <-p.f.Err():
			c.srv.cfg.Metrics.Published(p.at, false)
			c.logger().Warn("the route stream did not accept a stanza", "err", err, "id", p.el.Attr("id"))
			if p.el.Attr("type") == "unavailable" && p.el.Attr("to") == "" && c.closing.Load() {
				continue // the final presence of a closed stream: nobody to tell
			}
			if err := c.replyError(p.el, &stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError, Text: "the stanza could not be routed; try again"}); err != nil {
				c.logger().Debug("reporting a failed publish", "err", err)
			}
		}
	}
}

// originHWM is the last delivery made to one session from one origin.
type originHWM struct {
	seq  uint64
	part uint32
	seen time.Time
}

// dedupe tells deliveries a session has already had. A router that takes
// over a partition routes again what its predecessor had not acknowledged,
// so the same (origin, seq, part) can arrive twice; per-sender order makes
// a high-water mark per origin enough. Late deliveries (routed again after
// a hand-back) may be older than the mark and are checked against a short
// list of their own. Only the NATS delivery callback uses it.
type dedupe struct {
	hwm   map[string]*originHWM
	late  []string // ring of the last lateKeep late deliveries' keys
	next  int
	swept time.Time
}

const (
	// originIdle is how long an origin's mark is kept without deliveries:
	// duplicates come from a router failover, seconds after the original.
	originIdle = 5 * time.Minute
	// maxOrigins bounds the marks one session keeps.
	maxOrigins = 4096
	// lateKeep is how many late deliveries a session remembers.
	lateKeep = 32
)

func originKey(o *busv1.Origin) string { return o.GetNode() + "/" + o.GetSession() }

func lateKey(d *busv1.Delivery) string {
	return fmt.Sprintf("%s/%d/%d", originKey(d.GetOrigin()), d.GetSeq(), d.GetPart())
}

// dup reports whether the session already had d.
func (dd *dedupe) dup(d *busv1.Delivery) bool {
	if d.GetOrigin() == nil || d.GetSeq() == 0 {
		return false
	}
	if d.GetLate() {
		k := lateKey(d)
		for _, s := range dd.late {
			if s == k {
				return true
			}
		}
		return false
	}
	h := dd.hwm[originKey(d.GetOrigin())]
	return h != nil && (d.GetSeq() < h.seq || d.GetSeq() == h.seq && d.GetPart() <= h.part)
}

// record notes that d was delivered to the session.
func (dd *dedupe) record(d *busv1.Delivery, now time.Time) {
	if d.GetOrigin() == nil || d.GetSeq() == 0 {
		return
	}
	if d.GetLate() {
		k := lateKey(d)
		if len(dd.late) < lateKeep {
			dd.late = append(dd.late, k)
		} else {
			dd.late[dd.next] = k
			dd.next = (dd.next + 1) % lateKeep
		}
		return
	}
	key := originKey(d.GetOrigin())
	if h := dd.hwm[key]; h != nil {
		h.seq, h.part, h.seen = d.GetSeq(), d.GetPart(), now
		return
	}
	if dd.hwm == nil {
		dd.hwm = make(map[string]*originHWM)
	}
	dd.sweep(now)
	dd.hwm[key] = &originHWM{seq: d.GetSeq(), part: d.GetPart(), seen: now}
}

// sweep forgets idle origins, at most once a minute or when the map is
// full.
func (dd *dedupe) sweep(now time.Time) {
	if now.Sub(dd.swept) < time.Minute && len(dd.hwm) < maxOrigins {
		return
	}
	dd.swept = now
	for k, h := range dd.hwm {
		if now.Sub(h.seen) > originIdle {
			delete(dd.hwm, k)
		}
	}
	for k := range dd.hwm {
		if len(dd.hwm) < maxOrigins {
			break
		}
		delete(dd.hwm, k) // still full of busy origins: forget some
	}
}

// handBack returns a delivery no session here can take to the routers,
// which apply the no-session rules of RFC 6121 section 8.5.3.2 to it. The
// publish is acknowledged by the stream; a failure is logged, as nobody
// is left to tell.
func (s *Server) handBack(d *busv1.Delivery, why string) {
	s.cfg.Metrics.HandedBack()
	failed := make([]*busv1.Origin, 0, len(d.Failed)+1)
	failed = append(failed, d.Failed...)
	failed = append(failed, &busv1.Origin{Node: s.cfg.Node, Session: d.Session})
	st := &busv1.Stanza{
		From: d.From, To: d.To, Kind: d.Kind, Type: d.Type, Id: d.Id, Raw: d.Raw,
		Origin: d.Origin, Seq: d.Seq,
		Undeliverable: &busv1.Undeliverable{Failed: failed, Part: d.Part},
	}
	b, err := proto.Marshal(st)
	if err != nil {
		s.log.Error("marshal a handed-back stanza", "err", err)
		return
	}
	o := d.GetOrigin()
	id := bus.HandBackMsgID(o.GetNode(), o.GetSession(), d.Seq, d.Part, s.cfg.Node, d.Session)
	from, _, _ := strings.Cut(d.From, "/")
	s.log.Debug("handing a delivery back to the routers", "why", why, "session", d.Session, "from", d.From, "to", d.To, "id", d.Id)
	f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: s.cfg.Subjects.RouteFor(from), Data: b}, jetstream.WithMsgID(id))
	if err != nil {
		s.log.Warn("handing a delivery back failed", "err", err, "session", d.Session, "from", d.From)
		return
	}
	go func() {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			s.log.Warn("handing a delivery back failed", "err", err, "session", d.Session, "from", d.From)
		}
	}()
}
