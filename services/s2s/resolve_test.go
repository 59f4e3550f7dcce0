package s2s

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS answers SRV questions from a table over UDP on loopback.
func fakeDNS(t *testing.T, srv map[string][]dnsmessage.SRVResource) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative = true, true
			recs, ok := srv[q.Name.String()]
			if !ok || q.Type != dnsmessage.TypeSRV {
				m.Header.RCode = dnsmessage.RCodeNameError
			}
			for i := range recs {
				m.Answers = append(m.Answers, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &recs[i],
				})
			}
			out, err := m.Pack()
			if err == nil {
				pc.WriteTo(out, addr)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func name(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }

func TestResolveOrder_RFC6120_3_2_1_XEP0368(t *testing.T) {
	r := fakeDNS(t, map[string][]dnsmessage.SRVResource{
		"_xmpp-server._tcp.srv.test.": {
			{Priority: 20, Weight: 0, Port: 5270, Target: name("backup.srv.test.")},
			{Priority: 10, Weight: 0, Port: 5269, Target: name("xmpp.srv.test.")},
		},
		"_xmpps-server._tcp.srv.test.": {
			{Priority: 10, Weight: 0, Port: 5270, Target: name("tls.srv.test.")},
		},
		"_xmpp-server._tcp.none.test.": {
			{Priority: 0, Weight: 0, Port: 0, Target: name(".")},
		},
	})
	s := &Server{cfg: Config{Resolver: r, HostMap: map[string]string{"mapped.test": "127.0.0.1:7000"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.resolve(ctx, "srv.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []target{
		{"tls.srv.test.:5270", true}, // direct TLS first among equal priorities
		{"xmpp.srv.test.:5269", false},
		{"backup.srv.test.:5270", false},
	}
	if len(got) != len(want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("targets %v, want %v", got, want)
		}
	}
	// No records: the domain itself on 5269 (RFC 6120 section 3.2.2).
	if got, err := s.resolve(ctx, "plain.test"); err != nil || len(got) != 1 || got[0] != (target{"plain.test:5269", false}) {
		t.Fatalf("fallback %v, %v", got, err)
	}
	// A target of "." says there is no service (RFC 2782).
	if _, err := s.resolve(ctx, "none.test"); err == nil {
		t.Fatal("a \".\" SRV target resolved")
	}
	// The host map wins over DNS.
	if got, err := s.resolve(ctx, "mapped.test"); err != nil || len(got) != 1 || got[0].addr != "127.0.0.1:7000" {
		t.Fatalf("host map %v, %v", got, err)
	}
}

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n, base := range map[int]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 5: hi, 50: hi} {
		for range 20 {
			d := backoff(n, lo, hi)
			if d < base || d > base+base/2 {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, base, base+base/2)
			}
		}
	}
}

func TestSilentInboundPeerGetsConnectionTimeout_RFC6120_4_9_3_4(t *testing.T) {
	e := newEnv(t)
	b := e.start("b.test", selfSigned(t, "b.test"), func(c *Config) { c.NegotiationTimeout = 300 * time.Millisecond })
	nc, err := net.Dial("tcp", b.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wait))
	p := dialRawOn(t, nc, "a.test", "b.test")
	if c := p.streamError(); c != "connection-timeout" {
		t.Fatalf("condition %s, want connection-timeout", c)
	}
}
