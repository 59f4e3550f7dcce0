package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/storetest"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(testContext(t), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) roster.Store {
		return openAt(t, filepath.Join(t.TempDir(), "switchboard.db"))
	})
}

func account(jid string) roster.Account {
	k := func(hash string) sasl.ScramKeys {
		return sasl.ScramKeys{Hash: hash, Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte("stored"), ServerKey: []byte("server")}
	}
	return roster.Account{
		JID:         jid,
		Credentials: roster.Credentials{Scram: []sasl.ScramKeys{k("SHA-1"), k("SHA-256")}},
		Created:     time.Now(),
	}
}

func appliedVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.db.QueryContext(testContext(t), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestOpenRecordsEachMigrationOnceAcrossReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	for i := range 2 {
		s := openAt(t, path)
		vs := appliedVersions(t, s)
		if len(vs) != len(migrations) {
			t.Fatalf("open #%d: versions %v, want 1..%d", i+1, vs, len(migrations))
		}
		for j, v := range vs {
			if v != j+1 {
				t.Fatalf("open #%d: versions %v, want 1..%d", i+1, vs, len(migrations))
			}
		}
		s.Close()
	}
}

func TestAccountsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openAt(t, path)
	if err := s.CreateAccount(testContext(t), account("juliet@example.com")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := openAt(t, path).Account(testContext(t), "juliet@example.com"); err != nil {
		t.Fatalf("Account after reopen: %v", err)
	}
}

func TestDatabaseRunsInWALModeWithBusyTimeout(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "switchboard.db"))
	// Several connections at once, so that each pooled one is checked.
	ctx := testContext(t)
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var timeout, fk int
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || timeout != int(busyTimeout.Milliseconds()) || fk != 1 {
			t.Errorf("connection %d: journal_mode %q, busy_timeout %d, foreign_keys %d; want wal, %d, 1",
				i, mode, timeout, fk, busyTimeout.Milliseconds())
		}
	}
}

func TestOpenRefusesSchemaNewerThanItKnows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openAt(t, path)
	if _, err := s.db.ExecContext(testContext(t),
		`INSERT INTO schema_migrations (version, applied_unix_ms) VALUES (?, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(testContext(t), path)
	if err == nil {
		s2.Close()
		t.Fatal("Open of a database from a newer version succeeded, want an error")
	}
}

func TestOpenAcceptsPathsThatNeedEscaping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	s := openAt(t, path)
	if err := s.CreateAccount(testContext(t), account("juliet@example.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}

func TestOpenFailsOnUnusablePath(t *testing.T) {
	s, err := Open(testContext(t), t.TempDir()) // a directory
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory succeeded, want an error")
	}
}

// childEnv, when set, makes the test binary act as a second process that
// creates accounts in the database it names, standing in for
// `switchboard user add`; childCountEnv says how many.
const (
	childEnv      = "SQLITESTORE_CHILD_DB"
	childCountEnv = "SQLITESTORE_CHILD_N"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(path string) error {
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := range n {
		if err := s.CreateAccount(ctx, account(fmt.Sprintf("child%d@example.com", i))); err != nil {
			return fmt.Errorf("child CreateAccount %d: %w", i, err)
		}
	}
	return nil
}

func TestAnotherProcessWritesWhileServerWrites(t *testing.T) {
	const n = 40
	path := filepath.Join(t.TempDir(), "switchboard.db")
	server := openAt(t, path)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+path, childCountEnv+"="+strconv.Itoa(n))
	var child sync.WaitGroup
	var out []byte
	var childErr error
	child.Go(func() { out, childErr = cmd.CombinedOutput() })

	// The server keeps writing and reading meanwhile.
	ctx := testContext(t)
	for i := range n {
		jid := fmt.Sprintf("server%d@example.com", i)
		if err := server.CreateAccount(ctx, account(jid)); err != nil {
			t.Fatalf("server CreateAccount %d: %v", i, err)
		}
		if err := server.SetDisabled(ctx, jid, true); err != nil {
			t.Fatalf("server SetDisabled %d: %v", i, err)
		}
	}
	child.Wait()
	if childErr != nil {
		t.Fatalf("child process: %v\n%s", childErr, out)
	}
	// The server sees the child's accounts without reopening.
	for i := range n {
		if _, err := server.Account(ctx, fmt.Sprintf("child%d@example.com", i)); err != nil {
			t.Errorf("child account %d: %v", i, err)
		}
	}
}

func TestConcurrentOpensOfANewFileMigrateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	const openers = 4
	stores := make([]*Store, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() { stores[i], errs[i] = Open(testContext(t), path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if vs := appliedVersions(t, stores[0]); len(vs) != len(migrations) {
		t.Fatalf("versions %v, want each of 1..%d once", vs, len(migrations))
	}
	for i, s := range stores {
		if err := s.CreateAccount(testContext(t), account(fmt.Sprintf("user%d@example.com", i))); err != nil {
			t.Errorf("CreateAccount through store #%d: %v", i, err)
		}
	}
}

func TestClosedStoreFailsWithoutNotFound(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "switchboard.db"))
	s.Close()
	_, err := s.Account(testContext(t), "juliet@example.com")
	if err == nil || errors.Is(err, roster.ErrAccountNotFound) {
		t.Fatalf("Account on closed store = %v, want a store error", err)
	}
}
