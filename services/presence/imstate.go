package presence

import (
	"context"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// IMState is the per-session state of RFC 6121 that every router must
// see, whichever holds the sender's partition, and that must outlive a
// router: whether a session requested its roster (an "interested
// resource" for roster pushes, 2.1.6) and the targets of its directed
// presence (4.6), who get unavailable presence when it logs out.
//
// Sessions are named by full JID and session id, as in Store.
type IMState interface {
	// SetRosterRequested marks the session bound to full with id
	// sessionID as having requested its roster; Lookup then reports
	// Session.RosterRequested. found is false when no such session is
	// bound.
	SetRosterRequested(ctx context.Context, full jid.JID, sessionID string) (found bool, err error)
	// UpdateDirected adds target to the session's directed-presence
	// targets, or removes it. Targets are kept only for a bound session
	// (found); a session that is unbound, reaped or dropped keeps its
	// targets for DirectedRetention, for TakeDirected.
	UpdateDirected(ctx context.Context, full jid.JID, sessionID, target string, remove bool) (found bool, err error)
	// TakeDirected returns the session's targets, sorted, and forgets
	// them. The router calls it when it routes the session's unavailable
	// presence, which may come after the session was unbound (c2s unbinds
	// as it publishes that presence) or removed with its node.
	TakeDirected(ctx context.Context, full jid.JID, sessionID string) (targets []string, err error)
}

// DirectedRetention is how long the directed-presence targets of a
// session that left the registry are kept for TakeDirected: the time the
// unavailable presence of a closed or reaped session may take to be
// routed, router failover included.
const DirectedRetention = 10 * time.Minute

// MaxDirectedTargets bounds one session's directed-presence targets, so
// that a client cannot grow the registry without end; further targets
// are not remembered (and get no unavailable presence at logout).
const MaxDirectedTargets = 1000
