package roster

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// Store is the roster service's durable state: one interface per aggregate.
//
// Stores take JIDs as the normalised strings the service produced with the
// jid package and compare them byte for byte; they never parse or validate
// addresses.
type Store interface {
	Accounts
	Rosters
	Offline
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
	// ListAccounts returns at most q.Limit accounts whose JID sorts after
	// q.After (byte order; "" starts at the beginning), in JID order, with
	// only JID, Disabled and Created filled in: a listing never carries
	// keys. With q.Domain set, only accounts of that domain are listed.
	ListAccounts(ctx context.Context, q AccountQuery) ([]Account, error)
}

// AccountQuery selects one page of ListAccounts.
type AccountQuery struct {
	Domain string // normalised domainpart; "" for every domain
	After  string // the last JID of the previous page; "" for the first
	Limit  int    // at least 1
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

// ChangeLogLimit is how many removals (tombstones) a store keeps per
// roster for incremental roster gets (RFC 6121 section 2.6). When more
// items are removed, the oldest tombstones go, and a get with a version
// older than the newest one dropped gets the whole roster instead.
const ChangeLogLimit = 256

// Item is one roster item as its owner sees it (RFC 6121 section 2.1.2).
type Item struct {
	Contact string   // normalised bare JID
	Name    string   // "" for none
	Groups  []string // in the order set; no duplicates, none empty
	State            // PendingIn is set when a request is stored
}

// Entry is all a store keeps about one contact of one account: the roster
// item, if the contact is in the roster, and a pending inbound
// subscription request. A request can exist without a roster item (RFC
// 6121 section 3.1.3: the request alone does not add the contact), and a
// pre-approval or an outbound request creates the item.
type Entry struct {
	Item
	// InRoster: the item is part of the roster (gets, pushes, versions).
	InRoster bool
	// Request is the inbound subscribe stanza exactly as received,
	// extension children included, while State.PendingIn; nil otherwise.
	Request []byte
}

// SameItem reports whether the roster item of e and o reads the same to a
// client: same presence in the roster, name, groups, subscription, ask and
// approved. A difference is what advances the roster version.
func (e Entry) SameItem(o Entry) bool {
	if e.InRoster != o.InRoster {
		return false
	}
	if !e.InRoster {
		return true
	}
	return e.Name == o.Name && slices.Equal(e.Groups, o.Groups) && !e.State.visible(o.State)
}

// Version is a roster version (RFC 6121 section 2.6). Epoch is chosen at
// random when an account's roster is first written, so that the versions
// of a deleted and re-created account never match the old ones; N grows
// by one with every change of an item.
type Version struct {
	Epoch string
	N     int64
}

// Change is one entry of a roster's change log: the item as it is now, or
// its removal.
type Change struct {
	Item    Item // only Contact is set for a removal
	Removed bool
	Ver     int64 // the version the change made
}

// Rosters keeps rosters, subscription states and pending subscription
// requests, and versions them. Every method that names an owner returns
// ErrAccountNotFound when the owner has no account; the entries of an
// account go with it.
type Rosters interface {
	// Roster returns the items in owner's roster, sorted by contact, and
	// the roster's version. A roster never written has Version{}.
	Roster(ctx context.Context, owner string) ([]Item, Version, error)
	// Changes returns the changes after version since, in the order they
	// were made, one per contact, and the current version. ok is false when
	// the store cannot tell what changed since then: since has another
	// epoch, is newer than the roster, or is older than the oldest
	// tombstone kept (ChangeLogLimit).
	Changes(ctx context.Context, owner string, since Version) (changes []Change, cur Version, ok bool, err error)
	// UpdateEntry reads the entry of (owner, contact), passes it to fn (a
	// zero Entry with Contact set when there is none) and stores what fn
	// returns, in one transaction ordered after every other change of
	// owner's entries. When the item changes (SameItem is false), the
	// version advances and the item or its removal is logged. An entry
	// neither in the roster nor with a request is deleted. fn must be
	// pure: a store may call it more than once. An error from fn is
	// returned unchanged and nothing is stored.
	UpdateEntry(ctx context.Context, owner, contact string, fn func(Entry) (Entry, error)) (Entry, Version, error)
	// Requests returns the entries that hold a pending inbound request,
	// in the order the requests were stored.
	Requests(ctx context.Context, owner string) ([]Entry, error)
}

// OfflineMessage is a stanza kept for an account with no available
// resource (XEP-0160).
type OfflineMessage struct {
	ID     int64     // assigned by the store, increasing per account
	Stanza []byte    // exactly as routed
	Stamp  time.Time // when the server took it, kept to the millisecond
}

// Quota bounds one account's offline storage.
type Quota struct {
	Messages int   // at most this many messages
	Bytes    int64 // and at most this many stanza bytes in all
}

// Offline keeps offline messages per account, in arrival order.
type Offline interface {
	// StoreOffline appends m (ID is ignored) unless the account would then
	// hold more than q allows, in which case it returns ErrOfflineFull and
	// stores nothing. It returns the new message's ID.
	StoreOffline(ctx context.Context, owner string, m OfflineMessage, q Quota) (int64, error)
	// FetchOffline returns owner's messages, oldest first.
	FetchOffline(ctx context.Context, owner string) ([]OfflineMessage, error)
	// DeleteOffline removes owner's messages with ID up to and including
	// upTo, and returns how many it removed.
	DeleteOffline(ctx context.Context, owner string, upTo int64) (int, error)
	// ClaimOffline returns owner's messages that carry no live claim
	// (none, or one that ends at or before now), oldest first, and claims
	// them until until, in one step: while a claim lives, no other call
	// returns the message. Deliverers that race for the same box thus
	// never both get a message; one that dies before deleting what it
	// claimed leaves it to be claimed again once the claim ends.
	ClaimOffline(ctx context.Context, owner string, now, until time.Time) ([]OfflineMessage, error)
	// DeleteOfflineIDs removes those of owner's messages whose ID is in
	// ids, claimed or not, and returns how many it removed.
	DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) (int, error)
}
