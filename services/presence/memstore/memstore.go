// Package memstore is the session registry of a single node: sessions in
// memory, gone when the process ends, which is also when their streams end.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// shardCount spreads accounts over independently locked maps so that
// binds and lookups of different accounts rarely wait for each other.
const shardCount = 64

// Store is a presence.Store in memory. It is safe for concurrent use. The
// sessions of an account sit together under its bare JID, so a lookup by
// bare JID costs as much as the account has sessions.
type Store struct {
	seed   maphash.Seed
	shards [shardCount]shard

	// nodesMu guards the node liveness state below. A reap or drop holds
	// it while it walks the shards, which makes it atomic with respect to
	// heartbeats and to other reaps and drops. Lock order: nodesMu before
	// any shard's mu.
	nodesMu sync.Mutex
	// live holds the nodes that sent a heartbeat, or that bound a session
	// after they were reaped.
	live map[string]node
	// dead holds when each node was reaped or dropped, for
	// presence.TombstoneRetention.
	dead  map[string]time.Time
	epoch uint64 // last epoch handed out
	now   func() time.Time
}

type node struct {
	expires time.Time // the zero time: expired
	epoch   uint64    // 0: none yet, the next heartbeat makes one
}

type shard struct {
	mu sync.RWMutex
	// accounts maps a bare JID to its sessions by resourcepart. An account
	// with no session left is deleted, so the map does not grow with every
	// account that ever connected.
	accounts map[jid.JID]map[string]presence.Session
	// directed holds the directed-presence targets of the shard's
	// sessions (imstate.go), with those of sessions that left.
	directed  map[dirKey]*dirEntry
	lastSweep time.Time
	// nodes counts the sessions in accounts by node, kept under the same
	// lock; a node whose count drops to zero is deleted.
	nodes map[string]int
}

// count adds d to node n's sessions in the shard.
func (sh *shard) count(n string, d int) {
	if c := sh.nodes[n] + d; c > 0 {
		sh.nodes[n] = c
	} else {
		delete(sh.nodes, n)
	}
}

var _ presence.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	s := &Store{
		seed: maphash.MakeSeed(),
		live: make(map[string]node),
		dead: make(map[string]time.Time),
		now:  time.Now,
	}
	for i := range s.shards {
		s.shards[i].accounts = make(map[jid.JID]map[string]presence.Session)
		s.shards[i].nodes = make(map[string]int)
		s.shards[i].directed = make(map[dirKey]*dirEntry)
	}
	return s
}

func (s *Store) shard(bare jid.JID) *shard {
	return &s.shards[maphash.Comparable(s.seed, bare)%shardCount]
}

// errBareJID is a caller's bug: the service only binds full JIDs.
var errBareJID = errors.New("memstore: Bind needs a full JID")

// Bind implements presence.Store.
func (s *Store) Bind(ctx context.Context, sess presence.Session) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sess.JID.IsBare() {
		return nil, errBareJID
	}
	replaced, changed := s.bind(sess)
	if changed {
		s.bindOnDeadNode(sess.Node)
	}
	return replaced, nil
}

// bind puts sess in its shard and reports whether that changed anything.
func (s *Store) bind(sess presence.Session) (replaced []presence.Session, changed bool) {
	bare, res := sess.JID.Bare(), sess.JID.Resourcepart()
	sh := s.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sessions := sh.accounts[bare]
	if sessions == nil {
		sessions = make(map[string]presence.Session)
		sh.accounts[bare] = sessions
	}
	old, bound := sessions[res]
	if bound && old.ID == sess.ID {
		return nil, false
	}
	sessions[res] = clone(sess)
	sh.count(sess.Node, 1)
	if bound {
		sh.count(old.Node, -1)
		sh.left(old.JID, old.ID, s.now())
		// old is no longer in the map, so the caller may have it as is.
		return []presence.Session{old}, true
	}
	return nil, true
}

// bindOnDeadNode makes a node that was reaped or dropped, and binds again
// without a heartbeat, due for the next reap. It runs after the session is
// in its shard: a reap that holds nodesMu meanwhile either removes the
// session or leaves the tombstone for this call to see.
func (s *Store) bindOnDeadNode(n string) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if _, dead := s.dead[n]; dead {
		delete(s.dead, n)
		s.live[n] = node{}
	}
}

// Unbind implements presence.Store.
func (s *Store) Unbind(ctx context.Context, full jid.JID, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bare, res := full.Bare(), full.Resourcepart()
	sh := s.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sessions := sh.accounts[bare]
	cur, ok := sessions[res]
	if !ok || cur.ID != sessionID {
		return false, nil
	}
	delete(sessions, res)
	sh.count(cur.Node, -1)
	if len(sessions) == 0 {
		delete(sh.accounts, bare)
	}
	sh.left(full, sessionID, s.now())
	return true, nil
}

// SetPresence implements presence.Store.
func (s *Store) SetPresence(ctx context.Context, full jid.JID, sessionID string, available bool, priority int, raw []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bare, res := full.Bare(), full.Resourcepart()
	sh := s.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sessions := sh.accounts[bare]
	cur, ok := sessions[res]
	if !ok || cur.ID != sessionID {
		return false, nil
	}
	cur.Available = available
	cur.Priority = priority
	cur.LastPresence = bytes.Clone(raw)
	sessions[res] = cur
	return true, nil
}

// Lookup implements presence.Store.
func (s *Store) Lookup(ctx context.Context, j jid.JID) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := s.shard(j.Bare())
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	sessions := sh.accounts[j.Bare()]
	if !j.IsBare() {
		if cur, ok := sessions[j.Resourcepart()]; ok {
			return []presence.Session{clone(cur)}, nil
		}
		return nil, nil
	}
	out := make([]presence.Session, 0, len(sessions))
	for _, cur := range sessions {
		out = append(out, clone(cur))
	}
	slices.SortFunc(out, func(a, b presence.Session) int {
		return strings.Compare(a.JID.Resourcepart(), b.JID.Resourcepart())
	})
	return out, nil
}

// clone copies a session so that neither the caller nor the store sees the
// other's later changes to LastPresence.
func clone(s presence.Session) presence.Session {
	s.LastPresence = bytes.Clone(s.LastPresence)
	return s
}

// Heartbeat implements presence.Store.
func (s *Store) Heartbeat(ctx context.Context, n string, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	st := s.live[n]
	if st.epoch == 0 {
		s.epoch++
		st.epoch = s.epoch
	}
	st.expires = s.now().Add(ttl)
	s.live[n] = st
	delete(s.dead, n)
	return st.epoch, nil
}

// ReapDeadNodes implements presence.Store.
func (s *Store) ReapDeadNodes(ctx context.Context) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	now := s.now()
	var removed []presence.Session
	for n, st := range s.live {
		if st.expires.Before(now) {
			removed = append(removed, s.dropLocked(n, now)...)
		}
	}
	for n, at := range s.dead {
		if now.Sub(at) > presence.TombstoneRetention {
			delete(s.dead, n)
		}
	}
	return removed, nil
}

// DropNode implements presence.Store.
func (s *Store) DropNode(ctx context.Context, n string) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	return s.dropLocked(n, s.now()), nil
}

// dropLocked removes the sessions of node n and marks it dead. It walks
// every account of the shards that count sessions of n: reaping is rare,
// and an index of sessions by node would cost every Bind and Unbind more
// than the per-shard count does.
func (s *Store) dropLocked(n string, now time.Time) []presence.Session {
	var removed []presence.Session
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.nodes[n] == 0 {
			// Nothing of n's here: skip the walk.
			sh.mu.Unlock()
			continue
		}
		for bare, sessions := range sh.accounts {
			for res, cur := range sessions {
				if cur.Node == n {
					removed = append(removed, cur)
					delete(sessions, res)
					sh.count(n, -1)
					sh.left(cur.JID, cur.ID, now)
				}
			}
			if len(sessions) == 0 {
				delete(sh.accounts, bare)
			}
		}
		sh.mu.Unlock()
	}
	delete(s.live, n)
	s.dead[n] = now
	return removed
}

// CountByNode implements presence.Store. It sums the shards' counts, one
// shard at a time: a count is exact for every session whose Bind, Unbind
// or drop returned before the call began.
func (s *Store) CountByNode(ctx context.Context) (map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]int)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for n, c := range sh.nodes {
			out[n] += c
		}
		sh.mu.RUnlock()
	}
	return out, nil
}
