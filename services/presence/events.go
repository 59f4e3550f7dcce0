package presence

import (
	"context"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// Publisher sends a message on a bus subject; *nats.Conn satisfies it.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// eventBatch is the most sessions one SessionsRemoved event carries, which
// keeps an event of a large node well under NATS's default 1 MiB payload.
const eventBatch = 500

// announce logs sessions the registry removed without their node's
// Unbind and publishes them in SessionsRemoved events. A failed publish is
// logged and not retried: the sessions are gone from the registry either
// way, and what is lost is the unavailable presence their contacts would
// have got.
func (s *Service) announce(ctx context.Context, reason presencev1.SessionsRemoved_Reason, removed []Session) {
	if len(removed) == 0 {
		return
	}
	s.changedSessions(ctx, removed)
	nodes := map[string]int{}
	for _, r := range removed {
		nodes[r.Node]++
		s.log.DebugContext(ctx, "session removed", "reason", reason.String(), "jid", r.JID.String(), "node", r.Node, "session", r.ID)
	}
	for node, n := range nodes {
		s.log.InfoContext(ctx, "sessions of a node removed", "reason", reason.String(), "node", node, "sessions", n)
	}
	if s.events == nil {
		return
	}
	subject := s.subjects.SessionsRemoved()
	for batch := range chunks(removed, eventBatch) {
		ev := &presencev1.SessionsRemoved{Reason: reason}
		for _, r := range batch {
			ev.Sessions = append(ev.Sessions, toProto(r))
		}
		data, err := proto.Marshal(ev)
		if err == nil {
			err = s.events.Publish(subject, data)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "announcing removed sessions failed", "subject", subject, "sessions", len(batch), "err", err)
		}
	}
}

// changedBatch is the most bare JIDs one PresenceChanged event names.
const changedBatch = 500

// changed tells the routers, on Subjects.PresenceChanged(), that the
// sessions of the accounts bare (prepared bare JIDs) changed, so that they
// forget what they cached of them. It is called after the store has the
// change, also when the store call failed (it may have changed something
// before failing: a needless event only costs a router a registry lookup).
// A failed publish is logged: the routers' cache entries expire on their
// own, and a delivery to a session that is gone comes back to them.
func (s *Service) changed(ctx context.Context, bare ...string) {
	if s.events == nil || len(bare) == 0 {
		return
	}
	subject := s.subjects.PresenceChanged()
	for batch := range chunks(bare, changedBatch) {
		if err := s.events.Publish(subject, bus.EncodeChanged(batch...)); err != nil {
			s.log.WarnContext(ctx, "announcing changed sessions failed", "subject", subject, "accounts", len(batch), "err", err)
		}
	}
}

// changedSessions announces the accounts of sessions the registry removed
// (see changed), each once.
func (s *Service) changedSessions(ctx context.Context, removed []Session) {
	bare := make([]string, 0, len(removed))
	for _, r := range removed {
		bare = append(bare, r.JID.Bare().String())
	}
	slices.Sort(bare)
	s.changed(ctx, slices.Compact(bare)...)
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
