package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/xmpp/dialback"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// inbound is a stream another server opened to us. It may carry
// <db:verify/> requests (we are the authoritative server), <db:result/>
// requests (we are the receiving server), SASL EXTERNAL, and then stanzas
// from the domains it authenticated.
type inbound struct {
	s    *Server
	x    *xconn
	id   string // our stream id, which dialback keys are bound to
	peer string // from of the peer's header, prepared; may be empty
	// local is the domain of ours the peer's latest header named (the
	// default one without 'to'): the certificate's name when the peer's
	// TLS handshake carries none (SNI).
	local string
	log   *slog.Logger
	seq   uint64             // of the stanzas published
	ms    *metrics.S2SStream // its place in the streams gauge

	mu      sync.Mutex
	authed  map[string]bool // remote domains this stream may send from
	pending int             // dialback verifications running
}

// serve runs one inbound stream until it ends.
func (s *Server) serveInbound(ctx context.Context, nc net.Conn) {
	in := &inbound{s: s, x: newXConn(nc, s.cfg.Limits), authed: map[string]bool{},
		log: s.log.With("remote_addr", nc.RemoteAddr().String())}
	s.track(in.x, true)
	defer s.track(in.x, false)
	in.ms = s.cfg.Metrics.Stream(metrics.Inbound)
	defer in.ms.Closed()
	stop := context.AfterFunc(ctx, func() { in.x.fail(&stream.Error{Condition: stream.SystemShutdown}) })
	defer stop()
	err := in.run(ctx)
	var se *stream.Error
	switch {
	case errors.As(err, &se):
		in.log.Info("s2s inbound stream closed with an error", "condition", string(se.Condition), "text", se.Text, "peer", in.peer)
		in.x.fail(se)
	case err == nil || errors.Is(err, stream.ErrClosed):
		in.x.close()
	default:
		in.log.Debug("s2s inbound stream ended", "err", err, "peer", in.peer)
		in.x.nc.Close()
	}
}

// errRestart asks run to read a new stream header (RFC 6120 sections
// 5.4.3.3 and 6.4.6).
var errRestart = errors.New("stream restart")

func (in *inbound) run(ctx context.Context) error {
	negotiate := time.Now().Add(in.s.cfg.NegotiationTimeout)
	for {
		if err := in.open(negotiate); err != nil {
			return err
		}
		for {
			deadline := negotiate
			if in.authenticated() {
				deadline = time.Now().Add(in.s.cfg.IdleTimeout)
			}
			el, err := in.x.next(deadline)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return &stream.Error{Condition: stream.ConnectionTimeout}
				}
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			err = in.step(ctx, el)
			if err == errRestart {
				break
			}
			if err != nil {
				return err
			}
		}
	}
}

// open reads the peer's header and answers with ours and the features.
func (in *inbound) open(deadline time.Time) error {
	h, err := in.x.readHeader(deadline)
	if err != nil {
		return err
	}
	if h.NS != stream.NSServer {
		return &stream.Error{Condition: stream.InvalidNamespace, Text: "server streams are jabber:server"}
	}
	local := in.s.cfg.Domains[0]
	if h.To != "" {
		d, err := prepDomain(h.To)
		if err != nil || !in.s.cfg.ours(d) {
			return &stream.Error{Condition: stream.HostUnknown}
		}
		local = d
	}
	in.peer = ""
	if h.From != "" {
		d, err := prepDomain(h.From)
		if err != nil {
			return &stream.Error{Condition: stream.InvalidFrom}
		}
		if !in.s.cfg.permitted(d) {
			return &stream.Error{Condition: stream.PolicyViolation, Text: "federation with this domain is not allowed"}
		}
		in.peer = d
	}
	in.id = newStreamID()
	in.local = local
	if err := in.x.header(stream.Header{From: local, To: in.peer, ID: in.id}); err != nil {
		return err
	}
	return in.x.send(in.features())
}

// features lists what the peer may do next: STARTTLS first (required),
// then SASL EXTERNAL when its certificate is valid for its domain, and
// dialback unless refused.
func (in *inbound) features() *dom.Element {
	f := dom.New(stream.NS, "features")
	if in.x.tls == nil {
		return f.Append(dom.New(nsTLS, "starttls").Append(dom.New(nsTLS, "required")))
	}
	if in.peer != "" && !in.authedDomain(in.peer) && checkCertificate(in.x.tls, in.s.cfg.RootCAs, in.peer) == nil {
		f.Append(dom.New(nsSASL, "mechanisms").Append(dom.New(nsSASL, "mechanism").AppendText("EXTERNAL")))
	}
	if in.s.acceptsDialback() {
		f.Append(dom.New(dialback.NSFeature, "dialback").Append(dom.New(dialback.NSFeature, "errors")))
	}
	return f
}

func (s *Server) acceptsDialback() bool {
	return !s.cfg.RefuseDialback && s.cfg.Verification != VerifyRequired
}

func (in *inbound) authenticated() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.authed) > 0
}

func (in *inbound) authedDomain(d string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.authed[d]
}

// step handles one top-level element. This switch is the inbound
// negotiation: TLS, then SASL EXTERNAL or dialback, then stanzas.
func (in *inbound) step(ctx context.Context, el *dom.Element) error {
	switch {
	case isElem(el, nsTLS, "starttls"):
		if in.x.tls != nil {
			return &stream.Error{Condition: stream.PolicyViolation, Text: "TLS is already on"}
		}
		return in.startTLS()
	case in.x.tls == nil:
		// RFC 6120 section 5.3.1: nothing before TLS when it is required.
		return &stream.Error{Condition: stream.PolicyViolation, Text: "STARTTLS is required"}
	case isElem(el, nsSASL, "auth"):
		return in.external(el)
	case isElem(el, dialback.NS, "verify"):
		return in.authoritative(el)
	case isElem(el, dialback.NS, "result"):
		return in.receiving(ctx, el)
	case stanza.IsStanza(el) && el.Space == stream.NSServer:
		return in.stanza(el)
	case isElem(el, stream.NS, "error"):
		// RFC 6120 section 4.9.1: the peer ends its stream with an error;
		// it is logged and our stream is closed without an error of ours.
		in.log.Info("s2s inbound stream error from peer", "condition", string(stream.ParseError(el).Condition), "peer", in.peer)
		return stream.ErrClosed
	}
	return &stream.Error{Condition: stream.UnsupportedStanzaType, Text: "<" + el.Local + "/> is not understood here"}
}

func (in *inbound) startTLS() error {
	if err := in.x.send(dom.New(nsTLS, "proceed")); err != nil {
		return err
	}
	cfg := in.s.cfg.TLS.Clone()
	// The chain is judged by checkCertificate: a peer without a valid
	// certificate may still use dialback.
	cfg.ClientAuth = tls.RequestClientCert
	if get := cfg.GetCertificate; get != nil {
		// Our certificate is chosen by the name the peer asks for (SNI),
		// else by the domain its stream header named.
		local := in.local
		cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" {
				named := *hello
				named.ServerName = local
				return get(&named)
			}
			return get(hello)
		}
	}
	if err := in.x.upgrade(tls.Server(in.x.nc, cfg), time.Now().Add(in.s.cfg.NegotiationTimeout)); err != nil {
		return err
	}
	return errRestart
}

// external handles SASL EXTERNAL (RFC 6120 section 6.4, XEP-0178): the
// peer is its certificate's domain, which must be the from of its header;
// an authorization identity, when given, must be the same domain.
func (in *inbound) external(el *dom.Element) error {
	fail := func(c string) error {
		return in.x.send(dom.New(nsSASL, "failure").Append(dom.New(nsSASL, c)))
	}
	if el.Attr("mechanism") != "EXTERNAL" {
		return fail("invalid-mechanism")
	}
	if in.peer == "" || in.authedDomain(in.peer) || checkCertificate(in.x.tls, in.s.cfg.RootCAs, in.peer) != nil {
		in.log.Info("s2s SASL EXTERNAL refused: no certificate valid for the claimed domain", "peer", in.peer)
		in.s.cfg.Metrics.Auth(metrics.Inbound, "external", "invalid")
		return fail("not-authorized")
	}
	if t := el.Text(); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return fail("incorrect-encoding")
		}
		if d, err := prepDomain(string(b)); err != nil || d != in.peer {
			return fail("invalid-authzid")
		}
	}
	in.mu.Lock()
	in.authed[in.peer] = true
	in.mu.Unlock()
	in.log.Info("s2s inbound authenticated", "domain", in.peer, "method", "EXTERNAL")
	in.s.cfg.Metrics.Auth(metrics.Inbound, "external", "valid")
	in.ms.Authenticated()
	if err := in.x.send(dom.New(nsSASL, "success")); err != nil {
		return err
	}
	return errRestart
}

// authoritative answers a <db:verify/> (XEP-0220 section 2.3.2): we are
// the authoritative server of to, and recompute the key we would have
// sent on the stream with that id to from.
func (in *inbound) authoritative(el *dom.Element) error {
	v, err := dialback.ParseVerify(el)
	if err != nil || v.Type != dialback.Request {
		return &stream.Error{Condition: stream.BadFormat, Text: "malformed <db:verify/>"}
	}
	ans := dialback.Verify{From: v.To, To: v.From, ID: v.ID}
	switch {
	case !in.s.cfg.ours(v.To):
		ans.Type, ans.Err = dialback.Error, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}
	case dialback.Check(in.s.cfg.Secret, v.From, v.To, v.ID, v.Key):
		ans.Type = dialback.Valid
	default:
		ans.Type = dialback.Invalid
	}
	in.log.Info("s2s dialback key checked as the authoritative server", "receiving", v.From, "originating", v.To, "result", string(ans.Type))
	return in.x.send(ans.Element())
}

// receiving handles a <db:result/> request (XEP-0220 section 2.1): the
// peer asks to send from its domain to ours. The key is checked with the
// authoritative server of that domain, on a stream of our own, while this
// stream goes on.
func (in *inbound) receiving(ctx context.Context, el *dom.Element) error {
	r, err := dialback.ParseResult(el)
	if err != nil || r.Type != dialback.Request {
		return &stream.Error{Condition: stream.BadFormat, Text: "malformed <db:result/>"}
	}
	reply := dialback.Result{From: r.To, To: r.From}
	switch {
	case !in.s.acceptsDialback():
		reply.Type, reply.Err = dialback.Error, &stanza.Error{Type: stanza.Cancel, Condition: stanza.PolicyViolation, Text: "dialback is not accepted"}
	case !in.s.cfg.ours(r.To):
		reply.Type, reply.Err = dialback.Error, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}
	case !in.s.cfg.permitted(r.From):
		reply.Type, reply.Err = dialback.Error, &stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden}
	}
	if reply.Type != dialback.Request {
		return in.x.send(reply.Element())
	}
	in.mu.Lock()
	in.pending++
	in.mu.Unlock()
	go func() {
		ok, err := in.s.verifyKey(ctx, r.To, r.From, in.id, r.Key)
		in.mu.Lock()
		in.pending--
		if ok {
			in.authed[r.From] = true
		}
		in.mu.Unlock()
		switch {
		case err != nil:
			in.log.Info("s2s dialback: the authoritative server could not be asked", "domain", r.From, "err", err)
			reply.Type, reply.Err = dialback.Error, &stanza.Error{Type: stanza.Wait, Condition: stanza.RemoteServerNotFound}
		case ok:
			in.log.Info("s2s inbound authenticated", "domain", r.From, "method", "dialback")
			reply.Type = dialback.Valid
			in.ms.Authenticated()
		default:
			in.log.Info("s2s dialback key did not verify", "domain", r.From)
			reply.Type = dialback.Invalid
		}
		in.s.cfg.Metrics.Auth(metrics.Inbound, "dialback", string(reply.Type))
		if err := in.x.send(reply.Element()); err != nil {
			in.x.nc.Close()
			return
		}
		if reply.Type == dialback.Invalid && !in.authenticated() {
			// As RFC 3920 section 8.3 had it, a stream whose only
			// claim failed is ended rather than left open unauthenticated.
			in.x.fail(&stream.Error{Condition: stream.NotAuthorized, Text: "dialback key not valid for " + r.From})
		}
	}()
	return nil
}

// stanza checks a stanza against RFC 6120 sections 4.9.3 and 8.1 and
// publishes it for the routers.
func (in *inbound) stanza(el *dom.Element) error {
	if !in.authenticated() {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "no domain authenticated on this stream"}
	}
	f, t := el.Attr("from"), el.Attr("to")
	if f == "" || t == "" {
		return &stream.Error{Condition: stream.ImproperAddressing, Text: "a server-to-server stanza needs from and to"}
	}
	from, err := jid.Parse(f)
	if err != nil || !in.authedDomain(from.Domainpart()) {
		in.log.Info("s2s stanza with a forged from", "from", f)
		return &stream.Error{Condition: stream.InvalidFrom, Text: "from is not a domain authenticated on this stream"}
	}
	to, err := jid.Parse(t)
	if err != nil {
		return in.replyError(el, stanza.JIDMalformed)
	}
	if !in.s.cfg.ours(to.Domainpart()) {
		return &stream.Error{Condition: stream.HostUnknown, Text: "to is not a domain served here"}
	}
	setSpace(el, stream.NSServer, stream.NSClient)
	el.SetAttr("from", from.String())
	el.SetAttr("to", to.String())
	in.seq++
	if err := in.s.publish(el, from, to, in.id, in.seq); err != nil {
		in.seq--
		in.log.Warn("publishing an inbound stanza failed", "err", err)
		setSpace(el, stream.NSClient, stream.NSServer)
		return in.replyError(el, stanza.InternalServerError)
	}
	in.s.cfg.Metrics.Stanza(metrics.Inbound)
	return nil
}

// replyError answers a stanza on this stream with an error.
func (in *inbound) replyError(el *dom.Element, c stanza.Condition) error {
	r := stanza.ErrorReply(el, &stanza.Error{Condition: c})
	if r == nil {
		return nil
	}
	return in.x.send(r)
}
