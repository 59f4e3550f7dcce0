package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// lockOwner checks that owner has an account. Every write transaction
// begins IMMEDIATE, so holding it already orders the caller after every
// other change of the database.
func lockOwner(ctx context.Context, tx *sql.Tx, owner string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE jid = ?`, owner).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return roster.ErrAccountNotFound
	}
	return err
}

// queryer is what reads need of a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ownerExists returns ErrAccountNotFound when owner has no account.
func ownerExists(ctx context.Context, q queryer, owner string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE jid = ?`, owner).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return roster.ErrAccountNotFound
	}
	return err
}

type meta struct {
	epoch      string
	ver, floor int64
	found      bool
}

func readMeta(ctx context.Context, q queryer, owner string) (meta, error) {
	var m meta
	err := q.QueryRowContext(ctx, `SELECT epoch, ver, floor FROM roster_meta WHERE owner = ?`, owner).Scan(&m.epoch, &m.ver, &m.floor)
	if errors.Is(err, sql.ErrNoRows) {
		return meta{}, nil
	}
	m.found = err == nil
	return m, err
}

const entryColumns = `contact, in_roster, name, groups, sub_to, sub_from, ask, approved, request`

func scanEntry(sc interface{ Scan(...any) error }) (roster.Entry, error) {
	var (
		e      roster.Entry
		groups string
	)
	if err := sc.Scan(&e.Contact, &e.InRoster, &e.Name, &groups, &e.To, &e.From, &e.PendingOut, &e.Approved, &e.Request); err != nil {
		return roster.Entry{}, err
	}
	if err := json.Unmarshal([]byte(groups), &e.Groups); err != nil {
		return roster.Entry{}, fmt.Errorf("groups of %s: %w", e.Contact, err)
	}
	if len(e.Groups) == 0 {
		e.Groups = nil
	}
	e.PendingIn = e.Request != nil
	return e, nil
}

// Roster implements roster.Rosters.
func (s *Store) Roster(ctx context.Context, owner string) ([]roster.Item, roster.Version, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, roster.Version{}, err
	}
	defer tx.Rollback()
	if err := ownerExists(ctx, tx, owner); err != nil {
		return nil, roster.Version{}, err
	}
	m, err := readMeta(ctx, tx, owner)
	if err != nil {
		return nil, roster.Version{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+` FROM roster_entries
		WHERE owner = ? AND in_roster ORDER BY contact`, owner)
	if err != nil {
		return nil, roster.Version{}, err
	}
	defer rows.Close()
	var items []roster.Item
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, roster.Version{}, err
		}
		items = append(items, e.Item)
	}
	if err := rows.Err(); err != nil {
		return nil, roster.Version{}, err
	}
	return items, roster.Version{Epoch: m.epoch, N: m.ver}, nil
}

// Changes implements roster.Rosters.
func (s *Store) Changes(ctx context.Context, owner string, since roster.Version) ([]roster.Change, roster.Version, bool, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, roster.Version{}, false, err
	}
	defer tx.Rollback()
	if err := ownerExists(ctx, tx, owner); err != nil {
		return nil, roster.Version{}, false, err
	}
	m, err := readMeta(ctx, tx, owner)
	if err != nil {
		return nil, roster.Version{}, false, err
	}
	cur := roster.Version{Epoch: m.epoch, N: m.ver}
	if since.Epoch != m.epoch || since.N > m.ver || since.N < m.floor {
		return nil, cur, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+`, ver FROM roster_entries
		WHERE owner = ? AND in_roster AND ver > ?
		UNION ALL
		SELECT contact, 0, '', '[]', 0, 0, 0, 0, NULL, ver FROM roster_tombstones
		WHERE owner = ? AND ver > ?
		ORDER BY ver`, owner, since.N, owner, since.N)
	if err != nil {
		return nil, roster.Version{}, false, err
	}
	defer rows.Close()
	var changes []roster.Change
	for rows.Next() {
		var (
			c      roster.Change
			e      roster.Entry
			groups string
		)
		if err := rows.Scan(&e.Contact, &e.InRoster, &e.Name, &groups, &e.To, &e.From, &e.PendingOut, &e.Approved, &e.Request, &c.Ver); err != nil {
			return nil, roster.Version{}, false, err
		}
		if err := json.Unmarshal([]byte(groups), &e.Groups); err != nil {
			return nil, roster.Version{}, false, err
		}
		if len(e.Groups) == 0 {
			e.Groups = nil
		}
		e.PendingIn = e.Request != nil
		c.Item, c.Removed = e.Item, !e.InRoster
		if c.Removed {
			c.Item = roster.Item{Contact: e.Contact}
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, roster.Version{}, false, err
	}
	return changes, cur, true, nil
}

// UpdateEntry implements roster.Rosters.
func (s *Store) UpdateEntry(ctx context.Context, owner, contact string, fn func(roster.Entry) (roster.Entry, error)) (roster.Entry, roster.Version, error) {
	var (
		out roster.Entry
		ver roster.Version
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		m, err := readMeta(ctx, tx, owner)
		if err != nil {
			return err
		}
		old, err := scanEntry(tx.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM roster_entries
			WHERE owner = ? AND contact = ?`, owner, contact))
		found := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = roster.Entry{Item: roster.Item{Contact: contact}}
		case err != nil:
			return err
		}
		next, err := fn(cloneEntry(old))
		if err != nil {
			return err
		}
		next.Contact = contact
		next.PendingIn = next.Request != nil
		out = cloneEntry(next)
		ver = roster.Version{Epoch: m.epoch, N: m.ver}
		changed := !old.SameItem(next)
		if changed {
			if !m.found {
				m = meta{epoch: newEpoch(), found: true}
				if _, err := tx.ExecContext(ctx, `INSERT INTO roster_meta (owner, epoch, ver, floor) VALUES (?, ?, 0, 0)`,
					owner, m.epoch); err != nil {
					return err
				}
			}
			m.ver++
			if _, err := tx.ExecContext(ctx, `UPDATE roster_meta SET ver = ? WHERE owner = ?`, m.ver, owner); err != nil {
				return err
			}
			ver = roster.Version{Epoch: m.epoch, N: m.ver}
		}
		if !next.InRoster && next.Request == nil {
			if found {
				if _, err := tx.ExecContext(ctx, `DELETE FROM roster_entries WHERE owner = ? AND contact = ?`, owner, contact); err != nil {
					return err
				}
			}
		} else if err := writeEntry(ctx, tx, owner, old, next, found, changed, m.ver); err != nil {
			return err
		}
		switch {
		case changed && next.InRoster:
			_, err = tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE owner = ? AND contact = ?`, owner, contact)
		case changed:
			err = addTombstone(ctx, tx, owner, contact, m.ver)
		}
		return err
	})
	if err != nil {
		return roster.Entry{}, roster.Version{}, err
	}
	return out, ver, nil
}

func writeEntry(ctx context.Context, tx *sql.Tx, owner string, old, next roster.Entry, found, changed bool, ver int64) error {
	groups := next.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	if !changed && found {
		// Only the request changed: the item, and so its version, did not.
		_, err := tx.ExecContext(ctx, `UPDATE roster_entries SET request = ?,
			request_seq = CASE WHEN ? THEN (SELECT COALESCE(MAX(request_seq), 0) + 1 FROM roster_entries WHERE owner = ?) ELSE request_seq END
			WHERE owner = ? AND contact = ?`,
			next.Request, old.Request == nil && next.Request != nil, owner, owner, next.Contact)
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO roster_entries (owner, contact, in_roster, name, groups, sub_to, sub_from, ask, approved, request, request_seq, ver)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			CASE WHEN ? THEN (SELECT COALESCE(MAX(request_seq), 0) + 1 FROM roster_entries WHERE owner = ?) END, ?)
		ON CONFLICT (owner, contact) DO UPDATE SET in_roster = excluded.in_roster, name = excluded.name,
			groups = excluded.groups, sub_to = excluded.sub_to, sub_from = excluded.sub_from, ask = excluded.ask,
			approved = excluded.approved, request = excluded.request,
			request_seq = CASE WHEN excluded.request IS NULL THEN NULL
				WHEN roster_entries.request IS NULL THEN excluded.request_seq ELSE roster_entries.request_seq END,
			ver = excluded.ver`,
		owner, next.Contact, next.InRoster, next.Name, string(gj), next.To, next.From, next.PendingOut, next.Approved, next.Request,
		next.Request != nil, owner, ver)
	return err
}

// addTombstone logs the removal of contact at version ver, and keeps at
// most roster.ChangeLogLimit tombstones: the floor rises to the newest one
// dropped, so that older versions get the whole roster.
func addTombstone(ctx context.Context, tx *sql.Tx, owner, contact string, ver int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO roster_tombstones (owner, contact, ver) VALUES (?, ?, ?)
		ON CONFLICT (owner, contact) DO UPDATE SET ver = excluded.ver`, owner, contact, ver); err != nil {
		return err
	}
	var floor sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(ver) FROM (SELECT ver FROM roster_tombstones WHERE owner = ?
		ORDER BY ver DESC LIMIT -1 OFFSET ?)`, owner, roster.ChangeLogLimit).Scan(&floor); err != nil {
		return err
	}
	if !floor.Valid {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE owner = ? AND ver <= ?`, owner, floor.Int64); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE roster_meta SET floor = ? WHERE owner = ?`, floor.Int64, owner)
	return err
}

// Requests implements roster.Rosters.
func (s *Store) Requests(ctx context.Context, owner string) ([]roster.Entry, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := ownerExists(ctx, tx, owner); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+` FROM roster_entries
		WHERE owner = ? AND request IS NOT NULL ORDER BY request_seq`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []roster.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// StoreOffline implements roster.Offline.
func (s *Store) StoreOffline(ctx context.Context, owner string, m roster.OfflineMessage, q roster.Quota) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		var (
			n     int
			bytes int64
		)
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(stanza)), 0) FROM offline_messages WHERE owner = ?`,
			owner).Scan(&n, &bytes); err != nil {
			return err
		}
		if n+1 > q.Messages || bytes+int64(len(m.Stanza)) > q.Bytes {
			return roster.ErrOfflineFull
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (owner, stanza, stamp_unix_ms) VALUES (?, ?, ?)`,
			owner, nonNil(m.Stanza), m.Stamp.UnixMilli())
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// FetchOffline implements roster.Offline.
func (s *Store) FetchOffline(ctx context.Context, owner string) ([]roster.OfflineMessage, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := ownerExists(ctx, tx, owner); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, stanza, stamp_unix_ms FROM offline_messages WHERE owner = ? ORDER BY id`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []roster.OfflineMessage
	for rows.Next() {
		var (
			m     roster.OfflineMessage
			stamp int64
		)
		if err := rows.Scan(&m.ID, &m.Stanza, &stamp); err != nil {
			return nil, err
		}
		m.Stamp = time.UnixMilli(stamp)
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteOffline implements roster.Offline.
func (s *Store) DeleteOffline(ctx context.Context, owner string, upTo int64) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE owner = ? AND id <= ?`, owner, upTo)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// ClaimOffline implements roster.Offline. The write transaction orders it
// after every other write to the box.
func (s *Store) ClaimOffline(ctx context.Context, owner string, now, until time.Time) ([]roster.OfflineMessage, error) {
	var out []roster.OfflineMessage
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, stanza, stamp_unix_ms FROM offline_messages
			WHERE owner = ? AND (claimed_until_unix_ms IS NULL OR claimed_until_unix_ms <= ?) ORDER BY id`,
			owner, now.UnixMilli())
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				m     roster.OfflineMessage
				stamp int64
			)
			if err := rows.Scan(&m.ID, &m.Stanza, &stamp); err != nil {
				rows.Close()
				return err
			}
			m.Stamp = time.UnixMilli(stamp)
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE offline_messages SET claimed_until_unix_ms = ? WHERE id = ?`,
				until.UnixMilli(), m.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOfflineIDs implements roster.Offline.
func (s *Store) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE owner = ? AND id = ?`, owner, id)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
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

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// newEpoch returns a fresh random roster epoch.
func newEpoch() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
