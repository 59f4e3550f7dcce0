// Package dom is a small XML element tree for stanzas.
//
// Names carry namespace URIs, never prefixes: a reader resolves prefixes, and
// the writer declares what it needs. Mixed content is kept in document order
// so that extension payloads survive a read and a write unchanged.
package dom

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// NSXML is the namespace bound to the xml: prefix (xml:lang).
const NSXML = "http://www.w3.org/XML/1998/namespace"

// Attr is one attribute. Space is the namespace URI; it is empty for the
// usual unqualified attributes.
type Attr struct {
	Space, Local, Value string
}

// Node is one child of an element: an element or character data.
// Exactly one of Elem and Text is meaningful; Elem is nil for text.
type Node struct {
	Elem *Element
	Text string
}

// Element is an XML element with its namespace, attributes and children.
type Element struct {
	Space string // namespace URI
	Local string
	Attrs []Attr
	Nodes []Node
}

// New returns an element with the given namespace, name and unqualified
// attributes given as name/value pairs.
func New(space, local string, attrs ...string) *Element {
	e := &Element{Space: space, Local: local}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attrs = append(e.Attrs, Attr{Local: attrs[i], Value: attrs[i+1]})
	}
	return e
}

// Attr returns the value of the unqualified attribute local, or "".
func (e *Element) Attr(local string) string {
	v, _ := e.LookupAttr("", local)
	return v
}

// LookupAttr returns the value of an attribute and whether it is present.
func (e *Element) LookupAttr(space, local string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Local == local && a.Space == space {
			return a.Value, true
		}
	}
	return "", false
}

// SetAttr sets an unqualified attribute; an empty value removes it.
func (e *Element) SetAttr(local, value string) { e.SetAttrNS("", local, value) }

// SetAttrNS sets a namespaced attribute; an empty value removes it.
func (e *Element) SetAttrNS(space, local, value string) {
	for i, a := range e.Attrs {
		if a.Local == local && a.Space == space {
			if value == "" {
				e.Attrs = append(e.Attrs[:i], e.Attrs[i+1:]...)
			} else {
				e.Attrs[i].Value = value
			}
			return
		}
	}
	if value != "" {
		e.Attrs = append(e.Attrs, Attr{Space: space, Local: local, Value: value})
	}
}

// Lang returns the element's own xml:lang, or "".
func (e *Element) Lang() string {
	v, _ := e.LookupAttr(NSXML, "lang")
	return v
}

// Child returns the first child element with the given name. An empty space
// matches any namespace.
func (e *Element) Child(space, local string) *Element {
	for _, n := range e.Nodes {
		if n.Elem != nil && n.Elem.Local == local && (space == "" || n.Elem.Space == space) {
			return n.Elem
		}
	}
	return nil
}

// Children returns the child elements in order.
func (e *Element) Children() []*Element {
	var out []*Element
	for _, n := range e.Nodes {
		if n.Elem != nil {
			out = append(out, n.Elem)
		}
	}
	return out
}

// ChildCount returns the number of child elements.
func (e *Element) ChildCount() int {
	c := 0
	for _, n := range e.Nodes {
		if n.Elem != nil {
			c++
		}
	}
	return c
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	for _, n := range e.Nodes {
		if n.Elem != nil {
			return n.Elem
		}
	}
	return nil
}

// Text returns the character data directly inside e, concatenated.
func (e *Element) Text() string {
	var b strings.Builder
	for _, n := range e.Nodes {
		if n.Elem == nil {
			b.WriteString(n.Text)
		}
	}
	return b.String()
}

// ChildText returns the text of the first child with the given name, or "".
func (e *Element) ChildText(space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}

// Append adds child elements and returns e.
func (e *Element) Append(children ...*Element) *Element {
	for _, c := range children {
		e.Nodes = append(e.Nodes, Node{Elem: c})
	}
	return e
}

// AppendText adds character data and returns e.
func (e *Element) AppendText(s string) *Element {
	e.Nodes = append(e.Nodes, Node{Text: s})
	return e
}

// Clone returns a deep copy.
func (e *Element) Clone() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Space: e.Space, Local: e.Local}
	if e.Attrs != nil {
		c.Attrs = append([]Attr(nil), e.Attrs...)
	}
	if e.Nodes != nil {
		c.Nodes = make([]Node, len(e.Nodes))
		for i, n := range e.Nodes {
			c.Nodes[i] = Node{Elem: n.Elem.Clone(), Text: n.Text}
		}
	}
	return c
}

// Marshal returns e as a self-contained XML fragment: its namespace is
// declared on it, so it can be read without any enclosing stream.
func (e *Element) Marshal() []byte { return e.AppendXML(nil, "") }

// String is Marshal as a string.
func (e *Element) String() string { return string(e.Marshal()) }

// AppendXML appends e to b. parentSpace is the default namespace in scope
// where e is written (for a stanza on a client stream, "jabber:client"); a
// default namespace declaration is written only where it changes. Text and
// attribute values are escaped so that the output never contains comments,
// processing instructions, DTDs or entity references other than the five
// predefined ones and character references.
func (e *Element) AppendXML(b []byte, parentSpace string) []byte {
	return e.appendXML(b, parentSpace, nil)
}

// prefixes maps attribute namespaces to the prefixes declared for them.
type prefixes []Attr // Space = namespace, Local = prefix

func (p prefixes) lookup(space string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i].Space == space {
			return p[i].Local
		}
	}
	return ""
}

func (e *Element) appendXML(b []byte, parentSpace string, scope prefixes) []byte {
	b = append(b, '<')
	b = append(b, e.Local...)
	if e.Space != parentSpace {
		b = append(b, " xmlns='"...)
		b = AppendEscaped(b, e.Space, true)
		b = append(b, '\'')
	}
	for _, a := range e.Attrs {
		if a.Space == "" || a.Space == NSXML || scope.lookup(a.Space) != "" {
			continue
		}
		pfx := "ns" + strconv.Itoa(len(scope)+1)
		scope = append(scope, Attr{Space: a.Space, Local: pfx})
		b = append(b, " xmlns:"...)
		b = append(b, pfx...)
		b = append(b, "='"...)
		b = AppendEscaped(b, a.Space, true)
		b = append(b, '\'')
	}
	for _, a := range e.Attrs {
		b = append(b, ' ')
		switch a.Space {
		case "":
		case NSXML:
			b = append(b, "xml:"...)
		default:
			b = append(b, scope.lookup(a.Space)...)
			b = append(b, ':')
		}
		b = append(b, a.Local...)
		b = append(b, "='"...)
		b = AppendEscaped(b, a.Value, true)
		b = append(b, '\'')
	}
	if len(e.Nodes) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, n := range e.Nodes {
		if n.Elem != nil {
			b = n.Elem.appendXML(b, e.Space, scope)
		} else {
			b = AppendEscaped(b, n.Text, false)
		}
	}
	b = append(b, "</"...)
	b = append(b, e.Local...)
	return append(b, '>')
}

// AppendEscaped appends s escaped as character data, or as an attribute
// value when attr is set: markup characters become predefined entities, whitespace that
// attribute normalisation would change becomes character references, and
// what XML cannot carry (invalid UTF-8, forbidden characters) becomes
// U+FFFD.
func AppendEscaped(b []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && c >= 0x20 && c != '<' && c != '>' && c != '&' && c != '\'' && c != '"' {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch {
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '&':
			esc = "&amp;"
		case r == '\'' && attr:
			esc = "&apos;"
		case r == '"' && attr:
			esc = "&quot;"
		case r == '\n' && attr:
			esc = "&#xA;"
		case r == '\t' && attr:
			esc = "&#x9;"
		case r == '\r':
			esc = "&#xD;"
		case r == utf8.RuneError && size == 1, !isXMLChar(r):
			esc = "\uFFFD"
		default:
			i += size
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += size
		last = i
	}
	return append(b, s[last:]...)
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
