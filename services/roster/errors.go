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
	// ErrInvalidPage means a ListAccounts request has a page size out of
	// range or a page token this service did not hand out.
	ErrInvalidPage = errors.New("roster: invalid page request")

	// The roster set and remove errors of RFC 6121 sections 2.3.3 and
	// 2.5.3; each names the stanza error condition the router answers
	// with (Condition returns it).

	// ErrBadRequest: a roster set with other than one item, or an item
	// with the same group twice.
	ErrBadRequest = errors.New("roster: bad-request")
	// ErrNotAcceptable: an empty group, or a name or group longer than the
	// configured limit.
	ErrNotAcceptable = errors.New("roster: not-acceptable")
	// ErrForbidden: a roster set or get addressed to another account's
	// roster.
	ErrForbidden = errors.New("roster: forbidden")
	// ErrJIDMalformed: an item's jid is not a valid address, or an address
	// given for a subscription is not a bare JID.
	ErrJIDMalformed = errors.New("roster: jid-malformed")
	// ErrItemNotFound: a remove for a contact that is not in the roster.
	ErrItemNotFound = errors.New("roster: item-not-found")
	// ErrBadSubscription: a subscription event with an unknown direction
	// or type.
	ErrBadSubscription = errors.New("roster: not a subscription event")
	// ErrOfflineFull: the account's offline storage is at its quota
	// (messages or bytes); the message was not stored.
	ErrOfflineFull = errors.New("roster: offline storage full")
)

// Condition returns the RFC 6120 stanza error condition for an error of
// this package, or "" when err is not a client error (store trouble,
// which the router answers as internal-server-error or retries).
func Condition(err error) string {
	for _, c := range []struct {
		err  error
		cond string
	}{
		{ErrBadRequest, "bad-request"},
		{ErrNotAcceptable, "not-acceptable"},
		{ErrForbidden, "forbidden"},
		{ErrJIDMalformed, "jid-malformed"},
		{ErrInvalidJID, "jid-malformed"},
		{ErrItemNotFound, "item-not-found"},
		{ErrBadSubscription, "bad-request"},
		{ErrOfflineFull, "service-unavailable"},
		{ErrAccountNotFound, "service-unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.cond
		}
	}
	return ""
}
