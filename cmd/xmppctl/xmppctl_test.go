package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/services/router/admin"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// The tests run xmppctl against the one-process binary's admin API (its
// real services, TLS port and token file): in process through run for
// most commands, and as a built binary for the exit statuses.

type server struct {
	app       *app.App
	addr      string
	tokenFile string
	caFile    string
	c2s       string
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	a, err := app.New(app.Config{
		Domain: "localhost", DataDir: dir, C2SListen: "127.0.0.1:0", C2SDirectTLSListen: "off",
		AdminListen: "127.0.0.1:0", NodeID: "ctl-node", ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server not ready after 15s")
	}
	return &server{
		app: a, addr: a.AdminAddr().String(),
		tokenFile: filepath.Join(dir, admin.TokenFileName),
		caFile:    filepath.Join(dir, app.AdminCertBase+".crt"),
		c2s:       a.C2SAddr().String(),
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs xmppctl in process with the server's address, token file and
// CA in the environment, as an operator's shell would have them.
func (s *server) ctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	env := map[string]string{envServer: s.addr, envTokenFile: s.tokenFile, envCAFile: s.caFile}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (s *server) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := s.ctl(t, stdin, args...)
	if r.code != exitOK {
		t.Fatalf("xmppctl %s: status %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// inbox is a logged-in client that keeps its messages.
type inbox struct {
	*client.Client
	mu   sync.Mutex
	msgs []*dom.Element
}

func (s *server) login(t *testing.T, user, password string) *inbox {
	t.Helper()
	b := &inbox{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		JID: jid.MustParse(user), Password: password, Resource: "ctl", Addr: s.c2s, InsecureSkipVerify: true,
		Handler: func(_ *client.Client, el *dom.Element) bool {
			if el.Local != "message" {
				return false
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, el)
			b.mu.Unlock()
			return true
		},
	})
	if err != nil {
		t.Fatalf("log in %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if _, err := c.Online(ctx, client.Presence{}); err != nil {
		t.Fatal(err)
	}
	b.Client = c
	return b
}

func (b *inbox) wait(t *testing.T, body string) *dom.Element {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		for _, m := range b.msgs {
			if m.ChildText(stream.NSClient, "body") == body {
				b.mu.Unlock()
				return m
			}
		}
		b.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: no message %q after 10s", b.JID(), body)
	return nil
}

func TestAccountsMessagesRostersAndClusterStatus(t *testing.T) {
	s := startServer(t)
	if out := s.ok(t, "alice-pw\n", "account", "create", "alice@localhost", "--password-file", "-"); out != "created alice@localhost\n" {
		t.Errorf("create printed %q", out)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("bob-pw\n"), 0o600)
	s.ok(t, "", "--password-file", pw, "account", "create", "bob@localhost")
	// Not a terminal: the password is the first line of standard input.
	s.ok(t, "carol-pw\n", "account", "create", "carol@localhost")

	r := s.ctl(t, "x\n", "account", "create", "alice@localhost")
	if r.code != exitServer || !strings.Contains(r.stderr, "ALREADY_EXISTS") {
		t.Errorf("second create: %d %q, want status 1 and ALREADY_EXISTS", r.code, r.stderr)
	}

	var list struct {
		Accounts []struct {
			Jid      string `json:"jid"`
			Disabled bool   `json:"disabled"`
		} `json:"accounts"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(s.ok(t, "", "account", "list", "-o", "json", "--page-size", "2")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Accounts) != 2 || list.Accounts[0].Jid != "alice@localhost" || list.Next == "" {
		t.Errorf("first page %+v", list)
	}
	table := s.ok(t, "", "account", "list", "--all", "--page-size", "2")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "JID") || !strings.HasPrefix(lines[3], "carol@localhost") {
		t.Errorf("table of every page:\n%s", table)
	}

	s.ok(t, "alice-new\n", "account", "passwd", "alice@localhost")
	alice := s.login(t, "alice@localhost", "alice-new")

	out := s.ok(t, "", "message", "send", "alice@localhost", "--type", "chat", "--body", "hello <from> ops & co")
	if !strings.HasPrefix(out, "sent admin-") {
		t.Errorf("message send printed %q", out)
	}
	if m := alice.wait(t, "hello <from> ops & co"); m.Attr("from") != "localhost" || m.Attr("type") != "chat" {
		t.Errorf("alice got %s", m)
	}

	s.ok(t, "", "roster", "add", "alice@localhost", "bob@localhost", "--name", "Bob", "--group", "Ops", "--group", "Friends")
	push, err := alice.NextRosterPush(context.Background())
	if err != nil || push.Item.JID.String() != "bob@localhost" || len(push.Item.Groups) != 2 {
		t.Errorf("push %+v %v", push, err)
	}
	roster := s.ok(t, "", "roster", "get", "alice@localhost")
	if !strings.Contains(roster, "bob@localhost") || !strings.Contains(roster, "Friends,Ops") && !strings.Contains(roster, "Ops,Friends") {
		t.Errorf("roster get:\n%s", roster)
	}
	s.ok(t, "", "roster", "remove", "alice@localhost", "bob@localhost")
	r = s.ctl(t, "", "roster", "remove", "alice@localhost", "bob@localhost")
	if r.code != exitServer || !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("removing again: %d %q", r.code, r.stderr)
	}

	var status struct {
		Nodes []struct {
			Service string `json:"service"`
			Node    string `json:"node"`
			Ready   bool   `json:"ready"`
		} `json:"nodes"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(s.ok(t, "", "cluster", "status", "-o", "json")), &status); err != nil {
			t.Fatal(err)
		}
		if len(status.Nodes) == 1 && status.Nodes[0].Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status %+v, want the one node ready", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := status.Nodes[0]; n.Service != "switchboard" || n.Node != "ctl-node" {
		t.Errorf("node %+v", n)
	}
	if out := s.ok(t, "", "cluster", "status"); !strings.Contains(out, "SERVICE") || !strings.Contains(out, "ctl-node") {
		t.Errorf("cluster status table:\n%s", out)
	}

	r = s.ctl(t, "", "node", "drain", "no-such-node")
	if r.code != exitServer || !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("drain of an unknown node: %d %q", r.code, r.stderr)
	}
	s.ok(t, "", "account", "delete", "carol@localhost")
	r = s.ctl(t, "", "account", "delete", "carol@localhost")
	if r.code != exitServer || !strings.Contains(r.stderr, "NOT_FOUND") {
		t.Errorf("second delete: %d %q", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	s := startServer(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"account", "frobnicate", "x"}, "unknown command"},
		{[]string{"account", "delete"}, "want 1 argument"},
		{[]string{"account", "delete", "a@localhost", "b@localhost"}, "want 1 argument"},
		{[]string{"session", "kick", "a@localhost/r", "--nope"}, "flag provided but not defined"},
		{[]string{"cluster", "status", "-o", "yaml"}, "want table or json"},
		{[]string{"message", "send", "a@localhost", "--type", "shout", "--body", "x"}, "--type"},
		{[]string{"node", "drain", "c2s-1", "--mode", "soon"}, "--mode"},
		{[]string{"account", "create", "a@localhost", "--password-file", "/nonexistent"}, "--password-file"},
	} {
		r := s.ctl(t, "", c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("xmppctl %s: %d %q, want status 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	if r := s.ctl(t, ""); r.code != exitUsage || !strings.Contains(r.stderr, "no command") {
		t.Errorf("no command: %d %q", r.code, r.stderr)
	}
	if r := s.ctl(t, "", "help"); r.code != exitOK || !strings.Contains(r.stdout, "account create <jid>") {
		t.Errorf("help: %d %q", r.code, r.stdout)
	}
	if r := s.ctl(t, "", "roster", "add", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "--group") {
		t.Errorf("roster add --help: %d %q", r.code, r.stdout)
	}
}

// TestBinaryExitStatuses builds xmppctl and runs it as a shell would.
func TestBinaryExitStatuses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "xmppctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := startServer(t)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not-the-token-at-all-0123456789\n"), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	base := []string{envServer + "=" + s.addr, envCAFile + "=" + s.caFile}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"ok", append(base, envTokenFile+"="+s.tokenFile), []string{"account", "list"}, 0, "JID"},
		{"token in the environment", append(base, envToken+"="+token(t, s.tokenFile)), []string{"account", "list", "-o", "json"}, 0, `"accounts"`},
		{"not found", append(base, envTokenFile+"="+s.tokenFile), []string{"session", "kick", "nobody@localhost/x"}, 1, "NOT_FOUND"},
		{"invalid argument", append(base, envTokenFile+"="+s.tokenFile), []string{"account", "delete", "not a jid"}, 1, "INVALID_ARGUMENT"},
		{"no token", base, []string{"account", "list"}, 2, "no token"},
		{"usage", base, []string{"bogus"}, 2, "unknown command"},
		{"wrong token", append(base, envTokenFile+"="+wrong), []string{"account", "list"}, 3, "refused the token"},
		{"nothing listens", []string{envServer + "=" + closed, envTokenFile + "=" + s.tokenFile}, []string{"cluster", "status"}, 3, "cannot reach"},
		{"unverified certificate", []string{envServer + "=" + s.addr, envTokenFile + "=" + s.tokenFile}, []string{"cluster", "status"}, 3, "cannot reach"},
		{"insecure", []string{envServer + "=" + s.addr, envTokenFile + "=" + s.tokenFile}, []string{"cluster", "status", "--insecure-skip-verify"}, 0, "SERVICE"},
	} {
		code, out := run(c.env, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: xmppctl %s: status %d %q, want %d and %q", c.name, strings.Join(c.args, " "), code, out, c.code, c.want)
		}
	}
}

func token(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(l, "#") {
			return f[1]
		}
	}
	t.Fatal("no token")
	return ""
}

func TestSessionsBroadcastDisableAndDrain(t *testing.T) {
	s := startServer(t)
	s.ok(t, "alice-pw\n", "account", "create", "alice@localhost")
	s.ok(t, "bob-pw\n", "account", "create", "bob@localhost")
	alice := s.login(t, "alice@localhost", "alice-pw")
	bob := s.login(t, "bob@localhost", "bob-pw")

	if out := s.ok(t, "", "session", "list", "alice@localhost"); !strings.Contains(out, "alice@localhost/ctl") || !strings.Contains(out, "ctl-node") {
		t.Errorf("session list:\n%s", out)
	}
	if out := s.ok(t, "", "session", "count"); !strings.Contains(out, "ctl-node") || !strings.Contains(out, "TOTAL") {
		t.Errorf("session count:\n%s", out)
	}
	var count struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(s.ok(t, "", "session", "count", "-o", "json")), &count); err != nil || count.Total != 2 {
		t.Errorf("session count json: %+v %v", count, err)
	}

	if out := s.ok(t, "", "broadcast", "--type", "headline", "--body", "restart at noon"); out != "delivered to 2 session(s)\n" {
		t.Errorf("broadcast printed %q", out)
	}
	alice.wait(t, "restart at noon")
	bob.wait(t, "restart at noon")

	s.ok(t, "", "session", "kick", "bob@localhost/ctl", "--reason", "bye bob")
	waitDone(t, bob.Client)
	var se *stream.Error
	if !errors.As(bob.Err(), &se) || se.Condition != stream.PolicyViolation || se.Text != "bye bob" {
		t.Errorf("bob's session ended with %v", bob.Err())
	}

	if out := s.ok(t, "", "account", "disable", "alice@localhost", "--reason", "audit"); out != "disabled alice@localhost (1 session(s) closed)\n" {
		t.Errorf("disable printed %q", out)
	}
	waitDone(t, alice.Client)
	if out := s.ok(t, "", "account", "list"); !strings.Contains(out, "alice@localhost  true") {
		t.Errorf("list after disable:\n%s", out)
	}
	s.ok(t, "", "account", "enable", "alice@localhost")
	s.login(t, "alice@localhost", "alice-pw")

	if out := s.ok(t, "", "node", "drain", "ctl-node", "--mode", "system-shutdown", "--deadline", "5s"); out != "draining ctl-node (1 session(s) when it began)\n" {
		t.Errorf("drain printed %q", out)
	}
}

func waitDone(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still connected 10s later", c.JID())
	}
}
