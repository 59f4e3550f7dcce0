package roster

import "errors"

// Errors of the roster service. Stores return the account errors; the
// service adds the validation ones. The gRPC handlers turn each into a
// status code, and anything else into Unavailable.
var (
	// ErrAccountExists means the JID already has an account.
	ErrAccountExists = errors.New("roster: account already exists")
	// ErrAccountNotFound means the JID has no account.
	ErrAccountNotFound = errors.New("roster: no such account")
	// ErrInvalidJID means an address is malformed or not a bare account
	// address (localpart@domainpart). It wraps the jid package's error when
	// there is one.
	ErrInvalidJID = errors.New("roster: invalid account JID")
	// ErrInvalidPassword means a password is empty or cannot be prepared
	// for SCRAM (RFC 5802 requires SASLprep).
	ErrInvalidPassword = errors.New("roster: invalid password")
)
