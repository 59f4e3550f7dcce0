package stream

import (
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

const (
	// flushAt is the buffered size at which a Writer writes to its
	// destination without waiting for Flush.
	flushAt = 4096
	// maxPooled is the largest buffer returned to the pool; a larger one
	// (after one big stanza) is left to the garbage collector.
	maxPooled = 64 << 10
)

// bufPool holds the output buffers of all Writers: a stream borrows one
// when it writes and returns it on Flush, so idle streams hold none.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, flushAt)
	return &b
}}

// Writer writes one stream. It buffers; call Flush. It is not safe for
// concurrent use.
type Writer struct {
	dst    io.Writer
	ns     string
	buf    *[]byte // borrowed from bufPool; nil when nothing is buffered
	err    error   // first write error; every later call returns it
	header bool    // a header was written on this stream
	closed bool
	// pfx are the prefixes declared on the header: "stream" and
	// Header.Prefixes. Top-level elements in those namespaces are written
	// with the prefix.
	pfx []binding
}

// NewWriter returns a writer; ns is the content namespace of the stream,
// which elements in that namespace do not need to declare again.
func NewWriter(w io.Writer, ns string) *Writer { return &Writer{dst: w, ns: ns} }

// Reset discards buffered output and starts a new stream on dst (after
// STARTTLS, on the TLS connection), with the same content namespace. Flush
// before Reset what must reach the old destination, such as <proceed/>.
func (w *Writer) Reset(dst io.Writer) {
	w.putBuf()
	w.dst = dst
	w.err = nil
	w.header = false
	w.closed = false
	w.pfx = w.pfx[:0]
}

// take returns the buffer to append to.
func (w *Writer) take() []byte {
	if w.buf == nil {
		w.buf = bufPool.Get().(*[]byte)
	}
	return *w.buf
}

// give stores b as the buffer and writes it out once it is large.
func (w *Writer) give(b []byte) error {
	*w.buf = b
	if len(b) >= flushAt {
		return w.Flush()
	}
	return nil
}

func (w *Writer) putBuf() {
	if w.buf == nil {
		return
	}
	if cap(*w.buf) <= maxPooled {
		*w.buf = (*w.buf)[:0]
		bufPool.Put(w.buf)
	}
	w.buf = nil
}

// check returns the error that stops a write, if any.
func (w *Writer) check() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriterClosed
	}
	return nil
}

// WriteHeader writes the XML declaration and the opening stream header. A
// non-empty h.NS becomes the content namespace of the stream; otherwise the
// one given to NewWriter is declared. It may be called again on the same
// destination for a stream restart after SASL.
func (w *Writer) WriteHeader(h Header) error {
	if err := w.check(); err != nil {
		return err
	}
	keys := make([]string, 0, len(h.Prefixes))
	for p, uri := range h.Prefixes {
		if !isNCName(p) || p == "stream" || p == "xmlns" || p == "xml" || uri == "" {
			return fmt.Errorf("stream: cannot declare prefix %q for %q on a stream header", p, uri)
		}
		keys = append(keys, p)
	}
	slices.Sort(keys)
	if h.NS != "" {
		w.ns = h.NS
	}
	b := w.take()
	b = append(b, "<?xml version='1.0'?><stream:stream"...)
	if w.ns != "" {
		b = appendAttr(b, "xmlns", w.ns)
	}
	b = appendAttr(b, "xmlns:stream", NS)
	w.pfx = append(w.pfx[:0], binding{"stream", NS})
	for _, p := range keys {
		b = append(b, " xmlns:"...)
		b = append(b, p...)
		b = appendValue(b, h.Prefixes[p])
		w.pfx = append(w.pfx, binding{p, h.Prefixes[p]})
	}
	for _, a := range [...]struct{ name, value string }{
		{"to", h.To}, {"from", h.From}, {"id", h.ID}, {"version", h.Version}, {"xml:lang", h.Lang},
	} {
		if a.value != "" {
			b = appendAttr(b, a.name, a.value)
		}
	}
	b = append(b, '>')
	w.header = true
	return w.give(b)
}

// WriteElement writes one top-level element.
func (w *Writer) WriteElement(e *dom.Element) error {
	if err := w.check(); err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("stream: WriteElement of a nil element")
	}
	return w.give(w.appendTop(w.take(), e))
}

// appendTop appends a top-level element. In a namespace declared with a
// prefix on the header it is written with that prefix (stream:features,
// stream:error, db:result), as older peers expect; otherwise dom writes it
// in the content namespace.
func (w *Writer) appendTop(b []byte, e *dom.Element) []byte {
	p := w.prefix(e.Space)
	if p == "" || e.Space == w.ns {
		return e.AppendXML(b, w.ns)
	}
	for _, a := range e.Attrs {
		if a.Space != "" && a.Space != dom.NSXML && w.prefix(a.Space) == "" {
			// A namespace the header did not declare: let dom declare it.
			return e.AppendXML(b, w.ns)
		}
	}
	b = append(b, '<')
	b = append(b, p...)
	b = append(b, ':')
	b = append(b, e.Local...)
	for _, a := range e.Attrs {
		b = append(b, ' ')
		switch a.Space {
		case "":
		case dom.NSXML:
			b = append(b, "xml:"...)
		default:
			b = append(b, w.prefix(a.Space)...)
			b = append(b, ':')
		}
		b = append(b, a.Local...)
		b = appendValue(b, a.Value)
	}
	if len(e.Nodes) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, n := range e.Nodes {
		if n.Elem != nil {
			b = n.Elem.AppendXML(b, w.ns)
		} else {
			b = dom.AppendEscaped(b, n.Text, false)
		}
	}
	b = append(b, "</"...)
	b = append(b, p...)
	b = append(b, ':')
	b = append(b, e.Local...)
	return append(b, '>')
}

// prefix returns the header prefix declared for space, or "".
func (w *Writer) prefix(space string) string {
	for _, p := range w.pfx {
		if p.uri == space {
			return p.prefix
		}
	}
	return ""
}

// WriteRaw writes a self-contained element already serialised (as dom's
// Marshal makes it). The bytes are written as they are.
func (w *Writer) WriteRaw(b []byte) error {
	if err := w.check(); err != nil {
		return err
	}
	return w.give(append(w.take(), b...))
}

// WriteError writes <stream:error> followed by </stream:stream>, and
// flushes. When no header was written on this stream yet, it writes a
// minimal one first (RFC 6120 section 4.9.1.2: an error found in the
// initiating entity's header is still sent inside a stream). Nothing may be
// written after it. A nil e is sent as undefined-condition.
func (w *Writer) WriteError(e *Error) error {
	if err := w.check(); err != nil {
		return err
	}
	if !w.header {
		if err := w.WriteHeader(Header{Version: "1.0"}); err != nil {
			return err
		}
	}
	if e == nil {
		e = &Error{Condition: UndefinedCondition}
	}
	b := w.appendTop(w.take(), e.Element())
	b = append(b, "</stream:stream>"...)
	*w.buf = b
	w.closed = true
	return w.Flush()
}

// Close writes </stream:stream> and flushes. Nothing may be written after
// it; closing again does nothing. Without a header on this stream there is
// nothing to close and only the flush happens.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	if w.header {
		b := append(w.take(), "</stream:stream>"...)
		*w.buf = b
	}
	return w.Flush()
}

// Flush writes buffered output to the destination.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil {
		return nil
	}
	b := *w.buf
	if len(b) > 0 {
		n, err := w.dst.Write(b)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = err
			w.putBuf()
			return err
		}
	}
	w.putBuf()
	return nil
}

// appendAttr appends " name='value'" with value escaped.
func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	return appendValue(b, value)
}

// appendValue appends "='value'" with value escaped.
func appendValue(b []byte, value string) []byte {
	b = append(b, "='"...)
	b = dom.AppendEscaped(b, value, true)
	return append(b, '\'')
}
