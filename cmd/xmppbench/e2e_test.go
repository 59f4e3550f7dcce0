package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
)

// These tests run every scenario through the command's entry point
// against the one-process server on a loopback port, and check that the
// counts in the results add up. They assert no timing: the figures belong
// in docs/performance.md.

const (
	testDomain   = "localhost"
	testPassword = "pw-%d-Tr0ub4dor&3"
	startTimeout = 30 * time.Second
)

// testServer is a running app.App with accounts user1..userN.
type testServer struct {
	addr   string
	caFile string
}

func startServer(t *testing.T, accounts int) *testServer {
	t.Helper()
	dir := t.TempDir()
	a, err := app.New(app.Config{
		Domain:             testDomain,
		DataDir:            dir,
		C2SListen:          "127.0.0.1:0",
		C2SDirectTLSListen: "off",
		NodeID:             "xmppbench",
		TLSOptional:        true,
		AllowPlaintextAuth: true,
		ShutdownTimeout:    10 * time.Second,
		Logger:             slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(startTimeout):
			t.Errorf("app.Run did not return after its context ended")
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("app.Run returned before it was ready: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("app not ready after %v", startTimeout)
	}
	actx, acancel := context.WithTimeout(context.Background(), startTimeout)
	defer acancel()
	for i := 1; i <= accounts; i++ {
		if err := a.Roster().CreateAccount(actx, fmt.Sprintf("user%d@%s", i, testDomain), fmt.Sprintf(testPassword, i)); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
	}
	crts, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil || len(crts) != 1 {
		t.Fatalf("want one generated certificate in the data directory, found %v (%v)", crts, err)
	}
	return &testServer{addr: a.C2SAddr().String(), caFile: crts[0]}
}

// bench runs xmppbench with the server's address and accounts, and
// returns its exit code, the decoded JSON results and its standard error.
func (s *testServer) bench(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	all := append([]string{args[0], "--addr", s.addr, "--domain", testDomain, "--password", testPassword,
		"--ca", s.caFile, "--progress", "0", "--timeout", "20s"}, args[1:]...)
	var out, errb bytes.Buffer
	code := run(all, &out, &errb)
	var rep map[string]any
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("results are not JSON: %v\n%s", err, out.String())
		}
	}
	return code, rep, errb.String()
}

// num reads a number from the results by a dotted path.
func num(t *testing.T, rep map[string]any, path string) float64 {
	t.Helper()
	var v any = rep
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("results have no %s", path)
		}
		v = m[k]
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("results %s = %v, not a number", path, v)
	}
	return f
}

func TestLoginScenarioCountsEveryLoginOverSTARTTLSWithSCRAM(t *testing.T) {
	s := startServer(t, 5)
	code, rep, stderr := s.bench(t, "login", "--logins", "20", "--accounts", "5", "--concurrency", "4", "--mechanism", "SCRAM-SHA-1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if ok, failed := num(t, rep, "results.ok"), num(t, rep, "results.failed"); ok != 20 || failed != 0 {
		t.Errorf("ok %v failed %v, want 20 and 0", ok, failed)
	}
	if n := num(t, rep, "results.latency.count"); n != 20 {
		t.Errorf("latency samples %v, want 20", n)
	}
	res := rep["results"].(map[string]any)
	if res["mechanism"] != "SCRAM-SHA-1" || res["tls"] != true {
		t.Errorf("mechanism %v tls %v, want SCRAM-SHA-1 over TLS", res["mechanism"], res["tls"])
	}
	if _, ok := rep["tool"].(map[string]any)["cpu_cores"]; !ok {
		t.Errorf("results lack the tool's own CPU use: %v", rep["tool"])
	}
}

func TestLoginScenarioWithoutTLSUsesPLAINInTheClear(t *testing.T) {
	s := startServer(t, 3)
	code, rep, stderr := s.bench(t, "login", "--logins", "6", "--accounts", "3", "--concurrency", "2", "--tls", "none", "--mechanism", "PLAIN")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	res := rep["results"].(map[string]any)
	if res["ok"] != 6.0 || res["mechanism"] != "PLAIN" || res["tls"] != false {
		t.Errorf("ok %v mechanism %v tls %v, want 6 PLAIN logins without TLS", res["ok"], res["mechanism"], res["tls"])
	}
}

func TestLoginScenarioWithWrongPasswordReportsEveryFailure(t *testing.T) {
	s := startServer(t, 2)
	code, rep, _ := s.bench(t, "login", "--logins", "4", "--accounts", "2", "--concurrency", "2", "--password", "wrong")
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if failed := num(t, rep, "results.failed"); failed != 4 {
		t.Errorf("failed %v, want 4", failed)
	}
	if errs, _ := rep["errors"].([]any); len(errs) == 0 || !strings.Contains(fmt.Sprint(errs[0]), "not-authorized") {
		t.Errorf("errors %v, want the server's not-authorized", rep["errors"])
	}
}

func TestChatScenarioWithWindowDeliversEveryMessageOnceAndInOrder(t *testing.T) {
	s := startServer(t, 6)
	code, rep, stderr := s.bench(t, "chat", "--pairs", "3", "--window", "5", "--warmup", "200ms", "--duration", "1s", "--tls", "none")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkCleanChat(t, rep, 3)
}

func TestChatScenarioAtFixedRateOverSTARTTLSDeliversEveryMessage(t *testing.T) {
	s := startServer(t, 4)
	code, rep, stderr := s.bench(t, "chat", "--pairs", "2", "--window", "0", "--rate", "200", "--size", "100",
		"--warmup", "200ms", "--duration", "1s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkCleanChat(t, rep, 2)
}

// checkCleanChat checks that every message sent arrived exactly once, in
// order, in the totals and in each pair.
func checkCleanChat(t *testing.T, rep map[string]any, pairs int) {
	t.Helper()
	sent, received := num(t, rep, "results.sent"), num(t, rep, "results.received")
	if sent == 0 || received != sent {
		t.Errorf("sent %v received %v, want equal and not zero", sent, received)
	}
	for _, k := range []string{"lost", "duplicates", "reordered", "misrouted", "bounced"} {
		if v := num(t, rep, "results."+k); v != 0 {
			t.Errorf("%s = %v, want 0", k, v)
		}
	}
	if d, n := num(t, rep, "results.delivered"), num(t, rep, "results.latency.count"); d == 0 || d > received || n == 0 || n > sent {
		t.Errorf("delivered in the window %v, latency samples %v: want both in 1..%v", d, n, sent)
	}
	per, _ := rep["results"].(map[string]any)["per_pair"].([]any)
	if len(per) != pairs {
		t.Fatalf("%d per-pair results, want %d", len(per), pairs)
	}
	var sum float64
	for _, p := range per {
		pm := p.(map[string]any)
		if pm["sent"] != pm["received"] || pm["lost"] != 0.0 || pm["duplicates"] != 0.0 || pm["reordered"] != 0.0 {
			t.Errorf("pair %v not clean: %v", pm["pair"], pm)
		}
		sum += pm["sent"].(float64)
	}
	if sum != sent {
		t.Errorf("pairs sent %v in all, total says %v", sum, sent)
	}
}

func TestIdleScenarioHoldsEveryConnection(t *testing.T) {
	s := startServer(t, 8)
	code, rep, stderr := s.bench(t, "idle", "--conns", "8", "--concurrency", "4", "--duration", "300ms", "--tls", "none", "--mechanism", "SCRAM-SHA-256")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for k, want := range map[string]float64{"connected": 8, "still_up": 8, "dropped": 0, "failed": 0} {
		if v := num(t, rep, "results."+k); v != want {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
}

// Switchboard's rosters (RFC 6121) are being built: until they land the
// scenario must stop with status 3 and say why; once they have, it must
// deliver every broadcast to every contact. Either way it must not pretend.
func TestPresenceScenarioFansOutOrSaysRostersAreMissing(t *testing.T) {
	s := startServer(t, 4)
	code, rep, stderr := s.bench(t, "presence", "--accounts", "4", "--contacts", "2", "--rate", "40",
		"--warmup", "200ms", "--duration", "1s", "--tls", "none")
	switch code {
	case exitUnsupported:
		if rep != nil {
			t.Errorf("printed results for a scenario that could not run: %v", rep)
		}
		if !strings.Contains(stderr, "not supported by the server under test") || !strings.Contains(stderr, "roster") {
			t.Errorf("stderr does not say rosters are missing: %s", stderr)
		}
	case exitOK:
		b, exp, got := num(t, rep, "results.broadcasts"), num(t, rep, "results.expected_deliveries"), num(t, rep, "results.received")
		if b == 0 || exp != 2*b || got != exp {
			t.Errorf("broadcasts %v, expected deliveries %v (want twice the broadcasts), received %v", b, exp, got)
		}
		if lost, dups := num(t, rep, "results.lost"), num(t, rep, "results.duplicates"); lost != 0 || dups != 0 {
			t.Errorf("lost %v duplicates %v", lost, dups)
		}
	default:
		t.Errorf("exit %d, want %d (rosters missing) or %d: %s", code, exitUnsupported, exitOK, stderr)
	}
}
