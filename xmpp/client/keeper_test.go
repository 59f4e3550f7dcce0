package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

func TestBackoffDoublesWithJitterUpToMax_RFC6120_3_3(t *testing.T) {
	lo, hi := time.Second, 10*time.Second
	for _, tc := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{0, 0.9, 950 * time.Millisecond},
		{1, 0.5, 1500 * time.Millisecond},
		{2, 0, 2 * time.Second},
		{3, 1, 8 * time.Second},
		{4, 0, 5 * time.Second}, // capped at 10s
		{50, 0.5, 7500 * time.Millisecond},
	} {
		got := backoff(tc.n, lo, hi, tc.r).Round(time.Microsecond)
		if got != tc.want {
			t.Errorf("backoff(%d, r=%v) = %v, want %v", tc.n, tc.r, got, tc.want)
		}
	}
}

// fakeClock gives the Keeper a clock that never sleeps: every wait is
// recorded and fires at once, and now moves by step on each reading.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	step   time.Duration
	delays []time.Duration
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	ch := make(chan time.Time, 1)
	ch <- c.t
	return ch
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.delays)
}

func TestKeeperRedialsWithBackoffAndFreshDNS_RFC6120_3_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	r := &fakeResolver{records: map[string][]*net.SRV{"xmpp-client": {srv("xmpp.example.test.", 5222, 0, 0)}}}
	d := &fakeDialer{routes: map[string]string{"xmpp.example.test:5222": s.addr()}, failN: 3}
	cfg := s.config()
	cfg.Addr, cfg.Resolver, cfg.Dialer = "", r, d
	// Each reading of the clock moves it by an hour, so every session
	// counts as long-lived and resets the backoff.
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Hour}
	sessions := make(chan *Client, 4)
	k := &Keeper{
		Config:    cfg,
		OnSession: func(_ context.Context, c *Client) { sessions <- c },
		MinDelay:  time.Second,
		MaxDelay:  time.Minute,
		after:     clock.after,
		now:       clock.now,
		rand:      func() float64 { return 0.5 },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- k.Run(ctx) }()

	next := func() *Client {
		t.Helper()
		select {
		case c := <-sessions:
			return c
		case err := <-ran:
			t.Fatalf("Run returned %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no session")
		}
		return nil
	}
	first := next()
	if k.Client() != first {
		t.Error("Keeper.Client is not the current session")
	}
	// The server side of the session drops the connection.
	sc := s.session(t)
	sc.conn.Close()
	second := next()
	if second == first {
		t.Fatal("same client after a redial")
	}
	s.session(t).serveClose()

	// Three failed dials, then a session, then a drop and a new session:
	// four waits, doubling from 1s with the jitter at its middle, and back
	// to the start after the session.
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 750 * time.Millisecond}
	if got := clock.waits(); !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	// Every attempt resolved the domain again.
	if got := r.count(); got != 5 || len(d.attempts()) != 5 {
		t.Errorf("%d lookups and %d dials for 5 attempts", got, len(d.attempts()))
	}

	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	<-second.Done()
	if !errors.Is(second.Err(), ErrClosed) {
		t.Errorf("session after Run ended: %v, want ErrClosed", second.Err())
	}
}

func TestKeeperBackoffGrowsWhenSessionsDieYoung_RFC6120_3_3(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	clock := &fakeClock{t: time.Unix(0, 0)} // time stands still: sessions die young
	sessions := make(chan *Client, 4)
	k := &Keeper{
		Config:    s.config(),
		OnSession: func(_ context.Context, c *Client) { sessions <- c },
		after:     clock.after,
		now:       clock.now,
		rand:      func() float64 { return 0 },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- k.Run(ctx) }()
	for i := range 3 {
		select {
		case <-sessions:
		case <-time.After(10 * time.Second):
			t.Fatalf("no session %d", i)
		}
		s.session(t).conn.Close()
	}
	<-sessions
	s.session(t).serveClose()
	cancel()
	<-ran
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	if got := clock.waits(); !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestKeeperStopsOnAuthenticationFailure_RFC6120_6_5(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.Password = "wrong"
	clock := &fakeClock{}
	k := &Keeper{Config: cfg, after: clock.after, now: clock.now}
	err := k.Run(testCtx(t))
	if !errors.Is(err, sasl.NotAuthorized) {
		t.Fatalf("Run = %v, want not-authorized", err)
	}
	if len(clock.waits()) != 0 {
		t.Errorf("waited %v before giving up; a wrong password is not retried", clock.waits())
	}
}

func TestKeeperReturnsNilWhenSessionClosed(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	k := &Keeper{Config: s.config(), OnSession: func(ctx context.Context, c *Client) {
		go func() { _ = c.Close(ctx) }()
	}}
	ran := make(chan error, 1)
	go func() { ran <- k.Run(testCtx(t)) }()
	sc := s.session(t)
	sc.expectClosed()
	_ = sc.w.Close()
	_ = sc.w.Flush()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run = %v, want nil after Close", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestRedirectAddr_RFC6120_4_9_3_19(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string // "" means not ok
	}{
		{"c2s-2.example.test", "c2s-2.example.test:5222"},
		{"c2s-2.example.test:5322", "c2s-2.example.test:5322"},
		{"192.0.2.7", "192.0.2.7:5222"},
		{"192.0.2.7:15222", "192.0.2.7:15222"},
		{"[2001:db8::1]", "[2001:db8::1]:5222"},
		{"2001:db8::1", "[2001:db8::1]:5222"},
		{"[2001:db8::1]:5223", "[2001:db8::1]:5223"},
		{"", ""},
		{"host:0", ""},
		{"host:port", ""},
		{"a b", ""},
		{":5222", ""},
	} {
		got, ok := RedirectAddr(&stream.Error{Condition: stream.SeeOtherHost, Host: tc.host})
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("RedirectAddr(%q) = %q, %v; want %q", tc.host, got, ok, tc.want)
		}
	}
	if _, ok := RedirectAddr(&stream.Error{Condition: stream.SystemShutdown, Host: "x"}); ok {
		t.Error("system-shutdown taken as a redirect")
	}
	if _, ok := RedirectAddr(errors.New("see-other-host")); ok {
		t.Error("a plain error taken as a redirect")
	}
}

// keeperSessions runs k until the test ends and returns its sessions.
func keeperSessions(t *testing.T, k *Keeper) <-chan *Client {
	t.Helper()
	sessions := make(chan *Client, 8)
	k.OnSession = func(_ context.Context, c *Client) { sessions <- c }
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})
	return sessions
}

func nextSession(t *testing.T, sessions <-chan *Client) *Client {
	t.Helper()
	select {
	case c := <-sessions:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
	}
	return nil
}

// endWith makes the server end the session with serr, as a draining
// node does, and checks the client answers with its closing tag.
func (sc *srvConn) endWith(serr *stream.Error) {
	sc.t.Helper()
	if err := sc.w.WriteError(serr); err != nil {
		sc.t.Fatal(err)
	}
	if err := sc.w.Flush(); err != nil {
		sc.t.Fatal(err)
	}
	sc.expectClosed()
	sc.conn.Close()
}

func TestKeeperFollowsSeeOtherHostOnceThenResolvesAgain_RFC6120_4_9_3_19(t *testing.T) {
	draining := newTestServer(t, serverOpts{})
	other := newTestServer(t, serverOpts{})
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Hour}
	k := &Keeper{Config: draining.config(), after: clock.after, now: clock.now, rand: func() float64 { return 0 }}
	sessions := keeperSessions(t, k)

	first := nextSession(t, sessions)
	draining.session(t).endWith(&stream.Error{Condition: stream.SeeOtherHost, Host: other.addr()})
	<-first.Done()
	if addr, ok := RedirectAddr(first.Err()); !ok || addr != other.addr() {
		t.Fatalf("session ended with %v; want see-other-host naming %s", first.Err(), other.addr())
	}
	second := nextSession(t, sessions)
	sc := other.session(t)
	if len(clock.waits()) != 0 {
		t.Errorf("waited %v before following the redirect", clock.waits())
	}
	if second.JID().Bare() != testJID {
		t.Errorf("redirected session bound %s", second.JID())
	}
	// That session ends too: the next attempt is at the configured
	// address again, after the backoff.
	sc.conn.Close()
	nextSession(t, sessions)
	draining.session(t).serveClose()
	if got := clock.waits(); len(got) != 1 {
		t.Errorf("waits %v, want one backoff before the normal address", got)
	}
}

func TestKeeperFallsBackWhenTheRedirectTargetIsDown_RFC6120_4_9_3_19(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Hour}
	k := &Keeper{Config: s.config(), after: clock.after, now: clock.now, rand: func() float64 { return 0 }}
	sessions := keeperSessions(t, k)
	nextSession(t, sessions)
	s.session(t).endWith(&stream.Error{Condition: stream.SeeOtherHost, Host: gone})
	// The redirect fails to connect; the Keeper waits and comes back to
	// the configured address.
	nextSession(t, sessions)
	s.session(t).serveClose()
	if got := clock.waits(); len(got) != 1 {
		t.Errorf("waits %v, want one backoff after the failed redirect", got)
	}
}

func TestKeeperReconnectsAfterSystemShutdownWithBackoff_RFC6120_4_9_3_20(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Hour}
	k := &Keeper{Config: s.config(), MinDelay: 2 * time.Second, after: clock.after, now: clock.now, rand: func() float64 { return 0.5 }}
	sessions := keeperSessions(t, k)
	first := nextSession(t, sessions)
	s.session(t).endWith(&stream.Error{Condition: stream.SystemShutdown})
	<-first.Done()
	if !errors.Is(first.Err(), stream.SystemShutdown) {
		t.Fatalf("session ended with %v", first.Err())
	}
	nextSession(t, sessions)
	s.session(t).serveClose()
	if got, want := clock.waits(), []time.Duration{1500 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

func TestKeeperBoundsRedirectChains_RFC6120_4_9_3_19(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	clock := &fakeClock{t: time.Unix(0, 0)} // sessions die young
	k := &Keeper{Config: s.config(), after: clock.after, now: clock.now, rand: func() float64 { return 0 }}
	sessions := keeperSessions(t, k)
	// The server keeps redirecting to itself.
	for range maxRedirects + 1 {
		nextSession(t, sessions)
		s.session(t).endWith(&stream.Error{Condition: stream.SeeOtherHost, Host: s.addr()})
	}
	nextSession(t, sessions)
	s.session(t).serveClose()
	if got := clock.waits(); len(got) != 1 {
		t.Errorf("waits %v: want %d redirects followed at once, then one backoff", got, maxRedirects)
	}
}
