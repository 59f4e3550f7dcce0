package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// conn is one client connection: a reader goroutine (serve, which runs the
// negotiation and then reads stanzas) and a writer goroutine (writeLoop).
//
// Fields under "reader" are only touched by the reader goroutine.
type conn struct {
	srv       *Server
	raw       net.Conn // the TCP connection; deadlines are set on it
	dl        *deadlineConn
	directTLS bool
	peer      string
	sessionID string
	logp      atomic.Pointer[slog.Logger] // gains the JID at binding

	// reader
	nc       net.Conn // raw's deadlineConn, or the TLS connection over it
	r        *stream.Reader
	state    state
	restart  bool
	tls      *tls.ConnectionState
	cb       func(string) ([]byte, error)
	lang     string
	domain   string // served domain named by the first header; "" before it
	exchange sasl.Server
	mech     string // mechanism of the running or last exchange
	failures int
	user     string
	jid      jid.JID
	seq      uint64
	avail    bool
	rb       rebindState // rebind.go

	// stanzas published and waiting for the stream's acknowledgement,
	// answered in order by ackLoop
	acks     chan pendingAck
	acksDone chan struct{}

	// deliveries already made to this session; used only by the NATS
	// delivery callback
	seen dedupe

	// writer
	queue      chan *outItem
	writerDone chan struct{}
	noWrite    atomic.Bool // a TLS handshake is running: write nothing

	// closing
	closeOnce    sync.Once
	closeReq     chan struct{}
	closeErr     *stream.Error // set before closeReq is closed
	drainOnClose bool          // likewise
	// readOnClose: stanzas the client sends after our close, until its
	// closing tag, are still processed (a drain; RFC 6120 section 4.4).
	// Set before closing.
	readOnClose   atomic.Bool
	closing       atomic.Bool
	closeDeadline atomic.Int64 // unix nanoseconds; 0 until a close starts

	// bound is set once the resource is bound; jid is written before it.
	bound atomic.Bool

	// abuse controls (limits.go): set by admit before serve starts, then
	// the reader's
	ip              netip.Addr
	exempt          bool
	holdsIP         bool          // counted in the per-address count
	reject          *stream.Error // refused at accept: answer the header with it
	rejectReleased  bool
	lim             sessionLimits
	authAccount     string    // account named by the running SASL exchange
	acctLockedUntil time.Time // the lookup refused a locked account
	// available mirrors avail for other goroutines (a broadcast to the
	// available sessions only).
	available atomic.Bool
}

func (c *conn) isBound() bool { return c.bound.Load() }

// logger is the connection's logger; safe from any goroutine.
func (c *conn) logger() *slog.Logger { return c.logp.Load() }

func (s *Server) newConn(raw net.Conn, directTLS bool) *conn {
	c := &conn{
		srv:        s,
		raw:        raw,
		directTLS:  directTLS,
		peer:       raw.RemoteAddr().String(),
		sessionID:  randomID(),
		queue:      make(chan *outItem, s.cfg.QueueSize),
		writerDone: make(chan struct{}),
		closeReq:   make(chan struct{}),
		acks:       make(chan pendingAck, ackWindow),
		acksDone:   make(chan struct{}),
	}
	c.logp.Store(s.log.With("peer", c.peer, "session", c.sessionID))
	c.dl = &deadlineConn{Conn: raw, c: c, negotiation: time.Now().Add(s.cfg.NegotiationTimeout)}
	c.lim = s.guard.newSessionLimits()
	c.nc = c.dl
	return c
}

// serve runs the connection to its end.
func (c *conn) serve(ctx context.Context) {
	go c.writeLoop()
	go c.ackLoop()
	defer func() {
		close(c.acks)
		<-c.acksDone
	}()
	err := c.begin()
	for err == nil {
		el, rerr := c.r.Next()
		if rerr != nil {
			err = rerr
			break
		}
		if c.closing.Load() {
			// We sent </stream:stream>. Ordinarily what the client sends
			// until its own closing tag is dropped; when the node is
			// going away (a drain, a shutdown) the stanzas the client
			// wrote before it saw our error are still routed, as RFC 6120
			// section 4.4 allows, so that nothing it sent is lost.
			if c.readOnClose.Load() && c.state == stateSession {
				if err := c.handleStanza(ctx, el); err != nil {
					c.logger().Debug("a stanza sent after our close", "err", err)
				}
			}
			continue
		}
		err = c.step(ctx, el)
		if err == nil && c.restart {
			c.restart = false
			err = c.openStream()
		}
	}
	c.terminate(err)
	c.end(ctx)
}

// begin runs the XEP-0368 handshake on a direct TLS port and reads the
// first stream header.
func (c *conn) begin() error {
	c.r = stream.NewReader(c.nc, c.srv.cfg.Limits)
	if c.directTLS {
		if err := c.handshake(); err != nil {
			return err
		}
	}
	c.state = c.firstState()
	return c.openStream()
}

// terminate ends the stream according to what ended the read loop: the
// peer's closing tag is answered with ours, a stream error is sent, and in
// both cases we wait (CloseTimeout at most) for the peer's closing tag
// before the socket is closed.
func (c *conn) terminate(err error) {
	var serr *stream.Error
	switch {
	case errors.Is(err, stream.ErrClosed):
		c.logger().Debug("stream closed by the client")
		c.close(nil, true)
		c.awaitWriter()
		c.raw.Close()
		return
	case errors.As(err, &serr):
		c.close(serr, true)
	case errors.Is(err, errCloseStream):
		c.close(nil, true)
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.closing.Load() {
			break
		}
		text := "no data from the client within the idle timeout"
		if !c.isBound() {
			text = "stream negotiation not finished in time"
		}
		c.close(&stream.Error{Condition: stream.ConnectionTimeout, Text: text}, true)
	case errors.Is(err, errHandshake):
		// Logged where it happened; nothing can be written.
		c.abort()
		return
	default:
		if !c.closing.Load() {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errWriterGone) {
				c.logger().Info("connection closed without a closing stream tag")
			} else {
				c.logger().Info("connection failed", "err", err)
			}
		}
		c.abort()
		return
	}
	c.awaitPeerClose()
	c.awaitWriter()
	c.raw.Close()
}

// awaitPeerClose reads until the peer's </stream:stream>, the end of the
// connection, or the close deadline.
func (c *conn) awaitPeerClose() {
	if c.r == nil {
		return
	}
	for {
		if _, err := c.r.Next(); err != nil {
			return
		}
	}
}

// awaitWriter waits until the writer stopped; its writes are bounded by the
// close deadline, which is set by then.
func (c *conn) awaitWriter() { <-c.writerDone }

// abort closes the socket without writing anything more.
func (c *conn) abort() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.closeDeadline.Store(time.Now().Add(c.srv.cfg.CloseTimeout).UnixNano())
		close(c.closeReq)
	})
	c.raw.Close()
	c.awaitWriter()
}

// close starts closing the stream from our side: the writer writes what
// is queued (when drain), the stream error if serr is set, then
// </stream:stream>, and nothing after it. Only the first call counts. It is
// safe from any goroutine.
func (c *conn) close(serr *stream.Error, drain bool) { c.closeWith(serr, drain, false) }

// closeWith is close; with readOn, stanzas the client still sends before
// its closing tag are processed rather than dropped.
func (c *conn) closeWith(serr *stream.Error, drain, readOn bool) {
	c.closeOnce.Do(func() {
		c.readOnClose.Store(readOn)
		deadline := time.Now().Add(c.srv.cfg.CloseTimeout)
		c.closeDeadline.Store(deadline.UnixNano())
		c.closeErr = serr
		c.drainOnClose = drain
		c.closing.Store(true)
		if serr != nil {
			c.srv.cfg.Metrics.StreamError(string(serr.Condition))
			c.logger().Info("stream error", "condition", string(serr.Condition), "text", serr.Text)
		}
		close(c.closeReq)
		// Cut a read or a write that is blocked now to the closing
		// handshake's bound; deadlineConn keeps it for later reads.
		c.raw.SetReadDeadline(deadline)
		c.raw.SetWriteDeadline(deadline)
	})
}

// handshake runs the TLS handshake over the connection (after <proceed/>
// or at once on a direct TLS port) and records the channel binding data.
func (c *conn) handshake() error {
	cfg, leaf := c.srv.tlsSrv.config(c.streamDomain())
	tc := tls.Server(c.dl, cfg)
	if err := tc.Handshake(); err != nil {
		c.logger().Info("TLS handshake failed", "err", err)
		return errHandshake
	}
	cs := tc.ConnectionState()
	c.tls = &cs
	c.cb = channelBinding(cs, leaf())
	c.nc = tc
	c.r.Reset(tc)
	c.logger().Debug("TLS established", "version", tls.VersionName(cs.Version), "suite", tls.CipherSuiteName(cs.CipherSuite))
	return nil
}

// deadlineConn sets the read deadline before every read, so that any data
// (whitespace keepalives included) proves the client alive: until the
// resource is bound the negotiation deadline applies, then the idle timeout
// from the last read; once a close started, never later than its deadline.
type deadlineConn struct {
	net.Conn
	c           *conn
	negotiation time.Time
}

func (d *deadlineConn) Read(b []byte) (int, error) {
	// The byte shaper's wait (limits.go) comes first: the idle timeout
	// runs from when we are ready to read again.
	d.c.shape()
	deadline := d.negotiation
	if d.c.isBound() {
		deadline = time.Now().Add(d.c.srv.cfg.IdleTimeout)
	}
	if cd := d.c.closeDeadline.Load(); cd != 0 {
		if t := time.Unix(0, cd); t.Before(deadline) {
			deadline = t
		}
	}
	d.Conn.SetReadDeadline(deadline)
	n, err := d.Conn.Read(b)
	d.c.shaped(n)
	return n, err
}
