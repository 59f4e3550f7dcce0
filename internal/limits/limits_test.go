package limits

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBucketAllowsBurstThenRate(t *testing.T) {
	b := NewBucket(10, 5)
	for i := range 5 {
		if !b.Allow(t0) {
			t.Fatalf("token %d of the burst refused", i+1)
		}
	}
	if b.Allow(t0) {
		t.Fatal("a sixth token at once was allowed")
	}
	// 10 per second: one token per 100ms.
	if b.Allow(t0.Add(99 * time.Millisecond)) {
		t.Fatal("allowed before a token was earned")
	}
	if !b.Allow(t0.Add(100 * time.Millisecond)) {
		t.Fatal("refused after a token was earned")
	}
	// A long pause refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	n := 0
	for b.Allow(later) {
		n++
	}
	if n != 5 {
		t.Fatalf("after an hour %d tokens, want the burst 5", n)
	}
}

func TestBucketOffAllowsEverything(t *testing.T) {
	for _, b := range []Bucket{{}, NewBucket(0, 10), NewBucket(-1, 10)} {
		if !b.Off() {
			t.Fatal("not off")
		}
		for range 1000 {
			if !b.Allow(t0) {
				t.Fatal("an off bucket refused")
			}
		}
		if d := b.Spend(t0, 1e9); d != 0 {
			t.Fatalf("an off bucket asked to wait %v", d)
		}
	}
}

func TestBucketSpendGoesIntoDebtAndReportsTheWait(t *testing.T) {
	b := NewBucket(1000, 500) // bytes per second
	if d := b.Spend(t0, 500); d != 0 {
		t.Fatalf("spending the burst asked to wait %v", d)
	}
	if d := b.Spend(t0, 250); d != 250*time.Millisecond {
		t.Fatalf("250 bytes of debt at 1000/s: wait %v, want 250ms", d)
	}
	// After the wait the debt is paid; the next read of 100 waits 100ms.
	if d := b.Spend(t0.Add(250*time.Millisecond), 100); d != 100*time.Millisecond {
		t.Fatalf("wait %v, want 100ms", d)
	}
}

func TestBucketBurstBelowOneIsOne(t *testing.T) {
	b := NewBucket(1, 0)
	if !b.Allow(t0) || b.Allow(t0) {
		t.Fatal("a burst of 0 should behave as 1")
	}
}

func TestSharedBucketUnderConcurrency(t *testing.T) {
	s := NewShared(1, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if s.Allow(t0) {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("%d allowed at one instant, want the burst 100", allowed)
	}
}

func TestKeyedBucketsAreIndependentAndForgotten(t *testing.T) {
	k := NewKeyed[string](1, 2)
	if !k.Allow("a", t0) || !k.Allow("a", t0) || k.Allow("a", t0) {
		t.Fatal("key a: want two allowed, the third refused")
	}
	if !k.Allow("b", t0) {
		t.Fatal("key b refused because of key a")
	}
	// Once refilled, buckets are forgotten at the next sweep.
	later := t0.Add(time.Minute)
	k.Allow("c", later)
	if n := k.Len(); n != 1 {
		t.Fatalf("%d keys remembered after a minute, want only c", n)
	}
}

func TestKeyedOffRemembersNothing(t *testing.T) {
	k := NewKeyed[string](0, 2)
	for range 10 {
		if !k.Allow("a", t0) {
			t.Fatal("refused while off")
		}
	}
	if k.Len() != 0 {
		t.Fatal("an off set remembered a key")
	}
}

func TestCounterAcquireRelease(t *testing.T) {
	c := NewCounter[string]()
	if !c.Acquire("a", 2) || !c.Acquire("a", 2) {
		t.Fatal("two of two refused")
	}
	if c.Acquire("a", 2) {
		t.Fatal("a third allowed")
	}
	if !c.Acquire("b", 2) {
		t.Fatal("b refused because of a")
	}
	c.Release("a")
	if !c.Acquire("a", 2) {
		t.Fatal("refused after a release")
	}
	c.Release("a")
	c.Release("a")
	c.Release("b")
	if c.Count("a") != 0 || c.Count("b") != 0 || len(c.n) != 0 {
		t.Fatalf("counts left after every release: %v", c.n)
	}
	for range 100 {
		if !c.Acquire("z", 0) {
			t.Fatal("max 0 means no limit")
		}
	}
}

func TestFailuresLockOutAfterTheLimitWithinTheWindow(t *testing.T) {
	f := NewFailures[string](3, time.Minute, 5*time.Minute)
	if f.Fail("a", t0) || f.Fail("a", t0.Add(time.Second)) {
		t.Fatal("locked before the limit")
	}
	if locked, _ := f.Locked("a", t0.Add(2*time.Second)); locked {
		t.Fatal("locked after two failures of three")
	}
	if !f.Fail("a", t0.Add(2*time.Second)) {
		t.Fatal("the third failure did not lock")
	}
	locked, until := f.Locked("a", t0.Add(3*time.Second))
	if !locked || !until.Equal(t0.Add(2*time.Second+5*time.Minute)) {
		t.Fatalf("Locked = %v until %v", locked, until)
	}
	// Failures during the lockout do not extend it.
	f.Fail("a", t0.Add(4*time.Minute))
	if locked, _ := f.Locked("a", until); locked {
		t.Fatal("still locked when the lockout ended")
	}
	if locked, _ := f.Locked("b", t0.Add(3*time.Second)); locked {
		t.Fatal("b locked because of a")
	}
}

func TestFailuresWindowStartsAgain(t *testing.T) {
	f := NewFailures[string](3, time.Minute, time.Hour)
	f.Fail("a", t0)
	f.Fail("a", t0.Add(30*time.Second))
	// The window is over: this one starts a new count.
	if f.Fail("a", t0.Add(61*time.Second)) {
		t.Fatal("locked by failures spread over more than the window")
	}
}

func TestFailuresForgetClearsTheCountNotALockout(t *testing.T) {
	f := NewFailures[string](2, time.Minute, time.Hour)
	f.Fail("a", t0)
	f.Forget("a")
	if f.Fail("a", t0) {
		t.Fatal("Forget did not clear the count")
	}
	f.Fail("a", t0)
	f.Forget("a")
	if locked, _ := f.Locked("a", t0); !locked {
		t.Fatal("Forget lifted a lockout")
	}
}

func TestFailuresSweepForgetsOldKeys(t *testing.T) {
	f := NewFailures[string](2, time.Minute, time.Minute)
	f.Fail("a", t0)
	f.Fail("b", t0)
	f.Fail("b", t0)
	f.Fail("c", t0.Add(time.Hour))
	if n := f.Len(); n != 1 {
		t.Fatalf("%d keys after the sweep, want 1", n)
	}
}

func TestIPKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 5}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 5, Zone: "eth0"}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 5}, "::"},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "invalid IP"},
		{nil, "invalid IP"},
	} {
		if got := IPKey(c.addr).String(); got != c.want {
			t.Errorf("IPKey(%v) = %s, want %s", c.addr, got, c.want)
		}
	}
	if KeyOf(netip.MustParseAddr("2001:db8:1:2::9")) != KeyOf(netip.MustParseAddr("2001:db8:1:2:aaaa::1")) {
		t.Error("two addresses of one /64 have different keys")
	}
}

func TestGatePassesOncePerIntervalAndCountsTheRest(t *testing.T) {
	g := NewGate(time.Second)
	if ok, n := g.Pass(t0); !ok || n != 0 {
		t.Fatalf("first event: %v, %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := g.Pass(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatal("passed within the interval")
		}
	}
	if ok, n := g.Pass(t0.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back, want true, 5", ok, n)
	}
}

// BenchmarkBucketAllow is the per-stanza cost of the session limits: two
// buckets, as c2s checks for every stanza.
func BenchmarkBucketAllow(b *testing.B) {
	soft, hard := NewBucket(500, 1000), NewBucket(2000, 4000)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(4 * time.Millisecond)
		if !hard.Allow(now) || !soft.Allow(now) {
			b.Fatal("refused at half the rate")
		}
	}
}

// BenchmarkBucketAllowWithClock adds the time.Now each stanza pays.
func BenchmarkBucketAllowWithClock(b *testing.B) {
	soft := NewBucket(1e12, 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		soft.Allow(time.Now())
	}
}

// BenchmarkShaperSpend is the cost a read pays for the byte shaper.
func BenchmarkShaperSpend(b *testing.B) {
	s := NewBucket(1e12, 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		s.Spend(time.Now(), 4096)
	}
}

// BenchmarkKeyedAllow is the cost of the per-IP rate at connect.
func BenchmarkKeyedAllow(b *testing.B) {
	k := NewKeyed[netip.Addr](1e12, 1<<30)
	ip := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		k.Allow(ip, time.Now())
	}
}
