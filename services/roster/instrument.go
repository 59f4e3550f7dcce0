package roster

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
)

// measuredStore measures every call to the store it wraps (Postgres or
// SQLite): latency by operation, and the failures of the backend. The
// answers the service expects (no such account, a full offline box, a
// roster rule refusing a change) are not failures. A method the wrapper
// does not list passes through the embedded Store unmeasured.
type measuredStore struct {
	Store
	m *metrics.Ops
}

// answers are the package's errors: outcomes of an operation rather than
// failures of the store.
var answers = []error{ErrAccountExists, ErrAccountNotFound, ErrInvalidJID, ErrInvalidPassword, ErrBadRequest,
	ErrNotAcceptable, ErrForbidden, ErrJIDMalformed, ErrItemNotFound, ErrBadSubscription, ErrOfflineFull}

// observe records operation op, started at start, ending with *err.
func (s measuredStore) observe(op string, start time.Time, err *error) {
	e := *err
	for _, a := range answers {
		if errors.Is(e, a) {
			e = nil
			break
		}
	}
	s.m.Observe(op, start, e)
}

func (s measuredStore) CreateAccount(ctx context.Context, a Account) (err error) {
	defer s.observe("create_account", time.Now(), &err)
	return s.Store.CreateAccount(ctx, a)
}

func (s measuredStore) Account(ctx context.Context, jid string) (a Account, err error) {
	defer s.observe("account", time.Now(), &err)
	return s.Store.Account(ctx, jid)
}

func (s measuredStore) SetCredentials(ctx context.Context, jid string, c Credentials) (err error) {
	defer s.observe("set_credentials", time.Now(), &err)
	return s.Store.SetCredentials(ctx, jid, c)
}

func (s measuredStore) SetDisabled(ctx context.Context, jid string, disabled bool) (err error) {
	defer s.observe("set_disabled", time.Now(), &err)
	return s.Store.SetDisabled(ctx, jid, disabled)
}

func (s measuredStore) DeleteAccount(ctx context.Context, jid string) (err error) {
	defer s.observe("delete_account", time.Now(), &err)
	return s.Store.DeleteAccount(ctx, jid)
}

func (s measuredStore) Roster(ctx context.Context, owner string) (items []Item, v Version, err error) {
	defer s.observe("roster", time.Now(), &err)
	return s.Store.Roster(ctx, owner)
}

func (s measuredStore) Changes(ctx context.Context, owner string, since Version) (changes []Change, cur Version, ok bool, err error) {
	defer s.observe("changes", time.Now(), &err)
	return s.Store.Changes(ctx, owner, since)
}

func (s measuredStore) UpdateEntry(ctx context.Context, owner, contact string, fn func(Entry) (Entry, error)) (e Entry, v Version, err error) {
	defer s.observe("update_entry", time.Now(), &err)
	return s.Store.UpdateEntry(ctx, owner, contact, fn)
}

func (s measuredStore) Requests(ctx context.Context, owner string) (es []Entry, err error) {
	defer s.observe("requests", time.Now(), &err)
	return s.Store.Requests(ctx, owner)
}

func (s measuredStore) StoreOffline(ctx context.Context, owner string, m OfflineMessage, q Quota) (id int64, err error) {
	defer s.observe("store_offline", time.Now(), &err)
	return s.Store.StoreOffline(ctx, owner, m, q)
}

func (s measuredStore) FetchOffline(ctx context.Context, owner string) (ms []OfflineMessage, err error) {
	defer s.observe("fetch_offline", time.Now(), &err)
	return s.Store.FetchOffline(ctx, owner)
}

func (s measuredStore) DeleteOffline(ctx context.Context, owner string, upTo int64) (n int, err error) {
	defer s.observe("delete_offline", time.Now(), &err)
	return s.Store.DeleteOffline(ctx, owner, upTo)
}

func (s measuredStore) ListAccounts(ctx context.Context, q AccountQuery) (as []Account, err error) {
	defer s.observe("list_accounts", time.Now(), &err)
	return s.Store.ListAccounts(ctx, q)
}

func (s measuredStore) ClaimOffline(ctx context.Context, owner string, now, until time.Time) (ms []OfflineMessage, err error) {
	defer s.observe("claim_offline", time.Now(), &err)
	return s.Store.ClaimOffline(ctx, owner, now, until)
}

func (s measuredStore) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) (n int, err error) {
	defer s.observe("delete_offline_ids", time.Now(), &err)
	return s.Store.DeleteOfflineIDs(ctx, owner, ids)
}
