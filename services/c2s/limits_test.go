package c2s

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/limits"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/metrics/metricstest"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// limitEnv is a server with the abuse limits set by mod and, unlike the
// default, no exempt network: every test client comes from loopback.
func limitEnv(t *testing.T, mod func(*AbuseLimits)) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		c.Abuse.Exempt = []netip.Prefix{}
		c.CloseTimeout = 2 * time.Second
		mod(&c.Abuse)
	})
}

// expectRefused opens a stream on a connection the server refused at
// accept and checks it gets <policy-violation/> with a text containing
// want.
func (c *client) expectRefused(want string) {
	c.t.Helper()
	c.open()
	c.header()
	serr := c.expectStreamError(stream.PolicyViolation)
	if !strings.Contains(serr.Text, want) {
		c.t.Fatalf("policy-violation text %q does not say %q", serr.Text, want)
	}
}

// expectHit checks a limit was counted and logged.
func (e *env) expectHit(limit string) {
	e.t.Helper()
	if n := e.srv.LimitHits()[limit]; n == 0 {
		e.t.Fatalf("limit %s not counted: %v", limit, e.srv.LimitHits())
	}
	if e.logs.find("abuse limit hit", "limit="+limit, "peer=127.0.0.1:") == "" {
		e.t.Fatalf("no log line names the limit %s and the peer", limit)
	}
}

// chat checks that a bound session still sends and receives.
func (c *client) chat(id string) {
	c.t.Helper()
	raw := "<message xmlns='jabber:client' from='carol@example.test/x' to='" + c.jid + "' id='" + id + "'><body>still here</body></message>"
	c.e.deliver(c.sessionID(), raw)
	c.expect(raw)
	c.probe(id)
}

func TestConnectionsPerIPOverLimitGetPolicyViolation_RFC6120_4_9_3_13(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) { a.MaxConnsPerIP = 2 })
	alice := e.dial()
	alice.login("alice", "desk")
	bob := e.dialDirect()
	bob.login2("bob", "phone")

	e.dial().expectRefused("too many connections from your address (limit 2)")
	e.expectHit(LimitConnsPerIP)

	// On the direct TLS port the connection is closed before TLS.
	raw, err := net.DialTimeout("tcp", e.srv.DirectTLSAddr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: testDomain, RootCAs: e.roots})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err == nil {
		t.Fatal("a TLS handshake over the limit succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection over the limit was left open")
	}

	alice.chat("a1")
	bob.chat("b1")

	// A connection that ends gives its place back.
	alice.send("</stream:stream>")
	alice.expectClosed()
	waitFor(t, "alice's place given back", func() bool { return e.srv.guard.perIP.Count(netip.MustParseAddr("127.0.0.1")) == 1 })
	again := e.dial()
	again.login("alice", "desk")
	again.chat("a2")
}

// login2 is login on a direct TLS connection.
func (c *client) login2(user, resource string) string {
	c.t.Helper()
	c.open()
	c.header()
	c.next()
	if el := c.auth(sasl.ScramSHA256, user, testPassword, true); el.Local != "success" {
		c.t.Fatalf("authentication failed: %s", el)
	}
	c.r.Reset(c.r2())
	c.open()
	c.header()
	c.next()
	return c.bind(resource)
}

// dialUntilRefused opens connections until one is refused and checks the
// refusal; the earlier ones are returned, open.
func (e *env) dialUntilRefused(want string) []*client {
	e.t.Helper()
	var open []*client
	for range 50 {
		c := e.dial()
		c.open()
		c.header()
		el := c.next()
		if el.Space == stream.NS && el.Local == "error" {
			serr := stream.ParseError(el)
			if serr.Condition != stream.PolicyViolation || !strings.Contains(serr.Text, want) {
				e.t.Fatalf("refused with %s %q, want policy-violation saying %q", serr.Condition, serr.Text, want)
			}
			c.expectClosed()
			return open
		}
		open = append(open, c)
	}
	e.t.Fatal("50 connections in a row and none refused")
	return nil
}

func TestNewConnectionsPerIPOverRateGetPolicyViolation_RFC6120_4_9_3_13(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) {
		a.ConnRatePerIP = 1
		a.ConnBurstPerIP = 3
	})
	open := e.dialUntilRefused("too many new connections from your address (limit 1 per second)")
	if len(open) < 3 {
		t.Fatalf("refused after %d connections, before the burst of 3 was used", len(open))
	}
	e.expectHit(LimitConnRatePerIP)
	// The connections let in carry on.
	open[0].startTLS()
	open[0].open()
	open[0].header()
	open[0].next()
}

func TestNewConnectionsToTheNodeOverRateGetPolicyViolation_RFC6120_4_9_3_13(t *testing.T) {
	// The node-wide rate applies to exempt addresses too.
	e := newEnv(t, func(c *Config) {
		c.Abuse.ConnRate = 1
		c.Abuse.ConnBurst = 2
	})
	e.dialUntilRefused("too many new connections to this server (limit 1 per second)")
	e.expectHit(LimitConnRate)
	if n := e.srv.LimitHits()[LimitConnRatePerIP]; n != 0 {
		t.Fatalf("the per-address rate bit %d times on an exempt address", n)
	}
}

func TestLoopbackIsExemptFromPerIPLimitsByDefault(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Abuse.MaxConnsPerIP = 1 })
	a := e.dial()
	a.login("alice", "desk")
	b := e.dial()
	b.login("bob", "desk")
	a.chat("a1")
	if n := e.srv.LimitHits()[LimitConnsPerIP]; n != 0 {
		t.Fatalf("per-address limit bit %d times on loopback", n)
	}
}

func TestStanzasOverRateGetPolicyViolationStanzaError_RFC6120_8_3_3_13(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) {
		a.StanzaRate = 1
		a.StanzaBurst = 3
		a.FloodFactor = -1
	})
	routed := e.routed()
	fast := e.dial()
	fast.login("alice", "fast")
	other := e.dial()
	other.login("bob", "other")

	// Replies are read by one goroutine for the rest of the test.
	replies := make(chan *dom.Element, 64)
	go func() {
		defer close(replies)
		for {
			fast.conn.SetReadDeadline(time.Now().Add(time.Minute))
			el, err := fast.r.Next()
			if err != nil {
				return
			}
			replies <- el
		}
	}()
	const n = 8
	for i := range n {
		fast.send(fmt.Sprintf("<message to='bob@example.test' id='m%d'><body>%d</body></message>", i, i))
	}
	// The burst is routed; of what follows, whatever came before a token
	// was earned is refused with a stanza error naming the limit.
	routedIDs, refused := map[string]bool{}, 0
	timeout := time.After(ioTimeout)
	for len(routedIDs)+refused < n {
		select {
		case st := <-routed:
			raw := string(st.GetRaw())
			for i := range n {
				if strings.Contains(raw, fmt.Sprintf(" id='m%d'", i)) {
					routedIDs[fmt.Sprintf("m%d", i)] = true
				}
			}
		case el, ok := <-replies:
			if !ok {
				t.Fatal("the limited session was closed")
			}
			serr, isErr := stanza.ParseError(el)
			if !isErr || serr.Condition != stanza.PolicyViolation || serr.Type != stanza.Wait || !strings.Contains(serr.Text, "limit is 1 per second") {
				t.Fatalf("got %s, want a wait/policy-violation stanza error", el)
			}
			refused++
		case <-timeout:
			t.Fatalf("%d routed and %d refused of %d", len(routedIDs), refused, n)
		}
	}
	if refused == 0 {
		t.Fatalf("all %d stanzas routed, none refused", n)
	}
	for i := range 3 {
		if !routedIDs[fmt.Sprintf("m%d", i)] {
			t.Fatalf("m%d of the burst was not routed (routed: %v)", i, routedIDs)
		}
	}
	e.expectHit(LimitStanzaRate)

	// The other session is untouched, and the limited one is still open:
	// once a token is earned its stanzas go through again.
	other.chat("o1")
	waitFor(t, "a stanza of the limited session accepted again", func() bool {
		fast.send("<iq type='set' id='again'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
		el, ok := <-replies
		if !ok {
			t.Fatal("the limited session was closed")
		}
		if el.Attr("type") == "result" && el.Attr("id") == "again" {
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
}

func TestSustainedFloodClosesWithPolicyViolation_RFC6120_4_9_3_13(t *testing.T) {
	reg := metrics.New()
	e := newEnv(t, func(c *Config) {
		c.Abuse.Exempt = []netip.Prefix{}
		c.Abuse.StanzaRate = 1
		c.Abuse.StanzaBurst = 2
		c.Abuse.FloodFactor = 3 // a second bucket of 3/s, burst 6
		c.Metrics = reg.C2S()
	})
	flood := e.dial()
	flood.login("alice", "flood")
	other := e.dial()
	other.login("bob", "other")
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, "<presence id='p%d'/>", i)
	}
	flood.send(b.String())
	for {
		el := flood.next()
		if el.Space == stream.NS && el.Local == "error" {
			serr := stream.ParseError(el)
			if serr.Condition != stream.PolicyViolation || !strings.Contains(serr.Text, "far above the limit of 1 per second") {
				t.Fatalf("stream error %s %q", serr.Condition, serr.Text)
			}
			break
		}
		if serr, ok := stanza.ParseError(el); !ok || serr.Condition != stanza.PolicyViolation {
			t.Fatalf("before the stream error: %s", el)
		}
	}
	flood.expectClosed()
	e.expectHit(LimitStanzaFlood)
	other.chat("o1")

	// The metric counts every hit of each limit.
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	ss := metricstest.WaitFor(t, srv.URL, ioTimeout,
		metricstest.Positive("switchboard_c2s_limit_hits_total", "limit", LimitStanzaFlood),
		metricstest.Positive("switchboard_c2s_limit_hits_total", "limit", LimitStanzaRate))
	for _, l := range []string{LimitStanzaFlood, LimitStanzaRate} {
		if v, _ := ss.Sum("switchboard_c2s_limit_hits_total", "limit", l); v != float64(e.srv.LimitHits()[l]) {
			t.Errorf("metric for %s = %v, LimitHits = %d", l, v, e.srv.LimitHits()[l])
		}
	}
}

func TestBytesOverRateAreShapedNotLost(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) {
		a.ByteRate = 64 << 10
		a.ByteBurst = 16 << 10
		a.StanzaRate = -1
	})
	routed := e.routed()
	big := e.dial()
	big.login("alice", "big")
	other := e.dial()
	other.login("bob", "other")
	body := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB: about 2 s at 64 KiB/s
	big.send("<message to='bob@example.test' id='big'><body>" + body + "</body></message>")
	other.chat("o1") // served while the big one is shaped
	for {
		raw := string(recv(t, routed).GetRaw())
		if !strings.Contains(raw, " id='big'") {
			continue
		}
		if !strings.Contains(raw, "<body>"+body+"</body>") {
			t.Fatalf("the shaped stanza arrived with %d bytes, want its whole body of %d", len(raw), len(body))
		}
		break
	}
	e.expectHit(LimitByteRate)
	big.chat("b1")
}

// authOnce opens a new direct TLS stream and authenticates once with
// SCRAM-SHA-256; it returns the result (success or failure).
func (e *env) authOnce(user, password string) *dom.Element {
	e.t.Helper()
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	el := c.auth(sasl.ScramSHA256, user, password, true)
	c.raw.Close()
	return el
}

// expectTemporary checks a failure is temporary-auth-failure saying want.
func expectTemporary(t *testing.T, el *dom.Element, want string) {
	t.Helper()
	if el.Local != "failure" || el.Child(sasl.NS, string(sasl.TemporaryAuthFailure)) == nil || !strings.Contains(el.ChildText(sasl.NS, "text"), want) {
		t.Fatalf("got %s, want temporary-auth-failure saying %q", el, want)
	}
}

func TestFailedLoginsPerIPLockTheAddressOut_RFC6120_6_5_11(t *testing.T) {
	const lockout = 1500 * time.Millisecond
	e := limitEnv(t, func(a *AbuseLimits) {
		a.AuthFailuresPerIP = 2
		a.AuthFailuresPerAccount = -1
		a.AuthLockout = lockout
	})
	before := e.dial()
	before.login("bob", "before")

	// Two failures on one stream lock the address: the next attempt, with
	// the right password, is refused on the same stream and on others.
	c := e.dialDirect()
	c.open()
	c.header()
	c.next()
	for range 2 {
		if el := c.auth(sasl.ScramSHA256, "alice", "wrong", true); el.Child(sasl.NS, "not-authorized") == nil {
			t.Fatalf("wrong password: %s", el)
		}
	}
	locked := time.Now()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" +
		sasl.EncodePayload([]byte("n,,n=alice,r=abcdefghijklmnop")) + "</auth>")
	expectTemporary(t, c.next(), "too many failed logins from your address; try again in")
	expectTemporary(t, e.authOnce("bob", testPassword), "from your address")
	e.expectHit(LimitAuthLockoutIP)
	if e.logs.find("address locked out after failed logins", "peer=127.0.0.1:") == "" {
		t.Fatal("the lockout was not logged")
	}

	// A session made before carries on.
	before.chat("b1")

	// The lockout ends after its period.
	waitFor(t, "the end of the lockout", func() bool {
		el := e.authOnce("alice", testPassword)
		if el.Local == "success" {
			return true
		}
		expectTemporary(t, el, "from your address")
		time.Sleep(100 * time.Millisecond)
		return false
	})
	if held := time.Since(locked); held < lockout/2 {
		t.Fatalf("the lockout ended after %v, before its %v", held, lockout)
	}
}

func TestFailedLoginsPerAccountLockTheAccountOut_RFC6120_6_5_11(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) {
		a.AuthFailuresPerIP = -1
		a.AuthFailuresPerAccount = 2
		a.AuthLockout = time.Second
	})
	for range 2 {
		if el := e.authOnce("alice", "wrong"); el.Child(sasl.NS, "not-authorized") == nil {
			t.Fatalf("wrong password: %s", el)
		}
	}
	expectTemporary(t, e.authOnce("alice", testPassword), "too many failed logins for this account")
	e.expectHit(LimitAuthLockoutAcct)
	// Other accounts from the same address log in.
	if el := e.authOnce("bob", testPassword); el.Local != "success" {
		t.Fatalf("bob: %s", el)
	}
	// An unknown account is counted and locked like a known one.
	for range 2 {
		e.authOnce("mallory", "guess")
	}
	expectTemporary(t, e.authOnce("mallory", "guess"), "for this account")

	waitFor(t, "the end of alice's lockout", func() bool {
		el := e.authOnce("alice", testPassword)
		if el.Local == "success" {
			return true
		}
		expectTemporary(t, el, "for this account")
		time.Sleep(100 * time.Millisecond)
		return false
	})
}

func TestSuccessfulLoginClearsTheAccountCount(t *testing.T) {
	e := limitEnv(t, func(a *AbuseLimits) {
		a.AuthFailuresPerIP = -1
		a.AuthFailuresPerAccount = 2
	})
	for range 3 {
		if el := e.authOnce("alice", "wrong"); el.Child(sasl.NS, "not-authorized") == nil {
			t.Fatalf("wrong password: %s", el)
		}
		if el := e.authOnce("alice", testPassword); el.Local != "success" {
			t.Fatalf("right password after one failure: %s", el)
		}
	}
}

func TestAbuseLimitErrorsNameTheSetting(t *testing.T) {
	for _, c := range []struct {
		a    AbuseLimits
		want string
	}{
		{AbuseLimits{FloodFactor: 1}, "Config.Abuse.FloodFactor"},
		{AbuseLimits{AuthWindow: -time.Second}, "Config.Abuse.AuthWindow"},
		{AbuseLimits{AuthLockout: -time.Second}, "Config.Abuse.AuthLockout"},
	} {
		if _, err := c.a.withDefaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.a, err, c.want)
		}
	}
	a, err := AbuseLimits{ConnRate: 10, StanzaRate: -1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if a.ConnBurst != 50 || a.StanzaRate != -1 || a.MaxConnsPerIP != DefaultMaxConnsPerIP || len(a.Exempt) != 2 {
		t.Fatalf("defaults: %+v", a)
	}
}

func TestParseExempt(t *testing.T) {
	p, err := ParseExempt(" 10.0.0.0/8, 192.0.2.1 ,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p) != "[10.0.0.0/8 192.0.2.1/32 2001:db8::/32]" {
		t.Fatalf("got %v", p)
	}
	if p, err := ParseExempt("none"); err != nil || p == nil || len(p) != 0 {
		t.Fatalf("none: %v, %v", p, err)
	}
	if _, err := ParseExempt("10.0.0.0/33"); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}

func TestLimitSettingsFlagConvention(t *testing.T) {
	var a AbuseLimits
	for _, s := range a.LimitSettings() {
		if s.Int != nil {
			*s.Int = s.Default
		} else {
			*s.Duration = s.DefaultD
		}
	}
	a.StanzaRate = 0 // off on a flag
	a.FlagsDone()
	got, err := a.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.StanzaRate >= 0 || got.ConnRate >= 0 || got.MaxConnsPerIP != DefaultMaxConnsPerIP || got.ByteBurst != DefaultByteBurst {
		t.Fatalf("after the flags: %+v", got)
	}
}

// BenchmarkStanzaLimit is the per-stanza cost of the session limits in a
// bound session (both buckets and the clock), well under the limit.
func BenchmarkStanzaLimit(b *testing.B) {
	g := newGuard(mustDefaults(b))
	c := &conn{srv: &Server{guard: g}, lim: g.newSessionLimits()}
	// Buckets that never run dry at the benchmark's pace.
	c.lim.stanzas = limits.NewBucket(1e12, 1<<30)
	c.lim.flood = limits.NewBucket(1e12, 1<<30)
	el := dom.New(stream.NSClient, "message", "to", "bob@example.test")
	b.ReportAllocs()
	for b.Loop() {
		if drop, _ := c.overRate(el); drop {
			b.Fatal("dropped")
		}
	}
}

func mustDefaults(b *testing.B) AbuseLimits {
	a, err := AbuseLimits{}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	return a
}
