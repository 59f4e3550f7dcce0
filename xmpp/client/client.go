package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	randv2 "math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Client is one negotiated XMPP session. Its methods are safe for
// concurrent use. It ends when the server closes the stream, on a stream
// error, on an I/O error, or with Close; Done and Err tell when and why.
type Client struct {
	cfg Config
	log *slog.Logger

	// Negotiation state; read-only once Dial returns.
	conn      net.Conn
	r         *stream.Reader
	w         *stream.Writer
	jid       jid.JID
	mechanism string
	cbType    string
	streamID  string
	features  *dom.Element
	errorSent bool // a stream error went out during negotiation

	wlock   chan struct{} // held while writing; a channel so waiting obeys ctx
	wclosed bool          // </stream:stream> written; guarded by wlock

	mu         sync.Mutex
	pending    map[string]*pendingIQ
	iqHandlers map[iqKey]IQHandler
	closing    bool // Close was called
	err        error

	messages  *queue[Message]
	presences *queue[Presence]
	pushes    *queue[RosterPush]

	done   chan struct{}      // closed when the reader has stopped
	ctx    context.Context    // ends with the session; for IQ handlers
	cancel context.CancelFunc // ends ctx
}

// pendingIQ is an IQ request waiting for its response.
type pendingIQ struct {
	to jid.JID
	ch chan *dom.Element
}

// iqKey names an IQ payload by namespace and local name.
type iqKey struct{ space, local string }

// IQHandler answers an IQ get or set whose payload it was registered for.
// It returns the payload of the result (nil for an empty result) or an
// error: a *stanza.Error is sent as it is, anything else as
// internal-server-error. It runs in its own goroutine.
type IQHandler func(ctx context.Context, iq *dom.Element) (*dom.Element, error)

// Dial connects, secures, authenticates and binds a resource. The context
// bounds the whole negotiation: its deadline is the socket deadline, and
// cancelling it aborts the negotiation.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.JID.Localpart() == "" {
		return nil, errors.New("client: Config.JID needs a localpart (the account name)")
	}
	log := cfg.Logger.With("jid", cfg.JID.Bare().String())
	cfg.Logger = log
	conn, t, err := connect(ctx, &cfg, randv2.IntN)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		log:        log,
		conn:       conn,
		wlock:      make(chan struct{}, 1),
		pending:    make(map[string]*pendingIQ),
		iqHandlers: make(map[iqKey]IQHandler),
		messages:   newQueue[Message](cfg.QueueLimit),
		presences:  newQueue[Presence](cfg.QueueLimit),
		pushes:     newQueue[RosterPush](cfg.QueueLimit),
		done:       make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	stop := deadlineFromContext(ctx, conn, conn.SetDeadline)
	err = c.negotiate(ctx, t.direct)
	stop()
	if err != nil {
		c.abandon()
		c.cancel()
		if cerr := contextCause(ctx, err); cerr != nil && !isProtocolError(err) {
			return nil, fmt.Errorf("client: negotiation with %s interrupted: %w (%v)", t.addr, cerr, err)
		}
		return nil, err
	}
	c.iqHandlers[iqKey{nsPing, "ping"}] = func(context.Context, *dom.Element) (*dom.Element, error) { return nil, nil }
	log = log.With("full_jid", c.jid.String())
	c.log = log
	log.Info("xmpp client: session established", "addr", t.addr, "mechanism", c.mechanism, "channel_binding", c.cbType)
	go c.readLoop()

	// RFC 3921 session establishment, for servers that still require it
	// (RFC 6121 appendix E lets a server mark it optional or drop it).
	if s := c.features.Child(nsSession, "session"); s != nil && s.Child(nsSession, "optional") == nil {
		iq := dom.New("jabber:client", "iq", "type", "set").Append(dom.New(nsSession, "session"))
		if _, err := c.IQ(ctx, iq); err != nil {
			c.shutdown(err)
			<-c.done
			return nil, fmt.Errorf("client: session establishment: %w", err)
		}
	}
	return c, nil
}

// isProtocolError reports whether err came from the server's answers rather
// than from the connection.
func isProtocolError(err error) bool {
	var se *stream.Error
	var ste *stanza.Error
	return errors.As(err, &se) || errors.As(err, &ste) || errors.Is(err, ErrNegotiation) ||
		errors.Is(err, ErrTLSRequired) || errors.Is(err, ErrNoMechanism) || isSASLFailure(err)
}

// abandon ends a session that failed during negotiation: it closes our
// stream (unless a stream error already did) and the connection, without
// waiting for the server.
func (c *Client) abandon() {
	if c.w != nil && !c.errorSent {
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if c.w.Close() == nil {
			_ = c.w.Flush()
		}
	}
	_ = c.conn.Close()
}

// deadlineFromContext makes ctx's deadline the connection's and makes
// cancelling ctx interrupt blocked I/O. The returned func undoes both.
func deadlineFromContext(ctx context.Context, conn net.Conn, set func(time.Time) error) (stop func()) {
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = set(dl)
	}
	if ctx.Done() == nil {
		if !hasDeadline {
			return func() {}
		}
		return func() { _ = set(time.Time{}) }
	}
	fired := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stopAfter() {
			// The cancellation is running or ran: let it finish, or it
			// could set its past deadline after the reset below and break
			// the next caller's I/O.
			<-fired
		}
		_ = set(time.Time{})
	}
}

// contextCause returns ctx's error when ctx explains the I/O error err:
// ctx ended, or err is the socket timeout that ctx's deadline set (which
// can fire a moment before ctx's own timer).
func contextCause(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// JID returns the full JID bound for this session.
func (c *Client) JID() jid.JID { return c.jid }

// Mechanism returns the SASL mechanism that authenticated the session.
func (c *Client) Mechanism() string { return c.mechanism }

// ChannelBinding returns the channel binding type of a -PLUS mechanism
// (tls-exporter or tls-server-end-point), or "" when none was used.
func (c *Client) ChannelBinding() string { return c.cbType }

// StreamID returns the id of the server's last stream header.
func (c *Client) StreamID() string { return c.streamID }

// Features returns the stream features offered after authentication (the
// ones that offered resource binding), for optional features such as roster
// versioning.
func (c *Client) Features() *dom.Element { return c.features }

// TLS returns the state of the TLS connection, or false without TLS.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// Done is closed when the session has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the session ended, or nil while it is up: ErrClosed after
// Close, a *stream.Error the server sent, an error wrapping stream.ErrClosed
// when the server closed its stream, or the I/O error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// endErr returns the reason of the ended session for callers that need one.
func (c *Client) endErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// shutdown records the first reason the session ends and closes the
// connection, which stops the reader.
func (c *Client) shutdown(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	_ = c.conn.Close()
}

// Send writes one top-level element, such as a stanza built by hand (in
// the jabber:client namespace, as dom.New(stream.NSClient, "message")). The
// context bounds the write: its deadline is the socket's write deadline.
// A write that fails or is interrupted part way ends the session, since the
// stream cannot be resumed in the middle of an element.
func (c *Client) Send(ctx context.Context, el *dom.Element) error {
	return c.write(ctx, el, false)
}

// write writes el, or the closing stream tag when closeStream is set.
func (c *Client) write(ctx context.Context, el *dom.Element, closeStream bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-c.done:
		return c.endErr()
	default:
	}
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.endErr()
	}
	defer func() { <-c.wlock }()
	if c.wclosed {
		if closeStream {
			return nil
		}
		return ErrClosed
	}
	stop := deadlineFromContext(ctx, c.conn, c.conn.SetWriteDeadline)
	var err error
	if closeStream {
		c.wclosed = true
		err = c.w.Close()
	} else {
		err = c.w.WriteElement(el)
	}
	if err == nil {
		err = c.w.Flush()
	}
	stop()
	if err != nil {
		if cerr := contextCause(ctx, err); cerr != nil {
			err = fmt.Errorf("client: write interrupted: %w", cerr)
		} else {
			err = fmt.Errorf("client: write: %w", err)
		}
		c.log.Warn("xmpp client: write failed, ending the session", "err", err)
		c.shutdown(err)
		return err
	}
	return nil
}

// Close ends the session with the closing handshake of RFC 6120 section
// 4.4: it sends </stream:stream>, waits for the server's (stanzas that
// arrive meanwhile are still delivered), then closes the connection. The
// wait is bounded by ctx and by Config.CloseTimeout. It returns nil when
// the server closed its stream in time.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CloseTimeout)
	defer cancel()
	if err := c.write(ctx, nil, true); err != nil {
		c.shutdown(ErrClosed)
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.shutdown(ErrClosed)
		return fmt.Errorf("client: server did not close its stream: %w", ctx.Err())
	}
}

// readLoop reads and dispatches until the stream ends.
func (c *Client) readLoop() {
	var err error
	fromServer := false
	for {
		el, e := c.r.Next()
		if e != nil {
			err = e
			break
		}
		if se := stream.ParseError(el); se != nil {
			c.log.Info("xmpp client: stream error from server", "condition", se.Condition, "text", se.Text)
			c.replyClose()
			err, fromServer = se, true
			break
		}
		c.dispatch(el)
	}
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	var se *stream.Error
	switch {
	case fromServer:
		// The server's own stream error, kept as it came.
	case errors.Is(err, stream.ErrClosed):
		if closing {
			err = ErrClosed
		} else {
			c.log.Info("xmpp client: server closed the stream")
			c.replyClose()
			err = fmt.Errorf("client: server closed the stream: %w", stream.ErrClosed)
		}
	case errors.As(err, &se):
		// The reader found bad XML from the server: say so and stop.
		c.log.Warn("xmpp client: bad input from server", "condition", se.Condition, "text", se.Text)
		c.sendStreamError(se)
		err = fmt.Errorf("client: server sent bad data: %w", err)
	case closing:
		err = ErrClosed
	default:
		c.log.Info("xmpp client: connection lost", "err", err)
		err = fmt.Errorf("client: read: %w", err)
	}
	c.shutdown(err)
	c.cancel()
	close(c.done)
}

// replyClose answers the server's closing tag or stream error with ours.
func (c *Client) replyClose() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.write(ctx, nil, true)
}

// sendStreamError sends a stream error to the server and closes our stream.
func (c *Client) sendStreamError(se *stream.Error) {
	select {
	case c.wlock <- struct{}{}:
	default:
		return // a writer is stuck; closing the connection is enough
	}
	defer func() { <-c.wlock }()
	if c.wclosed {
		return
	}
	c.wclosed = true
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if c.w.WriteError(se) == nil {
		_ = c.w.Flush()
	}
}

// dispatch routes one incoming top-level element.
func (c *Client) dispatch(el *dom.Element) {
	if el.Space != stream.NSClient {
		c.log.Debug("xmpp client: ignored element", "element", el.Local, "namespace", el.Space)
		return
	}
	switch el.Local {
	case "iq":
		c.handleIQ(el)
	case "message":
		if c.cfg.Handler != nil && c.cfg.Handler(c, el) {
			return
		}
		m, err := ParseMessage(el)
		if err != nil {
			c.log.Warn("xmpp client: message with a bad address", "err", err)
		}
		if c.messages.push(m) {
			c.log.Warn("xmpp client: message queue full, oldest message dropped", "limit", c.cfg.QueueLimit)
		}
	case "presence":
		if c.cfg.Handler != nil && c.cfg.Handler(c, el) {
			return
		}
		p, err := ParsePresence(el)
		if err != nil {
			c.log.Warn("xmpp client: presence with a bad address", "err", err)
		}
		if c.presences.push(p) {
			c.log.Warn("xmpp client: presence queue full, oldest presence dropped", "limit", c.cfg.QueueLimit)
		}
	default:
		c.log.Debug("xmpp client: ignored element", "element", el.Local)
	}
}

// handleIQ matches responses to requests and answers requests.
func (c *Client) handleIQ(el *dom.Element) {
	id := el.Attr("id")
	switch el.Attr("type") {
	case "result", "error":
		from, err := parseAddr(el.Attr("from"))
		c.mu.Lock()
		p := c.pending[id]
		ok := p != nil && err == nil && c.responderOK(p.to, from)
		if ok {
			delete(c.pending, id)
		}
		c.mu.Unlock()
		if !ok {
			c.log.Debug("xmpp client: IQ response matches no request", "id", id, "from", el.Attr("from"))
			return
		}
		p.ch <- el
	case "get", "set":
		payload := el.FirstChild()
		if payload == nil || el.ChildCount() != 1 {
			c.log.Warn("xmpp client: IQ request without exactly one payload", "id", id, "from", el.Attr("from"))
			c.replyError(el, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
			return
		}
		if payload.Space == nsRoster && payload.Local == "query" && el.Attr("type") == "set" {
			c.rosterPush(el, payload)
			return
		}
		c.mu.Lock()
		h := c.iqHandlers[iqKey{payload.Space, payload.Local}]
		c.mu.Unlock()
		if h == nil {
			c.replyError(el, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
			return
		}
		go c.runIQHandler(h, el)
	default:
		c.log.Warn("xmpp client: IQ with a bad type ignored", "id", id, "type", el.Attr("type"))
	}
}

// responderOK reports whether from may answer a request sent to to (RFC
// 6120 section 8.1.2.1: a request without 'to' is answered by the account
// or the server on its behalf).
func (c *Client) responderOK(to, from jid.JID) bool {
	if to.IsZero() {
		return from.IsZero() || from == c.jid.Bare() || from == c.jid || from == c.jid.Domain()
	}
	return from == to || (from.IsZero() && to == c.jid.Bare())
}

func (c *Client) runIQHandler(h IQHandler, iq *dom.Element) {
	payload, err := h(c.ctx, iq)
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			c.log.Warn("xmpp client: IQ handler failed", "payload", iq.FirstChild().Local, "err", err)
			se = &stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
		}
		c.replyError(iq, se)
		return
	}
	res := iqReply(iq)
	if payload != nil {
		res.Append(payload)
	}
	c.reply(res)
}

// iqReply returns an empty result for iq.
func iqReply(iq *dom.Element) *dom.Element {
	res := dom.New(stream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))
	if from := iq.Attr("from"); from != "" {
		res.SetAttr("to", from)
	}
	return res
}

// replyError answers st with a stanza error.
func (c *Client) replyError(st *dom.Element, e *stanza.Error) {
	if r := stanza.ErrorReply(st, e); r != nil {
		r.SetAttr("from", "") // the server stamps our address
		c.reply(r)
	}
}

// reply writes an answer with a bounded wait.
func (c *Client) reply(el *dom.Element) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.write(ctx, el, false); err != nil {
		c.log.Debug("xmpp client: reply not sent", "err", err)
	}
}

// HandleIQ registers h for incoming IQ get and set requests whose payload
// is the element local in namespace space; nil removes the handler.
// Requests nobody handles are answered with service-unavailable (RFC 6120
// section 8.4). Pings (XEP-0199) are answered by default.
func (c *Client) HandleIQ(space, local string, h IQHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.iqHandlers, iqKey{space, local})
		return
	}
	c.iqHandlers[iqKey{space, local}] = h
}

// IQ sends an IQ get or set and waits for its response. An id is added
// when iq has none, and the jabber:client namespace when it has no
// namespace (iq itself is not changed). A response of type error
// returns the response with its *stanza.Error. The wait is bounded by ctx;
// a response that comes after ctx ended is dropped.
func (c *Client) IQ(ctx context.Context, iq *dom.Element) (*dom.Element, error) {
	if iq.Local != "iq" || (iq.Attr("type") != "get" && iq.Attr("type") != "set") {
		return nil, errors.New("client: IQ needs an <iq/> of type get or set")
	}
	to, err := parseAddr(iq.Attr("to"))
	if err != nil {
		return nil, fmt.Errorf("client: IQ to: %w", err)
	}
	id := iq.Attr("id")
	if id == "" || iq.Space == "" {
		// Work on a shallow copy: the caller's element is left alone.
		cp := *iq
		if id == "" {
			id = newID()
			cp.Attrs = append(append([]dom.Attr(nil), iq.Attrs...), dom.Attr{Local: "id", Value: id})
		}
		if cp.Space == "" {
			cp.Space = stream.NSClient
		}
		iq = &cp
	}
	p := &pendingIQ{to: to, ch: make(chan *dom.Element, 1)}
	c.mu.Lock()
	if _, dup := c.pending[id]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("client: IQ id %q is already waiting for a response", id)
	}
	c.pending[id] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending[id] == p {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}()
	if err := c.write(ctx, iq, false); err != nil {
		return nil, err
	}
	select {
	case res := <-p.ch:
		if res.Attr("type") == "error" {
			se, ok := stanza.ParseError(res)
			if !ok {
				se = &stanza.Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
			}
			return res, se
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("client: no response to IQ %s: %w", id, ctx.Err())
	case <-c.done:
		return nil, c.endErr()
	}
}

// NextMessage returns the next incoming message that no Handler consumed,
// waiting until one comes, ctx ends, or the session ends (then the error
// is the session's, once the queue is empty).
func (c *Client) NextMessage(ctx context.Context) (Message, error) {
	return c.messages.next(ctx, c.done, c.endErr)
}

// NextPresence returns the next incoming presence that no Handler
// consumed, like NextMessage.
func (c *Client) NextPresence(ctx context.Context) (Presence, error) {
	return c.presences.next(ctx, c.done, c.endErr)
}

// parseAddr parses an optional address attribute.
func parseAddr(s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, nil
	}
	return jid.Parse(s)
}

// IDs are a random per-process prefix and a counter: unique, cheap, and not
// guessable by another entity that would like to answer in our place.
var (
	idPrefix  = randomPrefix()
	idCounter atomic.Uint64
)

func randomPrefix() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

func newID() string {
	return idPrefix + "-" + strconv.FormatUint(idCounter.Add(1), 36)
}
