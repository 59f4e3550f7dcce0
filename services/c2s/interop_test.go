package c2s

import (
	"context"
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// slixmppClient is a small slixmpp program: it logs in, sends available
// presence and one chat message, and closes its stream.
//
//go:embed testdata/slixmpp_client.py
var slixmppClient string

// python is Debian's interpreter, which has python3-slixmpp
// (scripts/deps.sh installs it).
const python = "/usr/bin/python3"

func TestSlixmppClientInterop(t *testing.T) {
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Fatalf("python3-slixmpp is not installed (scripts/deps.sh installs it): %v", err)
	}
	e := newEnv(t, nil)
	e.startRouter()
	bob := e.dial()
	bob.login("bob", "home")

	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(slixmppClient), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(e.srv.Addr().String(), ":")
	args := []string{script, "alice@example.test", testPassword, host, port, "bob@example.test/home", "hello from slixmpp"}
	if os.Getenv("C2S_TEST_DEBUG") != "" {
		args = append(args, "debug")
	}
	cmd := exec.CommandContext(ctx, python, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("slixmpp client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "BOUND alice@example.test/") || !strings.Contains(string(out), "DISCONNECTED") {
		t.Fatalf("slixmpp client output:\n%s", out)
	}
	el := bob.until("the slixmpp message", func(el *dom.Element) bool { return el.Local == "message" })
	if !strings.HasPrefix(el.Attr("from"), "alice@example.test/") || el.ChildText("jabber:client", "body") != "hello from slixmpp" {
		t.Fatalf("bob received %s", el)
	}
	if line := e.logs.find("stream closed by the client"); line == "" {
		t.Error("slixmpp did not close its stream with </stream:stream>")
	}
	waitFor(t, "alice's session to end", func() bool { return e.srv.SessionCount() == 1 })
}

func TestGoSendxmppInterop(t *testing.T) {
	bin, err := exec.LookPath("go-sendxmpp")
	if err != nil {
		t.Fatal("go-sendxmpp is not installed (scripts/deps.sh installs it)")
	}
	e := newEnv(t, nil)
	e.startRouter()
	bob := e.dial()
	bob.login("bob", "home")
	bob.send("<presence/>")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"STARTTLS", []string{"-j", e.srv.Addr().String()}},
		{"direct TLS", []string{"-t", "-j", e.srv.DirectTLSAddr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bob.t = t
			defer func() { bob.t = e.t }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := append([]string{"-u", "alice@example.test", "-p", testPassword, "-n", "--timeout", "20"}, tc.args...)
			args = append(args, "bob@example.test")
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Stdin = strings.NewReader("hello from go-sendxmpp over " + tc.name)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go-sendxmpp: %v\n%s", err, out)
			}
			el := bob.until("the go-sendxmpp message", func(el *dom.Element) bool { return el.Local == "message" })
			if !strings.HasPrefix(el.Attr("from"), "alice@example.test/") || el.ChildText("jabber:client", "body") != "hello from go-sendxmpp over "+tc.name {
				t.Fatalf("bob received %s", el)
			}
		})
	}
}
