package stream

import (
	"fmt"
	"unicode/utf8"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// readTop reads what follows a '<' at the top level: a stanza, or the end
// of the stream.
func (r *Reader) readTop() (*dom.Element, error) {
	c, err := r.readByte()
	if err != nil {
		return nil, err
	}
	switch c {
	case '/':
		if c, err = r.readByte(); err != nil {
			return nil, err
		}
		colon, c, err := r.readQName(c)
		if err != nil {
			return nil, err
		}
		if !r.nameIs(colon, "stream", "stream") {
			return nil, newError(NotWellFormed, "end tag does not match the stream header")
		}
		if c, err = r.skipSpace(c); err != nil {
			return nil, err
		}
		if c != '>' {
			return nil, newError(NotWellFormed, "malformed end tag")
		}
		return nil, ErrClosed
	case '?':
		return nil, newError(RestrictedXML, "processing instruction")
	case '!':
		return nil, r.readBang(atTop)
	}
	r.data, r.raw, r.elems, r.attrs, r.nodes, r.open = r.data[:0], r.raw[:0], r.elems[:0], r.attrs[:0], r.nodes[:0], r.open[:0]
	defer func() { r.ns = r.ns[:r.nsBase] }()
	if err := r.readElement(c); err != nil {
		return nil, err
	}
	if err := r.checkUnit(); err != nil {
		return nil, err
	}
	return r.build(), nil
}

// readElement reads an element whose '<' and first name byte c were
// consumed, with everything inside it.
func (r *Reader) readElement(c byte) error {
	if err := r.openElement(c); err != nil {
		return err
	}
	textStart := len(r.data)
	brackets := 0 // ']' just before, to catch "]]>" in text
	for len(r.open) > 0 {
		// Copy a run of plain text straight from the buffer.
		if r.r < r.w {
			b := r.buf[r.r:r.w]
			i := 0
			for i < len(b) {
				c := b[i]
				if textPlain[c] {
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
			if i > 0 {
				r.data = append(r.data, b[:i]...)
				r.r += i
				brackets = 0
			}
		}
		c, err := r.readByte()
		if err != nil {
			return err
		}
		switch {
		case c == '<':
			if c, err = r.readByte(); err != nil {
				return err
			}
			switch c {
			case '!':
				if err := r.readBang(inContent); err != nil {
					return err
				}
				brackets = 0
				continue // a CDATA section continues the text
			case '?':
				return newError(RestrictedXML, "processing instruction")
			case '/':
				r.flushText(textStart)
				if err := r.closeElement(); err != nil {
					return err
				}
			default:
				r.flushText(textStart)
				if err := r.openElement(c); err != nil {
					return err
				}
			}
			textStart = len(r.data)
			brackets = 0
		case c == '&':
			if err := r.readRef(); err != nil {
				return err
			}
			brackets = 0
		case textPlain[c]:
			r.data = append(r.data, c)
			brackets = 0
		case c == ']':
			r.data = append(r.data, c)
			brackets++
		case c == '>':
			if brackets >= 2 {
				return newError(NotWellFormed, "']]>' in character data")
			}
			r.data = append(r.data, c)
			brackets = 0
		case c == '\r':
			if err := r.newline(); err != nil {
				return err
			}
			r.data = append(r.data, '\n')
			brackets = 0
		case c >= utf8.RuneSelf:
			ru, err := r.readRune(c)
			if err != nil {
				return err
			}
			r.data = utf8.AppendRune(r.data, ru)
			brackets = 0
		default:
			return errXMLChar()
		}
	}
	return nil
}

// flushText records the text read since textStart as a child of the open
// element.
func (r *Reader) flushText(textStart int) {
	if len(r.data) == textStart {
		return
	}
	p := r.open[len(r.open)-1]
	r.elems[p].nodes++
	r.nodes = append(r.nodes, nodeRec{parent: p, elem: -1, t0: textStart, t1: len(r.data)})
}

// openElement reads a start tag whose '<' and first name byte c were
// consumed, and opens the element (closing it again when empty).
func (r *Reader) openElement(c byte) error {
	if len(r.open) >= r.lim.MaxDepth {
		return newError(PolicyViolation, fmt.Sprintf("elements nested deeper than %d", r.lim.MaxDepth))
	}
	tagData := len(r.data)
	prefix, local, empty, err := r.readTag(c, r.lim.MaxAttrs)
	if err != nil {
		return err
	}
	mark := len(r.ns)
	if err := r.declare(tagData); err != nil {
		return err
	}
	if prefix == "xmlns" {
		return newError(NotWellFormed, "element with the xmlns prefix")
	}
	space, ok := r.lookup(prefix)
	if !ok {
		return newError(NotWellFormed, "undeclared namespace prefix "+prefix)
	}
	if space == dom.NSXML {
		return newError(BadFormat, "element in the xml namespace")
	}
	a0 := len(r.attrs)
	for _, a := range r.raw {
		if a.decl {
			continue
		}
		as, err := r.attrSpace(a.prefix)
		if err != nil {
			return err
		}
		if as != "" {
			for _, b := range r.attrs[a0:] {
				if b.space == as && b.local == a.local {
					return newError(NotWellFormed, "attribute given twice")
				}
			}
		}
		r.attrs = append(r.attrs, attrRec{space: as, local: a.local, v0: a.v0, v1: a.v1})
	}
	idx := len(r.elems)
	if len(r.open) > 0 {
		p := r.open[len(r.open)-1]
		r.elems[p].nodes++
		r.nodes = append(r.nodes, nodeRec{parent: p, elem: idx})
	}
	r.elems = append(r.elems, elemRec{space: space, local: local, prefix: prefix, a0: a0, a1: len(r.attrs), nsMark: mark})
	r.open = append(r.open, idx)
	if empty {
		r.ns = r.ns[:mark]
		r.open = r.open[:len(r.open)-1]
	}
	return nil
}

// closeElement reads an end tag after its "</" and closes the open element.
func (r *Reader) closeElement() error {
	c, err := r.readByte()
	if err != nil {
		return err
	}
	colon, c, err := r.readQName(c)
	if err != nil {
		return err
	}
	if c, err = r.skipSpace(c); err != nil {
		return err
	}
	if c != '>' {
		return newError(NotWellFormed, "malformed end tag")
	}
	e := &r.elems[r.open[len(r.open)-1]]
	if !r.nameIs(colon, e.prefix, e.local) {
		return newError(NotWellFormed, "end tag does not match the start tag")
	}
	r.ns = r.ns[:e.nsMark]
	r.open = r.open[:len(r.open)-1]
	return nil
}

// build turns the records of the element just read into a dom tree. It
// allocates the elements, attributes, nodes and strings once each; the
// slices it hands out are capped so that appending to one never writes
// over another.
func (r *Reader) build() *dom.Element {
	els := make([]dom.Element, len(r.elems))
	var attrs []dom.Attr
	if len(r.attrs) > 0 {
		attrs = make([]dom.Attr, len(r.attrs))
	}
	var nodes []dom.Node
	if len(r.nodes) > 0 {
		nodes = make([]dom.Node, len(r.nodes))
	}
	s := string(r.data)
	for i, a := range r.attrs {
		attrs[i] = dom.Attr{Space: a.space, Local: a.local, Value: s[a.v0:a.v1]}
	}
	off := 0
	for i := range r.elems {
		e := &r.elems[i]
		els[i].Space, els[i].Local = e.space, e.local
		if e.a1 > e.a0 {
			els[i].Attrs = attrs[e.a0:e.a1:e.a1]
		}
		if n := e.nodes; n > 0 {
			els[i].Nodes = nodes[off : off+n : off+n]
			e.nodes = off
			off += n
		}
	}
	for _, n := range r.nodes {
		p := &r.elems[n.parent]
		if n.elem >= 0 {
			nodes[p.nodes].Elem = &els[n.elem]
		} else {
			nodes[p.nodes].Text = s[n.t0:n.t1]
		}
		p.nodes++
	}
	return &els[0]
}
