package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

func testDSN() string {
	if v := os.Getenv("SWITCHBOARD_TEST_POSTGRES_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// schema returns a fresh Postgres schema name, dropped when the test ends.
func schema(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "rostercmd_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testDSN())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", name, err)
		}
	})
	return name
}

// services waits until the gRPC server at addr answers reflection and
// returns what it lists.
func services(t *testing.T, addr string) []string {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		names, err := grpcx.ListServices(ctx, cc)
		cancel()
		if err == nil {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("reflection at %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Both listeners serve health and reflection next to their own services,
// and reflection lists only what each one serves: CredentialService never
// shows on the public listener.
func TestEachListenerServesHealthAndReflection(t *testing.T) {
	public, internal := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	// The settings come from a config file, and the DSN, a secret, from a
	// file of its own, as a mounted Kubernetes Secret gives it.
	dir := t.TempDir()
	dsnFile, configFile := filepath.Join(dir, "dsn"), filepath.Join(dir, "roster.yaml")
	if err := os.WriteFile(dsnFile, []byte(testDSN()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("grpc-listen: %q\ninternal-grpc-listen: %q\nhealth-listen: 127.0.0.1:0\npostgres-dsn-file: %s\npostgres-schema: %s\nnode-id: roster-test\n",
		public, internal, dsnFile, schema(t))
	if err := os.WriteFile(configFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- run(ctx, []string{"--config", configFile}, func(string) (string, bool) { return "", false }, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("roster did not stop")
		}
	})
	reflect := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
	for _, tc := range []struct {
		name, addr string
		own        []string
	}{
		{"public", public, []string{"switchboard.roster.v1.AccountService"}},
		{"internal", internal, []string{"switchboard.roster.v1.CredentialService", "switchboard.roster.v1.RosterService"}},
	} {
		want := slices.Sorted(slices.Values(append(slices.Clone(reflect), tc.own...)))
		if got := services(t, tc.addr); !slices.Equal(got, want) {
			t.Errorf("%s listener lists %q, want %q", tc.name, got, want)
		}
	}
}

// The DSN may hold a password, so the config file, which tends to be
// shared, may not carry it: the error names the file, line and setting and
// says where the DSN may come from instead, without showing it.
func TestPostgresDSNInTheConfigFileIsRefused(t *testing.T) {
	configFile := filepath.Join(t.TempDir(), "roster.yaml")
	if err := os.WriteFile(configFile, []byte("node-id: r1\npostgres-dsn: postgres://u:hunter2@db/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", configFile}, func(string) (string, bool) { return "", false }, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"config file " + configFile + " line 2: postgres-dsn", "SWITCHBOARD_POSTGRES_DSN", "--postgres-dsn-file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("stderr shows the password: %s", msg)
	}
}
