// Package stream reads and writes XMPP streams (RFC 6120 section 4): the
// stream header, then one top-level element at a time, under limits.
//
// API CONTRACT (stub written first so that c2s, client and s2s can be built in
// parallel; the implementation replaces the panics, keeps the signatures).
package stream

import (
	"errors"
	"io"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// Namespaces used on streams.
const (
	NS       = "http://etherx.jabber.org/streams"
	NSClient = "jabber:client"
	NSServer = "jabber:server"
	NSError  = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Limits bound what one peer can make a reader hold.
type Limits struct {
	MaxStanzaBytes int // bytes of one top-level element; default 256 KiB
	MaxDepth       int // element nesting depth inside a stanza; default 32
	MaxAttrs       int // attributes per element; default 64
}

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits { return Limits{MaxStanzaBytes: 256 << 10, MaxDepth: 32, MaxAttrs: 64} }

// Header is the opening <stream:stream> element.
type Header struct {
	To, From, ID, Version, Lang string
	NS                          string // content namespace: jabber:client or jabber:server
	// Prefixes are extra namespace declarations (prefix -> URI), such as
	// db -> jabber:server:dialback on server streams.
	Prefixes map[string]string
}

// ErrClosed is returned by Reader.Next when the peer closed its stream with
// </stream:stream>.
var ErrClosed = errors.New("stream: closed by peer")

// Reader reads one stream. Errors that the peer caused are *Error values
// carrying the condition to send (not-well-formed, restricted-xml,
// invalid-namespace, policy-violation, ...); I/O errors pass through.
type Reader struct{ _ int }

// NewReader returns a reader for r.
func NewReader(r io.Reader, lim Limits) *Reader { panic("stream: unimplemented") }

// Reset starts reading a new stream from r (after STARTTLS or a SASL
// success), with the same limits.
func (r *Reader) Reset(src io.Reader) { panic("stream: unimplemented") }

// ReadHeader reads the XML declaration (optional) and the stream header.
func (r *Reader) ReadHeader() (Header, error) { panic("stream: unimplemented") }

// Next returns the next top-level element. Whitespace between elements is
// skipped. It returns ErrClosed at </stream:stream>.
func (r *Reader) Next() (*dom.Element, error) { panic("stream: unimplemented") }

// Writer writes one stream. It buffers; call Flush.
type Writer struct{ _ int }

// NewWriter returns a writer; ns is the content namespace of the stream,
// which elements in that namespace do not need to declare again.
func NewWriter(w io.Writer, ns string) *Writer { panic("stream: unimplemented") }

// WriteHeader writes the XML declaration and the opening stream header.
func (w *Writer) WriteHeader(h Header) error { panic("stream: unimplemented") }

// WriteElement writes one top-level element.
func (w *Writer) WriteElement(e *dom.Element) error { panic("stream: unimplemented") }

// WriteRaw writes a self-contained element already serialised (as dom's
// Marshal makes it).
func (w *Writer) WriteRaw(b []byte) error { panic("stream: unimplemented") }

// WriteError writes <stream:error> followed by </stream:stream>.
func (w *Writer) WriteError(e *Error) error { panic("stream: unimplemented") }

// Close writes </stream:stream>. Nothing may be written after it.
func (w *Writer) Close() error { panic("stream: unimplemented") }

// Flush flushes buffered output.
func (w *Writer) Flush() error { panic("stream: unimplemented") }

// Condition is a stream error condition of RFC 6120 section 4.9.3.
// Every condition is a constant of this type (BadFormat, ..., UnsupportedVersion).
type Condition string

const (
	NotWellFormed Condition = "not-well-formed"
	// ... the implementation lists all of them.
)

func (c Condition) Error() string { return string(c) }

// Error is a stream error. errors.Is(err, stream.Conflict) works.
type Error struct {
	Condition Condition
	Text      string
	Lang      string
	Host      string // for see-other-host
	App       *dom.Element
}

func (e *Error) Error() string { return "stream error: " + string(e.Condition) }

// Is reports whether target is e's Condition or an *Error with it.
func (e *Error) Is(target error) bool { panic("stream: unimplemented") }

// Element returns the <stream:error> element.
func (e *Error) Element() *dom.Element { panic("stream: unimplemented") }

// ParseError reads a <stream:error> element.
func ParseError(el *dom.Element) *Error { panic("stream: unimplemented") }
