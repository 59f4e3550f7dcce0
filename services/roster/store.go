package roster

import (
	"context"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// Store is the roster service's durable state: one interface per aggregate.
// Later aggregates (rosters, subscriptions, offline messages) join it here.
//
// Stores take JIDs as the normalised strings the service produced with the
// jid package and compare them byte for byte; they never parse or validate
// addresses.
type Store interface {
	Accounts
}

// Accounts keeps accounts keyed by bare JID. Implementations must be safe
// for concurrent use, also by other processes sharing the same database
// (`switchboard user add` writes while the server runs).
type Accounts interface {
	// CreateAccount stores a new account, or returns ErrAccountExists and
	// changes nothing when the JID is taken.
	CreateAccount(ctx context.Context, a Account) error
	// Account returns the account of jid, or ErrAccountNotFound.
	Account(ctx context.Context, jid string) (Account, error)
	// SetCredentials replaces all keys of an account, SCRAM and DIGEST-MD5
	// alike, or returns ErrAccountNotFound.
	SetCredentials(ctx context.Context, jid string, c Credentials) error
	// SetDisabled sets the disabled flag, or returns ErrAccountNotFound.
	SetDisabled(ctx context.Context, jid string, disabled bool) error
	// DeleteAccount removes an account and its keys, or returns
	// ErrAccountNotFound.
	DeleteAccount(ctx context.Context, jid string) error
}

// Account is one stored account. There is deliberately no password field:
// only keys derived from it are kept.
type Account struct {
	JID string // normalised bare JID
	Credentials
	Disabled bool
	Created  time.Time // kept to the millisecond
}

// Credentials are the keys derived from an account's password.
type Credentials struct {
	// Scram holds at most one entry per hash; stores return them sorted by
	// Hash.
	Scram []sasl.ScramKeys
	// DigestMD5 is the RFC 2831 H(username:realm:password), only while the
	// legacy DIGEST-MD5 option is on. DigestRealm is kept only with it.
	DigestMD5   []byte
	DigestRealm string
}
