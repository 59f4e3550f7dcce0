package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// dsnEnv names the Postgres the tests use. Tests share that server: each
// one works in a schema of its own, which it creates and drops, and
// failures are injected through a proxy the test owns, never by stopping
// the server.
const dsnEnv = "SWITCHBOARD_TEST_POSTGRES_DSN"

const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func testDSN() string {
	if v := os.Getenv(dsnEnv); v != "" {
		return v
	}
	return defaultTestDSN
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// admin returns a connection of the test's own, outside any store, for
// setting up and inspecting schemas.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatalf("Postgres at %s (set %s to change it) is not reachable; scripts/services.sh starts it: %v",
			testDSN(), dsnEnv, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// schemaName returns a name no other test uses: the test's name, for
// whoever looks at the server, and a random suffix.
func schemaName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	return "pgstore_" + name + "_" + hex.EncodeToString(suffix)
}

// dropSchemaAtCleanup drops name and everything in it when t ends. Register
// it before opening stores in the schema: cleanups run last-in first-out,
// so the stores close first.
func dropSchemaAtCleanup(t testing.TB, name string) {
	t.Helper()
	conn := admin(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
}

// newSchema creates an empty schema for t, dropped when t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	name := schemaName(t)
	dropSchemaAtCleanup(t, name)
	if _, err := admin(t).Exec(testContext(t), `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	return name
}

// openStore opens a store in schema through dsn, closed when t ends.
func openStore(t testing.TB, dsn, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(testContext(t), dsn, append([]Option{WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// appliedVersions lists schema_migrations of schema in order.
func appliedVersions(t testing.TB, schema string) []int {
	t.Helper()
	rows, err := admin(t).Query(testContext(t),
		`SELECT version FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return vs
}

// wantAllVersionsOnce fails t unless vs is 1..SchemaVersion().
func wantAllVersionsOnce(t testing.TB, vs []int) {
	t.Helper()
	ok := len(vs) == SchemaVersion()
	for i := 0; ok && i < len(vs); i++ {
		ok = vs[i] == i+1
	}
	if !ok {
		t.Fatalf("schema_migrations holds versions %v, want each of 1..%d once", vs, SchemaVersion())
	}
}

func account(jid string) roster.Account {
	k := func(hash string) sasl.ScramKeys {
		return sasl.ScramKeys{Hash: hash, Salt: []byte("salt"), Iterations: 4096,
			StoredKey: []byte("stored-" + hash), ServerKey: []byte("server-" + hash)}
	}
	return roster.Account{
		JID:         jid,
		Credentials: roster.Credentials{Scram: []sasl.ScramKeys{k("SHA-1"), k("SHA-256")}},
		Created:     time.UnixMilli(1_700_000_000_000),
	}
}

func mustCreate(t testing.TB, s *Store, a roster.Account) {
	t.Helper()
	if err := s.CreateAccount(testContext(t), a); err != nil {
		t.Fatalf("CreateAccount(%s): %v", a.JID, err)
	}
}

// dsnVia returns the test DSN with its host and port replaced by addr.
func dsnVia(t testing.TB, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	dsn := testDSN()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsnEnv, err)
		}
		u.Host = net.JoinHostPort(host, port)
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		return u.String()
	}
	// Key/value form: a later keyword wins.
	return fmt.Sprintf("%s host=%s port=%s", dsn, host, port)
}

// upstream returns the network and address of the test server, for the
// proxy to dial.
func upstream(t testing.TB) (network, addr string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(testDSN())
	if err != nil {
		t.Fatalf("parse %s: %v", dsnEnv, err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return "tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}
