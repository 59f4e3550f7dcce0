package c2s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// This file is the operator's side of a node: the control requests of
// proto/bus/v1 (kick, broadcast, drain), which arrive as NATS requests on
// Subjects.Control(node), and the drain itself.

// DrainOptions says how a drain sends the clients away.
type DrainOptions struct {
	// Redirect, when set, is the host or host:port each client is sent to
	// with <see-other-host/> (RFC 6120 section 4.9.3.19); when empty the
	// clients get <system-shutdown/> and find a node the usual way.
	Redirect string
	// Deadline bounds the drain: once it passed, the sessions left are
	// closed at once and Run returns. Zero means Config.DrainDeadline.
	Deadline time.Duration
}

// drainSlots: a drain closes its connections at least DrainSpread /
// drainSlots apart.
const drainSlots = 100

// defaultKickText is the text of a kick that gave no reason.
const defaultKickText = "closed by an administrator"

// Draining reports whether a drain started: the node accepts no new
// connections and is sending its clients away.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain stops accepting connections and closes every stream, spread over
// Config.DrainSpread, with <see-other-host/> or <system-shutdown/>; Run
// returns once no connection is left or the deadline passed. Stanzas a
// client sends before its closing tag are still routed, and deliveries
// that reach a closing session go back to the routers (RFC 6121 section
// 8.5.3.2: other resources or offline storage). Drain returns at once with
// the number of bound sessions; a second call changes nothing.
func (s *Server) Drain(o DrainOptions) (int, error) {
	if o.Redirect != "" {
		if err := checkRedirect(o.Redirect); err != nil {
			return 0, err
		}
	}
	if o.Deadline < 0 {
		return 0, errors.New("c2s: drain deadline is negative")
	}
	if o.Deadline == 0 {
		o.Deadline = s.cfg.DrainDeadline
	}
	n := s.SessionCount()
	if !s.draining.CompareAndSwap(false, true) {
		s.log.Info("drain requested again; already draining", "sessions", n)
		return n, nil
	}
	s.drainReq <- o // buffered for the one drain there can be
	s.log.Info("drain requested", "sessions", n, "redirect", o.Redirect, "deadline", o.Deadline)
	return n, nil
}

// CheckRedirect reports whether r can be a drain's redirect; see
// checkRedirect.
func CheckRedirect(r string) error { return checkRedirect(r) }

// checkRedirect accepts host or host:port, where host is a domain name,
// an IPv4 address or a bracketed IPv6 address (RFC 6120 section
// 4.9.3.19), since it becomes the character data of an XML element and
// the clients' next connection.
func checkRedirect(r string) error {
	bad := func(why string) error { return fmt.Errorf("c2s: drain redirect %q: %s", r, why) }
	if len(r) > 300 {
		return bad("too long")
	}
	host := r
	if h, port, err := net.SplitHostPort(r); err == nil {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return bad("bad port")
		}
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		if ip := net.ParseIP(host[1 : len(host)-1]); ip == nil || ip.To4() != nil {
			return bad("not an IPv6 address in brackets")
		}
		return nil
	}
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return bad("want host or host:port")
	}
	return nil
}

// drainError is the stream error a drain closes the streams with.
func drainError(o DrainOptions) *stream.Error {
	if o.Redirect != "" {
		return &stream.Error{Condition: stream.SeeOtherHost, Host: o.Redirect, Text: "this node is being drained; connect to the host given"}
	}
	return &stream.Error{Condition: stream.SystemShutdown, Text: "this node is being drained; connect again"}
}

// drain runs a drain from Run: the listeners close, every connection is
// closed with the drain's error, evenly over the spread (those still
// negotiating first), and drain returns once every connection ended, the
// deadline passed or ctx ended. It returns the error the stop that
// follows closes what is left with.
func (s *Server) drain(ctx context.Context, o DrainOptions, accepting *sync.WaitGroup) *stream.Error {
	serr := drainError(o)
	start := time.Now()
	deadline := time.NewTimer(o.Deadline)
	defer deadline.Stop()
	s.closeListeners()
	accepting.Wait()

	s.mu.Lock()
	open := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	// Connections still negotiating go first: they hold nothing yet.
	slices.SortStableFunc(open, func(a, b *conn) int {
		ab, bb := a.isBound(), b.isBound()
		switch {
		case ab == bb:
			return 0
		case !ab:
			return -1
		}
		return 1
	})
	// Evenly spaced over the spread, but never more than a hundredth of
	// it apart: a herd is a concern only for a node with many sessions,
	// and one with few drains at once.
	spread := min(s.cfg.DrainSpread, o.Deadline/2)
	gap := spread / time.Duration(max(len(open), drainSlots))
	s.log.Info("draining", "connections", len(open), "gap", gap, "deadline", o.Deadline, "condition", string(serr.Condition), "redirect", o.Redirect)

	stopped := false
	for i, c := range open {
		at := start.Add(gap * time.Duration(i))
		if wait := time.Until(at); wait > 0 && !stopped {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-deadline.C:
				stopped = true
			case <-ctx.Done():
				stopped = true
			}
			t.Stop()
		}
		if stopped {
			break
		}
		c.closeWith(serr, true, true)
	}
	if stopped {
		return serr
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.log.Info("drained: no connection left", "took", time.Since(start).Round(time.Millisecond))
	case <-deadline.C:
		s.mu.Lock()
		left := len(s.conns)
		s.mu.Unlock()
		s.log.Warn("drain deadline passed; closing the connections left", "left", left)
	case <-ctx.Done():
	}
	return serr
}

// Kick closes the session of the full JID j, or every session of the bare
// JID j, on this node with <policy-violation/> and reason as its text.
// Deliveries queued for a session are still written before the error;
// later ones go back to the routers. It returns how many it closed.
func (s *Server) Kick(j, reason string) (int, error) {
	target, err := jid.Parse(j)
	if err != nil || target.Localpart() == "" {
		return 0, fmt.Errorf("c2s: kick: %q is not a user's JID", j)
	}
	if reason == "" {
		reason = defaultKickText
	}
	var hit []*conn
	s.mu.Lock()
	for _, c := range s.sessions {
		if !c.isBound() {
			continue
		}
		if c.jid == target || (target.Resourcepart() == "" && c.jid.Bare() == target) {
			hit = append(hit, c)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range hit {
		if c.closing.Load() {
			continue
		}
		c.logger().Info("kicked", "reason", reason)
		c.close(&stream.Error{Condition: stream.PolicyViolation, Text: reason}, true)
		n++
	}
	return n, nil
}

// Broadcast hands the message raw (one <message/> without 'to') to every
// bound session of this node in domain, or only to those that sent
// available presence when availableOnly, with 'to' set to the session's
// full JID and 'from' defaulting to the domain. It returns how many
// sessions took it; one whose queue is full is closed, as for any
// delivery.
func (s *Server) Broadcast(domain string, raw []byte, availableOnly bool) (int, error) {
	d, err := jid.Parse(domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return 0, fmt.Errorf("c2s: broadcast: %q is not a domain", domain)
	}
	el, err := parseStanza(raw, s.cfg.Limits)
	if err != nil {
		return 0, fmt.Errorf("c2s: broadcast: %w", err)
	}
	if el.Space != stream.NSClient || el.Local != stanza.Message {
		return 0, fmt.Errorf("c2s: broadcast: want a jabber:client <message/>, got {%s}%s", el.Space, el.Local)
	}
	if el.Attr("to") != "" {
		return 0, errors.New("c2s: broadcast: the message must not have a 'to'")
	}
	if f := el.Attr("from"); f == "" {
		el.SetAttr("from", d.Domainpart())
	} else if _, err := jid.Parse(f); err != nil {
		return 0, fmt.Errorf("c2s: broadcast: bad 'from' %q", f)
	}
	var targets []*conn
	s.mu.Lock()
	for _, c := range s.sessions {
		if c.isBound() && c.jid.Domainpart() == d.Domainpart() && (!availableOnly || c.available.Load()) {
			targets = append(targets, c)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range targets {
		el.SetAttr("to", c.jid.String())
		if c.deliver(el.Marshal()) {
			n++
		}
	}
	return n, nil
}

// parseStanza reads raw, which must hold exactly one element, with the
// stream reader and its limits; an element without a namespace is in
// jabber:client, as on a client stream.
func parseStanza(raw []byte, limits stream.Limits) (*dom.Element, error) {
	const open = "<stream:stream xmlns='" + stream.NSClient + "' xmlns:stream='" + stream.NS + "' version='1.0'>"
	r := stream.NewReader(io.MultiReader(strings.NewReader(open), bytes.NewReader(raw), strings.NewReader("</stream:stream>")), limits)
	if _, err := r.ReadHeader(); err != nil {
		return nil, fmt.Errorf("bad stanza: %w", err)
	}
	el, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("bad stanza: %w", err)
	}
	if _, err := r.Next(); !errors.Is(err, stream.ErrClosed) {
		return nil, errors.New("bad stanza: not exactly one element")
	}
	return el, nil
}

// onControl answers one control request (proto/bus/v1 ControlRequest).
// It runs on the control subscription's goroutine; nothing in it waits
// for a client.
func (s *Server) onControl(m *nats.Msg) {
	resp := s.control(m.Data)
	if m.Reply == "" {
		return
	}
	b, err := proto.Marshal(resp)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		s.log.Warn("answering a control request failed", "err", err)
	}
}

func (s *Server) control(data []byte) *busv1.ControlResponse {
	var req busv1.ControlRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		s.log.Warn("undecodable control request", "err", err)
		return &busv1.ControlResponse{Error: "undecodable control request: " + err.Error()}
	}
	var (
		n   int
		err error
	)
	switch op := req.Op.(type) {
	case *busv1.ControlRequest_Kick:
		n, err = s.Kick(op.Kick.GetJid(), op.Kick.GetReason())
		s.log.Info("control: kick", "jid", op.Kick.GetJid(), "reason", op.Kick.GetReason(), "closed", n, "err", err)
	case *busv1.ControlRequest_Broadcast:
		b := op.Broadcast
		n, err = s.Broadcast(b.GetDomain(), b.GetRaw(), b.GetAvailableOnly())
		s.log.Info("control: broadcast", "domain", b.GetDomain(), "available_only", b.GetAvailableOnly(), "sessions", n, "err", err)
	case *busv1.ControlRequest_Drain:
		var o DrainOptions
		o, err = drainOptions(op.Drain)
		if err == nil {
			n, err = s.Drain(o)
		}
		s.log.Info("control: drain", "mode", op.Drain.GetMode().String(), "redirect", op.Drain.GetRedirect(), "deadline_ms", op.Drain.GetDeadlineMs(), "sessions", n, "err", err)
	default:
		err = errors.New("c2s: unknown control operation")
		s.log.Warn("control request without a known operation")
	}
	if err != nil {
		return &busv1.ControlResponse{Error: err.Error()}
	}
	return &busv1.ControlResponse{Affected: int32(n)}
}

// drainOptions maps a Drain request to DrainOptions.
func drainOptions(d *busv1.Drain) (DrainOptions, error) {
	if d.GetDeadlineMs() < 0 {
		return DrainOptions{}, errors.New("c2s: drain: deadline_ms is negative")
	}
	o := DrainOptions{Deadline: time.Duration(d.GetDeadlineMs()) * time.Millisecond}
	switch d.GetMode() {
	case busv1.Drain_MODE_UNSPECIFIED:
		o.Redirect = d.GetRedirect()
	case busv1.Drain_MODE_SEE_OTHER_HOST:
		if d.GetRedirect() == "" {
			return DrainOptions{}, errors.New("c2s: drain: see-other-host needs a redirect")
		}
		o.Redirect = d.GetRedirect()
	case busv1.Drain_MODE_SYSTEM_SHUTDOWN:
	default:
		return DrainOptions{}, fmt.Errorf("c2s: drain: unknown mode %v", d.GetMode())
	}
	return o, nil
}
