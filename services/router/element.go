package router

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// maxDepth bounds the nesting the decoder accepts. The connection service
// already enforced its limits on the stanza; this only keeps a bad envelope
// from costing much.
const maxDepth = 64

var errNotOneElement = errors.New("raw stanza is not exactly one element")

// decodeElement reads the self-contained element of an envelope (as
// dom.Element.Marshal writes it) into a tree. Namespace declarations become
// element namespaces; comments, processing instructions and directives are
// refused, as on an XMPP stream (RFC 6120 section 11.1).
func decodeElement(raw []byte) (*dom.Element, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var root *dom.Element
	var stack []*dom.Element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, errNotOneElement
			}
			if len(stack) == maxDepth {
				return nil, fmt.Errorf("raw stanza nested deeper than %d", maxDepth)
			}
			el := &dom.Element{Space: t.Name.Space, Local: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				el.Attrs = append(el.Attrs, dom.Attr{Space: a.Name.Space, Local: a.Name.Local, Value: a.Value})
			}
			if len(stack) == 0 {
				root = el
			} else {
				stack[len(stack)-1].Append(el)
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].AppendText(string(t))
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errNotOneElement
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
			return nil, fmt.Errorf("raw stanza holds restricted XML (%T)", t)
		}
	}
	if root == nil {
		return nil, errNotOneElement
	}
	return root, nil
}

// priority returns the <priority/> of a presence stanza (RFC 6121 section
// 4.7.2.3), as stanza.Priority.
func priority(p *dom.Element) (int32, error) { return stanza.Priority(p) }
