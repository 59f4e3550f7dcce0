package s2s

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/certs"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// hostMapModule is a Prosody module that gives Prosody a static host map
// for outgoing s2s connections (see the file).
//
//go:embed testdata/prosody/mod_switchboard_hostmap.lua
var hostMapModule []byte

// prosodyConfig is Prosody's configuration for the test: loopback ports,
// everything under one temporary directory, in the foreground.
const prosodyConfig = `
run_as_root = true
daemonize = false
pidfile = %[1]q
data_path = %[2]q
plugin_paths = { %[3]q }
log = { { levels = { min = "debug" }, to = "file", filename = %[4]q } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[5]d }
c2s_direct_tls_ports = { }
s2s_ports = { %[6]d }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
authentication = "internal_hashed"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence"; "switchboard_hostmap" }
modules_disabled = { "s2s_bidi"; "offline"; "c2s_limits"; "limits" }
switchboard_host_map = { [%[7]q] = { "127.0.0.1", %[8]d } }

VirtualHost %[9]q
	ssl = { certificate = %[10]q; key = %[11]q }
`

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// prosody runs Prosody for domain pdom, reaching sdom at saddr.
type prosody struct {
	c2s, s2s int
	dir, cfg string
	log      string
}

func startProsody(t *testing.T, pdom, sdom string, sport int) *prosody {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatal("prosody is not installed (scripts/deps.sh installs it: apt-get install prosody)")
	}
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		t.Fatal("prosodyctl is not installed (package prosody)")
	}
	dir := t.TempDir()
	for _, d := range []string{"data", "plugins"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "plugins", "mod_switchboard_hostmap.lua"), hostMapModule, 0o644); err != nil {
		t.Fatal(err)
	}
	crt, key, err := certs.Generate([]string{pdom}, false)
	if err != nil {
		t.Fatal(err)
	}
	crtFile, keyFile := filepath.Join(dir, pdom+".crt"), filepath.Join(dir, pdom+".key")
	os.WriteFile(crtFile, crt, 0o644)
	os.WriteFile(keyFile, key, 0o600)
	p := &prosody{c2s: freePort(t), s2s: freePort(t), dir: dir, cfg: filepath.Join(dir, "prosody.cfg.lua"), log: filepath.Join(dir, "prosody.log")}
	conf := fmt.Sprintf(prosodyConfig, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "plugins"),
		p.log, p.c2s, p.s2s, sdom, sport, pdom, crtFile, keyFile)
	if err := os.WriteFile(p.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", p.cfg, "-F")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			lines := strings.Split(string(b), "\n")
			t.Logf("prosody output: %s\nlast log lines:\n%s", out.String(), strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.c2s))
		if err != nil {
			return err
		}
		return c.Close()
	})
	return p
}

// register creates user@pdom with prosodyctl against the test's config.
func (p *prosody) register(t *testing.T, user, pdom, password string) {
	t.Helper()
	out, err := exec.Command("prosodyctl", "--config", p.cfg, "register", user, pdom, password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register: %v: %s", err, out)
	}
}

// TestFederationWithProsody runs Prosody (Debian's) for p.test on
// loopback and an s2s server for s.test, each with a self-signed
// certificate, so they authenticate each other by dialback: a message
// from s.test to a Prosody user and one back. The test plays the routers
// of s.test. Name resolution: our side uses Config.HostMap; Prosody's side
// uses a test module (testdata/prosody) that maps s.test to our listener
// in place of its SRV resolver.
func TestFederationWithProsody(t *testing.T) {
	e := newEnv(t)
	s := e.start("s.test", selfSigned(t, "s.test"), nil)
	sport := s.srv.Addr().(*net.TCPAddr).Port
	p := startProsody(t, "p.test", "s.test", sport)
	s.srv.cfg.HostMap["p.test"] = fmt.Sprintf("127.0.0.1:%d", p.s2s)
	p.register(t, "pat", "p.test", "pat-secret-123")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pat, err := client.Dial(ctx, client.Config{
		JID:        jid.MustParse("pat@p.test"),
		Password:   "pat-secret-123",
		Resource:   "laptop",
		Addr:       fmt.Sprintf("127.0.0.1:%d", p.c2s),
		TLSConfig:  &tls.Config{InsecureSkipVerify: true, ServerName: "p.test"},
		Mechanisms: []string{sasl.ScramSHA1, sasl.Plain},
	})
	if err != nil {
		t.Fatalf("login at Prosody: %v", err)
	}
	defer pat.Close(context.Background())
	if err := pat.SendPresence(ctx, client.Presence{}); err != nil {
		t.Fatal(err)
	}

	// s.test -> p.test: Prosody verifies our key with our listener.
	e.send(s, `<message xmlns='jabber:client' from='sam@s.test/desk' to='pat@p.test/laptop' type='chat' id='s1'><body>hello Prosody</body></message>`)
	m := nextChat(t, pat)
	if m.From.String() != "sam@s.test/desk" || m.Body != "hello Prosody" || m.ID != "s1" {
		t.Fatalf("Prosody user got %+v", m)
	}

	// p.test -> s.test: we verify Prosody's key with Prosody.
	if err := pat.SendMessage(ctx, client.Message{ID: "p1", To: jid.MustParse("sam@s.test/desk"), Type: client.MessageChat, Body: "hello Switchboard"}); err != nil {
		t.Fatal(err)
	}
	st := s.routedTo(t, 30*time.Second, from("pat@p.test/laptop"))
	if st.To != "sam@s.test/desk" || st.Kind != busv1.Kind_KIND_MESSAGE || !strings.Contains(string(st.Raw), "hello Switchboard") {
		t.Fatalf("routed %+v", st)
	}
	if s.logs.count("s2s outbound stream up", "method=dialback") != 1 || s.logs.count("s2s inbound authenticated", "domain=p.test", "method=dialback") != 1 {
		t.Fatalf("want one dialback stream each way with Prosody")
	}

	// Presence subscriptions both ways (RFC 6121 section 3.1): Prosody
	// hands ours to its user, and sends its user's to us.
	e.send(s, `<presence xmlns='jabber:client' from='sam@s.test' to='pat@p.test' type='subscribe' id='sub1'/>`)
	for {
		pr, err := pat.NextPresence(ctx)
		if err != nil {
			t.Fatalf("waiting for the subscription request at Prosody: %v", err)
		}
		if pr.Type == client.PresenceSubscribe {
			if pr.From.String() != "sam@s.test" {
				t.Fatalf("subscription request from %s", pr.From)
			}
			break
		}
	}
	if err := pat.Subscribe(ctx, jid.MustParse("sam@s.test")); err != nil {
		t.Fatal(err)
	}
	st = s.routedTo(t, 30*time.Second, func(st *busv1.Stanza) bool {
		return st.Kind == busv1.Kind_KIND_PRESENCE && st.Type == "subscribe"
	})
	if st.From != "pat@p.test" || st.To != "sam@s.test" {
		t.Fatalf("subscription request routed %+v", st)
	}
}

// nextChat returns the next message with a body (Prosody may send others).
func nextChat(t *testing.T, c *client.Client) client.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		m, err := c.NextMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for a message at Prosody: %v", err)
		}
		if m.Body != "" {
			return m
		}
	}
}
