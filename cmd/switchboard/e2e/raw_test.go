package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/switchboard-xmpp/switchboard/internal/imtest"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// Namespaces the raw tests read and write.
const (
	nsStream  = "http://etherx.jabber.org/streams"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsClient  = "jabber:client"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
)

// header is a client stream header for domain, as most clients send it.
func header(to string) string {
	return "<?xml version='1.0'?><stream:stream to='" + to + "' version='1.0' xml:lang='en' " +
		"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
}

// node is an element the server sent, read with encoding/xml: a parser
// independent of the server's own.
type node = imtest.Node

// errStreamEnd is returned by rawConn.next when the server closed its
// stream with </stream:stream>.
var errStreamEnd = errors.New("server sent </stream:stream>")

// rawConn is a client connection that writes exactly the bytes a test
// gives and reads the server's answers element by element.
type rawConn struct {
	t    testing.TB
	s    *server
	tcp  net.Conn
	conn net.Conn // tcp, or TLS over it
	dec  *xml.Decoder
	// wait bounds each read; zero means ioTimeout.
	wait time.Duration
}

func (r *rawConn) readDeadline() time.Time {
	if r.wait > 0 {
		return time.Now().Add(r.wait)
	}
	return time.Now().Add(ioTimeout)
}

// rawDial opens a TCP connection to the server's STARTTLS listener.
func (s *server) rawDial(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawConn{t: t, s: s, tcp: c, conn: c}
	r.dec = xml.NewDecoder(c)
	return r
}

// send writes s as it is.
func (r *rawConn) send(s string) {
	r.t.Helper()
	r.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(r.conn, s); err != nil {
		r.t.Fatalf("write %.80q: %v", s, err)
	}
}

// header reads the server's response stream header.
func (r *rawConn) header() xml.StartElement {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		tok, err := r.dec.Token()
		if err != nil {
			r.t.Fatalf("reading the response stream header: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Space != nsStream || tok.Name.Local != "stream" {
				r.t.Fatalf("response begins with {%s}%s, want a stream header", tok.Name.Space, tok.Name.Local)
			}
			return tok.Copy()
		case xml.ProcInst, xml.CharData:
			// The XML declaration, whitespace.
		default:
			r.t.Fatalf("unexpected %T before the response stream header", tok)
		}
	}
}

// next reads the next top-level element, skipping whitespace between
// elements. It returns errStreamEnd for </stream:stream>.
func (r *rawConn) next() (*node, error) {
	r.conn.SetReadDeadline(r.readDeadline())
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := new(node)
			if err := r.dec.DecodeElement(n, &tok); err != nil {
				return nil, err
			}
			return n, nil
		case xml.EndElement:
			return nil, errStreamEnd
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) != 0 {
				return nil, fmt.Errorf("text between top-level elements: %q", tok)
			}
		default:
			return nil, fmt.Errorf("unexpected %T between top-level elements", tok)
		}
	}
}

// mustNext is next that fails the test on an error.
func (r *rawConn) mustNext(what string) *node {
	r.t.Helper()
	n, err := r.next()
	if err != nil {
		r.t.Fatalf("reading %s: %v", what, err)
	}
	return n
}

// expect reads the next element and checks its name.
func (r *rawConn) expect(space, local string) *node {
	r.t.Helper()
	n := r.mustNext("{" + space + "}" + local)
	if !n.Is(space, local) {
		r.t.Fatalf("got %s, want {%s}%s", n, space, local)
	}
	return n
}

// open sends a stream header and reads the response header and features.
func (r *rawConn) open() *node {
	r.t.Helper()
	r.send(header(domain))
	r.header()
	return r.expect(nsStream, "features")
}

// startTLS negotiates STARTTLS, verifying the server's certificate, and
// opens the stream again over TLS. It returns the new features.
func (r *rawConn) startTLS() *node {
	r.t.Helper()
	r.send("<starttls xmlns='" + nsTLS + "'/>")
	r.expect(nsTLS, "proceed")
	tc := tls.Client(r.tcp, r.s.tlsConfig())
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("TLS handshake: %v", err)
	}
	r.conn = tc
	r.dec = xml.NewDecoder(tc)
	return r.open()
}

// authPlain authenticates with PLAIN and checks <success/>; the stream is
// then opened again and the features are returned.
func (r *rawConn) authPlain(local, pass string) *node {
	r.t.Helper()
	r.send(authPlainElement("", local, pass))
	n := r.mustNext("the answer to <auth/>")
	if !n.Is(nsSASL, "success") {
		r.t.Fatalf("PLAIN as %s: got %s, want <success/>", local, n)
	}
	r.dec = xml.NewDecoder(r.conn)
	return r.open()
}

// authPlainElement is <auth mechanism='PLAIN'> with the initial response
// authzid NUL authcid NUL password.
func authPlainElement(authzid, authcid, pass string) string {
	msg := base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + authcid + "\x00" + pass))
	return "<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + msg + "</auth>"
}

// bind binds resource and returns the full JID the server assigned.
func (r *rawConn) bind(resource string) string {
	r.t.Helper()
	r.send("<iq type='set' id='bind1'><bind xmlns='" + nsBind + "'><resource>" + resource + "</resource></bind></iq>")
	n := r.expect(nsClient, "iq")
	j := n.Child(nsBind, "bind").Child(nsBind, "jid")
	if n.Attr("type") != "result" || n.Attr("id") != "bind1" || j == nil {
		r.t.Fatalf("bind: got %s", n)
	}
	return j.Text
}

// login opens a stream, negotiates TLS, authenticates local with PLAIN and
// binds resource: a session ready for stanzas.
func (s *server) rawLogin(t testing.TB, local, resource string) *rawConn {
	t.Helper()
	r := s.rawDial(t)
	r.open()
	r.startTLS()
	r.authPlain(local, password(local))
	if got, want := r.bind(resource), full(local, resource).String(); got != want {
		t.Fatalf("bound %s, want %s", got, want)
	}
	return r
}

// expectStreamError checks the end of a stream by a stream error (RFC 6120
// section 4.9): the next element is <stream:error> with exactly the
// condition cond, then </stream:stream>, nothing after it, and then the
// server closes the TCP connection (a read returns EOF) within the
// deadline.
//
// reply says whether the client answers with its own closing tag (RFC 6120
// section 4.4), as it should when its stream is still well-formed; the
// server then waits for it before closing. After input the server cannot
// parse (broken XML, over a limit) it closes at once, and the client sends
// nothing more: bytes arriving at a socket that is being closed unread
// would turn the server's FIN into a reset.
func (r *rawConn) expectStreamError(cond string, reply bool) *node {
	r.t.Helper()
	n := r.mustNext("a stream error")
	if !n.Is(nsStream, "error") {
		r.t.Fatalf("got %s, want <stream:error> with <%s/>", n, cond)
	}
	var conds []string
	for _, c := range n.Nodes {
		if c.XMLName.Space == nsStreams && c.XMLName.Local != "text" {
			conds = append(conds, c.XMLName.Local)
		}
	}
	if len(conds) != 1 || conds[0] != cond {
		r.t.Fatalf("stream error conditions %v, want exactly [%s] (%s)", conds, cond, n)
	}
	r.expectStreamEnd(reply)
	return n
}

// expectStreamEnd checks that the server's stream ends here: its closing
// tag, nothing after it, and the connection closed (after our own closing
// tag when reply is set).
func (r *rawConn) expectStreamEnd(reply bool) {
	r.t.Helper()
	if n, err := r.next(); !errors.Is(err, errStreamEnd) {
		r.t.Fatalf("got %s, %v; want </stream:stream>", n, err)
	}
	if reply {
		r.send("</stream:stream>")
	}
	r.expectEOF()
}

// expectEOF reads until the connection ends and checks that it ends by
// the server closing it (EOF) within ioTimeout, with nothing but whitespace
// before.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		tok, err := r.dec.Token()
		switch {
		case err == nil:
			if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
				continue
			}
			r.t.Fatalf("data after </stream:stream>: %#v", tok)
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			r.t.Fatalf("connection still open %v after the end of the stream", ioTimeout)
		default:
			r.t.Fatalf("connection ended with %v, want EOF", err)
		}
	}
}

// saslFailure reads the next element and checks that it is a SASL
// <failure/> with exactly the condition cond (RFC 6120 section 6.5).
func (r *rawConn) saslFailure(cond string) *node {
	r.t.Helper()
	n := r.mustNext("a SASL failure")
	if !n.Is(nsSASL, "failure") {
		r.t.Fatalf("got %s, want a SASL <failure/> with <%s/>", n, cond)
	}
	var conds []string
	for _, c := range n.Nodes {
		if c.XMLName.Space == nsSASL && c.XMLName.Local != "text" {
			conds = append(conds, c.XMLName.Local)
		}
	}
	if len(conds) != 1 || conds[0] != cond {
		r.t.Fatalf("SASL failure conditions %v, want exactly [%s] (%s)", conds, cond, n)
	}
	return n
}
