package imtest

import (
	"encoding/xml"
	"fmt"
)

// Node is an element the server sent, read with encoding/xml.
type Node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []Node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

// Is reports whether n is the element {space}local.
func (n *Node) Is(space, local string) bool {
	return n != nil && n.XMLName.Space == space && n.XMLName.Local == local
}

// Attr returns the value of the unqualified (or own-namespace) attribute
// local, "" when it is absent.
func (n *Node) Attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == n.XMLName.Space) {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child {space}local, nil when there is none.
func (n *Node) Child(space, local string) *Node {
	if n == nil {
		return nil
	}
	for i := range n.Nodes {
		if n.Nodes[i].Is(space, local) {
			return &n.Nodes[i]
		}
	}
	return nil
}

func (n *Node) String() string {
	if n == nil {
		return "<nil>"
	}
	b, err := xml.Marshal(n.withoutXMLNS())
	if err != nil {
		return fmt.Sprintf("{%s}%s (%v)", n.XMLName.Space, n.XMLName.Local, err)
	}
	return string(b)
}

// withoutXMLNS drops the namespace declarations, which xml.Marshal would
// write twice (it declares XMLName.Space itself).
func (n *Node) withoutXMLNS() Node {
	c := Node{XMLName: n.XMLName, Text: n.Text}
	for _, a := range n.Attrs {
		if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
			c.Attrs = append(c.Attrs, a)
		}
	}
	for i := range n.Nodes {
		c.Nodes = append(c.Nodes, n.Nodes[i].withoutXMLNS())
	}
	return c
}
