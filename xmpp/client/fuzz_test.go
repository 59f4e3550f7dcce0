package client

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// xmlText reports whether s survives XML unchanged: UTF-8 made of
// characters XML 1.0 allows (dom replaces the others with U+FFFD).
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0xD7FF) ||
			(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)) {
			return false
		}
	}
	return true
}

// FuzzMessageRoundTrip checks that Message.Element and ParseMessage agree
// through the wire form read by stream.Reader: what is sent is what the
// peer parses, whatever the text holds.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add("m1", "chat", "en", "Subject", "Art thou <not> Romeo & a Montague?", "t-1")
	f.Add("", "", "", "", "", "")
	f.Add("'\"", "error", "x-\n", "\r\n", "\t ]]> ", "&amp;")
	header := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	f.Fuzz(func(t *testing.T, id, typ, lang, subject, body, thread string) {
		for _, s := range []string{id, typ, lang, subject, body, thread} {
			if !xmlText(s) {
				t.Skip()
			}
		}
		m := Message{ID: id, From: romeo, To: testJID, Type: MessageType(typ), Lang: lang, Subject: subject, Body: body, Thread: thread}
		wire := append(append([]byte(nil), header...), m.Element().Marshal()...)
		r := stream.NewReader(bytes.NewReader(wire), stream.Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		el, err := r.Next()
		if err != nil {
			t.Fatalf("reading %q: %v", wire, err)
		}
		got, err := ParseMessage(el)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == "" {
			m.Type = MessageNormal
		}
		if got.ID != m.ID || got.From != m.From || got.To != m.To || got.Type != m.Type || got.Lang != m.Lang ||
			got.Subject != m.Subject || got.Body != m.Body || got.Thread != m.Thread || len(got.Extra) != 0 {
			t.Errorf("sent %+v\nparsed %+v\nwire %q", m, got, wire)
		}
	})
}

// FuzzRedirectAddr: whatever a server puts in <see-other-host/>, the
// address the client would dial is a host:port with a port in range.
func FuzzRedirectAddr(f *testing.F) {
	for _, s := range []string{"c2s-2.example.net", "h:5222", "[2001:db8::1]", "2001:db8::1", "[::1]:1", "a:b:c", ":", "[", "h:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		addr, ok := RedirectAddr(&stream.Error{Condition: stream.SeeOtherHost, Host: host})
		if !ok {
			return
		}
		h, port, err := net.SplitHostPort(addr)
		if err != nil || h == "" {
			t.Fatalf("%q gave %q: %v", host, addr, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("%q gave port %q", host, port)
		}
	})
}
