// Package sqlitestore is the roster store of a single node: one SQLite file
// through modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with a busy timeout, so another process,
// such as `switchboard user add`, can write while the server runs: readers
// never block, and writers queue for up to busyTimeout instead of failing.
// Every transaction begins IMMEDIATE, taking the write lock up front; a
// deferred one that upgrades later could hit a lock conflict that waiting
// cannot resolve.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// busyTimeout is how long a statement waits for another connection's or
// process's write lock before it fails.
const busyTimeout = 5 * time.Second

// Store is a roster.Store in one SQLite file. It is safe for concurrent
// use, also with other processes opening the same file.
type Store struct {
	db *sql.DB
}

var _ roster.Store = (*Store)(nil)

// Open opens or creates the database at path and brings its schema up to
// date. It refuses a database whose schema is newer than this code.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlitestore: empty database path")
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := connect(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: %s: %w", path, err)
	}
	return s, nil
}

// dsn builds a file: URI, so that any path works (SQLite decodes the
// percent-escapes), with the settings every pooled connection needs.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// connect opens the first connection, which switches a new file to WAL.
// That switch fails with SQLITE_BUSY at once, without the busy handler,
// when another process opens the new file at the same moment (SQLite
// refuses to wait there because the two could deadlock), so it is retried
// here for up to busyTimeout.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrate applies the migrations the database has not seen, and records
// their versions, in one immediate transaction: the upgrade is all or
// nothing, and processes opening a new file at once queue for the write
// lock (a deferred transaction upgrading its lock could fail at once
// instead of waiting), so the later ones find the work done.
func (s *Store) migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version         INTEGER NOT NULL PRIMARY KEY,
			applied_unix_ms INTEGER NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d)", current, len(migrations))
		}
		for i := current; i < len(migrations); i++ {
			for _, stmt := range migrations[i] {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_unix_ms) VALUES (?, ?)`,
				i+1, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction and commits it when fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CreateAccount implements roster.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a roster.Account) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		digest, realm := digestColumns(a.Credentials)
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (jid, disabled, digest_md5, digest_md5_realm, created_unix_ms)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (jid) DO NOTHING`,
			a.JID, a.Disabled, digest, realm, a.Created.UnixMilli())
		if err != nil {
			return err
		}
		if err := mustChange(res, roster.ErrAccountExists); err != nil {
			return err
		}
		return insertScram(ctx, tx, a.JID, a.Scram)
	})
}

// Account implements roster.Accounts. One joined query reads the account
// and its keys from a single snapshot.
func (s *Store) Account(ctx context.Context, jid string) (roster.Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.disabled, a.digest_md5, a.digest_md5_realm, a.created_unix_ms,
			c.hash, c.salt, c.iterations, c.stored_key, c.server_key
		FROM accounts a LEFT JOIN scram_credentials c ON c.jid = a.jid
		WHERE a.jid = ? ORDER BY c.hash`, jid)
	if err != nil {
		return roster.Account{}, err
	}
	defer rows.Close()
	a := roster.Account{JID: jid}
	found := false
	for rows.Next() {
		var (
			realm      sql.NullString
			created    int64
			hash       sql.NullString
			iterations sql.NullInt64
			k          sasl.ScramKeys
		)
		if err := rows.Scan(&a.Disabled, &a.DigestMD5, &realm, &created,
			&hash, &k.Salt, &iterations, &k.StoredKey, &k.ServerKey); err != nil {
			return roster.Account{}, err
		}
		found = true
		a.DigestRealm = realm.String
		a.Created = time.UnixMilli(created)
		if hash.Valid {
			k.Hash = hash.String
			k.Iterations = int(iterations.Int64)
			a.Scram = append(a.Scram, k)
		}
	}
	if err := rows.Err(); err != nil {
		return roster.Account{}, err
	}
	if !found {
		return roster.Account{}, roster.ErrAccountNotFound
	}
	return a, nil
}

// SetCredentials implements roster.Accounts.
func (s *Store) SetCredentials(ctx context.Context, jid string, c roster.Credentials) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		digest, realm := digestColumns(c)
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET digest_md5 = ?, digest_md5_realm = ? WHERE jid = ?`,
			digest, realm, jid)
		if err != nil {
			return err
		}
		if err := mustChange(res, roster.ErrAccountNotFound); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM scram_credentials WHERE jid = ?`, jid); err != nil {
			return err
		}
		return insertScram(ctx, tx, jid, c.Scram)
	})
}

// SetDisabled implements roster.Accounts.
func (s *Store) SetDisabled(ctx context.Context, jid string, disabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET disabled = ? WHERE jid = ?`, disabled, jid)
	if err != nil {
		return err
	}
	return mustChange(res, roster.ErrAccountNotFound)
}

// DeleteAccount implements roster.Accounts. The keys go with the account
// (ON DELETE CASCADE; every connection enables foreign keys).
func (s *Store) DeleteAccount(ctx context.Context, jid string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM accounts WHERE jid = ?`, jid)
	if err != nil {
		return err
	}
	return mustChange(res, roster.ErrAccountNotFound)
}

// ListAccounts implements roster.Accounts. It walks the primary key from
// q.After; the domain is matched on the JID's tail, since the domainpart is
// all that follows the one '@' of a bare account JID.
func (s *Store) ListAccounts(ctx context.Context, q roster.AccountQuery) ([]roster.Account, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("sqlitestore: ListAccounts limit %d, want at least 1", q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT jid, disabled, created_unix_ms FROM accounts
		WHERE jid > ?1 AND (?2 = '' OR substr(jid, -(length(?2) + 1)) = '@' || ?2)
		ORDER BY jid LIMIT ?3`, q.After, q.Domain, q.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []roster.Account
	for rows.Next() {
		var (
			a       roster.Account
			created int64
		)
		if err := rows.Scan(&a.JID, &a.Disabled, &created); err != nil {
			return nil, err
		}
		a.Created = time.UnixMilli(created)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func insertScram(ctx context.Context, tx *sql.Tx, jid string, keys []sasl.ScramKeys) error {
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scram_credentials (jid, hash, salt, iterations, stored_key, server_key)
			VALUES (?, ?, ?, ?, ?, ?)`, jid, k.Hash, k.Salt, k.Iterations, k.StoredKey, k.ServerKey); err != nil {
			return fmt.Errorf("store %s keys: %w", k.Hash, err)
		}
	}
	return nil
}

// digestColumns returns the DIGEST-MD5 columns: both NULL without a hash,
// so that a realm never outlives its hash.
func digestColumns(c roster.Credentials) (digest []byte, realm sql.NullString) {
	if len(c.DigestMD5) == 0 {
		return nil, sql.NullString{}
	}
	return c.DigestMD5, sql.NullString{String: c.DigestRealm, Valid: true}
}

// mustChange returns none when res changed no row.
func mustChange(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none
	}
	return nil
}
