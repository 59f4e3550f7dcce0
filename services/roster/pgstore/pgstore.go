// Package pgstore is the roster store of a cluster: accounts in Postgres,
// through a pgx connection pool, shared by every roster pod.
//
// # Schema
//
// The schema is versioned by the numbered .sql files in migrations/,
// embedded in the binary. Open applies the missing ones (unless told
// SkipMigrations), and so does Migrate, for a migrate command or a
// Kubernetes Job. Both take a Postgres advisory lock first, so pods starting
// together do not race; see migrate for how.
//
// # Time limits and failures
//
// Every call runs under a deadline: the caller's, or the query timeout
// (WithQueryTimeout, DefaultQueryTimeout) when that comes first. A call
// whose connection turns out to be dead (Postgres restarted, a network cut
// that is over now) is tried once more on a fresh connection when that
// cannot apply a change twice: reads always, transactions when the failure
// came before COMMIT. Errors are the roster package's sentinels where one
// fits (a unique violation on the account's key is
// roster.ErrAccountExists); anything else is wrapped with "pgstore:" and
// the roster service answers it with Unavailable, which c2s turns into
// <temporary-auth-failure/>. The pool reconnects by itself: a store outlives
// an outage of Postgres without being reopened.
//
// # DSN
//
// Open takes any DSN pgx accepts, URL or key=value, including pgxpool's
// pool_max_conns and friends. A DSN without application_name gets
// "switchboard-roster", so that pg_stat_activity shows who is connected.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// SQLSTATE codes the store tells apart
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	codeUniqueViolation = "23505"
	codeUndefinedTable  = "42P01"
)

// accountsKey is the primary key constraint of accounts, whose violation
// means the JID is taken; Postgres names it after the table.
const accountsKey = "accounts_pkey"

// Store is a roster.Store in Postgres. It is safe for concurrent use, also
// by other processes sharing the database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

var _ roster.Store = (*Store)(nil)

// Open connects a pool to dsn and, unless SkipMigrations is given, brings
// the schema up to SchemaVersion; with SkipMigrations it checks that the
// schema is there. Either way, an unreachable server fails Open, with the
// connection error. It refuses a schema newer than this program
// (ErrSchemaNewer).
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := poolConfig(dsn, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	s := &Store{pool: pool, timeout: o.queryTimeout}
	if err := s.prepareSchema(ctx, o); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	return s, nil
}

func (s *Store) prepareSchema(ctx context.Context, o options) error {
	if o.migrate {
		return s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			return migrate(ctx, c.Conn(), o.schema)
		})
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := schemaVersion(ctx, s.pool)
	switch {
	case err != nil:
		return fmt.Errorf("read the schema version: %w", err)
	case v < len(migrations):
		return fmt.Errorf("%w: version %d, this program needs %d", ErrSchemaOutdated, v, len(migrations))
	case v > len(migrations):
		return fmt.Errorf("%w: version %d, this program knows %d", ErrSchemaNewer, v, len(migrations))
	}
	return nil
}

// poolConfig parses dsn and applies the options to every connection.
func poolConfig(dsn string, o options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message shows the DSN with its password masked.
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	cc := cfg.ConnConfig
	if o.schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{o.schema}.Sanitize()
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "switchboard-roster"
	}
	if cc.ConnectTimeout == 0 {
		// Dialing a server that does not answer must not outlast a call.
		cc.ConnectTimeout = o.queryTimeout
	}
	return cfg, nil
}

// Close closes every connection of the pool; it waits for calls in flight.
// It returns no error (pgx reports none) and has one for the likeness with
// sqlitestore.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that Postgres answers within the query timeout, for readiness
// probes.
func (s *Store) Ping(ctx context.Context) error {
	return s.read(ctx, func(ctx context.Context) error { return s.pool.Ping(ctx) })
}

// CreateAccount implements roster.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a roster.Account) error {
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		digest, realm := digestColumns(a.Credentials)
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (jid, disabled, digest_md5, digest_md5_realm, created)
			VALUES ($1, $2, $3, $4, $5)`,
			a.JID, a.Disabled, digest, realm, time.UnixMilli(a.Created.UnixMilli())); err != nil {
			return err
		}
		return insertScram(ctx, tx, a.JID, a.Scram)
	})
}

// Account implements roster.Accounts. One joined query reads the account
// and its keys from a single snapshot.
func (s *Store) Account(ctx context.Context, jid string) (roster.Account, error) {
	var a roster.Account
	err := s.read(ctx, func(ctx context.Context) error {
		a = roster.Account{JID: jid}
		rows, err := s.pool.Query(ctx, `SELECT a.disabled, a.digest_md5, a.digest_md5_realm, a.created,
				c.hash, c.salt, c.iterations, c.stored_key, c.server_key
			FROM accounts a LEFT JOIN scram_credentials c ON c.jid = a.jid
			WHERE a.jid = $1 ORDER BY c.hash`, jid)
		if err != nil {
			return err
		}
		defer rows.Close()
		found := false
		for rows.Next() {
			var (
				realm      *string
				hash       *string
				iterations *int32
				k          sasl.ScramKeys
			)
			if err := rows.Scan(&a.Disabled, &a.DigestMD5, &realm, &a.Created,
				&hash, &k.Salt, &iterations, &k.StoredKey, &k.ServerKey); err != nil {
				return err
			}
			found = true
			if realm != nil {
				a.DigestRealm = *realm
			}
			if hash != nil {
				k.Hash = *hash
				k.Iterations = int(*iterations)
				a.Scram = append(a.Scram, k)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !found {
			return roster.ErrAccountNotFound
		}
		return nil
	})
	if err != nil {
		return roster.Account{}, err
	}
	return a, nil
}

// SetCredentials implements roster.Accounts. The UPDATE locks the account's
// row, so concurrent changes of one account's keys queue instead of mixing.
func (s *Store) SetCredentials(ctx context.Context, jid string, c roster.Credentials) error {
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		digest, realm := digestColumns(c)
		tag, err := tx.Exec(ctx, `UPDATE accounts SET digest_md5 = $1, digest_md5_realm = $2 WHERE jid = $3`,
			digest, realm, jid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return roster.ErrAccountNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM scram_credentials WHERE jid = $1`, jid); err != nil {
			return err
		}
		return insertScram(ctx, tx, jid, c.Scram)
	})
}

// SetDisabled implements roster.Accounts.
func (s *Store) SetDisabled(ctx context.Context, jid string, disabled bool) error {
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET disabled = $1 WHERE jid = $2`, disabled, jid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return roster.ErrAccountNotFound
		}
		return nil
	})
}

// DeleteAccount implements roster.Accounts. The keys go with the account
// (ON DELETE CASCADE).
func (s *Store) DeleteAccount(ctx context.Context, jid string) error {
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE jid = $1`, jid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return roster.ErrAccountNotFound
		}
		return nil
	})
}

// ListAccounts implements roster.Accounts. It walks the primary key from
// q.After; the domain is matched on the JID's tail, since the domainpart is
// all that follows the one '@' of a bare account JID.
func (s *Store) ListAccounts(ctx context.Context, q roster.AccountQuery) ([]roster.Account, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("pgstore: ListAccounts limit %d, want at least 1", q.Limit)
	}
	var out []roster.Account
	err := s.read(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, `SELECT jid, disabled, created FROM accounts
			WHERE jid > $1 AND ($2 = '' OR right(jid, length($2) + 1) = '@' || $2)
			ORDER BY jid LIMIT $3`, q.After, q.Domain, q.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a roster.Account
			if err := rows.Scan(&a.JID, &a.Disabled, &a.Created); err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insertScram stores keys in one statement, one row per array element.
func insertScram(ctx context.Context, tx pgx.Tx, jid string, keys []sasl.ScramKeys) error {
	if len(keys) == 0 {
		return nil
	}
	var (
		hashes     = make([]string, len(keys))
		salts      = make([][]byte, len(keys))
		iterations = make([]int32, len(keys))
		stored     = make([][]byte, len(keys))
		server     = make([][]byte, len(keys))
	)
	for i, k := range keys {
		if k.Iterations < 0 || k.Iterations > math.MaxInt32 {
			return fmt.Errorf("pgstore: %s iteration count %d does not fit the schema", k.Hash, k.Iterations)
		}
		hashes[i], salts[i], iterations[i], stored[i], server[i] = k.Hash, k.Salt, int32(k.Iterations), k.StoredKey, k.ServerKey
	}
	_, err := tx.Exec(ctx, `INSERT INTO scram_credentials (jid, hash, salt, iterations, stored_key, server_key)
		SELECT $1, k.hash, k.salt, k.iterations, k.stored_key, k.server_key
		FROM unnest($2::text[], $3::bytea[], $4::integer[], $5::bytea[], $6::bytea[])
			AS k (hash, salt, iterations, stored_key, server_key)`,
		jid, hashes, salts, iterations, stored, server)
	if err != nil {
		return fmt.Errorf("store SCRAM keys: %w", err)
	}
	return nil
}

// digestColumns returns the DIGEST-MD5 columns: both NULL without a hash,
// so that a realm never outlives its hash.
func digestColumns(c roster.Credentials) (digest []byte, realm *string) {
	if len(c.DigestMD5) == 0 {
		return nil, nil
	}
	return c.DigestMD5, &c.DigestRealm
}

// read runs fn, a call that changes nothing, under the query timeout, and
// once more when the first attempt failed on its connection.
func (s *Store) read(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(ctx)
	if connectionFailed(ctx, err) {
		s.pool.Reset()
		err = fn(ctx)
	}
	return mapError(err)
}

// write runs fn in a transaction under the query timeout and commits it
// when fn succeeds. When the connection fails before COMMIT is sent, the
// server rolls the transaction back, so it is tried once more; a failure
// during COMMIT leaves its outcome unknown and is returned.
func (s *Store) write(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	committing, err := s.inTx(ctx, fn)
	if !committing && connectionFailed(ctx, err) {
		s.pool.Reset()
		_, err = s.inTx(ctx, fn)
	}
	return mapError(err)
}

func (s *Store) inTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) (committing bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	if err := fn(ctx, tx); err != nil {
		// Rollback on a live connection; on a dead one, or once ctx has
		// ended, pgx closes the connection instead, which rolls back too.
		tx.Rollback(ctx)
		return false, err
	}
	return true, tx.Commit(ctx)
}

// connectionFailed reports whether err came from the connection rather
// than from Postgres or the store, while ctx leaves time for a retry.
//
// A pooled connection that died since its last use (Postgres restarted, a
// network cut) fails only when it is used, and its idle siblings most
// likely died with it. So the callers drop them all (pool.Reset) before
// their one retry, which then gets a fresh connection instead of the next
// dead one.
func connectionFailed(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	switch {
	case err == nil, ctx.Err() != nil, errors.As(err, &pgErr),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, roster.ErrAccountNotFound), errors.Is(err, roster.ErrAccountExists):
		return false
	}
	if _, ok := errors.AsType[*fnError](err); ok {
		return false
	}
	return true
}

// mapError turns Postgres's errors into the roster package's where one
// fits, and marks the rest as this store's.
func mapError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil, errors.Is(err, roster.ErrAccountNotFound), errors.Is(err, roster.ErrAccountExists):
		return err
	}
	if _, ok := errors.AsType[*fnError](err); ok {
		return err // the caller's own error, unwrapped by the method
	}
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == accountsKey:
		return roster.ErrAccountExists
	}
	return fmt.Errorf("pgstore: %w", err)
}
