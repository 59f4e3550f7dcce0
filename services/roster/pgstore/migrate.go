package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The schema's versions, one file each: NNNN_name.sql brings the schema to
// version NNNN. Released files are never edited, only added to, because
// databases out there already ran them.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the embedded set, checked once: a bad file name or a gap
// is a build mistake that every test run shows.
var migrations = mustLoadMigrations(migrationFiles, "migrations")

// SchemaVersion is the schema version this program needs and Migrate
// brings a database to.
func SchemaVersion() int { return len(migrations) }

func mustLoadMigrations(fsys fs.FS, dir string) []migration {
	ms, err := loadMigrations(fsys, dir)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads dir's .sql files and checks that their versions run
// 1, 2, 3... without a gap or a repeat.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("pgstore: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: migration file %q is not named NNNN_name.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("pgstore: migration file %q has version %d, want %d", name, v, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("pgstore: migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("pgstore: no migrations in %s", dir)
	}
	return ms, nil
}

// Migrate brings the schema at dsn (in the schema WithSchema names, created
// when missing) up to SchemaVersion, over one connection of its own, and
// returns. It is what a migrate command or a Kubernetes Job runs before the
// roster pods start with SkipMigrations; Open does the same by default.
// Running it again, or from several processes at once, is safe. Only ctx
// bounds it: a migration may take long, and so may waiting for another
// process's. WithQueryTimeout sets only the connect timeout here.
func Migrate(ctx context.Context, dsn string, opts ...Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	cfg, err := poolConfig(dsn, o)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := migrate(ctx, conn, o.schema); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// migrate applies the versions the schema has not seen, and records them in
// schema_migrations, in one transaction: the upgrade is all or nothing.
// The transaction first takes an advisory lock that belongs to the schema,
// so that roster pods starting together queue there; each later one finds
// the work done. The lock goes with the transaction, also when the
// connection dies.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit

	lock := migrationLockKey(conn.Config().RuntimeParams["search_path"])
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %q: %w", schema, err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: version %d, this program knows %d", ErrSchemaNewer, current, len(migrations))
	}
	for _, m := range migrations[current:] {
		// Without arguments, Exec uses the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
	}
	return tx.Commit(ctx)
}

// schemaVersion reads the version the schema is at; a schema that was never
// migrated is at 0.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUndefinedTable {
		return 0, nil
	}
	return v, err
}

// migrationLockKey is the advisory lock of one schema's migrations: a hash
// of a fixed prefix and the connection's search_path, so that stores in
// different schemas of one database migrate side by side.
func migrationLockKey(searchPath string) int64 {
	h := fnv.New64a()
	h.Write([]byte("switchboard roster migrations\x00"))
	h.Write([]byte(searchPath))
	return int64(h.Sum64())
}
