package presence

import "errors"

// Errors of the presence service, all about malformed requests; the gRPC
// handlers turn them into InvalidArgument (a store may return them too,
// wrapped), and any other store error into Unavailable.
var (
	// ErrInvalidJID means an address is malformed, or is bare where a full
	// JID is needed, or has no localpart.
	ErrInvalidJID = errors.New("presence: invalid JID")
	// ErrInvalidSession means a session id or node name is missing.
	ErrInvalidSession = errors.New("presence: invalid session")
	// ErrInvalidPriority means a priority outside -128..127 (RFC 6121
	// section 4.7.2.3).
	ErrInvalidPriority = errors.New("presence: priority out of range")
	// ErrInvalidTTL means a heartbeat TTL that is not positive or longer
	// than MaxHeartbeatTTL.
	ErrInvalidTTL = errors.New("presence: invalid heartbeat TTL")
)
