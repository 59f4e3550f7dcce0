package presence

import (
	"context"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// Store is the session registry's state. Implementations must be safe for
// concurrent use. A session is identified by its full JID and its session
// id together: the id tells a session from the one that replaced it at the
// same full JID, so that a late Unbind or SetPresence of a replaced session
// never touches its successor.
type Store interface {
	// IMState is what the routers keep per session (imstate.go).
	IMState

	// Bind registers s, whose JID is full. A different session bound to the
	// same full JID is removed and returned (the caller closes it with a
	// <conflict/> stream error, RFC 6120 section 7.7.2.2). Binding the
	// session that is already bound, same id, changes nothing and replaces
	// nothing, so a retried Bind is harmless.
	Bind(ctx context.Context, s Session) (replaced []Session, err error)
	// Unbind removes the session bound to full if its id is sessionID, and
	// reports whether it did.
	Unbind(ctx context.Context, full jid.JID, sessionID string) (removed bool, err error)
	// SetPresence records availability, priority and the last presence
	// stanza of the session bound to full if its id is sessionID, and
	// reports whether it did.
	SetPresence(ctx context.Context, full jid.JID, sessionID string, available bool, priority int, raw []byte) (found bool, err error)
	// Lookup returns every session of a bare JID, sorted by resourcepart,
	// or the one session of a full JID; none is an empty result, not an
	// error.
	Lookup(ctx context.Context, j jid.JID) ([]Session, error)

	// Heartbeat records that node is alive until ttl from now, by the
	// store's clock, and returns the node's epoch. A node's sessions are
	// reaped only once the node has sent a heartbeat and then let it
	// expire; the sessions of a node that never sent one stay until they
	// are unbound. A heartbeat of an expired node that has not been reaped
	// yet revives it with its sessions.
	//
	// The epoch is a number that stays the same while the node's sessions
	// stay in the registry, and changes once any of them were removed by
	// ReapDeadNodes or DropNode. A node compares it with the epoch of its
	// previous heartbeat: when it differs, sessions bound before may be
	// gone, and the node binds them again (a Bind of a session still bound
	// changes nothing). Epochs of one store never repeat and are never 0.
	Heartbeat(ctx context.Context, node string, ttl time.Duration) (epoch uint64, err error)
	// ReapDeadNodes removes every session of the nodes whose heartbeat has
	// expired, forgets those nodes, and returns the removed sessions so
	// that the caller can announce them unavailable. Several callers may
	// reap at once, in one process or several: each removed session is
	// returned to exactly one of them. A Bind from a node after it was
	// reaped is kept only if the node sends a heartbeat before the next
	// reap.
	ReapDeadNodes(ctx context.Context) (removed []Session, err error)
	// DropNode removes every session of node whatever its heartbeat, as
	// for a node that shuts down cleanly or starts again under the same
	// name, forgets the node like ReapDeadNodes does, and returns the
	// removed sessions. Concurrent reaps and drops return each session
	// once.
	DropNode(ctx context.Context, node string) (removed []Session, err error)
	// CountByNode returns how many sessions each node has bound, for every
	// node with at least one: Bind, Unbind, a replacement, ReapDeadNodes
	// and DropNode are all reflected once they return.
	CountByNode(ctx context.Context) (map[string]int, error)
}

// TombstoneRetention is how long a store remembers a node it reaped or
// dropped, so that a late Bind from that node (sent before it learnt, or
// while Redis was out of reach) is reaped at the next reap unless the node
// sends a heartbeat, instead of staying forever behind a node nobody
// watches.
const TombstoneRetention = time.Hour

// Session is one bound resource.
type Session struct {
	JID          jid.JID // full JID
	Node         string  // the c2s node holding the stream
	ID           string  // session id, unique within the node
	Available    bool
	Priority     int    // -128..127
	LastPresence []byte // self-contained XML of the last presence stanza
	Bound        time.Time
	// RosterRequested: the session requested its roster (RFC 6121 2.1.6).
	RosterRequested bool
}
