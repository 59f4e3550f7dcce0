package stream

import (
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// readHeader reads the prolog and the stream header. empty reports a
// header that was also the end of the stream (<stream:stream/>).
func (r *Reader) readHeader() (h Header, empty bool, err error) {
	c, err := r.readByte()
	if err != nil {
		return h, false, err
	}
	switch c {
	case 0xEF: // a UTF-8 byte order mark
		if err := r.expect("\xBB\xBF"); err != nil {
			return h, false, errUTF8()
		}
		if c, err = r.readByte(); err != nil {
			return h, false, err
		}
	case 0xFE, 0xFF, 0x00: // UTF-16 or UTF-32
		return h, false, newError(UnsupportedEncoding, "stream not encoded in UTF-8")
	}
	// An XML declaration may come first, and only once. Whitespace before it
	// is tolerated: on a restarted stream it is usually the line break a
	// client wrote after its last element of the previous stream
	// (go-sendxmpp does this), and it carries no meaning.
	decl := true
	for {
		if isSpace(c) {
			if c, err = r.skipSpace(c); err != nil {
				return h, false, err
			}
		}
		if c != '<' {
			return h, false, newError(NotWellFormed, "character data before the stream header")
		}
		if c, err = r.readByte(); err != nil {
			return h, false, err
		}
		switch {
		case c == '?' && decl:
			if err := r.readDecl(); err != nil {
				return h, false, err
			}
		case c == '?':
			return h, false, newError(RestrictedXML, "processing instruction")
		case c == '!':
			return h, false, r.readBang(inProlog)
		case c == '/':
			return h, false, newError(NotWellFormed, "end tag before the stream header")
		default:
			return r.readHeaderTag(c)
		}
		decl = false
		if c, err = r.readByte(); err != nil {
			return h, false, err
		}
	}
}

// readDecl reads an XML declaration after its "<?" (XML 1.0 section 2.8).
// An encoding other than UTF-8 is unsupported-encoding (RFC 6120 section
// 11.6); a processing instruction is restricted XML.
func (r *Reader) readDecl() error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	// "<?xml" then whitespace; any other target is a processing instruction.
	for _, want := range []byte("xml") {
		if c != want {
			return newError(RestrictedXML, "processing instruction")
		}
		if c, err = r.readByte(); err != nil {
			return err
		}
	}
	if !isSpace(c) {
		return newError(RestrictedXML, "processing instruction")
	}
	seen := 0 // pseudo-attributes come in this order: version, encoding, standalone
	for {
		sp := isSpace(c)
		if c, err = r.skipSpace(c); err != nil {
			return err
		}
		if c == '?' {
			if c, err = r.readByte(); err != nil {
				return err
			}
			if c != '>' || seen == 0 {
				return newError(NotWellFormed, "malformed XML declaration")
			}
			return nil
		}
		if !sp {
			return newError(NotWellFormed, "malformed XML declaration")
		}
		colon, c2, err := r.readQName(c)
		if err != nil {
			return err
		}
		name := string(r.name) // at most three short names reach the switch
		if colon >= 0 {
			return newError(NotWellFormed, "malformed XML declaration")
		}
		if c, err = r.skipSpace(c2); err != nil {
			return err
		}
		if c != '=' {
			return newError(NotWellFormed, "malformed XML declaration")
		}
		if c, err = r.readByte(); err != nil {
			return err
		}
		if c, err = r.skipSpace(c); err != nil {
			return err
		}
		if c != '\'' && c != '"' {
			return newError(NotWellFormed, "malformed XML declaration")
		}
		v0 := len(r.data)
		if err := r.readAttrValue(c); err != nil {
			return err
		}
		v := string(r.data[v0:])
		r.data = r.data[:v0]
		switch {
		case name == "version" && seen == 0:
			if !strings.HasPrefix(v, "1.") || len(v) == 2 || strings.Trim(v[2:], "0123456789") != "" {
				return newError(NotWellFormed, "XML version other than 1.x")
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(v, "UTF-8") {
				return newError(UnsupportedEncoding, "encoding other than UTF-8")
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen <= 2:
			if v != "yes" && v != "no" {
				return newError(NotWellFormed, "malformed XML declaration")
			}
			seen = 3
		default:
			return newError(NotWellFormed, "malformed XML declaration")
		}
		if c, err = r.readByte(); err != nil {
			return err
		}
	}
}

// readHeaderTag reads the stream header's start tag whose first name byte
// c was consumed, and checks its namespace and prefix (see the package
// comment for the conditions chosen).
func (r *Reader) readHeaderTag(c byte) (h Header, empty bool, err error) {
	r.data = r.data[:0]
	// MaxHeaderBytes bounds the header's attributes.
	prefix, local, empty, err := r.readTag(c, r.lim.MaxHeaderBytes)
	if err != nil {
		return h, false, err
	}
	r.ns = r.ns[:0]
	if err := r.declare(0); err != nil {
		return h, false, err
	}
	space, ok := r.lookup(prefix)
	switch {
	case !ok || prefix == "xmlns":
		return h, false, newError(BadNamespacePrefix, "stream header prefix "+prefix+" not declared")
	case space != NS:
		return h, false, newError(InvalidNamespace, "stream header not in the stream namespace")
	case local != "stream":
		return h, false, newError(BadFormat, "stream header element is not <stream>")
	case prefix != "stream":
		return h, false, newError(BadNamespacePrefix, "stream namespace not used with the prefix stream")
	}
	for _, a := range r.raw {
		if a.decl {
			continue
		}
		space, err := r.attrSpace(a.prefix)
		if err != nil {
			return h, false, err
		}
		v := string(r.data[a.v0:a.v1])
		switch {
		case space == dom.NSXML && a.local == "lang":
			h.Lang = v
		case space != "":
		case a.local == "to":
			h.To = v
		case a.local == "from":
			h.From = v
		case a.local == "id":
			h.ID = v
		case a.local == "version":
			h.Version = v
		}
	}
	for i, b := range r.ns {
		if b.prefix == "" {
			h.NS = b.uri
			continue
		}
		if b.prefix == "stream" {
			continue
		}
		// The same prefix declared twice is caught as a duplicate attribute.
		if h.Prefixes == nil {
			h.Prefixes = make(map[string]string, len(r.ns)-i)
		}
		h.Prefixes[b.prefix] = b.uri
	}
	r.nsBase = len(r.ns)
	return h, empty, r.checkUnit()
}
