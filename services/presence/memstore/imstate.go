package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// dirKey names a session's directed-presence targets.
type dirKey struct {
	full jid.JID
	id   string
}

type dirEntry struct {
	targets map[string]bool
	// gone is when the session left the registry; zero while bound.
	gone time.Time
}

// sweepEvery is how often a shard drops the targets of sessions that left
// more than presence.DirectedRetention ago.
const sweepEvery = time.Minute

// left starts the retention of a session's targets: it was unbound,
// reaped or dropped. The caller holds sh.mu.
func (sh *shard) left(full jid.JID, id string, now time.Time) {
	if e := sh.directed[dirKey{full, id}]; e != nil {
		e.gone = now
	}
	if now.Sub(sh.lastSweep) < sweepEvery {
		return
	}
	sh.lastSweep = now
	for k, e := range sh.directed {
		if !e.gone.IsZero() && now.Sub(e.gone) > presence.DirectedRetention {
			delete(sh.directed, k)
		}
	}
}

// bound reports whether the session is bound. The caller holds sh.mu.
func (sh *shard) bound(full jid.JID, id string) bool {
	cur, ok := sh.accounts[full.Bare()][full.Resourcepart()]
	return ok && cur.ID == id
}

// SetRosterRequested implements presence.IMState.
func (s *Store) SetRosterRequested(ctx context.Context, full jid.JID, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bare, res := full.Bare(), full.Resourcepart()
	sh := s.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.accounts[bare][res]
	if !ok || cur.ID != sessionID {
		return false, nil
	}
	cur.RosterRequested = true
	sh.accounts[bare][res] = cur
	return true, nil
}

// UpdateDirected implements presence.IMState.
func (s *Store) UpdateDirected(ctx context.Context, full jid.JID, sessionID, target string, remove bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sh := s.shard(full.Bare())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.bound(full, sessionID) {
		return false, nil
	}
	k := dirKey{full, sessionID}
	e := sh.directed[k]
	switch {
	case remove && e != nil:
		delete(e.targets, target)
	case !remove && e == nil:
		sh.directed[k] = &dirEntry{targets: map[string]bool{target: true}}
	case !remove && len(e.targets) < presence.MaxDirectedTargets:
		e.targets[target] = true
	}
	return true, nil
}

// TakeDirected implements presence.IMState.
func (s *Store) TakeDirected(ctx context.Context, full jid.JID, sessionID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := s.shard(full.Bare())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := dirKey{full, sessionID}
	e := sh.directed[k]
	delete(sh.directed, k)
	if e == nil {
		return nil, nil
	}
	out := make([]string, 0, len(e.targets))
	for t := range e.targets {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}
