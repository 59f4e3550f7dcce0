package stream

import (
	"fmt"
	"unicode/utf8"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// skipSpace returns the first byte from c on that is not whitespace.
func (r *Reader) skipSpace(c byte) (byte, error) {
	var err error
	for isSpace(c) {
		if c, err = r.readByte(); err != nil {
			return 0, err
		}
	}
	return c, nil
}

// expect consumes s.
func (r *Reader) expect(s string) error {
	for i := 0; i < len(s); i++ {
		c, err := r.readByte()
		if err != nil {
			return err
		}
		if c != s[i] {
			return newError(NotWellFormed, "expected "+s)
		}
	}
	return nil
}

// errUTF8 reports bytes that are not UTF-8: RFC 6120 section 4.9.3.22 puts
// an improperly encoded stream under unsupported-encoding.
func errUTF8() error { return newError(UnsupportedEncoding, "invalid UTF-8") }

// errXMLChar reports a character that XML 1.0 does not allow.
func errXMLChar() error { return newError(NotWellFormed, "character not allowed in XML") }

// readRune reads the rest of a UTF-8 sequence whose first byte c (not
// ASCII) was consumed, and checks that XML allows the character.
func (r *Reader) readRune(c byte) (rune, error) {
	var p [utf8.UTFMax]byte
	p[0] = c
	n := 0
	switch {
	case c&0xE0 == 0xC0:
		n = 2
	case c&0xF0 == 0xE0:
		n = 3
	case c&0xF8 == 0xF0:
		n = 4
	default:
		return 0, errUTF8()
	}
	for i := 1; i < n; i++ {
		b, err := r.readByte()
		if err != nil {
			return 0, err
		}
		p[i] = b
	}
	ru, size := utf8.DecodeRune(p[:n])
	if size != n {
		return 0, errUTF8()
	}
	if !isXMLChar(ru) {
		return 0, errXMLChar()
	}
	return ru, nil
}

// newline consumes the '\n' of a "\r\n" whose '\r' was read (XML 1.0
// section 2.11 reads both, and a lone '\r', as '\n').
func (r *Reader) newline() error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	if c != '\n' {
		r.r-- // still in buf: readByte consumed it from there
	}
	return nil
}

// readQName reads a qualified name whose first byte c was consumed. The
// name is left in r.name; it returns the index of its colon (-1 without
// prefix) and the byte after the name.
func (r *Reader) readQName(c byte) (int, byte, error) {
	r.name = r.name[:0]
	colon, part := -1, 0
	var err error
	for {
		switch {
		case c < utf8.RuneSelf && nameStart[c]:
			r.name = append(r.name, c)
		case c < utf8.RuneSelf && nameRest[c] && len(r.name) > part:
			r.name = append(r.name, c)
		case c == ':' && colon < 0 && len(r.name) > part:
			colon = len(r.name)
			r.name = append(r.name, c)
			part = len(r.name)
		case c >= utf8.RuneSelf:
			ru, err := r.readRune(c)
			if err != nil {
				return 0, 0, err
			}
			if !isNameRune(ru) || (len(r.name) == part && !isNameStartRune(ru)) {
				return 0, 0, newError(NotWellFormed, "invalid character in a name")
			}
			r.name = utf8.AppendRune(r.name, ru)
		default:
			if len(r.name) == part || c == ':' || (c < utf8.RuneSelf && nameRest[c]) {
				return 0, 0, newError(NotWellFormed, "malformed name")
			}
			return colon, c, nil
		}
		if c, err = r.readByte(); err != nil {
			return 0, 0, err
		}
	}
}

// split returns the prefix and local part of r.name.
func (r *Reader) split(colon int) (prefix, local string) {
	if colon < 0 {
		return "", r.intern(r.name)
	}
	return r.intern(r.name[:colon]), r.intern(r.name[colon+1:])
}

// nameIs reports whether r.name is prefix:local.
func (r *Reader) nameIs(colon int, prefix, local string) bool {
	if prefix == "" {
		return colon < 0 && string(r.name) == local
	}
	return colon == len(prefix) && string(r.name[:colon]) == prefix && string(r.name[colon+1:]) == local
}

// intern returns b as a string, without allocating for names seen before.
// A small direct-mapped cache in front of the maps makes the usual case a
// single comparison.
func (r *Reader) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &r.cache[nameSlot(b)]
	if *slot == string(b) {
		return *slot
	}
	s, ok := commonNames[string(b)]
	if !ok {
		s, ok = r.names[string(b)]
	}
	if !ok {
		s = string(b)
		if len(b) <= 64 && len(r.names) < 256 {
			if r.names == nil {
				r.names = make(map[string]string)
			}
			r.names[s] = s
		}
	}
	*slot = s
	return s
}

// nameSlot picks the cache slot of a non-empty name.
func nameSlot(b []byte) int {
	n := len(b)
	return (n*31 + int(b[0])*7 + int(b[n/2])*13 + int(b[n-1])) & 63
}

// readRef reads a reference after its '&' into r.data: a character
// reference or one of the five predefined entities. Any other entity is
// restricted XML (RFC 6120 section 11.1).
func (r *Reader) readRef() error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	if c == '#' {
		return r.readCharRef()
	}
	colon, c, err := r.readQName(c)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Condition == NotWellFormed {
			return newError(NotWellFormed, "'&' that does not start a reference")
		}
		return err
	}
	if c != ';' {
		return newError(NotWellFormed, "entity reference without ';'")
	}
	var v byte
	switch {
	case colon >= 0:
	case string(r.name) == "lt":
		v = '<'
	case string(r.name) == "gt":
		v = '>'
	case string(r.name) == "amp":
		v = '&'
	case string(r.name) == "apos":
		v = '\''
	case string(r.name) == "quot":
		v = '"'
	}
	if v == 0 {
		return newError(RestrictedXML, "entity reference other than the predefined ones")
	}
	r.data = append(r.data, v)
	return nil
}

// readCharRef reads a character reference after its "&#".
func (r *Reader) readCharRef() error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	base := rune(10)
	if c == 'x' {
		base = 16
		if c, err = r.readByte(); err != nil {
			return err
		}
	}
	var v rune
	digits := 0
	for c != ';' {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return newError(NotWellFormed, "malformed character reference")
		}
		v = v*base + d
		if v > utf8.MaxRune {
			return newError(NotWellFormed, "character reference out of range")
		}
		digits++
		if c, err = r.readByte(); err != nil {
			return err
		}
	}
	if digits == 0 {
		return newError(NotWellFormed, "empty character reference")
	}
	if !isXMLChar(v) {
		return newError(NotWellFormed, "character reference to a character XML does not allow")
	}
	r.data = utf8.AppendRune(r.data, v)
	return nil
}

// readAttrValue reads an attribute value after its opening quote q into
// r.data, normalising whitespace as XML 1.0 section 3.3.3 does for CDATA
// attributes.
func (r *Reader) readAttrValue(q byte) error {
	for {
		if r.r < r.w {
			b := r.buf[r.r:r.w]
			i := 0
			for i < len(b) {
				c := b[i]
				if attrPlain[c] {
					i++
					continue
				}
				if c >= utf8.RuneSelf && utf8.FullRune(b[i:]) {
					ru, size := utf8.DecodeRune(b[i:])
					if ru == utf8.RuneError && size == 1 {
						return errUTF8()
					}
					if !isXMLChar(ru) {
						return errXMLChar()
					}
					i += size
					continue
				}
				break
			}
			r.data = append(r.data, b[:i]...)
			r.r += i
		}
		c, err := r.readByte()
		if err != nil {
			return err
		}
		switch {
		case c == q:
			return nil
		case attrPlain[c], c == '\'' || c == '"':
			r.data = append(r.data, c)
		case c == '<':
			return newError(NotWellFormed, "'<' in an attribute value")
		case c == '&':
			if err := r.readRef(); err != nil {
				return err
			}
		case c == '\t' || c == '\n':
			r.data = append(r.data, ' ')
		case c == '\r':
			if err := r.newline(); err != nil {
				return err
			}
			r.data = append(r.data, ' ')
		case c >= utf8.RuneSelf:
			ru, err := r.readRune(c)
			if err != nil {
				return err
			}
			r.data = utf8.AppendRune(r.data, ru)
		default:
			return errXMLChar()
		}
	}
}

// readTag reads a start tag whose '<' and first name byte c were consumed:
// its name, and its attributes into r.raw with their values in r.data.
func (r *Reader) readTag(c byte, maxAttrs int) (prefix, local string, empty bool, err error) {
	colon, c, err := r.readQName(c)
	if err != nil {
		return "", "", false, err
	}
	prefix, local = r.split(colon)
	r.raw = r.raw[:0]
	for {
		sp := isSpace(c)
		if c, err = r.skipSpace(c); err != nil {
			return "", "", false, err
		}
		switch c {
		case '>':
			return prefix, local, false, nil
		case '/':
			if c, err = r.readByte(); err != nil {
				return "", "", false, err
			}
			if c != '>' {
				return "", "", false, newError(NotWellFormed, "expected '>' after '/' in a tag")
			}
			return prefix, local, true, nil
		}
		if !sp {
			return "", "", false, newError(NotWellFormed, "expected whitespace before an attribute")
		}
		if len(r.raw) >= maxAttrs {
			return "", "", false, newError(PolicyViolation, fmt.Sprintf("more than %d attributes on one element", maxAttrs))
		}
		colon, c, err = r.readQName(c)
		if err != nil {
			return "", "", false, err
		}
		ap, al := r.split(colon)
		if c, err = r.skipSpace(c); err != nil {
			return "", "", false, err
		}
		if c != '=' {
			return "", "", false, newError(NotWellFormed, "expected '=' after an attribute name")
		}
		if c, err = r.readByte(); err != nil {
			return "", "", false, err
		}
		if c, err = r.skipSpace(c); err != nil {
			return "", "", false, err
		}
		if c != '\'' && c != '"' {
			return "", "", false, newError(NotWellFormed, "attribute value without quotes")
		}
		v0 := len(r.data)
		if err = r.readAttrValue(c); err != nil {
			return "", "", false, err
		}
		r.raw = append(r.raw, rawAttr{prefix: ap, local: al, v0: v0, v1: len(r.data)})
		if c, err = r.readByte(); err != nil {
			return "", "", false, err
		}
	}
}

// declare checks the attributes of the tag just read for duplicates, pushes
// its namespace declarations onto r.ns, and removes their values from
// r.data (which starts at tagData for this tag).
func (r *Reader) declare(tagData int) error {
	w := tagData
	for i := range r.raw {
		a := &r.raw[i]
		for _, b := range r.raw[:i] {
			if a.prefix == b.prefix && a.local == b.local {
				return newError(NotWellFormed, "attribute given twice")
			}
		}
		v := r.data[a.v0:a.v1]
		switch {
		case a.prefix == "" && a.local == "xmlns":
			uri := r.intern(v)
			if uri == dom.NSXML || uri == nsXMLNS {
				return newError(NotWellFormed, "reserved namespace declared as the default namespace")
			}
			r.ns = append(r.ns, binding{"", uri})
			a.decl = true
		case a.prefix == "xmlns":
			uri := r.intern(v)
			switch {
			case a.local == "xmlns":
				return newError(NotWellFormed, "the xmlns prefix declared")
			case a.local == "xml":
				if uri != dom.NSXML {
					return newError(NotWellFormed, "the xml prefix bound to another namespace")
				}
			case uri == "":
				return newError(NotWellFormed, "prefix bound to an empty namespace name")
			case uri == dom.NSXML || uri == nsXMLNS:
				return newError(NotWellFormed, "reserved namespace bound to a prefix")
			default:
				r.ns = append(r.ns, binding{a.local, uri})
			}
			a.decl = true
		default:
			n := copy(r.data[w:], v)
			a.v0, a.v1 = w, w+n
			w += n
		}
	}
	r.data = r.data[:w]
	return nil
}

// lookup resolves a prefix in the current scope.
func (r *Reader) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return dom.NSXML, true
	}
	for i := len(r.ns) - 1; i >= 0; i-- {
		if r.ns[i].prefix == prefix {
			return r.ns[i].uri, true
		}
	}
	return "", prefix == ""
}

// attrSpace resolves the prefix of an attribute.
func (r *Reader) attrSpace(prefix string) (string, error) {
	if prefix == "" {
		return "", nil
	}
	space, ok := r.lookup(prefix)
	if !ok {
		return "", newError(NotWellFormed, "undeclared namespace prefix "+prefix)
	}
	return space, nil
}

// Where "<!" was met, for readBang.
const (
	inProlog  = iota // before the stream header
	atTop            // between stanzas
	inContent        // inside a stanza
)

// readBang handles "<!": a CDATA section in a stanza is text; comments and
// DTD markup are restricted XML.
func (r *Reader) readBang(where int) error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	switch {
	case c == '-':
		return newError(RestrictedXML, "comment")
	case c == '[' && where == inContent:
		if err := r.expect("CDATA["); err != nil {
			return err
		}
		return r.readCDATA()
	case c == '[' && where == atTop:
		return newError(BadFormat, "character data outside stanzas")
	case c >= 'A' && c <= 'Z':
		return newError(RestrictedXML, "DTD markup")
	}
	return newError(NotWellFormed, "malformed markup after '<!'")
}

// readCDATA reads a CDATA section after its "<![CDATA[" into r.data.
func (r *Reader) readCDATA() error {
	brackets := 0
	for {
		c, err := r.readByte()
		if err != nil {
			return err
		}
		switch {
		case c == ']':
			brackets++
			r.data = append(r.data, c)
			continue
		case c == '>' && brackets >= 2:
			r.data = r.data[:len(r.data)-2]
			return nil
		case c == '\r':
			if err := r.newline(); err != nil {
				return err
			}
			r.data = append(r.data, '\n')
		case c >= utf8.RuneSelf:
			ru, err := r.readRune(c)
			if err != nil {
				return err
			}
			r.data = utf8.AppendRune(r.data, ru)
		case c >= 0x20 || c == '\t' || c == '\n':
			r.data = append(r.data, c)
		default:
			return errXMLChar()
		}
		brackets = 0
	}
}
