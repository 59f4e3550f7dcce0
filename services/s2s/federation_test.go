package s2s

import (
	"fmt"
	"strings"
	"testing"
	"time"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

const wait = 15 * time.Second

func from(j string) func(*busv1.Stanza) bool {
	return func(st *busv1.Stanza) bool { return st.GetFrom() == j }
}

// exchange sends a message each way and checks what each side published
// for its routers.
func exchange(t *testing.T, e *env, a, b *node, n int) {
	t.Helper()
	e.send(a, fmt.Sprintf(`<message xmlns='jabber:client' from='alice@a.test/phone' to='bob@b.test' type='chat' id='m%d'><body>hello %d</body></message>`, n, n))
	st := b.routedTo(t, wait, from("alice@a.test/phone"))
	if st.To != "bob@b.test" || st.Kind != busv1.Kind_KIND_MESSAGE || st.Type != "chat" || st.Id != fmt.Sprintf("m%d", n) {
		t.Fatalf("b routed %+v", st)
	}
	if st.Origin.GetNode() != b.cfg.Node || st.Origin.GetSession() == "" || st.Seq == 0 {
		t.Fatalf("origin %+v seq %d", st.Origin, st.Seq)
	}
	raw := string(st.Raw)
	if !strings.Contains(raw, "xmlns=\"jabber:client\"") && !strings.Contains(raw, "xmlns='jabber:client'") || !strings.Contains(raw, fmt.Sprintf("hello %d", n)) {
		t.Fatalf("raw %s: want the message in jabber:client form", raw)
	}
	e.send(b, fmt.Sprintf(`<message xmlns='jabber:client' from='bob@b.test/desk' to='alice@a.test' id='r%d'><body>hi %d</body></message>`, n, n))
	st = a.routedTo(t, wait, from("bob@b.test/desk"))
	if st.To != "alice@a.test" || !strings.Contains(string(st.Raw), fmt.Sprintf("hi %d", n)) {
		t.Fatalf("a routed %+v", st)
	}
}

func TestSelfSignedServersFederateByDialback_XEP0220(t *testing.T) {
	e := newEnv(t)
	a := e.start("a.test", selfSigned(t, "a.test"), nil)
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	federate(a, b)
	exchange(t, e, a, b, 1)
	exchange(t, e, a, b, 2)
	for _, n := range []*node{a, b} {
		if got := n.logs.count("s2s outbound stream up", "method=dialback"); got != 1 {
			t.Errorf("%s: %d outbound streams up by dialback, want 1 (reused)", n.cfg.Domains[0], got)
		}
		if got := n.logs.count("s2s inbound authenticated", "method=dialback"); got != 1 {
			t.Errorf("%s: %d inbound dialback authentications, want 1", n.cfg.Domains[0], got)
		}
		if got := n.logs.count("checked as the authoritative server", "result=valid"); got != 1 {
			t.Errorf("%s: %d keys verified as the authoritative server, want 1", n.cfg.Domains[0], got)
		}
	}
}

func TestValidCertificatesAuthenticateWithSASLExternal_RFC6120_13_7_2(t *testing.T) {
	e := newEnv(t)
	ca := newCA(t)
	roots := func(c *Config) { c.RootCAs = ca.pool }
	a := e.start("a.test", ca.valid(t, "a.test"), roots)
	b := e.start("b.test", ca.valid(t, "b.test"), roots)
	federate(a, b)
	exchange(t, e, a, b, 1)
	for _, n := range []*node{a, b} {
		if got := n.logs.count("s2s outbound stream up", "method=EXTERNAL"); got != 1 {
			t.Errorf("%s: %d outbound streams up by EXTERNAL, want 1", n.cfg.Domains[0], got)
		}
		if got := n.logs.count("method=dialback"); got != 0 {
			t.Errorf("%s: dialback used %d times with valid certificates", n.cfg.Domains[0], got)
		}
	}
}

func TestOutboundStreamReusedThenClosedWhenIdle(t *testing.T) {
	e := newEnv(t)
	idle := func(c *Config) { c.IdleTimeout = 300 * time.Millisecond }
	a := e.start("a.test", selfSigned(t, "a.test"), idle)
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	federate(a, b)
	for i := range 3 {
		e.send(a, fmt.Sprintf(`<message xmlns='jabber:client' from='alice@a.test/phone' to='bob@b.test' id='q%d'><body>%d</body></message>`, i, i))
	}
	for range 3 {
		b.routedTo(t, wait, from("alice@a.test/phone"))
	}
	if got := a.logs.count("s2s outbound stream up"); got != 1 {
		t.Fatalf("%d streams for 3 stanzas, want 1", got)
	}
	checkFor(t, wait, 10*time.Millisecond, func() error {
		if a.logs.count("s2s outbound stream closed") == 0 {
			return fmt.Errorf("idle stream still open")
		}
		return nil
	})
	e.send(a, `<message xmlns='jabber:client' from='alice@a.test/phone' to='bob@b.test' id='again'><body>again</body></message>`)
	b.routedTo(t, wait, from("alice@a.test/phone"))
	if got := a.logs.count("s2s outbound stream up"); got != 2 {
		t.Fatalf("%d streams, want 2: a new one after the idle close", got)
	}
}

func TestPresenceAndIQCrossInJabberServerForm_RFC6120_4_8_2(t *testing.T) {
	e := newEnv(t)
	a := e.start("a.test", selfSigned(t, "a.test"), nil)
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	federate(a, b)
	e.send(a, `<presence xmlns='jabber:client' from='alice@a.test' to='bob@b.test' type='subscribe'/>`)
	st := b.routedTo(t, wait, from("alice@a.test"))
	if st.Kind != busv1.Kind_KIND_PRESENCE || st.Type != "subscribe" {
		t.Fatalf("routed %+v", st)
	}
	e.send(a, `<iq xmlns='jabber:client' from='alice@a.test/phone' to='b.test' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	st = b.routedTo(t, wait, from("alice@a.test/phone"))
	if st.Kind != busv1.Kind_KIND_IQ || st.To != "b.test" || !strings.Contains(string(st.Raw), "urn:xmpp:ping") {
		t.Fatalf("routed %+v", st)
	}
}
