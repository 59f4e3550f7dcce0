package presence

import (
	"context"

	"google.golang.org/protobuf/proto"

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
