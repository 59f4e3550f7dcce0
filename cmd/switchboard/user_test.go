package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore"
)

// serveRoster runs a roster service over TCP, as a cluster's roster pod
// serves AccountService, and returns its address and the service.
func serveRoster(t *testing.T) (string, *roster.Service) {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := roster.New(roster.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), svc
}

func TestUserAddWithRosterGRPCCreatesTheAccountInTheClusterNotTheDataDir(t *testing.T) {
	addr, svc := serveRoster(t)
	dataDir := filepath.Join(t.TempDir(), "unused")
	r := runCmd(t, nil, "", "user", "add", "alice@localhost", "wonderland", "--roster-grpc", addr, "--data-dir", dataDir)
	if r.code != exitOK || !strings.Contains(r.stdout, "created alice@localhost") {
		t.Fatalf("user add: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	exists, err := svc.AccountExists(context.Background(), "alice@localhost")
	if err != nil || !exists {
		t.Fatalf("account in the roster service: exists %v, err %v", exists, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dataDir, "*")); len(matches) > 0 {
		t.Errorf("the data directory was used: %v", matches)
	}
}

func TestUserAddWithRosterGRPCFromTheEnvironmentReportsAnExistingAccount(t *testing.T) {
	addr, _ := serveRoster(t)
	env := map[string]string{"SWITCHBOARD_ROSTER_GRPC": addr}
	if r := runCmd(t, env, "", "user", "add", "bob@localhost", "builder"); r.code != exitOK {
		t.Fatalf("first add: code %d, stderr %s", r.code, r.stderr)
	}
	r := runCmd(t, env, "", "user", "add", "bob@localhost", "builder")
	if r.code != exitRuntime || !strings.Contains(r.stderr, "bob@localhost already has an account") {
		t.Errorf("second add: code %d, stderr %q; want exit 1 and 'already has an account'", r.code, r.stderr)
	}
}

func TestUserAddWithUnreachableRosterGRPCNamesTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := runCmd(t, nil, "", "user", "add", "carol@localhost", "secret", "--roster-grpc", addr)
	if r.code != exitRuntime || !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, "Unavailable") {
		t.Errorf("code %d, stderr %q; want exit 1 naming %s and Unavailable", r.code, r.stderr, addr)
	}
}

func TestUserRosterGRPCTLSFilesMustComeTogether(t *testing.T) {
	r := runCmd(t, nil, "", "user", "add", "dave@localhost", "secret", "--roster-grpc", "127.0.0.1:1", "--grpc-tls-cert", "a.crt")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--grpc-tls-ca") {
		t.Errorf("code %d, stderr %q; want a usage error naming the missing TLS flags", r.code, r.stderr)
	}
}
