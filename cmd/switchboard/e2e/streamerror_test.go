package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// streamErrorCase provokes one stream error on a raw connection.
type streamErrorCase struct {
	name string
	cond stream.Condition
	// broken marks input after which the stream cannot be parsed: the
	// client does not send its closing tag (see expectStreamError).
	broken bool
	// provoke opens a connection, brings it to the state the case needs
	// and sends the offending bytes; the error is read afterwards.
	provoke func(t *testing.T, s *server) *rawConn
}

// fresh opens a connection and sends bytes as its very first data: for
// errors in the stream header. The server answers with its own header
// first (RFC 6120 section 4.9.1.2), read here.
func fresh(bytes string) func(t *testing.T, s *server) *rawConn {
	return func(t *testing.T, s *server) *rawConn {
		r := s.rawDial(t)
		r.send(bytes)
		r.header()
		return r
	}
}

// opened opens a stream (no TLS yet) and then sends bytes.
func opened(bytes string) func(t *testing.T, s *server) *rawConn {
	return func(t *testing.T, s *server) *rawConn {
		r := s.rawDial(t)
		r.open()
		r.send(bytes)
		return r
	}
}

// inSession logs mallory in (TLS, SASL, bind) and then sends bytes.
func inSession(bytes ...string) func(t *testing.T, s *server) *rawConn {
	return func(t *testing.T, s *server) *rawConn {
		r := s.rawLogin(t, "mallory", "raw")
		for _, b := range bytes {
			r.send(b)
		}
		return r
	}
}

// headerWith is a client stream header with one attribute or namespace
// declaration of the stream element replaced.
func headerWith(old, new string) string {
	h := header(domain)
	i := strings.Index(h, "<stream:stream")
	if !strings.Contains(h[i:], old) {
		panic("stream header has no " + old)
	}
	return h[:i] + strings.Replace(h[i:], old, new, 1)
}

// TestStreamErrorsEndOnlyTheOffendingStream_RFC6120_4_9 sends, on raw
// connections, each kind of bad input that RFC 6120 answers with a stream
// error, and checks the exact condition, the closing </stream:stream>, and
// the TCP connection closed after the closing handshake (section 4.9.1).
// Two users logged in with the Go client before the first case still
// exchange messages after each case: a stream error ends one stream only.
func TestStreamErrorsEndOnlyTheOffendingStream_RFC6120_4_9(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob", "mallory")
	alice := s.dial(t, "alice", "witness")
	bob := s.dial(t, "bob", "witness")
	exchange(t, alice, bob, "before")

	limit := stream.DefaultLimits().MaxStanzaBytes
	cases := []streamErrorCase{
		// Section 11.1: no DTD, comments, processing instructions or
		// entity references other than the five predefined ones.
		{"restricted-xml/DTD_RFC6120_11_1", stream.RestrictedXML, true,
			fresh("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>" + header(domain)[len("<?xml version='1.0'?>"):])},
		{"restricted-xml/comment_RFC6120_11_1", stream.RestrictedXML, true,
			inSession("<!-- a comment between stanzas -->")},
		{"restricted-xml/comment-inside-a-stanza_RFC6120_11_1", stream.RestrictedXML, true,
			inSession("<message to='bob@localhost'><body>hi<!-- there --></body></message>")},
		{"restricted-xml/processing-instruction_RFC6120_11_1", stream.RestrictedXML, true,
			inSession("<?xml-stylesheet href='evil.xsl'?>")},
		{"restricted-xml/entity-reference_RFC6120_11_1", stream.RestrictedXML, true,
			inSession("<message to='bob@localhost'><body>caf&eacute;</body></message>")},
		// Section 4.9.3.13.
		{"not-well-formed/mismatched-end-tag_RFC6120_4_9_3_13", stream.NotWellFormed, true,
			inSession("<message to='bob@localhost'><body>hi</message>")},
		{"not-well-formed/undeclared-prefix_RFC6120_4_9_3_13", stream.NotWellFormed, true,
			inSession("<message to='bob@localhost'><x:body>hi</x:body></message>")},
		{"not-well-formed/unquoted-attribute_RFC6120_4_9_3_13", stream.NotWellFormed, true,
			inSession("<message to=bob@localhost><body>hi</body></message>")},
		// Section 4.9.3.10: the stream namespace and the content
		// namespace.
		{"invalid-namespace/stream-namespace_RFC6120_4_9_3_10", stream.InvalidNamespace, true,
			fresh(headerWith("xmlns:stream='http://etherx.jabber.org/streams'", "xmlns:stream='http://etherx.jabber.org/streamz'"))},
		{"invalid-namespace/content-namespace_RFC6120_4_9_3_10", stream.InvalidNamespace, false,
			fresh(headerWith("xmlns='jabber:client'", "xmlns='jabber:clientz'"))},
		// Section 4.9.3.2: the stream namespace under another prefix.
		{"bad-namespace-prefix_RFC6120_4_9_3_2", stream.BadNamespacePrefix, true,
			fresh("<?xml version='1.0'?><s:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>")},
		// Section 4.9.3.6.
		{"host-unknown_RFC6120_4_9_3_6", stream.HostUnknown, false,
			fresh(headerWith("to='localhost'", "to='example.net'"))},
		// Section 4.9.3.25: version 0.9 (no SASL, no binding).
		{"unsupported-version_RFC6120_4_9_3_25", stream.UnsupportedVersion, false,
			fresh(headerWith("version='1.0'", "version='0.9'"))},
		// Section 4.9.3.14, with the default limit of the stream reader
		// (the app has no setting for it).
		{"policy-violation/stanza-over-the-size-limit_RFC6120_4_9_3_14", stream.PolicyViolation, true,
			func(t *testing.T, s *server) *rawConn {
				r := s.rawLogin(t, "mallory", "raw")
				// The server reads at most one buffer past the limit.
				// The last write, one TLS record, holds the point
				// where the limit is crossed, so the server has read
				// everything when it answers and closes: no unread
				// bytes turn its close into a reset.
				head := "<message to='bob@localhost'><body>"
				r.send(head + strings.Repeat("a", limit-len(head)-100))
				r.send(strings.Repeat("b", 200))
				return r
			}},
		// Section 4.9.3.12: stanzas before the stream is authenticated
		// (and before a resource is bound, RFC 6120 section 7.1).
		{"not-authorized/before-TLS_RFC6120_4_9_3_12", stream.NotAuthorized, false,
			opened("<message to='bob@localhost'><body>hi</body></message>")},
		{"not-authorized/before-SASL_RFC6120_4_9_3_12", stream.NotAuthorized, false,
			func(t *testing.T, s *server) *rawConn {
				r := s.rawDial(t)
				r.open()
				r.startTLS()
				r.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
				return r
			}},
		{"not-authorized/before-bind_RFC6120_7_1", stream.NotAuthorized, false,
			func(t *testing.T, s *server) *rawConn {
				r := s.rawDial(t)
				r.open()
				r.startTLS()
				r.authPlain("mallory", password("mallory"))
				r.send("<presence/>")
				return r
			}},
		// Section 8.1.2.1 (and 4.9.3.9): a from that is not the
		// session's own address.
		{"invalid-from/another-user_RFC6120_8_1_2_1", stream.InvalidFrom, false,
			inSession("<message from='bob@localhost/witness' to='alice@localhost'><body>it is me, Bob</body></message>")},
		{"invalid-from/own-account-other-resource_RFC6120_8_1_2_1", stream.InvalidFrom, false,
			inSession("<message from='mallory@localhost/other' to='alice@localhost'><body>hi</body></message>")},
		{"invalid-from/the-server_RFC6120_8_1_2_1", stream.InvalidFrom, false,
			inSession("<iq from='localhost' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")},
		// Section 4.9.3.24: a first-level element that is no stanza.
		{"unsupported-stanza-type/unknown-element_RFC6120_4_9_3_24", stream.UnsupportedStanzaType, false,
			inSession("<bogus xmlns='urn:example:bogus'/>")},
		{"unsupported-stanza-type/stanza-in-another-namespace_RFC6120_4_9_3_24", stream.UnsupportedStanzaType, false,
			inSession("<message xmlns='jabber:server' from='mallory@localhost/raw' to='bob@localhost'><body>hi</body></message>")},
		// Section 4.9.3.1: character data between stanzas (the stream
		// package's choice, see its package comment).
		{"bad-format/text-between-stanzas_RFC6120_11_7", stream.BadFormat, true,
			inSession("hello")},
		// Section 4.9.3.22: bytes that are not UTF-8.
		{"unsupported-encoding/not-UTF-8_RFC6120_11_6", stream.UnsupportedEncoding, true,
			inSession("<message to='bob@localhost'><body>\xff\xfe</body></message>")},
		// Section 4.9.3.3 with 7.7.2.2: the same resource bound by a new
		// session.
		{"conflict/resource-bound-again_RFC6120_7_7_2_2", stream.Conflict, false,
			func(t *testing.T, s *server) *rawConn {
				r := s.rawLogin(t, "mallory", "raw")
				s.dial(t, "mallory", "raw")
				return r
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.provoke(t, s)
			r.expectStreamError(string(tc.cond), !tc.broken)
			s.logs.wait(t, ioTimeout, "stream error "+string(tc.cond), msgIs("stream error", "condition", string(tc.cond)))
			exchange(t, alice, bob, tc.name)
		})
	}
}

// TestStalledNegotiationGetsConnectionTimeout_RFC6120_4_9_3_4 opens a
// stream and then says nothing: when the negotiation deadline passes
// (configured short here) the server ends the stream
// with <connection-timeout/> and closes the connection, while a session
// that is logged in keeps working.
func TestStalledNegotiationGetsConnectionTimeout_RFC6120_4_9_3_4(t *testing.T) {
	t.Parallel()
	const negotiation = 2 * time.Second
	s := startServer(t, func(c *app.Config) { c.NegotiationTimeout = negotiation })
	s.createAccounts(t, "alice", "bob")
	alice := s.dial(t, "alice", "witness")
	bob := s.dial(t, "bob", "witness")

	stalled := s.rawDial(t)
	stalled.open()
	stalled.wait = negotiation + ioTimeout
	// The server's read deadline has passed, so it does not wait for our
	// closing tag: we send none (see expectStreamError).
	stalled.expectStreamError(string(stream.ConnectionTimeout), false)
	s.logs.wait(t, ioTimeout, "stream error connection-timeout", msgIs("stream error", "condition", string(stream.ConnectionTimeout)))
	exchange(t, alice, bob, "after the timeout")
}
