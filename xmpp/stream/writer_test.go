package stream

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

func TestWriteHeaderBytes_RFC6120_4_7(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSServer)
	err := w.WriteHeader(Header{
		To: "example.net", From: "im.example.com", ID: "t7AMCin9zjMNwQKDnplntZPIDEI=", Version: "1.0", Lang: "en",
		Prefixes: map[string]string{"db": "jabber:server:dialback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q before Flush", buf.String())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'" +
		" xmlns:db='jabber:server:dialback' to='example.net' from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI='" +
		" version='1.0' xml:lang='en'>"
	if buf.String() != want {
		t.Errorf("header\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestHeaderWrittenThenReadIsTheSame_RFC6120_4_7(t *testing.T) {
	in := Header{To: "im.example.com", From: "juliet@im.example.com", ID: "a'b\"<c>&", Version: "1.0", Lang: "en",
		NS: NSServer, Prefixes: map[string]string{"db": "jabber:server:dialback", "x": "urn:x"}}
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	if err := w.WriteHeader(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out, err := NewReader(&buf, Limits{}).ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if out.To != in.To || out.From != in.From || out.ID != in.ID || out.Version != in.Version || out.Lang != in.Lang ||
		out.NS != in.NS || len(out.Prefixes) != 2 || out.Prefixes["db"] != in.Prefixes["db"] || out.Prefixes["x"] != "urn:x" {
		t.Errorf("read back %+v, want %+v", out, in)
	}
}

func TestWriteHeaderRejectsReservedPrefixes_RFC6120_4_8(t *testing.T) {
	for _, p := range []string{"stream", "xml", "xmlns", "", "a:b", "1x"} {
		w := NewWriter(&bytes.Buffer{}, NSClient)
		if err := w.WriteHeader(Header{Prefixes: map[string]string{p: "urn:x"}}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestWriteElementOmitsContentNamespace_RFC6120_4_8_2(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	el := dom.New(NSClient, "message", "to", "romeo@example.net")
	el.Append(dom.New(NSClient, "body").AppendText("hi"), dom.New("urn:xmpp:receipts", "request"))
	other := dom.New(NSServer, "presence")
	for _, e := range []*dom.Element{el, other} {
		if err := w.WriteElement(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "<message to='romeo@example.net'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message><presence xmlns='jabber:server'/>"
	if buf.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteElementUsesHeaderPrefixes_RFC6120_4_8(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSServer)
	if err := w.WriteHeader(Header{Prefixes: map[string]string{"db": "jabber:server:dialback"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	features := &dom.Element{Space: NS, Local: "features"}
	features.Append(dom.New("urn:ietf:params:xml:ns:xmpp-tls", "starttls"), dom.New(NSServer, "x"))
	result := dom.New("jabber:server:dialback", "result", "from", "a.example", "to", "b.example")
	result.AppendText("key<&>")
	for _, e := range []*dom.Element{features, result} {
		if err := w.WriteElement(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><x/></stream:features>" +
		"<db:result from='a.example' to='b.example'>key&lt;&amp;&gt;</db:result>"
	if buf.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestStreamElementWithoutHeaderDeclaresItsNamespace(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	if err := w.WriteElement(&dom.Element{Space: NS, Local: "features"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "<features xmlns='http://etherx.jabber.org/streams'/>"; buf.String() != want {
		t.Errorf("wrote %s, want %s", buf.String(), want)
	}
}

func TestWriteErrorBytes_RFC6120_4_9_2(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	if err := w.WriteHeader(Header{From: "im.example.com", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	err := w.WriteError(&Error{Condition: PolicyViolation, Text: "stanza larger than 262144 bytes", Lang: "en",
		App: dom.New("http://example.org/ns", "too-big")})
	if err != nil {
		t.Fatal(err)
	}
	want := "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza larger than 262144 bytes</text>" +
		"<too-big xmlns='http://example.org/ns'/></stream:error></stream:stream>"
	if buf.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", buf.String(), want)
	}
	if err := w.WriteElement(dom.New(NSClient, "presence")); err != ErrWriterClosed {
		t.Errorf("write after WriteError = %v, want ErrWriterClosed", err)
	}
}

func TestWriteErrorBeforeHeaderOpensTheStream_RFC6120_4_9_1_2(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf, NSClient).WriteError(&Error{Condition: InvalidNamespace}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatalf("the error is not inside a stream: %v (%s)", err, buf.String())
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if e := ParseError(el); e == nil || e.Condition != InvalidNamespace {
		t.Errorf("read %v, want invalid-namespace", e)
	}
	if _, err := r.Next(); err != ErrClosed {
		t.Errorf("after the error: %v, want ErrClosed", err)
	}
}

func TestCloseWritesEndTagOnce_RFC6120_4_4(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	if err := w.WriteHeader(Header{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasSuffix(buf.String(), "'></stream:stream>") || strings.Count(buf.String(), "</stream:stream>") != 1 {
		t.Errorf("wrote %s", buf.String())
	}
	if err := w.WriteRaw([]byte("<presence/>")); err != ErrWriterClosed {
		t.Errorf("WriteRaw after Close = %v, want ErrWriterClosed", err)
	}
}

func TestWriteRawWritesBytesAsGiven(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	raw := dom.New(NSClient, "message", "to", "romeo@example.net").Marshal()
	if err := w.WriteRaw(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), raw) {
		t.Errorf("wrote %s, want %s", buf.Bytes(), raw)
	}
}

func TestWriterNeverEmitsRestrictedXML_RFC6120_11_1(t *testing.T) {
	hostile := "<!-- c --><?pi?><!DOCTYPE x>&ent;]]>\x00\xff'\""
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	if err := w.WriteHeader(Header{To: hostile, Prefixes: map[string]string{"p": hostile}}); err != nil {
		t.Fatal(err)
	}
	features := &dom.Element{Space: NS, Local: "features", Attrs: []dom.Attr{{Local: "a", Value: hostile}}}
	features.AppendText(hostile)
	msg := dom.New(NSClient, "message", "to", hostile)
	msg.AppendText(hostile)
	for _, e := range []*dom.Element{features, msg} {
		if err := w.WriteElement(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteError(&Error{Condition: BadFormat, Text: hostile, Lang: "en"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<!", "<?pi", "&ent;", "]]>", "\x00", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("output contains %q: %s", bad, out)
		}
	}
	// And a strict reader accepts all of it.
	r := NewReader(&buf, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := r.Next()
		if err == ErrClosed {
			break
		}
		if err != nil {
			t.Fatalf("reading the output back: %v", err)
		}
	}
}

func TestWriterFlushesOnItsOwnWhenTheBufferIsFull(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, NSClient)
	big := dom.New(NSClient, "message").AppendText(strings.Repeat("x", 2*flushAt))
	if err := w.WriteElement(big); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 2*flushAt {
		t.Errorf("buffered %d bytes without writing", 2*flushAt)
	}
	if w.buf != nil {
		t.Error("the writer kept a buffer after writing everything")
	}
}

type errWriter struct{ n int }

func (e *errWriter) Write(p []byte) (int, error) {
	e.n++
	return 0, errors.New("broken pipe")
}

func TestWriteErrorIsSticky(t *testing.T) {
	dst := &errWriter{}
	w := NewWriter(dst, NSClient)
	if err := w.WriteRaw([]byte("<presence/>")); err != nil {
		t.Fatal(err)
	}
	err1 := w.Flush()
	err2 := w.WriteRaw([]byte("<presence/>"))
	err3 := w.Flush()
	if err1 == nil || err2 != err1 || err3 != err1 || dst.n != 1 {
		t.Errorf("errors %v, %v, %v after %d writes; want the first error every time", err1, err2, err3, dst.n)
	}
}

func TestWriterResetStartsAFreshStream_RFC6120_5_4_3_3(t *testing.T) {
	var plain, tls bytes.Buffer
	w := NewWriter(&plain, NSClient)
	if err := w.WriteHeader(Header{}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRaw([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRaw([]byte("<unflushed/>")); err != nil {
		t.Fatal(err)
	}
	w.Reset(&tls)
	if err := w.WriteError(&Error{Condition: SystemShutdown}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String()+tls.String(), "unflushed") {
		t.Error("Reset kept unflushed output")
	}
	if !strings.HasPrefix(tls.String(), "<?xml version='1.0'?><stream:stream") {
		t.Errorf("new stream starts with %q, want a header", tls.String())
	}
}

func TestWriteElementAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers under the race detector")
	}
	el := dom.New(NSClient, "message", "to", "romeo@example.net", "type", "chat")
	el.Append(dom.New(NSClient, "body").AppendText("Art thou not Romeo, and a Montague?"))
	w := NewWriter(&bytes.Buffer{}, NSClient)
	allocs := testing.AllocsPerRun(100, func() {
		if err := w.WriteElement(el); err != nil {
			t.Fatal(err)
		}
		w.putBuf() // drop the output, keep the buffer pooled
	})
	if allocs != 0 {
		t.Errorf("WriteElement allocates %v times, want 0", allocs)
	}
}
