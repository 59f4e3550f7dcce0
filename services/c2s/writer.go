package c2s

import (
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// outItem is one entry of a session's outbound queue, which holds
// pointers so that an empty slot costs one word. Exactly one of raw, el
// and header is set.
type outItem struct {
	raw []byte       // a delivery, already self-contained
	el  *dom.Element // an element built here (negotiation, replies)
	// header starts a new response stream on conn (at the start, after
	// STARTTLS and after SASL): a new stream.Writer, then the header.
	header *stream.Header
	conn   net.Conn
	// keepalive turns on whitespace keepalives (once negotiation is over;
	// nothing may be written between elements during TLS and SASL).
	keepalive bool
	// flushed, when set, is sent the result of flushing after this item.
	flushed chan error
}

// send queues it for the writer, waiting while the queue is full. It is
// used by the reader goroutine, which may block: that is back pressure on
// the client that caused the output.
func (c *conn) send(it *outItem) error {
	select {
	case c.queue <- it:
		return nil
	case <-c.writerDone:
		return errWriterGone
	}
}

// sendSync queues it and waits until it is written and flushed.
func (c *conn) sendSync(it *outItem) error {
	it.flushed = make(chan error, 1)
	if err := c.send(it); err != nil {
		return err
	}
	select {
	case err := <-it.flushed:
		return err
	case <-c.writerDone:
		return errWriterGone
	}
}

// sendElement queues one element.
func (c *conn) sendElement(el *dom.Element) error { return c.send(&outItem{el: el}) }

// deliver queues a delivery without blocking; it runs on the NATS callback
// goroutine, shared by every session of the node. A full queue means the
// client does not read fast enough: it is closed, and nobody else waits.
// It reports whether the delivery was queued; one that was not (the
// session is closing, or its queue is full) is the caller's to hand back.
func (c *conn) deliver(raw []byte) bool {
	if c.closing.Load() {
		return false
	}
	select {
	case c.queue <- &outItem{raw: raw}:
		return true
	default:
		c.close(&stream.Error{Condition: stream.PolicyViolation, Text: "outbound queue full: the client does not read its stream"}, false)
		return false
	}
}

// writeLoop is the session's only writer: every byte sent on the stream is
// written here, in queue order, which makes the output well-formed whatever
// the goroutine that produced it.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var (
		w         *stream.Writer
		wconn     net.Conn
		keepalive *time.Timer
		tick      <-chan time.Time
	)
	defer func() {
		if keepalive != nil {
			keepalive.Stop()
		}
	}()
	// unflushed is set while w holds output not yet flushed: items
	// queued back to back are written into w's buffer and go out in one
	// socket write (one TLS record, one syscall) when the queue runs dry.
	// The write deadline is set once for such a burst.
	unflushed := false
	write := func(it *outItem) error {
		if !unflushed {
			c.raw.SetWriteDeadline(c.writeDeadline())
		}
		var err error
		switch {
		case it.header != nil:
			wconn = it.conn
			w = stream.NewWriter(wconn, stream.NSClient)
			err = w.WriteHeader(*it.header)
		case w == nil:
			err = errors.New("c2s: element queued before the stream header")
		case it.el != nil:
			err = w.WriteElement(it.el)
		case it.raw != nil:
			err = w.WriteRaw(it.raw)
		}
		if it.keepalive && keepalive == nil {
			keepalive = time.NewTimer(c.srv.cfg.KeepaliveInterval)
			tick = keepalive.C
		}
		unflushed = w != nil
		if err == nil && it.flushed == nil && len(c.queue) == 0 && w != nil && it.raw != nil {
			// A delivery: let the goroutines that queue deliveries run
			// once before the flush, so that a burst still being
			// queued shares this write.
			runtime.Gosched()
		}
		if err == nil && (it.flushed != nil || len(c.queue) == 0) && w != nil {
			err = w.Flush()
			unflushed = false
		}
		if it.flushed != nil {
			it.flushed <- err
		}
		return err
	}
	for {
		select {
		case it := <-c.queue:
			if err := write(it); err != nil {
				c.writeFailed(err)
				return
			}
			if keepalive != nil && !unflushed {
				keepalive.Reset(c.srv.cfg.KeepaliveInterval)
			}
		case <-tick:
			// Nothing was written for a whole interval: one space, which
			// is allowed between top-level elements (RFC 6120 section
			// 4.6.1) and only sent once negotiation is over.
			c.raw.SetWriteDeadline(c.writeDeadline())
			if _, err := wconn.Write([]byte{' '}); err != nil {
				c.writeFailed(err)
				return
			}
			keepalive.Reset(c.srv.cfg.KeepaliveInterval)
		case <-c.closeReq:
			if c.noWrite.Load() {
				// A TLS handshake is in progress: nothing can be written;
				// the reader closes the socket.
				return
			}
			if c.drainOnClose {
				// What was queued before the close goes first (a response
				// header before the stream error, replies, deliveries).
				if err := c.drain(write); err != nil {
					c.writeFailed(err)
					return
				}
			}
			if w == nil {
				// The client never sent its header: there is no stream.
				return
			}
			c.raw.SetWriteDeadline(c.writeDeadline())
			var err error
			if c.closeErr != nil {
				err = w.WriteError(c.closeErr)
			} else {
				err = w.Close()
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				c.writeFailed(err)
			}
			return
		}
	}
}

// drain writes what is queued when a graceful close starts, so that
// replies and deliveries accepted before it are not lost.
func (c *conn) drain(write func(*outItem) error) error {
	for {
		select {
		case it := <-c.queue:
			if err := write(it); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// writeFailed ends a stream whose connection cannot be written: the socket
// is closed, which also ends the reader.
func (c *conn) writeFailed(err error) {
	c.closing.Store(true)
	c.logger().Debug("write failed", "err", err)
	c.raw.Close()
}

// writeDeadline bounds one write: the closing handshake's deadline once a
// close started, otherwise the idle timeout (a client that reads nothing
// for that long is as gone as one that sends nothing).
func (c *conn) writeDeadline() time.Time {
	if d := c.closeDeadline.Load(); d != 0 {
		return time.Unix(0, d)
	}
	return time.Now().Add(c.srv.cfg.IdleTimeout)
}
