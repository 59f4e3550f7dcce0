package pgstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/storetest"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) roster.Store {
		return openStore(t, testDSN(), newSchema(t))
	})
}

func TestEmbeddedMigrationsRunFromOneWithoutGaps(t *testing.T) {
	if SchemaVersion() < 1 {
		t.Fatalf("SchemaVersion() = %d, want at least 1", SchemaVersion())
	}
	for i, m := range migrations {
		if m.version != i+1 || m.sql == "" {
			t.Errorf("migrations[%d] = version %d (%s), %d bytes; want version %d with SQL", i, m.version, m.name, len(m.sql), i+1)
		}
	}
}

func TestMigrationFilesOutOfSequenceAreRefused(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": file("SELECT 1"), "m/0003_c.sql": file("SELECT 1")},
		"repeat":    {"m/0001_a.sql": file("SELECT 1"), "m/0001_b.sql": file("SELECT 1")},
		"no number": {"m/0001_a.sql": file("SELECT 1"), "m/second.sql": file("SELECT 1")},
		"zero":      {"m/0000_a.sql": file("SELECT 1")},
		"empty":     {"m/README": file("not SQL")},
	} {
		if ms, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loaded %d migrations, want an error", name, len(ms))
		}
	}
	ms, err := loadMigrations(fstest.MapFS{
		"m/0002_b.sql": file("SELECT 2"), "m/0001_a.sql": file("SELECT 1"), "m/notes.txt": file("skipped"),
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].name != "0001_a" || ms[1].sql != "SELECT 2" {
		t.Errorf("loadMigrations = %+v, %v; want 0001_a then 0002_b", ms, err)
	}
}

func TestMigrateTwiceAppliesEachVersionOnce(t *testing.T) {
	schema := newSchema(t)
	for i := range 2 {
		if err := Migrate(testContext(t), testDSN(), WithSchema(schema)); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
		wantAllVersionsOnce(t, appliedVersions(t, schema))
	}
	// And a store opened on it, which migrates too, finds a working schema.
	mustCreate(t, openStore(t, testDSN(), schema), account("juliet@example.com"))
	wantAllVersionsOnce(t, appliedVersions(t, schema))
}

// Roster pods starting together all migrate the same new schema: the
// advisory lock makes them take turns, and the schema itself, which none
// of them finds, is created once.
func TestConcurrentMigratesOfAMissingSchemaApplyEachVersionOnce(t *testing.T) {
	schema := schemaName(t)
	dropSchemaAtCleanup(t, schema)
	const migrators, openers = 6, 3
	errs := make(chan error, migrators+openers)
	stores := make(chan *Store, openers)
	var wg sync.WaitGroup
	for range migrators {
		wg.Go(func() { errs <- Migrate(testContext(t), testDSN(), WithSchema(schema)) })
	}
	for range openers {
		wg.Go(func() {
			s, err := Open(testContext(t), testDSN(), WithSchema(schema))
			if err == nil {
				stores <- s
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	close(stores)
	for s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	for err := range errs {
		if err != nil {
			t.Errorf("Migrate or Open: %v", err)
		}
	}
	wantAllVersionsOnce(t, appliedVersions(t, schema))
}

func TestOpenAndMigrateRefuseASchemaNewerThanTheyKnow(t *testing.T) {
	schema := newSchema(t)
	if err := Migrate(testContext(t), testDSN(), WithSchema(schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t).Exec(testContext(t),
		`INSERT INTO `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` (version, name) VALUES ($1, 'from the future')`,
		SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]Option{{WithSchema(schema)}, {WithSchema(schema), SkipMigrations()}} {
		s, err := Open(testContext(t), testDSN(), opts...)
		if !errors.Is(err, ErrSchemaNewer) {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(%d options) = %v, want ErrSchemaNewer", len(opts), err)
		}
	}
	if err := Migrate(testContext(t), testDSN(), WithSchema(schema)); !errors.Is(err, ErrSchemaNewer) {
		t.Errorf("Migrate = %v, want ErrSchemaNewer", err)
	}
}

// With SkipMigrations a roster pod leaves the schema to the migrate Job and
// refuses to start on a schema the Job has not brought up to date.
func TestOpenWithoutMigrationsNeedsAMigratedSchemaAndLeavesItAlone(t *testing.T) {
	schema := newSchema(t)
	s, err := Open(testContext(t), testDSN(), WithSchema(schema), SkipMigrations())
	if !errors.Is(err, ErrSchemaOutdated) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of an empty schema = %v, want ErrSchemaOutdated", err)
	}
	var tables int
	if err := admin(t).QueryRow(testContext(t),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("Open with SkipMigrations left %d tables in the schema, want none", tables)
	}
	if err := Migrate(testContext(t), testDSN(), WithSchema(schema)); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, openStore(t, testDSN(), schema, SkipMigrations()), account("juliet@example.com"))
}

func TestStoresInDifferentSchemasDoNotSeeEachOther(t *testing.T) {
	a := openStore(t, testDSN(), newSchema(t))
	b := openStore(t, testDSN(), newSchema(t))
	juliet := account("juliet@example.com")
	mustCreate(t, a, juliet)
	if _, err := b.Account(testContext(t), juliet.JID); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Fatalf("other schema's Account = %v, want ErrAccountNotFound", err)
	}
	// The same JID may exist in both, independently.
	other := account(juliet.JID)
	other.Disabled = true
	mustCreate(t, b, other)
	if err := a.DeleteAccount(testContext(t), juliet.JID); err != nil {
		t.Fatal(err)
	}
	got, err := b.Account(testContext(t), juliet.JID)
	if err != nil || !got.Disabled {
		t.Fatalf("other schema's account after a delete = %+v, %v; want it intact and disabled", got, err)
	}
}

func TestCreatingAnAccountWithTwoKeysOfOneHashIsAStoreErrorNotAccountExists(t *testing.T) {
	s := openStore(t, testDSN(), newSchema(t))
	a := account("juliet@example.com")
	a.Scram = append(a.Scram, a.Scram[0])
	err := s.CreateAccount(testContext(t), a)
	if err == nil || errors.Is(err, roster.ErrAccountExists) {
		t.Fatalf("CreateAccount with a repeated hash = %v, want a store error", err)
	}
	// All or nothing: the account row went with the failed keys.
	if _, err := s.Account(testContext(t), a.JID); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Account after the failed create = %v, want ErrAccountNotFound", err)
	}
}

// A call blocked inside Postgres (here by another session's lock) ends at
// the store's query timeout although its caller set no deadline, and the
// store works again once the lock is gone.
func TestQueryTimeoutEndsACallBlockedInPostgres(t *testing.T) {
	const timeout = 300 * time.Millisecond
	schema := newSchema(t)
	s := openStore(t, testDSN(), schema, WithQueryTimeout(timeout))
	mustCreate(t, s, account("juliet@example.com"))

	locker := admin(t)
	tx, err := locker.Begin(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(testContext(t), `LOCK TABLE `+pgx.Identifier{schema, "accounts"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(context.Context) error{
		"Account": func(ctx context.Context) error {
			_, err := s.Account(ctx, "juliet@example.com")
			return err
		},
		"SetDisabled": func(ctx context.Context) error { return s.SetDisabled(ctx, "juliet@example.com", true) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call(context.Background())
		elapsed := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while the table is locked = %v, want a deadline error", name, err)
		}
		// Slack for a loaded machine; without the timeout the call would
		// wait for the lock forever.
		if elapsed > timeout+2*time.Second {
			t.Errorf("%s took %v, want about %v", name, elapsed, timeout)
		}
	}
	if err := tx.Rollback(testContext(t)); err != nil {
		t.Fatal(err)
	}
	for name, call := range calls {
		if err := call(context.Background()); err != nil {
			t.Errorf("%s after the lock is gone: %v", name, err)
		}
	}
}

func TestCallerDeadlineShorterThanTheQueryTimeoutWins(t *testing.T) {
	schema := newSchema(t)
	s := openStore(t, testDSN(), schema, WithQueryTimeout(time.Minute))
	tx, err := admin(t).Begin(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(testContext(t))
	if _, err := tx.Exec(testContext(t), `LOCK TABLE `+pgx.Identifier{schema, "accounts"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Account(ctx, "juliet@example.com")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("Account = %v after %v, want the caller's deadline error after about 200ms", err, time.Since(start))
	}
}

func TestAccountWithoutScramKeysReadsBackWithNone(t *testing.T) {
	s := openStore(t, testDSN(), newSchema(t))
	a := roster.Account{JID: "juliet@example.com", Created: time.UnixMilli(1)}
	mustCreate(t, s, a)
	got, err := s.Account(testContext(t), a.JID)
	if err != nil || len(got.Scram) != 0 {
		t.Fatalf("Account = %+v, %v; want no SCRAM keys", got, err)
	}
	// And keys can be added later.
	if err := s.SetCredentials(testContext(t), a.JID, roster.Credentials{Scram: []sasl.ScramKeys{account("x@y").Scram[1]}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Account(testContext(t), a.JID); err != nil || len(got.Scram) != 1 || got.Scram[0].Hash != "SHA-256" {
		t.Fatalf("Account = %+v, %v; want one SHA-256 key", got, err)
	}
}
