package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestProvisionPrintsOneCommandPerAccountForEachServer(t *testing.T) {
	for server, want := range map[string]string{
		"switchboard": "printf '%s' pw7 | bin/switchboard user add --data-dir d u7@example.org --password-file -",
		"prosody":     "prosodyctl --data-dir d register u7 example.org pw7",
		"ejabberd":    "ejabberdctl --data-dir d register u7 example.org pw7",
	} {
		var out, errb bytes.Buffer
		code := run([]string{"provision", "--server", server, "--users", "u%d", "--password", "pw%d",
			"--domain", "example.org", "--first", "7", "--count", "3", "--switchboard", "bin/switchboard", "--args", "--data-dir d"}, &out, &errb)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", server, code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || lines[0] != want || !strings.Contains(lines[2], "u9") {
			t.Errorf("%s: got\n%s\nwant 3 lines, the first %q", server, out.String(), want)
		}
	}
}

func TestProvisionQuotesPasswordsForTheShell(t *testing.T) {
	pw := `it's $HOME "x"`
	line, err := provisionLine("prosody", "", "", "u", "d", pw)
	if err != nil {
		t.Fatal(err)
	}
	// Let a real shell split the line, and check the password survived.
	out, err := exec.Command("sh", "-c", "set -- "+strings.TrimPrefix(line, "prosodyctl")+`; printf '%s' "$4"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != pw {
		t.Errorf("the shell read the password as %q, want %q", out, pw)
	}
}

func TestProvisionRejectsUnknownServer(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"provision", "--server", "openfire"}, &out, &errb); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(errb.String(), "openfire") {
		t.Errorf("error does not name the server: %s", errb.String())
	}
}

func TestUsageErrorsExitWithTwo(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"chat", "--tls", "sometimes"},
		{"login", "--users", "nopattern"},
		{"login", "--mechanism", "DIGEST-MD5"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}
