package router

import (
	"sync"
	"sync/atomic"
	"time"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// This file holds the session cache: the answers of the registry's Lookup
// for bare JIDs, kept so that routing a chat message to a known recipient
// needs no gRPC call. The presence service announces every change of an
// account's sessions on the PresenceChanged subject and each router
// forgets that account (watch.go); the cache is only on while that
// subscription is known to be live.
//
// What keeps a cached answer from being stale:
//
//   - Events. An event is published after the registry has the change, so
//     a lookup that starts after the event arrived reads the change.
//   - Fills in flight. A lookup that started before an event for its key
//     arrived may carry the state before the change; begin and end count
//     the events seen meanwhile, and such an answer is used but not kept.
//   - Reconnects and dropped events. While the subscription may be missing
//     events (the NATS connection is down, or the client dropped messages
//     for a slow subscriber) the cache is flushed and turned off until the
//     subscription is confirmed live again.
//   - Age. An entry lives at most the cache's TTL, for the events that are
//     lost for good (a presence pod that dies between a change and its
//     publish).
//
// And what a stale answer may cost: a delivery to a session that has gone
// comes back as undeliverable (by c2s, or by NATS when the node is gone)
// and is routed again with a fresh lookup (lookupFresh); an answer that
// would bounce a stanza or store it offline because a resource seems
// missing is checked against the registry first (route.go). What remains
// is a delivery to a bound resource whose availability or priority just
// changed, within the time an event takes to arrive.

// DefaultSessionCacheSize is a reasonable Config.SessionCacheSize: at most
// this many accounts are cached, the least recently used leaving first.
// An entry costs a few hundred bytes plus the last presence of each of its
// sessions.
const DefaultSessionCacheSize = 100_000

// DefaultSessionCacheTTL is the age at which a cached answer is asked
// again when Config.SessionCacheTTL is zero.
const DefaultSessionCacheTTL = 30 * time.Second

// sessionCache maps prepared bare JIDs to the sessions the registry gave
// for them. Its methods are safe for concurrent use and do nothing on a
// nil *sessionCache (the cache is off).
type sessionCache struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	on      bool
	epoch   uint64 // changes on every flush: fills begun before are not kept
	entries map[string]*cacheEntry
	lru     cacheEntry // sentinel: lru.next is the most recently used
	fills   map[string]*fill

	hits, misses, stale, invalidations, flushes atomic.Uint64
}

type cacheEntry struct {
	key        string
	sessions   []*presencev1.Session // shared: never modified
	expires    time.Time
	prev, next *cacheEntry
}

// fill counts the lookups in flight for one key and the events for it
// seen while any was.
type fill struct {
	n      int
	events uint64
}

// fillToken is what begin gives and end takes.
type fillToken struct {
	key    string
	f      *fill
	epoch  uint64
	events uint64
}

func newSessionCache(max int, ttl time.Duration) *sessionCache {
	if max <= 0 {
		return nil
	}
	c := &sessionCache{
		max:     max,
		ttl:     ttl,
		now:     time.Now,
		entries: make(map[string]*cacheEntry),
		fills:   make(map[string]*fill),
	}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// get returns the cached sessions of key; ok is false when there is no
// fresh entry (or the cache is off). The slice and the sessions are
// shared: the caller must not modify them.
func (c *sessionCache) get(key string) (sessions []*presencev1.Session, ok bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && c.now().After(e.expires) {
		c.remove(e)
		e = nil
	}
	if e == nil {
		c.mu.Unlock()
		c.misses.Add(1)
		return nil, false
	}
	c.unlink(e)
	c.pushFront(e)
	c.mu.Unlock()
	c.hits.Add(1)
	return e.sessions, true
}

// begin starts a fill of key: call it before asking the registry, and end
// with the answer.
func (c *sessionCache) begin(key string) fillToken {
	if c == nil {
		return fillToken{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return fillToken{}
	}
	f := c.fills[key]
	if f == nil {
		f = &fill{}
		c.fills[key] = f
	}
	f.n++
	return fillToken{key: key, f: f, epoch: c.epoch, events: f.events}
}

// end finishes the fill t. With ok set, sessions (the registry's answer,
// which the cache then shares) is kept unless an event for the key or a
// flush came since begin.
func (c *sessionCache) end(t fillToken, sessions []*presencev1.Session, ok bool) {
	if c == nil || t.f == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.f.n--
	if t.f.n == 0 && c.fills[t.key] == t.f {
		delete(c.fills, t.key)
	}
	if !ok {
		return
	}
	if !c.on || c.epoch != t.epoch || t.f.events != t.events {
		c.stale.Add(1)
		return
	}
	if e := c.entries[t.key]; e != nil {
		c.remove(e)
	}
	e := &cacheEntry{key: t.key, sessions: sessions, expires: c.now().Add(c.ttl)}
	c.entries[t.key] = e
	c.pushFront(e)
	for len(c.entries) > c.max {
		c.remove(c.lru.prev)
	}
}

// invalidate forgets key, and the answers of lookups of it in flight.
func (c *sessionCache) invalidate(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		c.remove(e)
	}
	if f := c.fills[key]; f != nil {
		f.events++
	}
	c.invalidations.Add(1)
}

// flush forgets everything, and the answers of every lookup in flight.
func (c *sessionCache) flush() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *sessionCache) flushLocked() {
	clear(c.entries)
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	c.epoch++
	c.flushes.Add(1)
}

// setOn turns the cache on or off; either way it starts empty.
func (c *sessionCache) setOn(on bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.on = on
}

// isOn reports whether the cache keeps answers.
func (c *sessionCache) isOn() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on
}

// len returns the number of entries (for tests).
func (c *sessionCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *sessionCache) remove(e *cacheEntry) {
	c.unlink(e)
	delete(c.entries, e.key)
}

func (c *sessionCache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *sessionCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}
