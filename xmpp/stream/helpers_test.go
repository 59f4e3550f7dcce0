package stream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// clientHeader is a client's initial stream header as in RFC 6120 section
// 4.3.2 (with the XML declaration of section 11.5).
const clientHeader = "<?xml version='1.0'?>" +
	"<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en'" +
	" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

// serverHeader declares the dialback prefix, as server streams do.
const serverHeader = "<stream:stream from='im.example.com' to='example.net' version='1.0'" +
	" xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams'>"

// open returns a reader whose header has been read.
func open(t testing.TB, header, body string, lim Limits) *Reader {
	t.Helper()
	r := NewReader(strings.NewReader(header+body), lim)
	if _, err := r.ReadHeader(); err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	return r
}

// readOne reads the first element after clientHeader.
func readOne(t testing.TB, body string) (*dom.Element, error) {
	t.Helper()
	return open(t, clientHeader, body, Limits{}).Next()
}

// condition returns the stream error condition of err, or "" when err is
// not a stream error.
func condition(err error) Condition {
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	return ""
}

// canon renders an element tree with every namespace spelt out, so that
// two trees compare equal exactly when they mean the same XML.
func canon(e *dom.Element) string {
	var b strings.Builder
	var walk func(e *dom.Element)
	walk = func(e *dom.Element) {
		b.WriteString("{" + e.Space + "}" + e.Local + "[")
		for _, a := range e.Attrs {
			b.WriteString(" {" + a.Space + "}" + a.Local + "=" + quote(a.Value))
		}
		b.WriteString("](")
		for _, n := range e.Nodes {
			if n.Elem != nil {
				walk(n.Elem)
			} else {
				b.WriteString(quote(n.Text))
			}
		}
		b.WriteString(")")
	}
	walk(e)
	return b.String()
}

func quote(s string) string {
	return "\"" + strings.NewReplacer("\\", "\\\\", "\"", "\\\"").Replace(s) + "\""
}

// reparse writes e on a fresh stream with a Writer and reads it back.
func reparse(t testing.TB, e *dom.Element, ns string) (*dom.Element, error) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, ns)
	if err := w.WriteHeader(Header{To: "example.com", Version: "1.0", Prefixes: map[string]string{"db": "jabber:server:dialback"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteElement(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		return nil, err
	}
	got, err := r.Next()
	if err != nil {
		return nil, err
	}
	if _, err := r.Next(); err != ErrClosed {
		t.Fatalf("after the element: %v, want ErrClosed", err)
	}
	return got, nil
}

// chunkReader returns its data a few bytes per Read, to exercise every
// buffer boundary.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// repeatReader streams prefix once, then unit forever: a peer that never
// stops sending.
type repeatReader struct {
	prefix, unit []byte
	off          int
	total        int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.prefix) > 0 {
			k := copy(p[n:], r.prefix)
			r.prefix = r.prefix[k:]
			n += k
			continue
		}
		k := copy(p[n:], r.unit[r.off:])
		r.off = (r.off + k) % len(r.unit)
		n += k
	}
	r.total += int64(n)
	return n, nil
}
