// Package limits holds the small building blocks of Switchboard's abuse
// controls: a token bucket for one session (no locks, no allocation, cheap
// enough to run on every stanza), keyed buckets and counters shared by the
// connections of a node, a failed-attempt tracker with a lockout period,
// the key an IP address is counted under, and a gate that keeps a log line
// about a limit from flooding the log itself.
//
// The services decide what a limit means on the wire; this package only
// counts.
package limits

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Bucket is a token bucket: it holds at most Burst tokens and gains Rate
// tokens per second. It is not safe for concurrent use; a session's reader
// goroutine owns its buckets. The zero Bucket is off: it allows everything.
type Bucket struct {
	rate   float64 // tokens per second; 0: off
	burst  float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket of burst tokens refilled at rate per
// second. A rate of zero or less gives a bucket that is off. A burst below
// one is taken as one, so that the bucket can ever allow anything.
func NewBucket(rate float64, burst int) Bucket {
	if rate <= 0 {
		return Bucket{}
	}
	b := float64(max(burst, 1))
	return Bucket{rate: rate, burst: b, tokens: b}
}

// Off reports whether the bucket allows everything.
func (b *Bucket) Off() bool { return b.rate <= 0 }

// refill adds the tokens earned since the last call.
func (b *Bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.last = now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// Allow takes one token if there is one.
func (b *Bucket) Allow(now time.Time) bool { return b.AllowN(now, 1) }

// AllowN takes n tokens if there are that many; otherwise it takes none.
func (b *Bucket) AllowN(now time.Time, n float64) bool {
	if b.rate <= 0 {
		return true
	}
	b.refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Spend takes n tokens whether or not the bucket holds them, going into
// debt, and returns how long it takes until the bucket is out of debt:
// zero when it is not in debt. A shaper calls it after reading n bytes and
// waits that long before it reads again, so that nothing is dropped and
// the long-run rate is the bucket's.
func (b *Bucket) Spend(now time.Time, n float64) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.refill(now)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// full reports whether the bucket has refilled completely by now: it then
// holds no information and a keyed set may forget it.
func (b *Bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// Shared is a Bucket safe for concurrent use, for a limit of a whole node.
type Shared struct {
	mu sync.Mutex
	b  Bucket
}

// NewShared returns a Shared bucket; see NewBucket.
func NewShared(rate float64, burst int) *Shared { return &Shared{b: NewBucket(rate, burst)} }

// Allow takes one token if there is one.
func (s *Shared) Allow(now time.Time) bool {
	if s.b.Off() {
		return true
	}
	s.mu.Lock()
	ok := s.b.Allow(now)
	s.mu.Unlock()
	return ok
}

// MaxKeys bounds the keys a Keyed, Counter or Failures set remembers. When
// it is reached and nothing can be forgotten, a new key is not tracked and
// its request is allowed: the limits protect the service, and refusing
// everyone new would be the outage they are meant to prevent.
const MaxKeys = 1 << 18

// sweepEvery is how often a keyed set forgets what no longer matters.
const sweepEvery = 10 * time.Second

// Keyed is one token bucket per key (an IP address, say), safe for
// concurrent use. Buckets that refilled completely are forgotten.
type Keyed[K comparable] struct {
	rate  float64
	burst int

	mu        sync.Mutex
	buckets   map[K]*Bucket
	lastSweep time.Time
}

// NewKeyed returns a Keyed set of buckets; a rate of zero or less is off.
func NewKeyed[K comparable](rate float64, burst int) *Keyed[K] {
	return &Keyed[K]{rate: rate, burst: burst, buckets: make(map[K]*Bucket)}
}

// Allow takes one token from key's bucket if it holds one.
func (k *Keyed[K]) Allow(key K, now time.Time) bool {
	if k.rate <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) >= sweepEvery {
		k.lastSweep = now
		for key, b := range k.buckets {
			if b.full(now) {
				delete(k.buckets, key)
			}
		}
	}
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= MaxKeys {
			return true
		}
		nb := NewBucket(k.rate, k.burst)
		b = &nb
		k.buckets[key] = b
	}
	return b.Allow(now)
}

// Len is the number of keys remembered.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// Counter counts what each key holds now (open connections per IP
// address, say), safe for concurrent use.
type Counter[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
}

// NewCounter returns an empty Counter.
func NewCounter[K comparable]() *Counter[K] { return &Counter[K]{n: make(map[K]int)} }

// Acquire counts one more for key unless key already holds max; a max of
// zero or less means no limit. Every Acquire that returned true must be
// matched by one Release.
func (c *Counter[K]) Acquire(key K, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n[key]
	if max > 0 && n >= max {
		return false
	}
	c.n[key] = n + 1
	return true
}

// Release counts one less for key.
func (c *Counter[K]) Release(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch n := c.n[key]; {
	case n > 1:
		c.n[key] = n - 1
	default:
		delete(c.n, key)
	}
}

// Count is what key holds now.
func (c *Counter[K]) Count(key K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Failures counts failed attempts per key within a window and locks a key
// out for a period once it reaches the limit, safe for concurrent use. The
// window is fixed: it starts at the first failure and the count starts
// again after it.
type Failures[K comparable] struct {
	limit   int
	window  time.Duration
	lockout time.Duration

	mu        sync.Mutex
	keys      map[K]*failureState
	lastSweep time.Time
}

type failureState struct {
	count  int
	start  time.Time // of the window
	locked time.Time // locked out until then; zero when not locked
}

// NewFailures returns a tracker that locks a key out for lockout once it
// failed limit times within window. A limit of zero or less is off.
func NewFailures[K comparable](limit int, window, lockout time.Duration) *Failures[K] {
	return &Failures[K]{limit: limit, window: window, lockout: lockout, keys: make(map[K]*failureState)}
}

// Off reports whether the tracker never locks anything out.
func (f *Failures[K]) Off() bool { return f.limit <= 0 }

// Locked reports whether key is locked out at now, and until when.
func (f *Failures[K]) Locked(key K, now time.Time) (bool, time.Time) {
	if f.limit <= 0 {
		return false, time.Time{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.keys[key]
	if st == nil || st.locked.IsZero() {
		return false, time.Time{}
	}
	if !now.Before(st.locked) {
		delete(f.keys, key)
		return false, time.Time{}
	}
	return true, st.locked
}

// Fail records a failed attempt of key at now. It reports whether this
// failure started a lockout. Failures of a key already locked out are not
// counted: the lockout ends after its period whatever the key does
// meanwhile.
func (f *Failures[K]) Fail(key K, now time.Time) bool {
	if f.limit <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweep(now)
	st := f.keys[key]
	if st == nil {
		if len(f.keys) >= MaxKeys {
			return false
		}
		st = &failureState{start: now}
		f.keys[key] = st
	}
	if !st.locked.IsZero() {
		if now.Before(st.locked) {
			return false
		}
		*st = failureState{start: now}
	}
	if now.Sub(st.start) >= f.window {
		st.count, st.start = 0, now
	}
	st.count++
	if st.count < f.limit {
		return false
	}
	st.locked = now.Add(f.lockout)
	return true
}

// Forget clears key's failures (an account that logged in).
func (f *Failures[K]) Forget(key K) {
	if f.limit <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.keys[key]; st != nil && st.locked.IsZero() {
		delete(f.keys, key)
	}
}

// sweep forgets keys whose window and lockout are over; f.mu is held.
func (f *Failures[K]) sweep(now time.Time) {
	if now.Sub(f.lastSweep) < sweepEvery {
		return
	}
	f.lastSweep = now
	for k, st := range f.keys {
		if (st.locked.IsZero() && now.Sub(st.start) >= f.window) || (!st.locked.IsZero() && !now.Before(st.locked)) {
			delete(f.keys, k)
		}
	}
}

// Len is the number of keys remembered.
func (f *Failures[K]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

// IPv6Prefix is the length of the prefix an IPv6 address is counted
// under. A /64 is what one site or one host usually gets, and a host can
// use any address in it without asking anyone, so counting single IPv6
// addresses would let one client take 2^64 budgets.
const IPv6Prefix = 64

// IPKey is the key a remote address is counted under: the IPv4 address
// (an IPv4-mapped IPv6 address counts as the IPv4 address), or the
// address with everything past its first IPv6Prefix bits cleared. It
// returns the zero Addr for an address that is not IP (a pipe in a test).
func IPKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if a == nil {
			return netip.Addr{}
		}
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		ip = ap.Addr()
	}
	return KeyOf(ip)
}

// KeyOf is IPKey for an address already parsed.
func KeyOf(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, err := ip.Prefix(IPv6Prefix)
		if err == nil {
			return p.Addr()
		}
	}
	return ip
}

// Gate lets through at most one event per interval and counts the rest,
// so that a log line about a limit that bites a thousand times a second is
// written once a second with the number it stands for. Safe for
// concurrent use; the zero Gate lets everything through.
type Gate struct {
	every      time.Duration
	last       atomic.Int64 // unix nanoseconds of the last event let through
	suppressed atomic.Uint64
}

// NewGate returns a Gate that lets one event through per every.
func NewGate(every time.Duration) *Gate { return &Gate{every: every} }

// Pass reports whether the event at now may be logged and, if so, how many
// events were held back since the last one that passed.
func (g *Gate) Pass(now time.Time) (bool, uint64) {
	n := now.UnixNano()
	last := g.last.Load()
	if g.every > 0 && last != 0 && n-last < int64(g.every) {
		g.suppressed.Add(1)
		return false, 0
	}
	if !g.last.CompareAndSwap(last, n) {
		// Another goroutine passed this very moment.
		g.suppressed.Add(1)
		return false, 0
	}
	return true, g.suppressed.Swap(0)
}
