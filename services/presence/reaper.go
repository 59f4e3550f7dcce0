package presence

import (
	"context"
	"time"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// DefaultReapInterval is how often a Reaper looks for dead nodes. With
// c2s heartbeats of a 5 s TTL, a node's sessions leave the registry at
// most TTL plus this interval (plus the reap itself) after its last
// heartbeat: 7 s, within the 10 s the design promises.
const DefaultReapInterval = 2 * time.Second

// Reaper removes the sessions of c2s nodes whose heartbeat expired and
// announces them like DropNode does. Every presence pod may run one: the
// store hands each removed session to one reaper only.
type Reaper struct {
	s        *Service
	interval time.Duration
}

// Reaper returns the service's reaper; it does nothing until Run.
func (s *Service) Reaper() *Reaper {
	return &Reaper{s: s, interval: s.reapInterval}
}

// Run reaps at once and then every interval until ctx is done, and
// returns nil then. A failed reap is logged and tried again at the next
// tick; the sessions it did remove before failing are announced.
func (r *Reaper) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.Reap(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Reap runs one pass: it removes the sessions of every dead node,
// announces them, and returns how many it removed.
func (r *Reaper) Reap(ctx context.Context) int {
	removed, err := r.s.store.ReapDeadNodes(ctx)
	if err != nil && ctx.Err() == nil {
		r.s.log.WarnContext(ctx, "reaping dead nodes failed", "err", err)
	}
	// Announced with a context of their own: a reaper stopping must
	// still report what it has removed.
	r.s.announce(context.WithoutCancel(ctx), presencev1.SessionsRemoved_REASON_NODE_EXPIRED, removed)
	return len(removed)
}
