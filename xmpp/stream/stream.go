// Package stream reads and writes XMPP streams (RFC 6120 section 4): the
// stream header, then one top-level element at a time, under limits.
//
// # Reading
//
// A Reader parses with its own tokenizer rather than encoding/xml: it reads
// only the restricted XML profile of RFC 6120 section 11.1, checks every
// limit while bytes arrive (so an endless element or attribute value is
// cut off after at most the limit plus one read buffer), and builds each
// element with four allocations. It reads from its source through a fixed
// 4 KiB buffer and calls Read only while the element it is reading is
// incomplete, so it never waits for bytes past the '>' that ends an
// element; that is what a STARTTLS or SASL restart needs (see Reader.Reset
// and Reader.Buffered).
//
// Errors the peer caused are *Error values with the condition to send back;
// the choices where RFC 6120 leaves room are:
//
//   - The stream header must use the prefix "stream" for the stream
//     namespace. Another prefix, the stream namespace as the default
//     namespace, or an undeclared "stream" prefix is bad-namespace-prefix:
//     RFC 6120 section 4.8 lets an entity accept only the "stream" prefix,
//     for historical reasons, and section 4.9.3.2 names this condition for
//     an unsupported prefix or a missing one where it is needed. A header
//     whose element is not in the stream namespace is invalid-namespace
//     (section 4.8.1); one named other than "stream" is bad-format.
//   - Inside stanzas an undeclared prefix is not-well-formed: it breaks
//     Namespaces in XML, which section 4.9.3.13 puts under that condition;
//     bad-namespace-prefix is kept for the stream header.
//   - Character data between top-level elements other than whitespace
//     (section 11.7) is bad-format: it is well-formed XML, so
//     not-well-formed would be wrong, but XMPP cannot process it.
//   - Comments, processing instructions, DTD markup and entity references
//     other than the five predefined ones are restricted-xml (section 11.1);
//     CDATA sections are accepted and read as text.
//   - Bytes that are not UTF-8 are unsupported-encoding (section 4.9.3.22
//     covers improperly encoded streams), as is an XML declaration naming
//     another encoding (section 11.6); characters XML 1.0 forbids are
//     not-well-formed. A leading UTF-8 byte order mark is skipped.
//   - Elements in the xml: namespace are bad-format: they are legal XML but
//     dom cannot write them back.
//   - Over a limit is policy-violation with a text naming the limit.
//
// The reader does not judge the content namespace, the version or the
// addresses of the header; the caller does (invalid-namespace,
// unsupported-version, host-unknown).
//
// # Writing
//
// A Writer appends to a buffer borrowed from a package pool and returns it
// on Flush, so an idle stream holds no buffer. It never writes comments,
// processing instructions, DTDs or entity references other than the
// predefined ones. Top-level elements in the stream namespace (features,
// error) are written with the "stream:" prefix that older peers expect.
package stream

// Namespaces used on streams.
const (
	NS       = "http://etherx.jabber.org/streams"
	NSClient = "jabber:client"
	NSServer = "jabber:server"
	NSError  = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Limits bound what one peer can make a reader hold. A field that is zero or
// negative takes its default.
type Limits struct {
	MaxStanzaBytes int // bytes of one top-level element; default 256 KiB
	MaxDepth       int // element nesting depth inside a stanza, which is at depth 1; default 32
	MaxAttrs       int // attributes per element, namespace declarations included; default 64
	// MaxHeaderBytes bounds the XML declaration and the stream header
	// together, with whitespace before them; default 4 KiB.
	MaxHeaderBytes int
}

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{MaxStanzaBytes: 256 << 10, MaxDepth: 32, MaxAttrs: 64, MaxHeaderBytes: 4 << 10}
}

// withDefaults fills zero fields.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = d.MaxStanzaBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = d.MaxAttrs
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// Header is the opening <stream:stream> element.
type Header struct {
	To, From, ID, Version, Lang string
	NS                          string // content namespace: jabber:client or jabber:server
	// Prefixes are extra namespace declarations (prefix -> URI), such as
	// db -> jabber:server:dialback on server streams. It is nil when there
	// are none.
	Prefixes map[string]string
}
