package c2s

import (
	"crypto/tls"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

const startTLSRequired = "<features xmlns='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>"

// headerRE matches our response header with the client's from echoed, and
// captures the stream id.
var headerRE = regexp.MustCompile(`^<\?xml version='1.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='juliet@example.test' from='example.test' id='([a-z2-7]{26})' version='1.0' xml:lang='fr'><stream:features>`)

func TestResponseHeader_RFC6120_4_7(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='juliet@example.test' to='example.test' version='1.0' xml:lang='fr'>")
	h := c.header()
	if h.From != testDomain || h.To != "juliet@example.test" || h.Version != "1.0" || h.Lang != "fr" || h.NS != stream.NSClient {
		t.Fatalf("response header %+v", h)
	}
	c.expect(startTLSRequired)
	if !headerRE.MatchString(c.wire.String()) {
		t.Fatalf("wire bytes %q do not match %s", c.wire.String(), headerRE)
	}
}

func TestHigherVersionIsAnsweredWith10_RFC6120_4_7_5(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.12'>")
	if h := c.header(); h.Version != "1.0" {
		t.Fatalf("version %q, want 1.0", h.Version)
	}
	c.expect(startTLSRequired)
}

func TestMissingVersionIsTreatedAs09AndRefused_RFC6120_4_7_5(t *testing.T) {
	e := newEnv(t, nil)
	for _, version := range []string{"", " version='0.9'"} {
		c := e.dial()
		c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test'" + version + ">")
		if h := c.header(); h.Version != "" {
			t.Fatalf("client version %q: response version %q, want none", version, h.Version)
		}
		if strings.Contains(c.wire.String(), "version='1.0'>") {
			t.Fatalf("response header carries a version: %q", c.wire.String())
		}
		c.expectStreamError(stream.UnsupportedVersion)
	}
}

func TestMalformedVersionGetsUnsupportedVersion_RFC6120_4_9_3_25(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='one'>")
	c.header()
	c.expectStreamError(stream.UnsupportedVersion)
}

func TestUnservedToGetsHostUnknown_RFC6120_4_9_3_6(t *testing.T) {
	e := newEnv(t, nil)
	for _, to := range []string{"other.test", "user@example.test", "ex ample"} {
		c := e.dial()
		c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + to + "' version='1.0'>")
		if h := c.header(); h.From != testDomain {
			t.Fatalf("to=%q: response from %q", to, h.From)
		}
		c.expectStreamError(stream.HostUnknown)
	}
}

func TestWrongContentNamespaceGetsInvalidNamespace_RFC6120_4_9_3_10(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>")
	c.header()
	c.expectStreamError(stream.InvalidNamespace)
}

func TestStreamIDsAreUniqueAcrossStreamsAndRestarts_RFC6120_4_7_3(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]bool{}
	add := func(h stream.Header) {
		if len(h.ID) < 26 || seen[h.ID] {
			t.Fatalf("stream id %q is short or repeated", h.ID)
		}
		seen[h.ID] = true
	}
	for range 3 {
		c := e.dial()
		c.open()
		add(c.header())
		c.next()
		c.startTLS()
		c.open()
		add(c.header())
	}
}

// TestNegotiationOrder_RFC6120_4_3 walks STARTTLS (required), restart,
// SASL SCRAM-SHA-256 with the XEP-0440 channel binding list, restart, and
// binding with the optional legacy session feature, reading the exact
// elements and checking the server wrote nothing between them.
func TestNegotiationOrder_RFC6120_4_3(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.open()
	c.header()
	c.expect(startTLSRequired)
	wire := c.wire.String()
	c.startTLS()
	wire += c.wire.String() // up to <proceed/>, recorded before the reset

	c.open()
	c.header()
	c.expect("<features xmlns='http://etherx.jabber.org/streams'>" +
		"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>" +
		"<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/></sasl-channel-binding>" +
		"</features>")
	if el := c.auth(sasl.ScramSHA256, "alice", testPassword, true); el.Local != "success" {
		t.Fatalf("authentication: %s", el)
	}
	tlsWire := c.wire.String()
	c.r.Reset(io.TeeReader(c.conn, c.wire))
	c.open()
	c.header()
	c.expect("<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/></features>")
	c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>")
	c.expect("<iq xmlns='jabber:client' type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@example.test/balcony</jid></bind></iq>")
	c.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
	c.expect("<iq xmlns='jabber:client' type='result' id='s1'/>")

	for _, w := range []string{wire, tlsWire} {
		if strings.Contains(w, "> ") || strings.Contains(w, ">\n") || strings.Contains(w, ">\t") {
			t.Errorf("whitespace between elements during negotiation: %q", w)
		}
	}
	if s := e.lookup("alice@example.test/balcony"); s == nil || s.GetNode() != testNode {
		t.Fatalf("registry has %v", s)
	}
	waitFor(t, "one session", func() bool { return e.srv.SessionCount() == 1 })
}

func TestChannelBindingPlusAuthenticates_RFC9266(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	if el := c.auth(sasl.ScramSHA256Plus, "bob", testPassword, true); el.Local != "success" {
		t.Fatalf("SCRAM-SHA-256-PLUS with tls-exporter: %s", el)
	}
}

func TestChannelBindingTypesOverTLS12_RFC5929_RFC9266(t *testing.T) {
	e := newEnv(t, nil)
	for _, cbType := range []string{sasl.CBTLSServerEndPoint, sasl.CBTLSExporter} {
		c := e.dialVersion(e.srv.DirectTLSAddr().String(), true, tls.VersionTLS12)
		if cs := c.conn.(*tls.Conn).ConnectionState(); cs.Version != tls.VersionTLS12 {
			t.Fatalf("negotiated %s", tls.VersionName(cs.Version))
		}
		c.open()
		c.header()
		// Go's TLS 1.2 uses the extended master secret, so tls-exporter
		// is offered too (RFC 9266 section 2).
		f := c.next()
		if cb := f.Child(nsSASLCB, "sasl-channel-binding"); cb == nil || len(cb.Children()) != 2 {
			t.Fatalf("features %s", f)
		}
		if el := c.authCB(sasl.ScramSHA256Plus, cbType, "alice", testPassword, true); el.Local != "success" {
			t.Fatalf("SCRAM-SHA-256-PLUS with %s: %s", cbType, el)
		}
	}
}

func TestDirectTLSStartsAtSASL_XEP0368(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	h := c.header()
	if h.From != testDomain {
		t.Fatalf("header %+v", h)
	}
	f := c.next()
	if f.Child(nsTLS, "starttls") != nil {
		t.Fatalf("STARTTLS offered on a direct TLS stream: %s", f)
	}
	if !slices.Contains(mechanisms(f), sasl.ScramSHA256Plus) {
		t.Fatalf("features %s", f)
	}
	if el := c.auth(sasl.ScramSHA1, "alice", testPassword, true); el.Local != "success" {
		t.Fatalf("authentication: %s", el)
	}
	c.r.Reset(io.TeeReader(c.conn, c.wire))
	c.open()
	c.header()
	c.next()
	if got := c.bind(""); !strings.HasPrefix(got, "alice@example.test/") || len(got) <= len("alice@example.test/") {
		t.Fatalf("generated resource: %q", got)
	}
}

func TestStanzaBeforeAuthGetsNotAuthorized_RFC6120_4_9_3_12(t *testing.T) {
	e := newEnv(t, nil)
	for _, afterTLS := range []bool{false, true} {
		c := e.dial()
		c.open()
		c.header()
		c.next()
		if afterTLS {
			c.startTLS()
			c.open()
			c.header()
			c.next()
		}
		c.send("<message to='bob@example.test'><body>hi</body></message>")
		c.expectStreamError(stream.NotAuthorized)
	}
}

func TestStanzaBeforeBindGetsNotAuthorized_RFC6120_7_1(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.auth(sasl.ScramSHA256, "alice", testPassword, true)
	c.r.Reset(io.TeeReader(c.conn, c.wire))
	c.open()
	c.header()
	c.next()
	c.send("<presence/>")
	c.expectStreamError(stream.NotAuthorized)
}

func TestAuthBeforeRequiredTLSGetsEncryptionRequired_RFC6120_5_3_1(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.open()
	c.header()
	c.next()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGNvcnJlY3QgaG9yc2U=</auth>")
	c.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>")
}

func TestFailedAuthLimitClosesWithPolicyViolation_RFC6120_6_4_5(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	for i := range DefaultMaxAuthFailures {
		el := c.auth(sasl.ScramSHA256, "alice", "wrong password", true)
		if el.String() != "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>" {
			t.Fatalf("attempt %d: %s", i+1, el)
		}
	}
	c.expectStreamError(stream.PolicyViolation)
}

func TestUnknownUserFailsLikeWrongPassword_RFC6120_6_5_10(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	el := c.auth(sasl.ScramSHA256, "mallory", testPassword, true)
	if el.String() != "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>" {
		t.Fatalf("unknown user: %s", el)
	}
}

func TestCredentialServiceDownGetsTemporaryAuthFailure_RFC6120_6_5_11(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Credentials = failingCredentials{errUnavailable} })
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + sasl.EncodePayload([]byte("\x00alice\x00"+testPassword)) + "</auth>")
	c.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/></failure>")
}

func TestAbortGetsAborted_RFC6120_6_4_4(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	cl, err := sasl.NewScramClient(sasl.ScramSHA256, "alice", testPassword, "", "", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := cl.Start()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + sasl.EncodePayload(first) + "</auth>")
	if el := c.next(); el.Local != "challenge" {
		t.Fatalf("want a challenge, got %s", el)
	}
	c.send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	c.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>")
	// The client may try again.
	if el := c.auth(sasl.ScramSHA256, "alice", testPassword, true); el.Local != "success" {
		t.Fatalf("after abort: %s", el)
	}
}

func TestUnknownMechanismGetsInvalidMechanism_RFC6120_6_5_5(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'/>")
	c.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>")
}

func TestOptionalTLSOffersBothAndPlainNeedsOptIn_RFC6120_5_3_1(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TLSOptional = true })
	c := e.dial()
	c.open()
	c.header()
	f := c.next()
	if st := f.Child(nsTLS, "starttls"); st == nil || st.Child(nsTLS, "required") != nil {
		t.Fatalf("features %s: want STARTTLS without <required/>", f)
	}
	if got := mechanisms(f); !slices.Equal(got, []string{sasl.ScramSHA256, sasl.ScramSHA1}) {
		t.Fatalf("mechanisms without TLS: %v", got)
	}
	if f.Child(nsSASLCB, "sasl-channel-binding") != nil {
		t.Fatalf("channel binding advertised without TLS: %s", f)
	}
	if el := c.auth(sasl.ScramSHA256, "alice", testPassword, false); el.Local != "success" {
		t.Fatalf("SCRAM without TLS: %s", el)
	}

	e2 := newEnv(t, func(c *Config) { c.TLSOptional = true; c.AllowPlaintextAuth = true })
	c2 := e2.dial()
	c2.open()
	c2.header()
	if got := mechanisms(c2.next()); !slices.Contains(got, sasl.Plain) {
		t.Fatalf("PLAIN not offered with AllowPlaintextAuth: %v", got)
	}
}

func TestStartTLSWhereNotOfferedGetsFailureAndClose_RFC6120_5_4_2_2(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.expectClosed()
}

func TestUnknownTopLevelElementGetsUnsupportedStanzaType_RFC6120_4_9_3_24(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.open()
	c.header()
	c.next()
	c.send("<foo xmlns='urn:example:foo'/>")
	c.expectStreamError(stream.UnsupportedStanzaType)

	c2 := e.dial()
	c2.login("alice", "r1")
	c2.send("<thing/>")
	c2.expectStreamError(stream.UnsupportedStanzaType)
}

func TestBadResourceGetsBadRequest_RFC6120_7_7_2_1(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.auth(sasl.ScramSHA256, "alice", testPassword, true)
	c.r.Reset(io.TeeReader(c.conn, c.wire))
	c.open()
	c.header()
	c.next()
	// A resourcepart is at most 1023 bytes (RFC 7622 section 3.4).
	c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + strings.Repeat("r", 1024) + "</resource></bind></iq>")
	el := c.next()
	if el.Attr("type") != "error" || el.Attr("id") != "b1" || el.Child("", "error") == nil || el.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "bad-request") == nil {
		t.Fatalf("bad resource answered with %s", el)
	}
	// The stream stays usable.
	if got := c.bind("good"); got != "alice@example.test/good" {
		t.Fatalf("bind after an error: %q", got)
	}
}

func TestSeveralResourcesPerAccount_RFC6120_7_1(t *testing.T) {
	e := newEnv(t, nil)
	a := e.dial()
	b := e.dial()
	if got := a.login("alice", "one"); got != "alice@example.test/one" {
		t.Fatal(got)
	}
	if got := b.login("alice", "two"); got != "alice@example.test/two" {
		t.Fatal(got)
	}
	waitFor(t, "two sessions", func() bool { return e.srv.SessionCount() == 2 })
}

// Some clients (go-xmpp) end every element with a newline; the restarts
// after STARTTLS and SASL must not take it as part of the new stream,
// where an XML declaration after whitespace would be an error.
func TestNewlineBeforeRestartIsDropped_RFC6120_4_3_3(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.open()
	c.header()
	c.next()
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n")
	c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.handshake()
	c.wire = &recorder{}
	c.r.Reset(c.r2())
	c.open()
	c.header()
	c.next()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + sasl.EncodePayload([]byte("\x00alice\x00"+testPassword)) + "</auth>\n")
	c.expect("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
	c.r.Reset(c.r2())
	c.open() // with an XML declaration
	c.header()
	c.next()
	if got := c.bind("nl"); got != "alice@example.test/nl" {
		t.Fatal(got)
	}
}
