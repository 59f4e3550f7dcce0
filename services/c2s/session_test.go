package c2s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// expectStanzaError reads an error reply and checks its id, type and
// condition.
func (c *client) expectStanzaError(id string, typ stanza.ErrorType, cond stanza.Condition) *dom.Element {
	c.t.Helper()
	el := c.next()
	serr, ok := stanza.ParseError(el)
	if el.Attr("type") != "error" || !ok || el.Attr("id") != id || serr.Condition != cond || serr.Type != typ {
		c.t.Fatalf("got %s, want an error reply id=%q %s/%s", el, id, typ, cond)
	}
	return el
}

// probe sends the legacy session IQ, which the server answers itself, and
// checks the next element is that answer: nothing else was sent before.
func (c *client) probe(id string) {
	c.t.Helper()
	c.send("<iq type='set' id='" + id + "'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
	c.expect("<iq xmlns='jabber:client' type='result' id='" + id + "'/>")
}

func TestStanzaIsStampedAndPublished_RFC6120_8_1_2_1(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	c := e.dial()
	c.login("alice", "desk")
	id := c.sessionID()

	c.send("<message to='Bob@Example.test' id='m1' type='chat'><body>hi</body></message>")
	st := recv(t, routed)
	want := "<message xmlns='jabber:client' to='bob@example.test' id='m1' type='chat' xml:lang='en' from='alice@example.test/desk'><body>hi</body></message>"
	if string(st.GetRaw()) != want {
		t.Fatalf("raw\n  %s\nwant\n  %s", st.GetRaw(), want)
	}
	if st.GetFrom() != "alice@example.test/desk" || st.GetTo() != "bob@example.test" || st.GetKind() != busv1.Kind_KIND_MESSAGE ||
		st.GetType() != "chat" || st.GetId() != "m1" || st.GetOrigin().GetNode() != testNode || st.GetOrigin().GetSession() != id || st.GetSeq() != 1 {
		t.Fatalf("envelope %v", st)
	}

	// The bare JID as from is the client's own address too.
	c.send("<presence from='alice@example.test'/>")
	st = recv(t, routed)
	if st.GetKind() != busv1.Kind_KIND_PRESENCE || st.GetSeq() != 2 || st.GetTo() != "" ||
		string(st.GetRaw()) != "<presence xmlns='jabber:client' from='alice@example.test/desk' xml:lang='en'/>" {
		t.Fatalf("presence envelope %v", st)
	}
}

func TestStanzaWithoutLangGetsTheStreamLanguage_RFC6120_8_1_5(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	c := e.dialDirect()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0' xml:lang='de'>")
	c.header()
	c.next()
	c.auth("SCRAM-SHA-256", "alice", testPassword, true)
	c.r.Reset(c.r2())
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0' xml:lang='de'>")
	if h := c.header(); h.Lang != "de" {
		t.Fatalf("response xml:lang %q", h.Lang)
	}
	c.next()
	c.bind("r")

	c.send("<message to='bob@example.test'><body>hallo</body></message>")
	if raw := string(recv(t, routed).GetRaw()); !strings.Contains(raw, " xml:lang='de'") {
		t.Fatalf("stanza without xml:lang not stamped with the stream's: %s", raw)
	}
	c.send("<message to='bob@example.test' xml:lang='fr'><body>salut</body></message>")
	if raw := string(recv(t, routed).GetRaw()); !strings.Contains(raw, " xml:lang='fr'") || strings.Contains(raw, "'de'") {
		t.Fatalf("the stanza's own xml:lang was not kept: %s", raw)
	}
}

func TestForgedFromGetsInvalidFrom_RFC6120_8_1_2_1(t *testing.T) {
	e := newEnv(t, nil)
	for _, from := range []string{"bob@example.test", "alice@example.test/other", "example.test", "not a jid@"} {
		c := e.dial()
		c.login("alice", "desk")
		c.send("<message from='" + from + "' to='bob@example.test'><body>x</body></message>")
		c.expectStreamError(stream.InvalidFrom)
	}
}

func TestBadIQGetsBadRequest_RFC6120_8_2_3(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	c := e.dial()
	c.login("alice", "desk")
	for _, tc := range []struct{ name, iq, id string }{
		{"no id", "<iq type='get' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>", ""},
		{"no type", "<iq id='q1' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>", "q1"},
		{"unknown type", "<iq id='q2' type='fetch' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>", "q2"},
		{"get without child", "<iq id='q3' type='get' to='example.test'/>", "q3"},
		{"set with two children", "<iq id='q4' type='set' to='example.test'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>", "q4"},
		{"result with two children", "<iq id='q5' type='result' to='bob@example.test'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>", "q5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.iq)
			reply := c.expectStanzaError(tc.id, stanza.Modify, stanza.BadRequest)
			if reply.Attr("to") != "alice@example.test/desk" {
				t.Fatalf("reply addressed to %q", reply.Attr("to"))
			}
		})
	}
	c.t = t
	// An IQ error is never answered with an error, even a malformed one.
	c.send("<iq type='error'/>")
	c.probe("p1")
	// Valid IQs go to the router.
	c.send("<iq id='ok' type='get' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	if st := recv(t, routed); st.GetKind() != busv1.Kind_KIND_IQ || st.GetId() != "ok" || st.GetType() != "get" {
		t.Fatalf("routed %v", st)
	}
	c.send("<iq id='ok2' type='result' to='bob@example.test/x'/>")
	if st := recv(t, routed); st.GetId() != "ok2" {
		t.Fatalf("routed %v", st)
	}
}

func TestMalformedToGetsJIDMalformed_RFC6120_8_3_3_8(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.login("alice", "desk")
	c.send("<message id='m1' to='bob@@example.test'><body>x</body></message>")
	reply := c.expectStanzaError("m1", stanza.Modify, stanza.JIDMalformed)
	if _, ok := reply.LookupAttr("", "from"); ok {
		t.Fatalf("the malformed address was echoed as from: %s", reply)
	}
	c.probe("p1") // the stream is still open
}

func TestSecondBindIsNotAllowed_RFC6120_7_1(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.login("alice", "desk")
	c.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	c.expectStanzaError("b2", stanza.Cancel, stanza.NotAllowed)
}

func TestRegistryFailureAtBindGetsInternalServerError_RFC6120_7_6_2(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Sessions = failingRegistry{errUnavailable} })
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	c.auth("SCRAM-SHA-256", "alice", testPassword, true)
	c.r.Reset(c.r2())
	c.open()
	c.header()
	c.next()
	c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	c.expectStanzaError("b1", stanza.Wait, stanza.InternalServerError)
	if n := e.srv.SessionCount(); n != 0 {
		t.Fatalf("%d sessions after a failed bind", n)
	}
}

func TestConflictingBindReplacesOldSession_RFC6120_7_7_2_2(t *testing.T) {
	e := newEnv(t, nil)
	old := e.dial()
	old.login("alice", "phone")
	oldID := old.sessionID()
	neu := e.dial()
	neu.login("alice", "phone")
	if neu.sessionID() == oldID {
		t.Fatal("the registry still holds the old session")
	}
	old.expectStreamError(stream.Conflict)
	waitFor(t, "one session left", func() bool { return e.srv.SessionCount() == 1 })
	// The old session's end did not unbind the new one.
	if s := e.lookup("alice@example.test/phone"); s == nil || s.GetSessionId() == oldID {
		t.Fatalf("registry holds %v", s)
	}
	neu.probe("p1")
}

func TestDeliveryIsWrittenToTheSession(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.login("bob", "home")
	raw := "<message xmlns='jabber:client' from='alice@example.test/desk' to='bob@example.test/home' type='chat'><body>hello &amp; bye</body></message>"
	e.deliver(c.sessionID(), raw)
	c.expect(raw)
	e.deliver("no-such-session", raw) // logged at debug level only
	c.probe("p1")
}

func TestFullQueueClosesOnlyThatSession_RFC6120_4_9_3_14(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.QueueSize = 4
		c.CloseTimeout = 200 * time.Millisecond
	})
	routed := e.routed()
	slow := e.dial()
	slow.login("alice", "slow")
	slowID := slow.sessionID()
	fast := e.dial()
	fast.login("bob", "fast")
	fastID := fast.sessionID()
	if tc, ok := slow.raw.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}

	// The slow client reads nothing: deliveries fill the socket buffers,
	// then its queue. After each burst a marker for the fast session,
	// published after it on the same subject, shows the burst was handed
	// to the sessions.
	e.srv.mu.Lock()
	slowConn := e.srv.sessions[slowID]
	e.srv.mu.Unlock()
	body := strings.Repeat("x", 32<<10)
	raw := "<message xmlns='jabber:client' to='alice@example.test/slow'><body>" + body + "</body></message>"
	for round := 0; !slowConn.closing.Load(); round++ {
		if round == 100 {
			t.Fatal("the slow session was never closed")
		}
		for range 64 {
			e.deliver(slowID, raw)
		}
		marker := fmt.Sprintf("<message xmlns='jabber:client' to='bob@example.test/fast' id='m%d'/>", round)
		e.deliver(fastID, marker)
		fast.expect(marker)
	}
	waitFor(t, "the fast session alone", func() bool { return e.srv.SessionCount() == 1 })
	if line := e.logs.find("stream error", "condition=policy-violation", "outbound queue full", "peer="+slow.raw.LocalAddr().String()); line == "" {
		t.Fatal("no log line names the slow peer and the policy-violation")
	}

	// What the slow session could not take went back to the routers, for
	// the no-session rules (RFC 6121 section 8.5.3.2).
	for {
		st := recv(t, routed)
		if u := st.GetUndeliverable(); u != nil {
			if f := u.GetFailed(); len(f) != 1 || f[0].GetSession() != slowID || f[0].GetNode() != testNode {
				t.Fatalf("handed back with failed sessions %v, want only the slow one", f)
			}
			break
		}
	}

	// The other session still gets its stanzas and can send.
	msg := "<message xmlns='jabber:client' to='bob@example.test/fast'><body>still here</body></message>"
	e.deliver(fastID, msg)
	fast.expect(msg)
	fast.probe("p1")
}

func TestWhitespaceKeepaliveOnlyAfterNegotiation_RFC6120_4_6_1(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepaliveInterval = time.Millisecond })
	c := e.dial()
	c.login("alice", "desk")
	// From the TLS layer's first byte to the bind result, nothing stood
	// between elements, although the interval passed many times.
	wire := c.wire.String()
	end := strings.Index(wire, "</iq>")
	if end < 0 {
		t.Fatalf("no bind result in %q", wire)
	}
	if negotiation := wire[:end]; strings.Contains(negotiation, "> ") || strings.Contains(negotiation, ">\n") {
		t.Fatalf("whitespace during negotiation: %q", negotiation)
	}
	b := make([]byte, 1)
	for range 3 {
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := c.conn.Read(b); err != nil || b[0] != ' ' {
			t.Fatalf("read %q, %v; want a single space", b, err)
		}
	}
}

func TestIdleTimeoutGetsConnectionTimeout_RFC6120_4_9_3_4(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 500 * time.Millisecond })
	routed := e.routed()
	c := e.dial()
	c.login("alice", "desk")
	c.send("<presence/>")
	recv(t, routed)
	start := time.Now()
	c.expectStreamError(stream.ConnectionTimeout)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
	// The session's end sends unavailable presence for the account.
	if st := recv(t, routed); st.GetType() != "unavailable" || st.GetFrom() != "alice@example.test/desk" {
		t.Fatalf("routed %v", st)
	}
}

func TestClientWhitespaceKeepsTheSessionAlive_RFC6120_4_6_1(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 600 * time.Millisecond })
	c := e.dial()
	c.login("alice", "desk")
	deadline := time.Now().Add(1500 * time.Millisecond)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		c.send(" ")
	}
	c.probe("p1")
}

func TestSlowNegotiationGetsConnectionTimeout_RFC6120_4_9_3_4(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NegotiationTimeout = 300 * time.Millisecond })
	c := e.dial()
	c.open()
	c.header()
	c.next()
	c.expectStreamError(stream.ConnectionTimeout)

	// A client that never sends its header gets one from us first.
	c2 := e.dial()
	h := c2.header()
	if h.From != testDomain {
		t.Fatalf("header %+v", h)
	}
	c2.expectStreamError(stream.ConnectionTimeout)
}

func TestClientCloseIsAnswered_RFC6120_4_4(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	c := e.dial()
	c.login("alice", "desk")
	c.send("<presence><priority>5</priority></presence>")
	recv(t, routed)
	c.send("</stream:stream>")
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := c.r.Next(); !errors.Is(err, stream.ErrClosed) {
		t.Fatalf("want </stream:stream>, got %v", err)
	}
	c.expectEOF()
	// RFC 6121 section 4.5.2: the account's other resources and contacts
	// learn that this one is gone.
	st := recv(t, routed)
	if st.GetKind() != busv1.Kind_KIND_PRESENCE || st.GetType() != "unavailable" || st.GetFrom() != "alice@example.test/desk" || st.GetTo() != "" {
		t.Fatalf("routed %v", st)
	}
	waitFor(t, "the registry to forget the session", func() bool { return e.lookup("alice@example.test/desk") == nil })
}

func TestShutdownSendsSystemShutdownAndWaitsForClose_RFC6120_4_4(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CloseTimeout = time.Second })
	answering := e.dial()
	answering.login("alice", "a")
	silent := e.dial()
	silent.login("bob", "b")
	negotiating := e.dial()
	negotiating.open()
	negotiating.header()
	negotiating.next()

	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	answering.expectStreamError(stream.SystemShutdown)
	negotiating.expectStreamError(stream.SystemShutdown)

	// A client that never answers is cut off after CloseTimeout.
	el := silent.next()
	if serr := stream.ParseError(el); el.Local != "error" || serr.Condition != stream.SystemShutdown {
		t.Fatalf("got %s", el)
	}
	silent.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := silent.r.Next(); !errors.Is(err, stream.ErrClosed) {
		t.Fatalf("want </stream:stream>, got %v", err)
	}
	silent.expectEOF()
	select {
	case <-stopped:
	case <-time.After(ioTimeout):
		t.Fatal("Run did not return")
	}
	if _, err := net.DialTimeout("tcp", e.srv.Addr().String(), time.Second); err == nil {
		t.Fatal("the listener still accepts after Run returned")
	}
}

func TestPublishFailureGetsWaitInternalServerError(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.login("alice", "desk")
	e.nc.Close()
	c.send("<message id='m1' to='bob@example.test'><body>x</body></message>")
	c.expectStanzaError("m1", stanza.Wait, stanza.InternalServerError)
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	valid := func() Config {
		return Config{Domain: testDomain, Node: testNode, Listen: "127.0.0.1:0", TLSOptional: true,
			Credentials: failingCredentials{}, Sessions: failingRegistry{}, NATS: nil}
	}
	for _, tc := range []struct {
		setting string
		mod     func(*Config)
	}{
		{"Domain", func(c *Config) { c.Domain = "" }},
		{"Domain", func(c *Config) { c.Domain = "user@example.test" }},
		{"Node", func(c *Config) { c.Node = "a.b" }},
		{"Listen", func(c *Config) { c.Listen = "" }},
		{"Listen", func(c *Config) { c.Listen = "nonsense" }},
		{"TLS", func(c *Config) { c.TLSOptional = false }},
		{"TLS", func(c *Config) { c.ListenDirectTLS = "127.0.0.1:0" }},
		{"Mechanisms", func(c *Config) { c.Mechanisms = []string{"CRAM-MD5"} }},
		{"DigestMD5Realm", func(c *Config) { c.DigestMD5Realm = "elsewhere" }},
		{"MaxAuthFailures", func(c *Config) { c.MaxAuthFailures = -1 }},
		{"IdleTimeout", func(c *Config) { c.IdleTimeout = -time.Second }},
		{"QueueSize", func(c *Config) { c.QueueSize = -1 }},
		{"Credentials", func(c *Config) { c.Credentials = nil }},
		{"Sessions", func(c *Config) { c.Sessions = nil }},
		{"NATS", func(c *Config) {}},
	} {
		cfg := valid()
		tc.mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), "Config."+tc.setting) {
			t.Errorf("%s: error %v does not name the setting", tc.setting, err)
		}
	}
}

func TestRunTwiceIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitFor(t, "the first Run to start", func() bool { return e.srv.running.Load() })
	if err := e.srv.Run(ctx); err == nil {
		t.Fatal("a second Run was accepted")
	}
}
