package presence

import (
	"context"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// measuredStore measures every call to the store it wraps (Redis or
// memory): latency by operation, and failures. A method the wrapper does
// not list passes through the embedded Store unmeasured.
type measuredStore struct {
	Store
	m *metrics.Ops
}

func (s measuredStore) observe(op string, start time.Time, err *error) { s.m.Observe(op, start, *err) }

func (s measuredStore) Bind(ctx context.Context, sess Session) (replaced []Session, err error) {
	defer s.observe("bind", time.Now(), &err)
	return s.Store.Bind(ctx, sess)
}

func (s measuredStore) Unbind(ctx context.Context, full jid.JID, sessionID string) (removed bool, err error) {
	defer s.observe("unbind", time.Now(), &err)
	return s.Store.Unbind(ctx, full, sessionID)
}

func (s measuredStore) SetPresence(ctx context.Context, full jid.JID, sessionID string, available bool, priority int, raw []byte) (found bool, err error) {
	defer s.observe("set_presence", time.Now(), &err)
	return s.Store.SetPresence(ctx, full, sessionID, available, priority, raw)
}

func (s measuredStore) Lookup(ctx context.Context, j jid.JID) (ss []Session, err error) {
	defer s.observe("lookup", time.Now(), &err)
	return s.Store.Lookup(ctx, j)
}

func (s measuredStore) Heartbeat(ctx context.Context, node string, ttl time.Duration) (epoch uint64, err error) {
	defer s.observe("heartbeat", time.Now(), &err)
	return s.Store.Heartbeat(ctx, node, ttl)
}

func (s measuredStore) ReapDeadNodes(ctx context.Context) (removed []Session, err error) {
	defer s.observe("reap_dead_nodes", time.Now(), &err)
	return s.Store.ReapDeadNodes(ctx)
}

func (s measuredStore) DropNode(ctx context.Context, node string) (removed []Session, err error) {
	defer s.observe("drop_node", time.Now(), &err)
	return s.Store.DropNode(ctx, node)
}

func (s measuredStore) CountByNode(ctx context.Context) (n map[string]int, err error) {
	defer s.observe("count_by_node", time.Now(), &err)
	return s.Store.CountByNode(ctx)
}
