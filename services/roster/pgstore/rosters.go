package pgstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// lockOwner takes owner's account row for the rest of the transaction, so
// that changes of one account's roster and offline messages queue one
// behind the other (FOR NO KEY UPDATE does not block the foreign-key checks
// of other accounts' inserts), or returns ErrAccountNotFound.
func lockOwner(ctx context.Context, tx pgx.Tx, owner string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE jid = $1 FOR NO KEY UPDATE`, owner).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return roster.ErrAccountNotFound
	}
	return err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ownerExists returns ErrAccountNotFound when owner has no account.
func ownerExists(ctx context.Context, q querier, owner string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM accounts WHERE jid = $1`, owner).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return roster.ErrAccountNotFound
	}
	return err
}

type meta struct {
	epoch      string
	ver, floor int64
	found      bool
}

func readMeta(ctx context.Context, q querier, owner string) (meta, error) {
	var m meta
	err := q.QueryRow(ctx, `SELECT epoch, ver, floor FROM roster_meta WHERE owner = $1`, owner).Scan(&m.epoch, &m.ver, &m.floor)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta{}, nil
	}
	m.found = err == nil
	return m, err
}

const entryColumns = `contact, in_roster, name, groups, sub_to, sub_from, ask, approved, request`

func scanEntry(sc interface{ Scan(...any) error }, extra ...any) (roster.Entry, error) {
	var e roster.Entry
	if err := sc.Scan(append([]any{&e.Contact, &e.InRoster, &e.Name, &e.Groups, &e.To, &e.From, &e.PendingOut, &e.Approved, &e.Request}, extra...)...); err != nil {
		return roster.Entry{}, err
	}
	if len(e.Groups) == 0 {
		e.Groups = nil
	}
	e.PendingIn = e.Request != nil
	return e, nil
}

// readTx runs fn in a read-only repeatable-read transaction, so that its
// queries see one snapshot, with the store's retry on a dead connection.
func (s *Store) readTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return s.read(ctx, func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}

// Roster implements roster.Rosters.
func (s *Store) Roster(ctx context.Context, owner string) ([]roster.Item, roster.Version, error) {
	var (
		items []roster.Item
		ver   roster.Version
	)
	err := s.readTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		items = nil
		if err := ownerExists(ctx, tx, owner); err != nil {
			return err
		}
		m, err := readMeta(ctx, tx, owner)
		if err != nil {
			return err
		}
		ver = roster.Version{Epoch: m.epoch, N: m.ver}
		rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM roster_entries
			WHERE owner = $1 AND in_roster ORDER BY contact`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				return err
			}
			items = append(items, e.Item)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, roster.Version{}, err
	}
	return items, ver, nil
}

// Changes implements roster.Rosters.
func (s *Store) Changes(ctx context.Context, owner string, since roster.Version) ([]roster.Change, roster.Version, bool, error) {
	var (
		changes []roster.Change
		cur     roster.Version
		ok      bool
	)
	err := s.readTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		changes, ok = nil, false
		if err := ownerExists(ctx, tx, owner); err != nil {
			return err
		}
		m, err := readMeta(ctx, tx, owner)
		if err != nil {
			return err
		}
		cur = roster.Version{Epoch: m.epoch, N: m.ver}
		if since.Epoch != m.epoch || since.N > m.ver || since.N < m.floor {
			return nil
		}
		ok = true
		rows, err := tx.Query(ctx, `SELECT `+entryColumns+`, ver FROM roster_entries
			WHERE owner = $1 AND in_roster AND ver > $2
			UNION ALL
			SELECT contact, false, '', '{}', false, false, false, false, NULL, ver FROM roster_tombstones
			WHERE owner = $1 AND ver > $2
			ORDER BY ver`, owner, since.N)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c roster.Change
			e, err := scanEntry(rows, &c.Ver)
			if err != nil {
				return err
			}
			c.Item, c.Removed = e.Item, !e.InRoster
			if c.Removed {
				c.Item = roster.Item{Contact: e.Contact}
			}
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, roster.Version{}, false, err
	}
	return changes, cur, ok, nil
}

// UpdateEntry implements roster.Rosters.
func (s *Store) UpdateEntry(ctx context.Context, owner, contact string, fn func(roster.Entry) (roster.Entry, error)) (roster.Entry, roster.Version, error) {
	var (
		out roster.Entry
		ver roster.Version
	)
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		m, err := readMeta(ctx, tx, owner)
		if err != nil {
			return err
		}
		old, err := scanEntry(tx.QueryRow(ctx, `SELECT `+entryColumns+` FROM roster_entries
			WHERE owner = $1 AND contact = $2`, owner, contact))
		found := err == nil
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			old = roster.Entry{Item: roster.Item{Contact: contact}}
		case err != nil:
			return err
		}
		next, err := fn(cloneEntry(old))
		if err != nil {
			return &fnError{err}
		}
		next.Contact = contact
		next.PendingIn = next.Request != nil
		out = cloneEntry(next)
		ver = roster.Version{Epoch: m.epoch, N: m.ver}
		changed := !old.SameItem(next)
		if changed {
			if !m.found {
				m = meta{epoch: newEpoch(), found: true}
				if _, err := tx.Exec(ctx, `INSERT INTO roster_meta (owner, epoch, ver, floor) VALUES ($1, $2, 0, 0)`,
					owner, m.epoch); err != nil {
					return err
				}
			}
			m.ver++
			if _, err := tx.Exec(ctx, `UPDATE roster_meta SET ver = $1 WHERE owner = $2`, m.ver, owner); err != nil {
				return err
			}
			ver = roster.Version{Epoch: m.epoch, N: m.ver}
		}
		switch {
		case !next.InRoster && next.Request == nil:
			if found {
				if _, err := tx.Exec(ctx, `DELETE FROM roster_entries WHERE owner = $1 AND contact = $2`, owner, contact); err != nil {
					return err
				}
			}
		case !changed && found:
			// Only the request changed: the item, and its version, did not.
			if _, err := tx.Exec(ctx, `UPDATE roster_entries SET request = $3,
				request_seq = CASE WHEN $3::bytea IS NULL THEN NULL
					WHEN request IS NULL THEN (SELECT COALESCE(max(request_seq), 0) + 1 FROM roster_entries WHERE owner = $1)
					ELSE request_seq END
				WHERE owner = $1 AND contact = $2`, owner, contact, next.Request); err != nil {
				return err
			}
		default:
			groups := next.Groups
			if groups == nil {
				groups = []string{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO roster_entries AS e (owner, contact, in_roster, name, groups, sub_to, sub_from, ask, approved, request, request_seq, ver)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
					CASE WHEN $10::bytea IS NOT NULL THEN (SELECT COALESCE(max(request_seq), 0) + 1 FROM roster_entries WHERE owner = $1) END, $11)
				ON CONFLICT (owner, contact) DO UPDATE SET in_roster = excluded.in_roster, name = excluded.name,
					groups = excluded.groups, sub_to = excluded.sub_to, sub_from = excluded.sub_from, ask = excluded.ask,
					approved = excluded.approved, request = excluded.request,
					request_seq = CASE WHEN excluded.request IS NULL THEN NULL
						WHEN e.request IS NULL THEN excluded.request_seq ELSE e.request_seq END,
					ver = excluded.ver`,
				owner, contact, next.InRoster, next.Name, groups, next.To, next.From, next.PendingOut, next.Approved, next.Request, m.ver); err != nil {
				return err
			}
		}
		switch {
		case changed && next.InRoster:
			_, err = tx.Exec(ctx, `DELETE FROM roster_tombstones WHERE owner = $1 AND contact = $2`, owner, contact)
		case changed:
			err = addTombstone(ctx, tx, owner, contact, m.ver)
		}
		return err
	})
	if fe, ok := errors.AsType[*fnError](err); ok {
		return roster.Entry{}, roster.Version{}, fe.err
	}
	if err != nil {
		return roster.Entry{}, roster.Version{}, err
	}
	return out, ver, nil
}

// fnError carries the error of an UpdateEntry callback past the store's
// error mapping and retry, so that the caller gets it unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// addTombstone logs the removal of contact at version ver and keeps at most
// roster.ChangeLogLimit tombstones; the floor rises to the newest dropped.
func addTombstone(ctx context.Context, tx pgx.Tx, owner, contact string, ver int64) error {
	if _, err := tx.Exec(ctx, `INSERT INTO roster_tombstones (owner, contact, ver) VALUES ($1, $2, $3)
		ON CONFLICT (owner, contact) DO UPDATE SET ver = excluded.ver`, owner, contact, ver); err != nil {
		return err
	}
	var floor *int64
	if err := tx.QueryRow(ctx, `SELECT max(ver) FROM (SELECT ver FROM roster_tombstones WHERE owner = $1
		ORDER BY ver DESC OFFSET $2) AS old`, owner, roster.ChangeLogLimit).Scan(&floor); err != nil {
		return err
	}
	if floor == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM roster_tombstones WHERE owner = $1 AND ver <= $2`, owner, *floor); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE roster_meta SET floor = $1 WHERE owner = $2`, *floor, owner)
	return err
}

// Requests implements roster.Rosters.
func (s *Store) Requests(ctx context.Context, owner string) ([]roster.Entry, error) {
	var out []roster.Entry
	err := s.readTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = nil
		if err := ownerExists(ctx, tx, owner); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM roster_entries
			WHERE owner = $1 AND request IS NOT NULL ORDER BY request_seq`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// StoreOffline implements roster.Offline.
func (s *Store) StoreOffline(ctx context.Context, owner string, m roster.OfflineMessage, q roster.Quota) (int64, error) {
	var id int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		var (
			n     int
			bytes int64
		)
		if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(sum(length(stanza)), 0) FROM offline_messages WHERE owner = $1`,
			owner).Scan(&n, &bytes); err != nil {
			return err
		}
		if n+1 > q.Messages || bytes+int64(len(m.Stanza)) > q.Bytes {
			return &fnError{roster.ErrOfflineFull}
		}
		stanza := m.Stanza
		if stanza == nil {
			stanza = []byte{}
		}
		return tx.QueryRow(ctx, `INSERT INTO offline_messages (owner, stanza, stamp) VALUES ($1, $2, $3) RETURNING id`,
			owner, stanza, time.UnixMilli(m.Stamp.UnixMilli())).Scan(&id)
	})
	if fe, ok := errors.AsType[*fnError](err); ok {
		return 0, fe.err
	}
	return id, err
}

// FetchOffline implements roster.Offline.
func (s *Store) FetchOffline(ctx context.Context, owner string) ([]roster.OfflineMessage, error) {
	var out []roster.OfflineMessage
	err := s.readTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = nil
		if err := ownerExists(ctx, tx, owner); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, stanza, stamp FROM offline_messages WHERE owner = $1 ORDER BY id`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m roster.OfflineMessage
			if err := rows.Scan(&m.ID, &m.Stanza, &m.Stamp); err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteOffline implements roster.Offline.
func (s *Store) DeleteOffline(ctx context.Context, owner string, upTo int64) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM offline_messages WHERE owner = $1 AND id <= $2`, owner, upTo)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// ClaimOffline implements roster.Offline. The owner's row lock orders it
// after every other write to the box.
func (s *Store) ClaimOffline(ctx context.Context, owner string, now, until time.Time) ([]roster.OfflineMessage, error) {
	var out []roster.OfflineMessage
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = nil
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE offline_messages SET claimed_until = $3
			WHERE owner = $1 AND (claimed_until IS NULL OR claimed_until <= $2)
			RETURNING id, stanza, stamp`,
			owner, time.UnixMilli(now.UnixMilli()), time.UnixMilli(until.UnixMilli()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m roster.OfflineMessage
			if err := rows.Scan(&m.ID, &m.Stanza, &m.Stamp); err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b roster.OfflineMessage) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

// DeleteOfflineIDs implements roster.Offline.
func (s *Store) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		if ids == nil {
			ids = []int64{}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM offline_messages WHERE owner = $1 AND id = ANY($2)`, owner, ids)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

func cloneEntry(e roster.Entry) roster.Entry {
	if e.Groups != nil {
		e.Groups = append([]string(nil), e.Groups...)
	}
	if e.Request != nil {
		e.Request = append([]byte(nil), e.Request...)
	}
	return e
}

// newEpoch returns a fresh random roster epoch.
func newEpoch() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
