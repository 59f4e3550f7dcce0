package imtest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Namespaces the client reads and writes.
const (
	NSClient  = "jabber:client"
	NSStream  = "http://etherx.jabber.org/streams"
	NSRoster  = "jabber:iq:roster"
	NSPing    = "urn:xmpp:ping"
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
)

// IOTimeout bounds one read or write: waits that normally end in
// milliseconds, with room for a loaded CI machine.
const IOTimeout = 10 * time.Second

// ErrStreamEnd is returned by Conn.Next when the server closed its stream.
var ErrStreamEnd = errors.New("server sent </stream:stream>")

// Login says where and as whom a Conn logs in.
type Login struct {
	Addr     string      // the STARTTLS client listener, host:port
	Domain   string      // the XMPP domain
	TLS      *tls.Config // verifies the server's certificate
	Local    string      // the account's localpart
	Password string
	Resource string
}

// Conn is a logged-in client connection that writes exactly the bytes a
// test gives and reads the server's stanzas element by element.
type Conn struct {
	T                       testing.TB
	Local, Resource, Domain string
	// Wait bounds each read; zero means IOTimeout.
	Wait time.Duration
	// Pushes are the roster pushes received (and answered) so far.
	Pushes []*Node
	// Features are the stream features offered after authentication.
	Features *Node

	conn net.Conn
	dec  *xml.Decoder
	n    int
}

// Dial connects, negotiates STARTTLS, authenticates with PLAIN and binds
// the resource; the connection is closed when the test ends.
func Dial(t testing.TB, l Login) *Conn {
	t.Helper()
	tcp, err := net.DialTimeout("tcp", l.Addr, IOTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", l.Addr, err)
	}
	t.Cleanup(func() { tcp.Close() })
	c := &Conn{T: t, Local: l.Local, Resource: l.Resource, Domain: l.Domain, conn: tcp, dec: xml.NewDecoder(tcp)}
	c.open()
	c.Send("<starttls xmlns='" + nsTLS + "'/>")
	c.expect(nsTLS, "proceed")
	tc := tls.Client(tcp, l.TLS)
	tc.SetDeadline(time.Now().Add(IOTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with %s: %v", l.Addr, err)
	}
	tc.SetDeadline(time.Time{})
	c.conn, c.dec = tc, xml.NewDecoder(tc)
	c.open()
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + l.Local + "\x00" + l.Password))
	c.Send("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + auth + "</auth>")
	if n := c.MustNext("the answer to <auth/>"); !n.Is(nsSASL, "success") {
		t.Fatalf("PLAIN as %s: got %s, want <success/>", l.Local, n)
	}
	c.dec = xml.NewDecoder(c.conn)
	c.Features = c.open()
	c.Send("<iq type='set' id='bind1'><bind xmlns='" + nsBind + "'><resource>" + l.Resource + "</resource></bind></iq>")
	n := c.expect(NSClient, "iq")
	j := n.Child(nsBind, "bind").Child(nsBind, "jid")
	if n.Attr("type") != "result" || j == nil || j.Text != c.JID() {
		t.Fatalf("bind %s: got %s", c.JID(), n)
	}
	return c
}

// JID is the connection's full JID.
func (c *Conn) JID() string { return c.Local + "@" + c.Domain + "/" + c.Resource }

// Bare is the bare JID of local on the connection's domain.
func (c *Conn) Bare(local string) string { return local + "@" + c.Domain }

// open sends a stream header and reads the response header and features.
func (c *Conn) open() *Node {
	c.T.Helper()
	c.Send("<?xml version='1.0'?><stream:stream to='" + c.Domain + "' version='1.0' xml:lang='en' " +
		"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
	c.conn.SetReadDeadline(time.Now().Add(IOTimeout))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.T.Fatalf("reading the response stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Space != NSStream || se.Name.Local != "stream" {
				c.T.Fatalf("response begins with {%s}%s, want a stream header", se.Name.Space, se.Name.Local)
			}
			break
		}
	}
	return c.expect(NSStream, "features")
}

func (c *Conn) expect(space, local string) *Node {
	c.T.Helper()
	n := c.MustNext("{" + space + "}" + local)
	if !n.Is(space, local) {
		c.T.Fatalf("got %s, want {%s}%s", n, space, local)
	}
	return n
}

// Send writes s as it is.
func (c *Conn) Send(s string) {
	c.T.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(IOTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.T.Fatalf("%s: write %.80q: %v", c.JID(), s, err)
	}
}

// Next reads the next top-level element, skipping whitespace between
// elements. It returns ErrStreamEnd for </stream:stream>.
func (c *Conn) Next() (*Node, error) {
	wait := c.Wait
	if wait == 0 {
		wait = IOTimeout
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := new(Node)
			if err := c.dec.DecodeElement(n, &tok); err != nil {
				return nil, err
			}
			return n, nil
		case xml.EndElement:
			return nil, ErrStreamEnd
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) != 0 {
				return nil, fmt.Errorf("text between top-level elements: %q", tok)
			}
		}
	}
}

// MustNext is Next that fails the test on an error.
func (c *Conn) MustNext(what string) *Node {
	c.T.Helper()
	n, err := c.Next()
	if err != nil {
		c.T.Fatalf("%s reading %s: %v", c.JID(), what, err)
	}
	return n
}

// isPush answers a roster push (RFC 6121 2.1.6) and keeps it in Pushes.
func (c *Conn) isPush(n *Node) bool {
	if !n.Is(NSClient, "iq") || n.Attr("type") != "set" || n.Child(NSRoster, "query") == nil {
		return false
	}
	c.Send("<iq type='result' id='" + n.Attr("id") + "'/>")
	c.Pushes = append(c.Pushes, n)
	return true
}

// Sync sends a ping to the server and returns every stanza that arrived
// before its result, roster pushes excepted (answered, kept in Pushes).
func (c *Conn) Sync() []*Node {
	c.T.Helper()
	c.n++
	id := fmt.Sprintf("sync-%d", c.n)
	c.Send("<iq type='get' id='" + id + "' to='" + c.Domain + "'><ping xmlns='" + NSPing + "'/></iq>")
	var out []*Node
	for {
		n := c.MustNext("stanzas before the ping result " + id)
		switch {
		case n.Is(NSClient, "iq") && n.Attr("id") == id:
			if n.Attr("type") != "result" {
				c.T.Fatalf("ping %s answered with %s", id, n)
			}
			return out
		case c.isPush(n):
		default:
			out = append(out, n)
		}
	}
}

// IQ sends an IQ and returns its answer, with the stanzas that came first
// (roster pushes excepted).
func (c *Conn) IQ(typ, to, payload string) (*Node, []*Node) {
	c.T.Helper()
	c.n++
	id := fmt.Sprintf("iq-%d", c.n)
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.Send("<iq type='" + typ + "' id='" + id + "'" + toAttr + ">" + payload + "</iq>")
	var before []*Node
	for {
		n := c.MustNext("the answer to " + id)
		switch {
		case n.Is(NSClient, "iq") && n.Attr("id") == id:
			return n, before
		case c.isPush(n):
		default:
			before = append(before, n)
		}
	}
}

// Roster gets the roster and returns its items by JID.
func (c *Conn) Roster() map[string]*Node {
	c.T.Helper()
	res, _ := c.IQ("get", "", "<query xmlns='"+NSRoster+"'/>")
	q := res.Child(NSRoster, "query")
	if res.Attr("type") != "result" || q == nil {
		c.T.Fatalf("%s roster get: %s", c.JID(), res)
	}
	items := map[string]*Node{}
	for i := range q.Nodes {
		items[q.Nodes[i].Attr("jid")] = &q.Nodes[i]
	}
	return items
}

// State is the connection's roster item for the account other (a
// localpart) as "subscription[+ask]", "-" for no item.
func (c *Conn) State(other string) string {
	c.T.Helper()
	it := c.Roster()[c.Bare(other)]
	if it == nil {
		return "-"
	}
	s := it.Attr("subscription")
	if it.Attr("ask") == "subscribe" {
		s += "+ask"
	}
	return s
}

// Summary names stanzas compactly: presence by type ("available" for
// none) and sender's localpart, messages by body ("error:" and the
// condition for an error), IQs by type and id.
func Summary(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		from, _, _ := strings.Cut(n.Attr("from"), "@")
		switch {
		case n.Is(NSClient, "presence"):
			typ := n.Attr("type")
			if typ == "" {
				typ = "available"
			}
			out = append(out, typ+"<"+from+">")
		case n.Is(NSClient, "message") && n.Attr("type") == "error":
			out = append(out, "message-error:"+condition(n))
		case n.Is(NSClient, "message"):
			out = append(out, "message:"+n.Child(NSClient, "body").Text)
		case n.Is(NSClient, "iq") && n.Attr("type") == "error":
			out = append(out, "iq-error:"+n.Attr("id")+":"+condition(n))
		case n.Is(NSClient, "iq"):
			out = append(out, "iq-"+n.Attr("type")+":"+n.Attr("id"))
		default:
			out = append(out, n.String())
		}
	}
	return out
}

// condition is the defined condition of a stanza error.
func condition(n *Node) string {
	e := n.Child(NSClient, "error")
	if e == nil {
		return "none"
	}
	for _, c := range e.Nodes {
		if c.XMLName.Space == NSStanzas && c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return "none"
}
