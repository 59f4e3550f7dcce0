package client

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
)

// fakeResolver answers SRV lookups from a table and counts them.
type fakeResolver struct {
	mu      sync.Mutex
	records map[string][]*net.SRV // by service
	lookups []string
}

func (r *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, "_"+service+"._"+proto+"."+name)
	if recs, ok := r.records[service]; ok {
		out := make([]*net.SRV, len(recs))
		for i, rec := range recs {
			cp := *rec
			out[i] = &cp
		}
		return "", out, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lookups)
}

// fakeDialer sends some addresses to a real listener and fails the rest.
type fakeDialer struct {
	mu     sync.Mutex
	routes map[string]string // dialled address -> real address
	dials  []string
	failN  int // fail this many dials first, whatever the address
}

func (d *fakeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, addr)
	fail := d.failN > 0
	if fail {
		d.failN--
	}
	real, ok := d.routes[addr]
	d.mu.Unlock()
	if fail || !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, real)
}

func (d *fakeDialer) attempts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dials)
}

func srv(target string, port, prio, weight uint16) *net.SRV {
	return &net.SRV{Target: target, Port: port, Priority: prio, Weight: weight}
}

func addrs(ts []target) []string {
	var out []string
	for _, t := range ts {
		s := t.addr
		if t.direct {
			s += "+tls"
		}
		out = append(out, s)
	}
	return out
}

var quiet = slog.New(slog.DiscardHandler)

func TestSRVTargetsOrderedByPriority_RFC2782(t *testing.T) {
	r := &fakeResolver{records: map[string][]*net.SRV{"xmpp-client": {
		srv("c.example.test.", 5222, 30, 0),
		srv("a.example.test.", 5222, 10, 0),
		srv("b.example.test.", 5223, 20, 0),
	}}}
	got, err := lookupTargets(context.Background(), r, testDomain, false, rand.IntN, quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.example.test:5222", "b.example.test:5223", "c.example.test:5222"}
	if !slices.Equal(addrs(got), want) {
		t.Errorf("targets = %v, want %v", addrs(got), want)
	}
	if r.lookups[0] != "_xmpp-client._tcp."+testDomain {
		t.Errorf("lookup = %v", r.lookups)
	}
}

func TestSRVWeightedSelection_RFC2782(t *testing.T) {
	recs := []srvRecord{
		{SRV: *srv("heavy.", 1, 10, 30)},
		{SRV: *srv("zero.", 1, 10, 0)},
		{SRV: *srv("light.", 1, 10, 10)},
	}
	names := func(rs []srvRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Target)
		}
		return out
	}
	// The draw is uniform in [0, 40]; zero-weight records sit first in the
	// running sum, so a draw of 0 takes them, 1..30 takes heavy, 31..40
	// takes light (in the order after zero: heavy then light, by input).
	for _, tc := range []struct {
		draw int
		want []string
	}{
		{0, []string{"zero.", "heavy.", "light."}},
		{1, []string{"heavy.", "zero.", "light."}},
		{40, []string{"light.", "zero.", "heavy."}},
	} {
		first := true
		intn := func(n int) int {
			if first {
				first = false
				if n != 41 {
					t.Errorf("first draw over [0, %d), want [0, 41)", n)
				}
				return tc.draw
			}
			return 0
		}
		if got := names(orderSRV(recs, intn)); !slices.Equal(got, tc.want) {
			t.Errorf("draw %d: order %v, want %v", tc.draw, got, tc.want)
		}
	}

	// Over many draws, the first choice follows the weights.
	rng := rand.New(rand.NewPCG(1, 2))
	firsts := map[string]int{}
	const n = 20000
	for range n {
		firsts[orderSRV(recs, rng.IntN)[0].Target]++
	}
	if f := float64(firsts["heavy."]) / n; f < 0.70 || f > 0.76 {
		t.Errorf("heavy first in %.3f of draws, want about 30/41 = 0.73", f)
	}
	if f := float64(firsts["zero."]) / n; f > 0.04 {
		t.Errorf("zero-weight first in %.3f of draws, want about 1/41", f)
	}
}

func TestNoSRVFallsBackToDomainOn5222_RFC6120_3_2_2(t *testing.T) {
	r := &fakeResolver{}
	got, err := lookupTargets(context.Background(), r, testDomain, true, rand.IntN, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{testDomain + ":5222"}; !slices.Equal(addrs(got), want) {
		t.Errorf("targets = %v, want %v", addrs(got), want)
	}
}

func TestSRVDotTargetMeansNoService_RFC6120_3_2_1(t *testing.T) {
	r := &fakeResolver{records: map[string][]*net.SRV{"xmpp-client": {srv(".", 0, 0, 0)}}}
	d := &fakeDialer{}
	_, err := Dial(context.Background(), Config{JID: testJID, Password: "x", Resolver: r, Dialer: d})
	if !errors.Is(err, ErrNoService) {
		t.Fatalf("Dial = %v, want ErrNoService", err)
	}
	if len(d.attempts()) != 0 {
		t.Errorf("dialled %v although the domain has no service", d.attempts())
	}
}

func TestDirectTLSRecordsMixedByPriority_XEP0368(t *testing.T) {
	r := &fakeResolver{records: map[string][]*net.SRV{
		"xmpp-client":  {srv("starttls.example.test.", 5222, 10, 0)},
		"xmpps-client": {srv("direct.example.test.", 443, 5, 0)},
	}}
	got, err := lookupTargets(context.Background(), r, testDomain, true, rand.IntN, quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"direct.example.test:443+tls", "starttls.example.test:5222"}
	if !slices.Equal(addrs(got), want) {
		t.Errorf("targets = %v, want %v", addrs(got), want)
	}
	// Without the option, only _xmpp-client is looked up.
	r.lookups = nil
	got, _ = lookupTargets(context.Background(), r, testDomain, false, rand.IntN, quiet)
	if len(r.lookups) != 1 || len(got) != 1 || got[0].direct {
		t.Errorf("without DirectTLS: lookups %v, targets %v", r.lookups, addrs(got))
	}
}

func TestDirectTLSDotFallsBackToStartTLSRecords_XEP0368(t *testing.T) {
	r := &fakeResolver{records: map[string][]*net.SRV{
		"xmpp-client":  {srv("starttls.example.test.", 5222, 10, 0)},
		"xmpps-client": {srv(".", 0, 0, 0)},
	}}
	got, err := lookupTargets(context.Background(), r, testDomain, true, rand.IntN, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"starttls.example.test:5222"}; !slices.Equal(addrs(got), want) {
		t.Errorf("targets = %v, want %v", addrs(got), want)
	}
	// With "." for both services there is no service and no A fallback.
	r.records["xmpp-client"] = []*net.SRV{srv(".", 0, 0, 0)}
	if _, err := lookupTargets(context.Background(), r, testDomain, true, rand.IntN, quiet); !errors.Is(err, ErrNoService) {
		t.Errorf("both services refused: %v, want ErrNoService", err)
	}
}

func TestDialTriesSRVTargetsInOrder_RFC6120_3_2_1(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	r := &fakeResolver{records: map[string][]*net.SRV{"xmpp-client": {
		srv("backup.example.test.", 5222, 20, 0),
		srv("down.example.test.", 5222, 10, 0),
	}}}
	d := &fakeDialer{routes: map[string]string{"backup.example.test:5222": s.addr()}}
	cfg := s.config()
	cfg.Addr, cfg.Resolver, cfg.Dialer = "", r, d
	c, _ := s.dial(t, cfg)
	if want := []string{"down.example.test:5222", "backup.example.test:5222"}; !slices.Equal(d.attempts(), want) {
		t.Errorf("dialled %v, want %v", d.attempts(), want)
	}
	// The certificate was checked against the JID's domain, not the target.
	if cs, _ := c.TLS(); cs.ServerName != testDomain {
		t.Errorf("ServerName = %q, want %q", cs.ServerName, testDomain)
	}
}
