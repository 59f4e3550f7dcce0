package c2s

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Namespaces of the negotiation (RFC 6120, RFC 3921, XEP-0440).
const (
	nsTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	nsBind      = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession   = "urn:ietf:params:xml:ns:xmpp-session"
	nsSASLCB    = "urn:xmpp:sasl-cb:0"
	defaultLang = "en"
)

// state is where a client stream is in RFC 6120's negotiation. Features
// come in this order: STARTTLS, restart, SASL, restart, resource binding.
type state int

const (
	// stateStartTLS: TLS is required and not negotiated yet; only
	// <starttls/> is accepted.
	stateStartTLS state = iota
	// stateAuth: SASL mechanisms are offered (and STARTTLS too when TLS is
	// optional and not negotiated yet).
	stateAuth
	// stateSASL: an authentication exchange is running.
	stateSASL
	// stateBind: authenticated; waiting for the resource binding IQ.
	stateBind
	// stateSession: the resource is bound; stanzas flow.
	stateSession
)

// firstState is where a new stream starts.
func (c *conn) firstState() state {
	if c.tls == nil && !c.srv.cfg.TLSOptional {
		return stateStartTLS
	}
	return stateAuth
}

// step handles one top-level element the client sent. This switch is the
// negotiation state machine; stanzas of a bound session go to
// handleStanza.
func (c *conn) step(ctx context.Context, el *dom.Element) error {
	switch c.state {
	case stateStartTLS:
		switch {
		case isElem(el, nsTLS, "starttls"):
			return c.startTLS()
		case isElem(el, sasl.NS, "auth"):
			return c.saslFail(&sasl.Failure{Condition: sasl.EncryptionRequired}, "")
		case isClientStanza(el):
			return notAuthorized(el)
		}
		return unsupported(el)

	case stateAuth:
		switch {
		case isElem(el, nsTLS, "starttls"):
			return c.startTLS()
		case isElem(el, sasl.NS, "auth"):
			mech := el.Attr("mechanism")
			if f := c.authLocked(); f != nil {
				return c.saslFail(f, mech)
			}
			ex, err := c.saslConfig().Start(mech)
			if err != nil {
				return c.saslFail(err, mech)
			}
			in, err := sasl.DecodePayload(el.Text())
			if err != nil {
				return c.saslFail(err, mech)
			}
			c.exchange, c.mech, c.state = ex, mech, stateSASL
			return c.saslStep(ctx, in)
		case isElem(el, sasl.NS, "response"), isElem(el, sasl.NS, "abort"):
			return c.saslFail(&sasl.Failure{Condition: sasl.MalformedRequest, Text: "no authentication exchange is running"}, "")
		case isClientStanza(el):
			return notAuthorized(el)
		}
		return unsupported(el)

	case stateSASL:
		switch {
		case isElem(el, sasl.NS, "response"):
			in, err := sasl.DecodePayload(el.Text())
			if err != nil {
				c.exchange, c.state = nil, stateAuth
				return c.saslFail(err, c.mech)
			}
			return c.saslStep(ctx, in)
		case isElem(el, sasl.NS, "abort"):
			c.exchange, c.state = nil, stateAuth
			return c.saslFail(&sasl.Failure{Condition: sasl.Aborted}, c.mech)
		case isElem(el, sasl.NS, "auth"):
			c.exchange, c.state = nil, stateAuth
			return c.saslFail(&sasl.Failure{Condition: sasl.MalformedRequest, Text: "an authentication exchange is already running"}, "")
		case isElem(el, nsTLS, "starttls"):
			return c.startTLS()
		case isClientStanza(el):
			return notAuthorized(el)
		}
		return unsupported(el)

	case stateBind:
		switch {
		case isClientStanza(el) && el.Local == stanza.IQ && el.Child(nsBind, "bind") != nil:
			return c.bind(ctx, el)
		case isElem(el, nsTLS, "starttls"):
			return c.startTLS()
		case isClientStanza(el):
			// RFC 6120 section 7.1: no stanza is processed before a
			// resource is bound.
			return notAuthorized(el)
		}
		return unsupported(el)

	case stateSession:
		if drop, err := c.overRate(el); drop {
			return err
		}
		if isElem(el, nsTLS, "starttls") {
			return c.startTLS()
		}
		return c.handleStanza(ctx, el)
	}
	return &stream.Error{Condition: stream.InternalServerError}
}

// openStream reads the client's stream header and answers with ours and
// the features of the current state (RFC 6120 sections 4.2, 4.3 and 4.7).
func (c *conn) openStream() error {
	h, err := c.r.ReadHeader()
	resp := stream.Header{
		From:    c.streamDomain(),
		ID:      randomID(),
		Version: "1.0",
		Lang:    defaultLang,
		NS:      stream.NSClient,
	}
	if err != nil {
		var serr *stream.Error
		if errors.As(err, &serr) || errors.Is(err, os.ErrDeadlineExceeded) {
			// A stream error needs an open stream (RFC 6120 section
			// 4.9.1.2): our header goes first.
			if werr := c.sendHeader(resp, false); werr != nil {
				return werr
			}
		}
		return err
	}
	if c.reject != nil {
		// Refused at accept (limits.go): the stream only opens to carry
		// the error.
		if err := c.sendHeader(resp, false); err != nil {
			return err
		}
		return c.reject
	}
	c.lang = defaultLang
	if validLang(h.Lang) {
		c.lang = h.Lang
	}
	resp.Lang = c.lang
	if h.From != "" {
		// RFC 6120 section 4.7.2: answer to the address the client gave.
		// A malformed one is ignored rather than echoed.
		if from, err := jid.Parse(h.From); err == nil {
			resp.To = from.String()
		} else {
			c.logger().Info("ignoring malformed from in stream header", "from", h.From)
		}
	}
	major, ok := parseVersion(h.Version)
	supported := ok && major >= 1
	if !supported && (h.Version == "" || ok) {
		// RFC 6120 section 4.7.5: no version means 0.9, and the response
		// then carries none (likewise for an explicit 0.x). We speak only
		// 1.x, which has stream features, SASL and binding, so such a
		// client gets <unsupported-version/> below.
		resp.Version = ""
	}
	var serr *stream.Error
	domain, served := c.servesTo(h.To)
	switch {
	case h.NS != stream.NSClient:
		serr = &stream.Error{Condition: stream.InvalidNamespace, Text: "the content namespace must be " + stream.NSClient}
	case !served:
		serr = &stream.Error{Condition: stream.HostUnknown}
	case !supported:
		serr = &stream.Error{Condition: stream.UnsupportedVersion, Text: "this server speaks XMPP 1.0"}
	}
	if serr != nil {
		if err := c.sendHeader(resp, false); err != nil {
			return err
		}
		if serr.Condition == stream.HostUnknown {
			if c.domain != "" {
				c.logger().Info("stream restart names another domain", "to", h.To, "domain", c.domain)
			} else {
				c.logger().Info("stream for a domain not served", "to", h.To)
			}
		}
		return serr
	}
	if c.domain == "" {
		c.domain = domain
		c.logp.Store(c.logger().With("domain", domain))
	}
	resp.From = domain
	return c.sendHeader(resp, true)
}

// sendHeader writes a response header on the current connection, with the
// features of the current state when withFeatures.
func (c *conn) sendHeader(h stream.Header, withFeatures bool) error {
	c.noWrite.Store(false)
	if err := c.send(&outItem{header: &h, conn: c.nc}); err != nil {
		return err
	}
	if !withFeatures {
		return nil
	}
	return c.sendElement(c.features())
}

// streamDomain is the domain this stream is for: the one its first header
// named, or the default domain before that.
func (c *conn) streamDomain() string {
	if c.domain != "" {
		return c.domain
	}
	return c.srv.cfg.Domain
}

// servesTo returns the domain the 'to' of a stream header names, and
// whether we serve it on this stream. A missing 'to' means the stream's
// domain (the default one on a first header). A restarted stream (after
// STARTTLS or SASL) must stay in the domain it began with: the client
// authenticated there.
func (c *conn) servesTo(to string) (string, bool) {
	if to == "" {
		return c.streamDomain(), true
	}
	j, err := jid.Parse(to)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" || !c.srv.served[j.Domainpart()] {
		return "", false
	}
	if c.domain != "" && j.Domainpart() != c.domain {
		return "", false
	}
	return j.Domainpart(), true
}

// features returns <stream:features> for the current state.
func (c *conn) features() *dom.Element {
	f := dom.New(stream.NS, "features")
	switch c.state {
	case stateStartTLS:
		f.Append(dom.New(nsTLS, "starttls").Append(dom.New(nsTLS, "required")))
	case stateAuth:
		if c.tls == nil && c.srv.cfg.TLS != nil {
			f.Append(dom.New(nsTLS, "starttls"))
		}
		cfg := c.saslConfig()
		mechs := dom.New(sasl.NS, "mechanisms")
		for _, m := range cfg.Offered() {
			mechs.Append(dom.New(sasl.NS, "mechanism").AppendText(m))
		}
		f.Append(mechs)
		if types := cfg.ChannelBindingTypes(); len(types) > 0 {
			cb := dom.New(nsSASLCB, "sasl-channel-binding")
			for _, t := range types {
				cb.Append(dom.New(nsSASLCB, "channel-binding", "type", t))
			}
			f.Append(cb)
		}
	case stateBind:
		f.Append(dom.New(nsBind, "bind"))
		// The RFC 3921 session establishment, kept as an optional no-op
		// for old clients (RFC 6121 appendix E).
		f.Append(dom.New(nsSession, "session").Append(dom.New(nsSession, "optional")))
		// The router answers roster gets with versions and applies
		// subscription pre-approvals (RFC 6121 sections 2.6.1 and 3.4.1).
		f.Append(dom.New("urn:xmpp:features:rosterver", "ver"))
		f.Append(dom.New("urn:xmpp:features:pre-approval", "sub"))
	}
	return f
}

// startTLS answers <starttls/>: <proceed/>, the handshake, and a stream
// restart; or, where STARTTLS is not offered, <failure/> and the end of the
// stream (RFC 6120 section 5.4.2.2).
func (c *conn) startTLS() error {
	if c.tls != nil || c.srv.cfg.TLS == nil || (c.state != stateStartTLS && c.state != stateAuth) {
		c.logger().Info("STARTTLS where it is not offered")
		if err := c.sendElement(dom.New(nsTLS, "failure")); err != nil {
			return err
		}
		return errCloseStream
	}
	if n := c.r.Buffered(); n > 0 {
		// Sent before <proceed/>: never taken as if it came over TLS
		// (the reader drops it when it moves to the TLS connection).
		// Clients that end each element with a newline do this.
		c.logger().Debug("discarding data sent after <starttls/>", "bytes", n)
	}
	if err := c.sendSync(&outItem{el: dom.New(nsTLS, "proceed")}); err != nil {
		return err
	}
	c.noWrite.Store(true)
	if err := c.handshake(); err != nil {
		return err
	}
	c.state, c.restart = stateAuth, true
	return nil
}

// saslConfig describes what this stream may negotiate now.
func (c *conn) saslConfig() *sasl.ServerConfig {
	return &sasl.ServerConfig{
		Lookup:                   c.lookup,
		Mechanisms:               c.srv.cfg.Mechanisms,
		TLS:                      c.tls != nil,
		ChannelBinding:           c.cb,
		AllowPlaintextWithoutTLS: c.srv.cfg.AllowPlaintextAuth,
		Host:                     c.streamDomain(),
	}
}

// saslStep feeds one client message to the running exchange.
func (c *conn) saslStep(ctx context.Context, in []byte) error {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	out, done, err := c.exchange.Step(ctx, in)
	if err != nil {
		c.exchange, c.state = nil, stateAuth
		return c.saslFail(err, c.mech)
	}
	if !done {
		return c.sendElement(dom.New(sasl.NS, "challenge").AppendText(sasl.EncodePayload(out)))
	}
	success := dom.New(sasl.NS, "success")
	if len(out) > 0 {
		success.AppendText(sasl.EncodePayload(out))
	}
	c.user = c.exchange.Username()
	c.exchange = nil
	c.authSucceeded()
	if err := c.send(&outItem{el: success}); err != nil {
		return err
	}
	c.logger().Info("authenticated", "user", c.user, "mechanism", c.mech)
	// RFC 6120 section 6.4.6: both sides restart the stream on the same
	// connection. Bytes already read came before the client could see
	// <success/>, so they are not the new header: they are dropped (a new
	// source value makes the reader discard its buffer), which also
	// spares clients that end <response/> with a newline an XML
	// declaration after whitespace.
	if n := c.r.Buffered(); n > 0 {
		c.logger().Debug("discarding data sent before <success/>", "bytes", n)
	}
	c.r.Reset(&restarted{c.nc})
	c.state, c.restart = stateBind, true
	return nil
}

// saslFail answers a failed step with <failure/> and counts it; past the
// limit the stream is closed with <policy-violation/> (RFC 6120 section
// 6.4.5). Aborts count too: otherwise a client could retry forever.
func (c *conn) saslFail(err error, mech string) error {
	var f *sasl.Failure
	if !errors.As(err, &f) {
		c.logger().Warn("authentication error", "err", err)
		f = &sasl.Failure{Condition: sasl.TemporaryAuthFailure}
	}
	f = c.authFailed(f)
	c.failures++
	c.srv.cfg.Metrics.AuthFailure(mech, string(f.Condition))
	c.logger().Info("authentication failed", "condition", string(f.Condition), "mechanism", mech, "failures", c.failures)
	if werr := c.sendElement(f.Element()); werr != nil {
		return werr
	}
	if c.failures >= c.srv.cfg.MaxAuthFailures {
		return &stream.Error{Condition: stream.PolicyViolation, Text: "too many failed authentication attempts"}
	}
	return nil
}

// bind answers the resource binding IQ (RFC 6120 section 7).
func (c *conn) bind(ctx context.Context, iq *dom.Element) error {
	if iq.Attr("type") != "set" || iq.Attr("id") == "" || iq.ChildCount() != 1 {
		return c.replyError(iq, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	res := iq.Child(nsBind, "bind").ChildText(nsBind, "resource")
	if res == "" {
		res = randomID()
	}
	full, err := jid.New(c.user, c.streamDomain(), res)
	if err != nil {
		// RFC 6120 section 7.7.2.1.
		c.logger().Info("bad resource in bind request", "resource", res, "err", err)
		return c.replyError(iq, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: "the resourcepart cannot be used"})
	}
	c.jid = full
	if err := c.srv.register(ctx, c); err != nil {
		c.logger().Warn("session registration failed", "jid", full.String(), "err", err)
		return c.replyError(iq, &stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	c.logp.Store(c.logger().With("jid", full.String()))
	c.bound.Store(true)
	c.state = stateSession
	c.logger().Info("resource bound")
	result := dom.New(stream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))
	result.Append(dom.New(nsBind, "bind").Append(dom.New(nsBind, "jid").AppendText(full.String())))
	// Negotiation is over: whitespace keepalives may start.
	return c.send(&outItem{el: result, keepalive: true})
}

// restarted is the connection as a new reader source after a SASL
// restart; see saslStep.
type restarted struct{ io.Reader }

// isElem reports whether el is space:local.
func isElem(el *dom.Element, space, local string) bool {
	return el.Space == space && el.Local == local
}

// isClientStanza reports whether el is a message, presence or iq in
// jabber:client.
func isClientStanza(el *dom.Element) bool {
	return el.Space == stream.NSClient && stanza.IsStanza(el)
}

// notAuthorized is the stream error for a stanza sent before a session
// exists (RFC 6120 sections 4.9.3.12 and 6.4.1).
func notAuthorized(el *dom.Element) error {
	return &stream.Error{Condition: stream.NotAuthorized, Text: "<" + el.Local + "/> before authentication and resource binding"}
}

// unsupported is the stream error for a first-level element we do not know
// (RFC 6120 section 4.9.3.24).
func unsupported(el *dom.Element) error {
	return &stream.Error{Condition: stream.UnsupportedStanzaType, Text: "{" + el.Space + "}" + el.Local + " is not supported here"}
}

// parseVersion reads "major.minor" (RFC 6120 section 4.7.5: numbers,
// compared as integers, leading zeros ignored).
func parseVersion(v string) (major int, ok bool) {
	maj, min, found := strings.Cut(v, ".")
	if !found {
		return 0, false
	}
	a, err1 := strconv.ParseUint(maj, 10, 31)
	_, err2 := strconv.ParseUint(min, 10, 31)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return int(a), true
}

// validLang accepts the shape of a BCP 47 language tag: alphanumeric
// subtags of 1 to 8 characters separated by hyphens. Anything else is
// replaced by the default rather than copied onto every stanza.
func validLang(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, sub := range strings.Split(s, "-") {
		if len(sub) == 0 || len(sub) > 8 {
			return false
		}
		for _, r := range sub {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}
