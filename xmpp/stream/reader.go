package stream

import (
	"fmt"
	"io"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// readBufSize is the read buffer: the most a Reader takes from its source
// beyond what it has parsed, and the slack by which a size limit can be
// overrun before it is noticed.
const readBufSize = 4096

// Scratch buffers larger than these are dropped after an element, so that
// one big stanza does not pin memory for the life of the connection.
const (
	keepData  = 16 << 10
	keepNodes = 256
)

type readerState uint8

const (
	stStart  readerState = iota // before ReadHeader
	stOpen                      // header read; Next returns elements
	stClosed                    // the peer sent </stream:stream>
	stFailed                    // an error ended the stream; Reader.err holds it
)

// binding is one namespace declaration in scope; prefix "" is the default
// namespace.
type binding struct{ prefix, uri string }

// rawAttr is an attribute as written in a start tag, before namespace
// processing. Its value is data[v0:v1].
type rawAttr struct {
	prefix, local string
	v0, v1        int
	decl          bool // a namespace declaration, not an attribute
}

// elemRec, attrRec and nodeRec describe the element being read; build turns
// them into dom values with one allocation each.
type elemRec struct {
	space, local, prefix string
	a0, a1               int // attrs[a0:a1]
	nodes                int // number of children; a cursor while building
	nsMark               int // len(ns) before this element's declarations
}

type attrRec struct {
	space, local string
	v0, v1       int
}

type nodeRec struct {
	parent int
	elem   int // -1 for text data[t0:t1]
	t0, t1 int
}

// Reader reads one stream. Errors that the peer caused are *Error values
// carrying the condition to send (not-well-formed, restricted-xml,
// invalid-namespace, policy-violation, ...); I/O errors pass through
// unchanged, io.EOF included (also when the connection ends in the middle
// of an element).
//
// After an error the Reader keeps returning it, except for an I/O error
// met while waiting for the next element, before any byte of it arrived
// (such as a read deadline used to send keepalives): Next may be called
// again.
type Reader struct {
	src  io.Reader
	lim  Limits
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	base int64 // stream offset of buf[0]
	rerr error // error of the last Read, reported once buf is drained

	state readerState
	err   error

	// The header or element being read, whose size is bounded.
	unit      bool
	unitStart int64
	unitMax   int
	unitName  string

	ns     []binding // in scope; the header's first
	nsBase int       // len(ns) after the header

	name  []byte // the last name read
	data  []byte // attribute values and text of the element being read
	raw   []rawAttr
	elems []elemRec
	attrs []attrRec
	nodes []nodeRec
	open  []int // indices in elems of the open elements

	names map[string]string // interned names beyond commonNames
	cache [64]string        // recently interned names, by nameSlot
}

// NewReader returns a reader for r. Zero fields of lim take their defaults.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{src: r, lim: lim.withDefaults(), buf: make([]byte, readBufSize)}
}

// Reset starts reading a new stream from src (after STARTTLS or a SASL
// success), with the same limits and fresh parser state.
//
// When src is the reader's current source (a SASL restart on the same
// connection), bytes already buffered are kept: they belong to the new
// stream. With a new source (TLS over the connection) they are discarded,
// since they arrived before the security layer; a server should check
// Buffered before it proceeds with STARTTLS and treat pending bytes as a
// protocol violation.
func (r *Reader) Reset(src io.Reader) {
	if !sameReader(r.src, src) {
		r.base += int64(r.w)
		r.r, r.w = 0, 0
		r.rerr = nil
	}
	r.src = src
	r.state = stStart
	r.err = nil
	r.unit = false
	r.ns = r.ns[:0]
	r.nsBase = 0
	r.release()
}

// sameReader reports whether a and b are the same source. Interface values
// whose dynamic type cannot be compared are treated as different.
func sameReader(a, b io.Reader) (same bool) {
	if a == nil || b == nil {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// Buffered returns the number of bytes read from the source and not yet
// parsed. After <starttls/> a well-behaved peer sends nothing until
// <proceed/>, so this is 0 when the server starts TLS.
func (r *Reader) Buffered() int { return r.w - r.r }

// ReadHeader reads the XML declaration (optional) and the stream header.
func (r *Reader) ReadHeader() (Header, error) {
	switch r.state {
	case stStart:
	case stFailed:
		return Header{}, r.err
	default:
		return Header{}, errHeaderRead
	}
	start := r.pos()
	r.beginUnit(start, r.lim.MaxHeaderBytes, "stream header")
	h, empty, err := r.readHeader()
	r.unit = false
	r.release()
	if err != nil {
		if _, ok := err.(*Error); !ok && r.pos() == start {
			return Header{}, err // nothing consumed: the caller may retry
		}
		return Header{}, r.fail(err)
	}
	r.state = stOpen
	if empty {
		r.state = stClosed
	}
	return h, nil
}

// Next returns the next top-level element. Whitespace between elements is
// skipped. It returns ErrClosed at </stream:stream>.
func (r *Reader) Next() (*dom.Element, error) {
	switch r.state {
	case stStart:
		return nil, errNoHeader
	case stClosed:
		return nil, ErrClosed
	case stFailed:
		return nil, r.err
	}
	for {
		for r.r < r.w && isSpace(r.buf[r.r]) {
			r.r++
		}
		c, err := r.readByte()
		if err != nil {
			return nil, err // no byte of an element consumed: retryable
		}
		if isSpace(c) {
			continue
		}
		if c != '<' {
			if c == '&' {
				if err := r.readRef(); err != nil {
					return nil, r.fail(err)
				}
			}
			return nil, r.fail(newError(BadFormat, "character data outside stanzas"))
		}
		break
	}
	r.beginUnit(r.pos()-1, r.lim.MaxStanzaBytes, "stanza")
	el, err := r.readTop()
	r.unit = false
	r.release()
	if err != nil {
		if err == ErrClosed {
			r.state = stClosed
			return nil, err
		}
		return nil, r.fail(err)
	}
	return el, nil
}

// fail ends the stream with err.
func (r *Reader) fail(err error) error {
	r.state = stFailed
	r.err = err
	return err
}

func (r *Reader) pos() int64 { return r.base + int64(r.r) }

func (r *Reader) beginUnit(start int64, max int, name string) {
	r.unit, r.unitStart, r.unitMax, r.unitName = true, start, max, name
}

func (r *Reader) checkUnit() error {
	if r.unit && r.pos()-r.unitStart > int64(r.unitMax) {
		return newError(PolicyViolation, fmt.Sprintf("%s larger than %d bytes", r.unitName, r.unitMax))
	}
	return nil
}

// fill reads more bytes once buf is drained. The size limit of the current
// unit is checked here, so that at most one buffer is read past it.
func (r *Reader) fill() error {
	r.base += int64(r.w)
	r.r, r.w = 0, 0
	if err := r.checkUnit(); err != nil {
		return err
	}
	if err := r.rerr; err != nil {
		r.rerr = nil
		return err
	}
	for range 100 {
		n, err := r.src.Read(r.buf)
		if n < 0 || n > len(r.buf) {
			return fmt.Errorf("stream: source returned invalid count %d from Read", n)
		}
		if n > 0 {
			r.w = n
			r.rerr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (r *Reader) readByte() (byte, error) {
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	c := r.buf[r.r]
	r.r++
	return c, nil
}

// release drops scratch buffers that one large element made large.
func (r *Reader) release() {
	if cap(r.data) > keepData {
		r.data = nil
	}
	if cap(r.name) > keepData {
		r.name = nil
	}
	if cap(r.elems) > keepNodes || cap(r.attrs) > keepNodes || cap(r.nodes) > keepNodes {
		r.elems, r.attrs, r.nodes, r.open = nil, nil, nil, nil
	}
	if cap(r.raw) > keepNodes {
		r.raw = nil
	}
}
