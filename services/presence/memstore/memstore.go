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
}

type shard struct {
	mu sync.RWMutex
	// accounts maps a bare JID to its sessions by resourcepart. An account
	// with no session left is deleted, so the map does not grow with every
	// account that ever connected.
	accounts map[jid.JID]map[string]presence.Session
}

var _ presence.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	s := &Store{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].accounts = make(map[jid.JID]map[string]presence.Session)
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
		return nil, nil
	}
	sessions[res] = clone(sess)
	if bound {
		// old is no longer in the map, so the caller may have it as is.
		return []presence.Session{old}, nil
	}
	return nil, nil
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
	if cur, ok := sessions[res]; !ok || cur.ID != sessionID {
		return false, nil
	}
	delete(sessions, res)
	if len(sessions) == 0 {
		delete(sh.accounts, bare)
	}
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
