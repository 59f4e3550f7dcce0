package s2s

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dialback"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// pairUp starts a.test and b.test federated by dialback, with one message
// through so that a's outbound stream to b is up.
func pairUp(t *testing.T) (*env, *node, *node) {
	e := newEnv(t)
	a := e.start("a.test", selfSigned(t, "a.test"), nil)
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	federate(a, b)
	exchange(t, e, a, b, 0)
	return e, a, b
}

// untouched checks that the established a->b stream still carries
// stanzas and was not reopened.
func untouched(t *testing.T, e *env, a, b *node) {
	t.Helper()
	e.send(a, `<message xmlns='jabber:client' from='carol@a.test/x' to='bob@b.test' id='after'><body>still here</body></message>`)
	b.routedTo(t, wait, from("carol@a.test/x"))
	if got := a.logs.count("s2s outbound stream up"); got != 1 {
		t.Fatalf("a opened %d streams to b, want 1: the other stream was disturbed", got)
	}
}

// dialbackAs authenticates a raw peer on b's listener as a.test with the
// key a's secret makes, so b's check with a (the authoritative server)
// succeeds.
func dialbackAs(t *testing.T, a, b *node) *rawPeer {
	t.Helper()
	p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", nil)
	if feature(p.f, dialback.NSFeature, "dialback") == nil {
		t.Fatalf("dialback not offered: %s", p.f)
	}
	key := dialback.Key(a.cfg.Secret, "b.test", "a.test", p.h.ID)
	p.write(dialback.Result{From: "a.test", To: "b.test", Key: key}.Element())
	r, err := dialback.ParseResult(p.next())
	if err != nil || r.Type != dialback.Valid {
		t.Fatalf("dialback answer %+v, %v; want valid", r, err)
	}
	return p
}

func TestForgedFromIsInvalidFrom_RFC6120_4_9_3_9(t *testing.T) {
	e, a, b := pairUp(t)
	p := dialbackAs(t, a, b)
	// An authenticated stream carries a stanza through first.
	p.writeRaw(`<message from='dave@a.test/r' to='bob@b.test' id='ok'><body>legit</body></message>`)
	b.routedTo(t, wait, from("dave@a.test/r"))
	p.writeRaw(`<message from='mallory@evil.test' to='bob@b.test' id='forged'><body>forged</body></message>`)
	if c := p.streamError(); c != stream.InvalidFrom {
		t.Fatalf("condition %s, want invalid-from", c)
	}
	untouched(t, e, a, b)
}

func TestDialbackKeyThatDoesNotVerify_XEP0220_2_3(t *testing.T) {
	e, a, b := pairUp(t)
	p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", nil)
	p.write(dialback.Result{From: "a.test", To: "b.test", Key: dialback.Key("not a's secret", "b.test", "a.test", p.h.ID)}.Element())
	r, err := dialback.ParseResult(p.next())
	if err != nil || r.Type != dialback.Invalid {
		t.Fatalf("dialback answer %+v, %v; want invalid", r, err)
	}
	if c := p.streamError(); c != stream.NotAuthorized {
		t.Fatalf("condition %s, want not-authorized", c)
	}
	if got := a.logs.count("checked as the authoritative server", "result=invalid"); got != 1 {
		t.Errorf("a answered %d verify requests with invalid, want 1", got)
	}
	untouched(t, e, a, b)
}

func TestStanzaBeforeAuthenticationIsNotAuthorized_RFC6120_4_9_3_12(t *testing.T) {
	e, a, b := pairUp(t)
	p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", nil)
	p.writeRaw(`<message from='alice@a.test' to='bob@b.test'><body>early</body></message>`)
	if c := p.streamError(); c != stream.NotAuthorized {
		t.Fatalf("condition %s, want not-authorized", c)
	}
	untouched(t, e, a, b)
}

func TestAddressingErrors_RFC6120_4_9_3_6_and_4_9_3_7(t *testing.T) {
	e, a, b := pairUp(t)
	for _, c := range []struct {
		stanza string
		want   stream.Condition
	}{
		{`<message from='alice@a.test'><body>no to</body></message>`, stream.ImproperAddressing},
		{`<message to='bob@b.test'><body>no from</body></message>`, stream.ImproperAddressing},
		{`<message from='alice@a.test' to='bob@elsewhere.test'><body>not ours</body></message>`, stream.HostUnknown},
	} {
		p := dialbackAs(t, a, b)
		p.writeRaw(c.stanza)
		if got := p.streamError(); got != c.want {
			t.Errorf("%s: condition %s, want %s", c.stanza, got, c.want)
		}
	}
	untouched(t, e, a, b)
}

func TestHeaderToAnotherDomainIsHostUnknown_RFC6120_4_9_3_6(t *testing.T) {
	e := newEnv(t)
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	nc, err := net.Dial("tcp", b.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wait))
	p := &rawPeer{t: t, nc: nc, r: stream.NewReader(nc, stream.Limits{}), w: stream.NewWriter(nc, stream.NSServer)}
	p.w.WriteHeader(stream.Header{From: "a.test", To: "nowhere.test", Version: "1.0"})
	p.w.Flush()
	if _, err := p.r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if c := p.streamError(); c != stream.HostUnknown {
		t.Fatalf("condition %s, want host-unknown", c)
	}
}

func TestCertificateChecks_RFC6125_6_4_RFC6120_13_7_2(t *testing.T) {
	e := newEnv(t)
	ca := newCA(t)
	a := e.start("a.test", ca.valid(t, "a.test"), func(c *Config) { c.RootCAs = ca.pool })
	b := e.start("b.test", ca.valid(t, "b.test"), func(c *Config) { c.RootCAs = ca.pool })
	federate(a, b)
	now := time.Now()
	for _, c := range []struct {
		name     string
		external bool
	}{
		{"valid", true},
		{"wrong name", false},
		{"expired", false},
		{"self-signed", false},
		{"none", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cert = ca.valid(t, "a.test")
			switch c.name {
			case "wrong name":
				cert = ca.valid(t, "wrong.test")
			case "expired":
				cert = ca.issue(t, "a.test", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
			case "self-signed":
				cert = selfSigned(t, "a.test")
			}
			certp := &cert
			if c.name == "none" {
				certp = nil
			}
			p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", certp)
			if got := offersExternal(p.f); got != c.external {
				t.Fatalf("EXTERNAL offered = %v, want %v (features %s)", got, c.external, p.f)
			}
			if feature(p.f, dialback.NSFeature, "dialback") == nil {
				t.Fatalf("dialback not offered as the fallback: %s", p.f)
			}
			p.write(dom.New(nsSASL, "auth", "mechanism", "EXTERNAL").AppendText("="))
			el := p.next()
			if c.external {
				if !isElem(el, nsSASL, "success") {
					t.Fatalf("got %s, want <success/>", el)
				}
				p.open("a.test", "b.test")
				p.writeRaw(`<message from='eve@a.test/r' to='bob@b.test' id='x'><body>by certificate</body></message>`)
				b.routedTo(t, wait, from("eve@a.test/r"))
				return
			}
			if !isElem(el, nsSASL, "failure") || el.Child(nsSASL, "not-authorized") == nil {
				t.Fatalf("got %s, want <failure><not-authorized/></failure>", el)
			}
			// Dialback still works on the same stream (a's key is right).
			key := dialback.Key(a.cfg.Secret, "b.test", "a.test", p.h.ID)
			p.write(dialback.Result{From: "a.test", To: "b.test", Key: key}.Element())
			r, err := dialback.ParseResult(p.next())
			if err != nil || r.Type != dialback.Valid {
				t.Fatalf("dialback answer %+v, %v; want valid", r, err)
			}
		})
	}
}

func TestVerifyRequiredRefusesDialback_RFC6120_13_7_2(t *testing.T) {
	e := newEnv(t)
	ca := newCA(t)
	b := e.start("b.test", ca.valid(t, "b.test"), func(c *Config) { c.RootCAs = ca.pool; c.Verification = VerifyRequired })
	cert := ca.valid(t, "wrong.test")
	p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", &cert)
	if offersExternal(p.f) || feature(p.f, dialback.NSFeature, "dialback") != nil {
		t.Fatalf("features %s: want neither EXTERNAL nor dialback", p.f)
	}
	p.write(dialback.Result{From: "a.test", To: "b.test", Key: "whatever"}.Element())
	r, err := dialback.ParseResult(p.next())
	if err != nil || r.Type != dialback.Error || r.Err == nil {
		t.Fatalf("dialback answer %+v, %v; want type error", r, err)
	}
	// Outbound: a self-signed peer is refused and the stanza bounced.
	a := e.start("a.test", ca.valid(t, "a.test"), func(c *Config) { c.RootCAs = ca.pool; c.Verification = VerifyRequired })
	s := e.start("self.test", selfSigned(t, "self.test"), nil)
	federate(a, s)
	e.send(a, `<message xmlns='jabber:client' from='alice@a.test/phone' to='sam@self.test' id='v1'><body>x</body></message>`)
	st := a.routedTo(t, wait, from("sam@self.test"))
	if st.Type != "error" || !strings.Contains(string(st.Raw), "remote-server-not-found") {
		t.Fatalf("bounce %+v", st)
	}
}

func TestPeerThatNeverAnswersBouncesRemoteServerTimeout_RFC6120_8_3_3_17(t *testing.T) {
	e := newEnv(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var mu sync.Mutex
	var held []net.Conn // accepted, never answered
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		silent.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	_, a, b := pairUpOn(t, e, func(c *Config) {
		c.ConnectTimeout = time.Second
		c.HostMap["silent.test"] = silent.Addr().String()
	})
	e.send(a, `<message xmlns='jabber:client' from='alice@a.test/phone' to='sam@silent.test' id='t1'><body>anyone?</body></message>`)
	st := a.routedTo(t, wait, from("sam@silent.test"))
	if st.To != "alice@a.test/phone" || st.Type != "error" || st.Id != "t1" || !strings.Contains(string(st.Raw), "remote-server-timeout") {
		t.Fatalf("bounce %+v raw %s", st, st.Raw)
	}
	untouched(t, e, a, b)
}

func TestUnreachablePeerBouncesRemoteServerNotFound_RFC6120_8_3_3_16(t *testing.T) {
	e := newEnv(t)
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := gone.Addr().String()
	gone.Close()
	_, a, b := pairUpOn(t, e, func(c *Config) { c.HostMap["gone.test"] = addr })
	for i := range 2 {
		// The second attempt comes after a backoff, and bounces too.
		e.send(a, fmt.Sprintf(`<message xmlns='jabber:client' from='alice@a.test/phone' to='sam@gone.test' id='n%d'><body>x</body></message>`, i))
		st := a.routedTo(t, wait, func(st *busv1.Stanza) bool { return st.From == "sam@gone.test" })
		if st.Type != "error" || st.Id != fmt.Sprintf("n%d", i) || !strings.Contains(string(st.Raw), "remote-server-not-found") {
			t.Fatalf("bounce %+v raw %s", st, st.Raw)
		}
	}
	untouched(t, e, a, b)
}

func TestDenyListRefusesBothWays(t *testing.T) {
	e := newEnv(t)
	a := e.start("a.test", selfSigned(t, "a.test"), nil)
	b := e.start("b.test", selfSigned(t, "b.test"), func(c *Config) { c.Deny = []string{"a.test"} })
	federate(a, b)
	e.send(b, `<message xmlns='jabber:client' from='bob@b.test/d' to='alice@a.test' id='d1'><body>x</body></message>`)
	st := b.routedTo(t, wait, from("alice@a.test"))
	if st.Type != "error" || !strings.Contains(string(st.Raw), "remote-server-not-found") {
		t.Fatalf("bounce %+v", st)
	}
	p := &rawPeer{t: t}
	nc, err := net.Dial("tcp", b.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wait))
	p.nc, p.r, p.w = nc, stream.NewReader(nc, stream.Limits{}), stream.NewWriter(nc, stream.NSServer)
	p.w.WriteHeader(stream.Header{From: "a.test", To: "b.test", Version: "1.0"})
	p.w.Flush()
	if _, err := p.r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if c := p.streamError(); c != stream.PolicyViolation {
		t.Fatalf("condition %s, want policy-violation", c)
	}
}

// pairUpOn is pairUp with a's config adjusted.
func pairUpOn(t *testing.T, e *env, mod func(*Config)) (*env, *node, *node) {
	a := e.start("a.test", selfSigned(t, "a.test"), func(c *Config) { mod(c) })
	b := e.start("b.test", selfSigned(t, "b.test"), nil)
	federate(a, b)
	exchange(t, e, a, b, 0)
	return e, a, b
}

// A peer that ends its stream with an error gets our closing tag, not a
// stream error of our own (RFC 6120 section 4.9.1.1), and other streams
// carry on.
func TestPeerStreamErrorIsAnsweredWithCloseNotError_RFC6120_4_9_1(t *testing.T) {
	e, a, b := pairUp(t)
	p := dialRaw(t, b.srv.Addr().String(), "a.test", "b.test", nil)
	p.writeRaw(`<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`)
	for {
		el, err := p.r.Next()
		if errors.Is(err, stream.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended without </stream:stream>: %v", err)
		}
		if isElem(el, stream.NS, "error") {
			t.Fatalf("got a stream error back: %s", stream.ParseError(el).Condition)
		}
	}
	untouched(t, e, a, b)
}

func TestInboundStreamsPerIPOverLimitGetPolicyViolation_RFC6120_4_9_3_13(t *testing.T) {
	e := newEnv(t)
	b := e.start("b.test", selfSigned(t, "b.test"), func(c *Config) { c.MaxInboundPerIP = 1 })
	raw := func() *rawPeer {
		nc, err := net.Dial("tcp", b.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(wait))
		p := &rawPeer{t: t, nc: nc, r: stream.NewReader(nc, stream.Limits{}), w: stream.NewWriter(nc, stream.NSServer)}
		p.w.WriteHeader(stream.Header{From: "a.test", To: "b.test", Version: "1.0"})
		p.w.Flush()
		if _, err := p.r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := raw()
	if el, err := first.r.Next(); err != nil || !isElem(el, stream.NS, "features") {
		t.Fatalf("the first stream: %v, %v", el, err)
	}
	if c := raw().streamError(); c != stream.PolicyViolation {
		t.Fatalf("the second stream from one address: condition %s, want policy-violation", c)
	}
	if b.logs.count("abuse limit hit", "limit=inbound_per_ip") == 0 {
		t.Fatal("the refusal was not logged")
	}
	// Once the first stream ends, the address may open another.
	first.nc.Close()
	checkFor(t, wait, 10*time.Millisecond, func() error {
		if n := b.srv.perIP.Count(netip.MustParseAddr("127.0.0.1")); n != 0 {
			return fmt.Errorf("%d streams still counted", n)
		}
		return nil
	})
	if el, err := raw().r.Next(); err != nil || !isElem(el, stream.NS, "features") {
		t.Fatalf("a stream after the first ended: %v, %v", el, err)
	}
}
