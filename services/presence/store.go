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
}

// Session is one bound resource.
type Session struct {
	JID          jid.JID // full JID
	Node         string  // the c2s node holding the stream
	ID           string  // session id, unique within the node
	Available    bool
	Priority     int    // -128..127
	LastPresence []byte // self-contained XML of the last presence stanza
	Bound        time.Time
}
