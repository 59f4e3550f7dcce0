package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableRosterAtStartExitsWithAnErrorNamingItAndItsAddress(t *testing.T) {
	addr := closedAddr(t)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{
		"--roster-grpc", addr, "--startup-timeout", "600ms", "--health-listen", "127.0.0.1:0", "--node-id", "r1",
	}, noEnv, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s, want about the 600ms start-up timeout", took)
	}
	last := lastLine(stderr.String())
	for _, want := range []string{"--roster-grpc", "roster service at " + addr, "unreachable after"} {
		if !strings.Contains(last, want) {
			t.Errorf("error %q lacks %q", last, want)
		}
	}
}

func TestBadSettingFromTheEnvironmentExitsWithUsageStatusNamingTheVariable(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "SWITCHBOARD_STARTUP_TIMEOUT" {
			return "soon", true
		}
		return "", false
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, env, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `SWITCHBOARD_STARTUP_TIMEOUT "soon"`) {
		t.Errorf("stderr %q does not name the variable and its value", stderr.String())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
