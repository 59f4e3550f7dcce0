package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Namespaces of the negotiation.
const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
	nsSASLCB  = "urn:xmpp:sasl-cb:0" // XEP-0440
)

// negotiate runs the client side of RFC 6120 sections 4 to 7 on c.conn:
// stream headers, STARTTLS, SASL and resource binding. Every step is one
// case of the switch; each stream restart goes round the loop again.
// secure says whether c.conn is already TLS (direct TLS).
func (c *Client) negotiate(ctx context.Context, secure bool) error {
	authenticated := false
	first := true
	for {
		features, err := c.openStream(first, secure)
		if err != nil {
			return err
		}
		first = false
		switch {
		case !secure && features.Child(nsTLS, "starttls") != nil && !c.cfg.DisableStartTLS:
			if err := c.startTLS(ctx); err != nil {
				return err
			}
			secure = true
		case !secure && !c.cfg.AllowPlaintext:
			return ErrTLSRequired
		case !secure && starttlsRequired(features):
			// DisableStartTLS, and the server will not go on without
			// TLS (RFC 6120 section 5.3.1).
			return fmt.Errorf("%w: the server requires STARTTLS, which DisableStartTLS turns off", ErrTLSRequired)
		case !authenticated:
			if err := c.authenticate(features, secure); err != nil {
				return err
			}
			authenticated = true
		case features.Child(nsBind, "bind") == nil:
			return fmt.Errorf("%w: server offers no resource binding after authentication", ErrNegotiation)
		default:
			c.features = features
			return c.bind()
		}
	}
}

// starttlsRequired reports whether features offer STARTTLS as required.
func starttlsRequired(features *dom.Element) bool {
	st := features.Child(nsTLS, "starttls")
	return st != nil && st.Child(nsTLS, "required") != nil
}

// openStream sends a stream header and reads the server's header and
// features. A stream opened after TLS carries the account's bare JID as
// 'from' (RFC 6120 section 4.7.1); before TLS the account is not revealed.
func (c *Client) openStream(first, secure bool) (*dom.Element, error) {
	c.w = stream.NewWriter(c.conn, stream.NSClient)
	if first {
		c.r = stream.NewReader(c.conn, c.cfg.Limits)
	} else {
		c.r.Reset(c.conn)
	}
	h := stream.Header{
		To:      c.cfg.JID.Domainpart(),
		Version: "1.0",
		Lang:    c.cfg.Lang,
		NS:      stream.NSClient,
	}
	if secure {
		h.From = c.cfg.JID.Bare().String()
	}
	if err := c.w.WriteHeader(h); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	sh, err := c.r.ReadHeader()
	if err != nil {
		return nil, c.badInput(err)
	}
	if sh.NS != stream.NSClient {
		return nil, fmt.Errorf("%w: server stream content namespace is %q", ErrNegotiation, sh.NS)
	}
	if major, _, _ := strings.Cut(sh.Version, "."); sh.Version == "" || atoi(major) < 1 {
		return nil, fmt.Errorf("%w: server speaks stream version %q, not 1.0", ErrNegotiation, sh.Version)
	}
	c.streamID = sh.ID
	el, err := c.next()
	if err != nil {
		return nil, err
	}
	if el.Space != stream.NS || el.Local != "features" {
		return nil, fmt.Errorf("%w: expected stream features, got <%s xmlns='%s'>", ErrNegotiation, el.Local, el.Space)
	}
	return el, nil
}

// next reads one element during negotiation; a stream error from the server
// comes back as *stream.Error.
func (c *Client) next() (*dom.Element, error) {
	el, err := c.r.Next()
	if err != nil {
		if errors.Is(err, stream.ErrClosed) {
			return nil, fmt.Errorf("%w: server closed the stream", ErrNegotiation)
		}
		return nil, c.badInput(err)
	}
	if e := stream.ParseError(el); e != nil {
		c.log.Info("xmpp client: stream error from server", "condition", e.Condition, "text", e.Text)
		return nil, e
	}
	return el, nil
}

// badInput wraps a reader error. A *stream.Error from the reader means the
// server sent something a stream must not carry; it is sent back to the
// server, as RFC 6120 section 4.9 asks of either side.
func (c *Client) badInput(err error) error {
	var se *stream.Error
	if errors.As(err, &se) {
		c.log.Warn("xmpp client: bad input from server", "condition", se.Condition, "text", se.Text)
		if c.w != nil && c.w.WriteError(se) == nil {
			_ = c.w.Flush()
		}
		c.errorSent = true
		return fmt.Errorf("client: server sent bad data: %w", err)
	}
	return err
}

// send writes one element during negotiation.
func (c *Client) send(el *dom.Element) error {
	if err := c.w.WriteElement(el); err != nil {
		return err
	}
	return c.w.Flush()
}

// startTLS runs RFC 6120 section 5.4.2 and the handshake.
func (c *Client) startTLS(ctx context.Context) error {
	if err := c.send(dom.New(nsTLS, "starttls")); err != nil {
		return err
	}
	el, err := c.next()
	if err != nil {
		return err
	}
	switch {
	case el.Space == nsTLS && el.Local == "proceed":
	case el.Space == nsTLS && el.Local == "failure":
		return fmt.Errorf("%w: server answered STARTTLS with failure", ErrNegotiation)
	default:
		return fmt.Errorf("%w: expected <proceed/>, got <%s xmlns='%s'>", ErrNegotiation, el.Local, el.Space)
	}
	if n := c.r.Buffered(); n > 0 {
		// Bytes after <proceed/> would be read as if they came over TLS:
		// the plaintext injection of CVE-2011-0411. Refuse them.
		return fmt.Errorf("%w: %d bytes after <proceed/> before the TLS handshake", ErrNegotiation, n)
	}
	tc := tls.Client(c.conn, c.cfg.tlsConfig(""))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("client: TLS handshake: %w", err)
	}
	c.conn = tc
	return nil
}

// authenticate runs RFC 6120 section 6.4 with the best acceptable mechanism.
func (c *Client) authenticate(features *dom.Element, secure bool) error {
	mechs := features.Child(sasl.NS, "mechanisms")
	if mechs == nil {
		return fmt.Errorf("%w: server offers no SASL mechanisms", ErrNegotiation)
	}
	var offered []string
	for _, m := range mechs.Children() {
		if m.Space == sasl.NS && m.Local == "mechanism" {
			offered = append(offered, strings.TrimSpace(m.Text()))
		}
	}
	var advertised []string // XEP-0440; nil when the server says nothing
	if cb := features.Child(nsSASLCB, "sasl-channel-binding"); cb != nil {
		advertised = []string{}
		for _, t := range cb.Children() {
			if t.Space == nsSASLCB && t.Local == "channel-binding" {
				advertised = append(advertised, t.Attr("type"))
			}
		}
	}
	var state *tls.ConnectionState
	if tc, ok := c.conn.(*tls.Conn); ok && secure {
		cs := tc.ConnectionState()
		state = &cs
	}
	choice, err := chooseMechanism(offered, c.cfg.Mechanisms, advertised, state, c.cfg.AllowPLAINWithoutTLS)
	if err != nil {
		return err
	}
	user, pass := c.cfg.JID.Localpart(), c.cfg.Password
	var cl sasl.Client
	if choice.mech == sasl.Plain {
		cl = sasl.NewPlainClient(user, pass, "")
	} else {
		if k := c.cfg.ScramCache; k != nil {
			cl, err = k.NewClient(choice.mech, user, pass, "", choice.cbType, choice.cbData, choice.gs2NoBinding)
		} else {
			cl, err = sasl.NewScramClient(choice.mech, user, pass, "", choice.cbType, choice.cbData, choice.gs2NoBinding)
		}
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
	c.log.Debug("xmpp client: authenticating", "mechanism", choice.mech, "channel_binding", choice.cbType, "offered", offered)
	initial, err := cl.Start()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	auth := dom.New(sasl.NS, "auth", "mechanism", choice.mech).AppendText(sasl.EncodePayload(initial))
	if err := c.send(auth); err != nil {
		return err
	}
	for {
		el, err := c.next()
		if err != nil {
			return err
		}
		if el.Space != sasl.NS {
			return fmt.Errorf("%w: unexpected <%s xmlns='%s'> during SASL", ErrNegotiation, el.Local, el.Space)
		}
		switch el.Local {
		case "challenge":
			data, err := sasl.DecodePayload(el.Text())
			if err != nil {
				return c.abortSASL(fmt.Errorf("%w: bad challenge encoding", ErrNegotiation))
			}
			resp, err := cl.Step(data)
			if err != nil {
				return c.abortSASL(fmt.Errorf("client: %s: %w", choice.mech, err))
			}
			if err := c.send(dom.New(sasl.NS, "response").AppendText(sasl.EncodePayload(resp))); err != nil {
				return err
			}
		case "success":
			data, err := sasl.DecodePayload(el.Text())
			if err != nil {
				return fmt.Errorf("%w: bad success encoding", ErrNegotiation)
			}
			if err := cl.Verify(data); err != nil {
				c.log.Warn("xmpp client: server failed SASL verification", "mechanism", choice.mech, "err", err)
				return fmt.Errorf("%w: %v", ErrServerSignature, err)
			}
			c.mechanism = choice.mech
			c.cbType = choice.cbType
			return nil
		case "failure":
			f := sasl.ParseFailure(el)
			c.log.Info("xmpp client: authentication failed", "mechanism", choice.mech, "condition", f.Condition, "text", f.Text)
			return f
		default:
			return fmt.Errorf("%w: unexpected <%s/> during SASL", ErrNegotiation, el.Local)
		}
	}
}

// abortSASL sends <abort/> (RFC 6120 section 6.4.4) and returns err.
func (c *Client) abortSASL(err error) error {
	_ = c.send(dom.New(sasl.NS, "abort"))
	return err
}

// saslChoice is the mechanism and channel binding picked for a stream.
type saslChoice struct {
	mech   string
	cbType string
	cbData []byte
	// gs2NoBinding is sasl.NewScramClient's serverSupportsPlus argument:
	// true makes a non-PLUS SCRAM client send the GS2 flag "n" (no channel
	// binding on this side), false sends "y" (the client could bind but
	// the server did not offer -PLUS, RFC 5802 section 6).
	gs2NoBinding bool
}

// chooseMechanism picks the first mechanism of mechanismOrder that the
// server offers and the client accepts. A -PLUS mechanism needs TLS and a
// channel binding type that both sides have: tls-exporter when the
// connection can export keying material (TLS 1.3, or TLS 1.2 with the
// extended master secret), else tls-server-end-point; when the server lists
// its types (XEP-0440) only those are used.
func chooseMechanism(offered, allowed, advertised []string, state *tls.ConnectionState, plainWithoutTLS bool) (saslChoice, error) {
	cbType, cbData := "", []byte(nil)
	if state != nil {
		cbType, cbData = pickChannelBinding(state, advertised)
	}
	offeredPlus := slices.Contains(offered, sasl.ScramSHA256Plus) || slices.Contains(offered, sasl.ScramSHA1Plus)
	var reasons []string
	for _, m := range mechanismOrder {
		if !slices.Contains(offered, m) {
			continue
		}
		if len(allowed) > 0 && !slices.Contains(allowed, m) {
			reasons = append(reasons, m+" not allowed by Config.Mechanisms")
			continue
		}
		switch m {
		case sasl.ScramSHA256Plus, sasl.ScramSHA1Plus:
			if cbType == "" {
				reasons = append(reasons, m+" needs a channel binding this connection lacks")
				continue
			}
			return saslChoice{mech: m, cbType: cbType, cbData: cbData}, nil
		case sasl.Plain:
			if state == nil && !plainWithoutTLS {
				reasons = append(reasons, "PLAIN refused without TLS")
				continue
			}
		}
		// Flag 'y' only when this side could bind and the server offered
		// no -PLUS; that lets a server detect a stripped mechanism list.
		return saslChoice{mech: m, gs2NoBinding: offeredPlus || cbType == ""}, nil
	}
	if len(reasons) == 0 {
		return saslChoice{}, fmt.Errorf("%w: server offers %q", ErrNoMechanism, offered)
	}
	return saslChoice{}, fmt.Errorf("%w: server offers %q (%s)", ErrNoMechanism, offered, strings.Join(reasons, "; "))
}

// pickChannelBinding returns the binding type and data to use, or "".
func pickChannelBinding(state *tls.ConnectionState, advertised []string) (string, []byte) {
	exporter, errExp := channelBinding(state, sasl.CBTLSExporter)
	endpoint, errEnd := channelBinding(state, sasl.CBTLSServerEndPoint)
	if advertised != nil {
		switch {
		case errExp == nil && slices.Contains(advertised, sasl.CBTLSExporter):
			return sasl.CBTLSExporter, exporter
		case errEnd == nil && slices.Contains(advertised, sasl.CBTLSServerEndPoint):
			return sasl.CBTLSServerEndPoint, endpoint
		}
		return "", nil
	}
	switch {
	case errExp == nil:
		return sasl.CBTLSExporter, exporter
	case errEnd == nil:
		return sasl.CBTLSServerEndPoint, endpoint
	}
	return "", nil
}

// channelBinding computes the data of one channel binding type: RFC 9266
// for tls-exporter (32 bytes of the "EXPORTER-Channel-Binding" label, which
// crypto/tls refuses for TLS 1.2 without the extended master secret) and
// RFC 5929 section 4.1 for tls-server-end-point (the hash of the server's
// certificate with its signature's hash, SHA-256 for MD5 and SHA-1).
func channelBinding(state *tls.ConnectionState, cbType string) ([]byte, error) {
	switch cbType {
	case sasl.CBTLSExporter:
		return state.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	case sasl.CBTLSServerEndPoint:
		if len(state.PeerCertificates) == 0 {
			return nil, errors.New("no server certificate")
		}
		return sasl.TLSServerEndPoint(state.PeerCertificates[0])
	}
	return nil, fmt.Errorf("unknown channel binding type %q", cbType)
}

// bind runs RFC 6120 section 7 and stores the full JID.
func (c *Client) bind() error {
	b := dom.New(nsBind, "bind")
	if c.cfg.Resource != "" {
		b.Append(dom.New(nsBind, "resource").AppendText(c.cfg.Resource))
	}
	id := newID()
	if err := c.send(dom.New(stream.NSClient, "iq", "type", "set", "id", id).Append(b)); err != nil {
		return err
	}
	for {
		el, err := c.next()
		if err != nil {
			return err
		}
		if el.Local != "iq" || el.Attr("id") != id {
			// Nothing else should come before the bind result; a server
			// that sends it anyway loses it rather than the session.
			c.log.Warn("xmpp client: element before the bind result ignored", "element", el.Local)
			continue
		}
		switch el.Attr("type") {
		case "result":
			var text string
			if b := el.Child(nsBind, "bind"); b != nil {
				text = strings.TrimSpace(b.ChildText(nsBind, "jid"))
			}
			if text == "" {
				return fmt.Errorf("%w: bind result without a JID", ErrBadReply)
			}
			j, err := jid.Parse(text)
			if err != nil || j.IsBare() || j.Bare() != c.cfg.JID.Bare() {
				return fmt.Errorf("%w: bind result JID %q is not a full JID of %s", ErrBadReply, text, c.cfg.JID.Bare())
			}
			c.jid = j
			return nil
		case "error":
			se, ok := stanza.ParseError(el)
			if !ok {
				return fmt.Errorf("%w: bind error without a condition", ErrBadReply)
			}
			c.log.Info("xmpp client: resource binding refused", "condition", se.Condition, "text", se.Text)
			return se
		default:
			return fmt.Errorf("%w: bind answer of type %q", ErrBadReply, el.Attr("type"))
		}
	}
}

// atoi is strconv.Atoi that gives -1 for anything but digits.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
