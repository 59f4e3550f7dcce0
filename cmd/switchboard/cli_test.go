package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/services/c2s"
)

// envOf returns a lookupEnv over a map.
func envOf(m map[string]string) lookupEnv {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var noEnv = envOf(nil)

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, envOf(env), strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestDefaultsBindLoopbackAndServeLocalhost(t *testing.T) {
	cfg, _, err := parseServe(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "localhost" || cfg.DataDir != "./data" {
		t.Errorf("domain %q, data dir %q; want localhost, ./data", cfg.Domain, cfg.DataDir)
	}
	if cfg.C2SListen != "127.0.0.1:5222" || cfg.C2SDirectTLSListen != "127.0.0.1:5223" {
		t.Errorf("listeners %q, %q; want the loopback ports 5222 and 5223", cfg.C2SListen, cfg.C2SDirectTLSListen)
	}
	if cfg.GRPCListen != "" || cfg.NATSListen != "" || cfg.MetricsListen != "" {
		t.Errorf("optional listeners on by default: grpc %q nats %q metrics %q", cfg.GRPCListen, cfg.NATSListen, cfg.MetricsListen)
	}
	if cfg.TLSOptional || cfg.AllowPlaintextAuth || cfg.Legacy3DES || cfg.DigestMD5 {
		t.Errorf("an insecure option is on by default: %+v", cfg)
	}
	if cfg.NodeID == "" {
		t.Error("no default node id")
	}
}

// Every flag has an environment variable that sets the same field.
func TestEnvironmentSetsEverySetting(t *testing.T) {
	env := map[string]string{
		"SWITCHBOARD_DOMAIN":                "example.org, example.net",
		"SWITCHBOARD_DATA_DIR":              "/var/lib/sb",
		"SWITCHBOARD_C2S_LISTEN":            ":15222",
		"SWITCHBOARD_C2S_DIRECT_TLS_LISTEN": "off",
		"SWITCHBOARD_GRPC_LISTEN":           "127.0.0.1:9090",
		"SWITCHBOARD_NATS_LISTEN":           "127.0.0.1:4333",
		"SWITCHBOARD_METRICS_LISTEN":        "127.0.0.1:9100",
		"SWITCHBOARD_S2S_LISTEN":            "127.0.0.1:15269",
		"SWITCHBOARD_S2S_HOST_MAP":          "b.test=127.0.0.1:25269, c.test=[::1]:5269",
		"SWITCHBOARD_S2S_CA_FILE":           "/etc/sb/peers.pem",
		"SWITCHBOARD_NODE_ID":               "node-7",
		"SWITCHBOARD_TLS_OPTIONAL":          "true",
		"SWITCHBOARD_ALLOW_PLAINTEXT_AUTH":  "1",
		"SWITCHBOARD_LEGACY_3DES":           "yes",
		"SWITCHBOARD_DIGEST_MD5":            "on",
		"SWITCHBOARD_MECHANISMS":            "SCRAM-SHA-256, DIGEST-MD5",
		"SWITCHBOARD_CERT_FILE":             "/etc/sb/cert.pem",
		"SWITCHBOARD_KEY_FILE":              "/etc/sb/key.pem",
		"SWITCHBOARD_CERT_DIR":              "/etc/sb/certs",
		"SWITCHBOARD_CERT_RELOAD_INTERVAL":  "10s",
		"SWITCHBOARD_SHUTDOWN_TIMEOUT":      "3s",
		"SWITCHBOARD_DRAIN_REDIRECT":        "c2s-2.example.org:5222",
		"SWITCHBOARD_DRAIN_SPREAD":          "2s",
		"SWITCHBOARD_MAX_STANZA_BYTES":      "65536",
		"SWITCHBOARD_MAX_AUTH_FAILURES":     "5",
		"SWITCHBOARD_NEGOTIATION_TIMEOUT":   "10s",
		"SWITCHBOARD_IDLE_TIMEOUT":          "2m",
		"SWITCHBOARD_KEEPALIVE_INTERVAL":    "30s",
		"SWITCHBOARD_LOG_LEVEL":             "debug",
		"SWITCHBOARD_ADMIN_LISTEN":          "127.0.0.1:19600",
		"SWITCHBOARD_ADMIN_TOKEN_FILE":      "/etc/sb/admin-tokens",
		"SWITCHBOARD_ADMIN_CERT_FILE":       "/etc/sb/admin.pem",
		"SWITCHBOARD_ADMIN_KEY_FILE":        "/etc/sb/admin.key",
		"SWITCHBOARD_LOG_FORMAT":            "json",

		"SWITCHBOARD_C2S_MAX_CONNS_PER_IP":          "50",
		"SWITCHBOARD_C2S_CONN_RATE":                 "300",
		"SWITCHBOARD_C2S_CONN_BURST":                "0",
		"SWITCHBOARD_C2S_CONN_RATE_PER_IP":          "5",
		"SWITCHBOARD_C2S_CONN_BURST_PER_IP":         "15",
		"SWITCHBOARD_C2S_STANZA_RATE":               "0",
		"SWITCHBOARD_C2S_STANZA_BURST":              "200",
		"SWITCHBOARD_C2S_FLOOD_FACTOR":              "8",
		"SWITCHBOARD_C2S_BYTE_RATE":                 "10000",
		"SWITCHBOARD_C2S_BYTE_BURST":                "20000",
		"SWITCHBOARD_C2S_AUTH_FAILURES_PER_IP":      "7",
		"SWITCHBOARD_C2S_AUTH_FAILURES_PER_ACCOUNT": "0",
		"SWITCHBOARD_C2S_AUTH_WINDOW":               "1h",
		"SWITCHBOARD_C2S_AUTH_LOCKOUT":              "90s",
		"SWITCHBOARD_C2S_LIMIT_EXEMPT":              "10.1.0.0/16, 2001:db8::1",
		"SWITCHBOARD_S2S_MAX_INBOUND_PER_IP":        "4",
	}
	// Every setting above comes from a variable; the file sets nothing.
	env["SWITCHBOARD_CONFIG"] = writeConfig(t, "# every setting is in the environment\n")
	cfg, lo, err := parseServe(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = nil
	want := app.Config{
		Domain:             "example.org",
		Domains:            []string{"example.org", "example.net"},
		DataDir:            "/var/lib/sb",
		C2SListen:          ":15222",
		C2SDirectTLSListen: "",
		GRPCListen:         "127.0.0.1:9090",
		NATSListen:         "127.0.0.1:4333",
		MetricsListen:      "127.0.0.1:9100",
		S2SListen:          "127.0.0.1:15269",
		S2SHostMap:         map[string]string{"b.test": "127.0.0.1:25269", "c.test": "[::1]:5269"},
		S2SCAFile:          "/etc/sb/peers.pem",
		AdminListen:        "127.0.0.1:19600",
		AdminTokenFile:     "/etc/sb/admin-tokens",
		AdminCertFile:      "/etc/sb/admin.pem",
		AdminKeyFile:       "/etc/sb/admin.key",
		NodeID:             "node-7",
		TLSOptional:        true,
		AllowPlaintextAuth: true,
		Legacy3DES:         true,
		DigestMD5:          true,
		Mechanisms:         []string{"SCRAM-SHA-256", "DIGEST-MD5"},
		CertFile:           "/etc/sb/cert.pem",
		KeyFile:            "/etc/sb/key.pem",
		CertDir:            "/etc/sb/certs",
		CertReloadInterval: 10 * time.Second,
		ShutdownTimeout:    3 * time.Second,
		DrainRedirect:      "c2s-2.example.org:5222",
		DrainSpread:        2 * time.Second,
		MaxStanzaBytes:     65536,
		MaxAuthFailures:    5,
		NegotiationTimeout: 10 * time.Second,
		IdleTimeout:        2 * time.Minute,
		KeepaliveInterval:  30 * time.Second,
		S2SMaxInboundPerIP: 4,
		// 0 on a flag turns a limit off: -1 in the Config.
		Abuse: c2s.AbuseLimits{
			MaxConnsPerIP: 50, ConnRate: 300, ConnBurst: -1, ConnRatePerIP: 5, ConnBurstPerIP: 15,
			StanzaRate: -1, StanzaBurst: 200, FloodFactor: 8, ByteRate: 10000, ByteBurst: 20000,
			AuthFailuresPerIP: 7, AuthFailuresPerAccount: -1, AuthWindow: time.Hour, AuthLockout: 90 * time.Second,
			Exempt: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::1/128")},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config from the environment:\n got %+v\nwant %+v", cfg, want)
	}
	if lo.level != slog.LevelDebug || lo.format != "json" {
		t.Errorf("log options %+v, want debug json", lo)
	}
	// Every serve flag has a variable in this test, so a new flag without
	// one fails here.
	for _, n := range newServeFlags().names() {
		if _, ok := env[envName(n)]; !ok {
			t.Errorf("flag --%s: no %s in this test", n, envName(n))
		}
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	env := envOf(map[string]string{
		"SWITCHBOARD_DOMAIN":       "env.example",
		"SWITCHBOARD_DATA_DIR":     "/from/env",
		"SWITCHBOARD_TLS_OPTIONAL": "true",
	})
	cfg, _, err := parseServe([]string{"--domain", "flag.example", "--tls-optional=false"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "flag.example" {
		t.Errorf("domain %q, want the flag's flag.example", cfg.Domain)
	}
	if cfg.TLSOptional {
		t.Error("--tls-optional=false lost to SWITCHBOARD_TLS_OPTIONAL=true")
	}
	if cfg.DataDir != "/from/env" {
		t.Errorf("data dir %q, want the environment's /from/env", cfg.DataDir)
	}
}

func TestEmptyEnvironmentVariableCountsAsUnset(t *testing.T) {
	cfg, _, err := parseServe(nil, envOf(map[string]string{"SWITCHBOARD_C2S_LISTEN": "", "SWITCHBOARD_TLS_OPTIONAL": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.C2SListen != app.DefaultC2SListen {
		t.Errorf("c2s listen %q, want the default", cfg.C2SListen)
	}
}

// Start-up errors name the setting as the user wrote it, and are usage
// errors (exit status 2).
func TestInvalidSettingErrorNamesFlagOrVariable(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"listen without port", []string{"--c2s-listen", "foo"}, nil, `--c2s-listen "foo": missing port`},
		{"listen from env", nil, map[string]string{"SWITCHBOARD_C2S_LISTEN": "foo"}, `SWITCHBOARD_C2S_LISTEN "foo": missing port`},
		{"port out of range", []string{"--c2s-direct-tls-listen=:70000"}, nil, `--c2s-direct-tls-listen ":70000": port "70000" is not a number`},
		{"grpc listen", []string{"--grpc-listen", "localhost"}, nil, `--grpc-listen "localhost": missing port`},
		{"ipv6 without brackets", []string{"--metrics-listen", "::1:80"}, nil, `--metrics-listen "::1:80": too many colons`},
		{"domain with localpart", []string{"--domain", "a@b"}, nil, `--domain "a@b": not a bare domain`},
		{"bad domain", nil, map[string]string{"SWITCHBOARD_DOMAIN": "a..b"}, `SWITCHBOARD_DOMAIN "a..b": jid: bad domainpart`},
		{"node id with a dot", []string{"--node-id", "a.b"}, nil, `--node-id "a.b": character '.' not allowed`},
		{"unknown mechanism", []string{"--mechanisms", "SCRAM-SHA-512"}, nil, `--mechanisms "SCRAM-SHA-512": unknown mechanism "SCRAM-SHA-512"`},
		{"DIGEST-MD5 without the option", []string{"--mechanisms", "DIGEST-MD5"}, nil, `--mechanisms "DIGEST-MD5": DIGEST-MD5 is listed but the DIGEST-MD5 option is off`},
		{"cert without key", []string{"--cert-file", "c.pem"}, nil, `--key-file "": a certificate file is set without a key file`},
		{"boolean in env", nil, map[string]string{"SWITCHBOARD_LEGACY_3DES": "maybe"}, `SWITCHBOARD_LEGACY_3DES "maybe": not a boolean`},
		{"duration in env", nil, map[string]string{"SWITCHBOARD_SHUTDOWN_TIMEOUT": "soon"}, `SWITCHBOARD_SHUTDOWN_TIMEOUT "soon"`},
		{"negative duration", []string{"--shutdown-timeout=-1s"}, nil, `--shutdown-timeout "-1s": negative`},
		{"tiny stanza limit", []string{"--max-stanza-bytes", "100"}, nil, `--max-stanza-bytes "100": must be 0 (default) or at least 1024`},
		{"negative idle timeout", nil, map[string]string{"SWITCHBOARD_IDLE_TIMEOUT": "-5s"}, `SWITCHBOARD_IDLE_TIMEOUT "-5s": negative`},
		{"log level", []string{"--log-level", "loud"}, nil, `invalid value "loud" for flag -log-level: must be debug, info, warn or error`},
		{"unknown flag", []string{"--c2s-port", "5222"}, nil, `flag provided but not defined: -c2s-port`},
		{"positional argument", []string{"now"}, nil, `serve takes no arguments, got "now"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, c.env, "", append([]string{"serve"}, c.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d (usage); stderr: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, c.want)
			}
		})
	}
}

func TestBusyPortIsRuntimeErrorNamingTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := runCmd(t, nil, "", "serve", "--data-dir", t.TempDir(), "--c2s-direct-tls-listen", "off",
		"--c2s-listen", busy.Addr().String())
	want := fmt.Sprintf("--c2s-listen %q: bind: address already in use", busy.Addr().String())
	if r.code != exitRuntime || !strings.Contains(r.stderr, want) {
		t.Errorf("got %d %q, want status 1 and %q", r.code, r.stderr, want)
	}
}

func TestServeIsTheDefaultCommand(t *testing.T) {
	// Flags without a command go to serve: a bad one shows serve's error.
	r := runCmd(t, nil, "", "--c2s-listen", "nope")
	if r.code != exitUsage || !strings.Contains(r.stderr, `--c2s-listen "nope": missing port`) {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
}

func TestParseArgsAllowsFlagsBetweenAndAfterArguments(t *testing.T) {
	cases := []struct {
		args    []string
		pos     []string
		dataDir string
		digest  bool
	}{
		{[]string{"alice@localhost", "secret"}, []string{"alice@localhost", "secret"}, "d", false},
		{[]string{"--data-dir", "x", "alice@localhost", "secret"}, []string{"alice@localhost", "secret"}, "x", false},
		{[]string{"alice@localhost", "--data-dir", "x", "secret"}, []string{"alice@localhost", "secret"}, "x", false},
		{[]string{"alice@localhost", "secret", "--digest-md5", "--data-dir=y"}, []string{"alice@localhost", "secret"}, "y", true},
		{[]string{"-digest-md5", "alice@localhost", "-data-dir", "z", "secret"}, []string{"alice@localhost", "secret"}, "z", true},
		// "--" ends the flags: a password may start with a dash.
		{[]string{"alice@localhost", "--data-dir", "x", "--", "--not-a-flag"}, []string{"alice@localhost", "--not-a-flag"}, "x", false},
		// A flag's value may be "--" itself.
		{[]string{"--data-dir", "--", "alice@localhost"}, []string{"alice@localhost"}, "--", false},
		// A lone "-" is an argument.
		{[]string{"alice@localhost", "-"}, []string{"alice@localhost", "-"}, "d", false},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dataDir := fs.String("data-dir", "d", "")
		digest := fs.Bool("digest-md5", false, "")
		pos, err := parseArgs(fs, c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !slices.Equal(pos, c.pos) || *dataDir != c.dataDir || *digest != c.digest {
			t.Errorf("%q: positional %q data-dir %q digest %v; want %q %q %v", c.args, pos, *dataDir, *digest, c.pos, c.dataDir, c.digest)
		}
	}
}

func TestParseArgsReportsUnknownFlagAfterArgument(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("data-dir", "", "")
	_, err := parseArgs(fs, []string{"alice@localhost", "--bogus"})
	if err == nil || !strings.Contains(err.Error(), "-bogus") {
		t.Errorf("err %v, want one naming -bogus", err)
	}
}

func TestVersionPrintsAndExitsZero(t *testing.T) {
	r := runCmd(t, nil, "", "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "switchboard ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	r := runCmd(t, nil, "", "start")
	if r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "start"`) {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "serve"}, {"serve", "-h"}, {"user", "add", "--help"}, {"help", "user"}} {
		r := runCmd(t, nil, "", args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "Usage") {
			t.Errorf("%q: %d, stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	r := runCmd(t, nil, "", "help", "serve")
	for _, want := range []string{"--c2s-listen", "SWITCHBOARD_C2S_LISTEN", "127.0.0.1:5222"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help serve lacks %q", want)
		}
	}
}

// scramPasswordIs reports whether keys were derived from password
// (RFC 5802 section 3: StoredKey = H(HMAC(SaltedPassword, "Client Key"))).
func scramPasswordIs(t *testing.T, a *app.Accounts, bare, password string) bool {
	t.Helper()
	acct, err := a.Account(context.Background(), bare)
	if err != nil {
		t.Fatalf("account %s: %v", bare, err)
	}
	for _, k := range acct.Scram {
		if k.Hash != "SHA-256" {
			continue
		}
		salted, err := pbkdf2.Key(sha256.New, password, k.Salt, k.Iterations, sha256.Size)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, salted)
		m.Write([]byte("Client Key"))
		stored := sha256.Sum256(m.Sum(nil))
		return hmac.Equal(stored[:], k.StoredKey)
	}
	t.Fatalf("account %s has no SCRAM-SHA-256 keys", bare)
	return false
}

func openAccounts(t *testing.T, dir string) *app.Accounts {
	t.Helper()
	a, err := app.OpenAccounts(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestUserAddCreatesAccountInDataDir(t *testing.T) {
	dir := t.TempDir()
	r := runCmd(t, nil, "", "user", "add", "Alice@LocalHost", "--data-dir", dir, "s3cret")
	if r.code != exitOK {
		t.Fatalf("user add: %d %s", r.code, r.stderr)
	}
	if r.stdout != "created alice@localhost\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, app.DBFile)); err != nil {
		t.Errorf("database not in the data dir: %v", err)
	}
	if !scramPasswordIs(t, openAccounts(t, dir), "alice@localhost", "s3cret") {
		t.Error("stored keys are not those of the password given")
	}

	r = runCmd(t, nil, "", "user", "add", "alice@localhost", "other", "--data-dir", dir)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "alice@localhost already has an account") {
		t.Errorf("second add: %d %q", r.code, r.stderr)
	}
}

func TestUserAddReadsDataDirAndDomainFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SWITCHBOARD_DATA_DIR": dir, "SWITCHBOARD_DOMAIN": "example.org"}
	r := runCmd(t, env, "", "user", "add", "bob@example.org", "pw")
	if r.code != exitOK {
		t.Fatalf("user add: %d %s", r.code, r.stderr)
	}
	ok, err := openAccounts(t, dir).AccountExists(context.Background(), "bob@example.org")
	if err != nil || !ok {
		t.Errorf("account in %s: %v %v", dir, ok, err)
	}
}

func TestUserAddRefusesJIDOutsideServedDomain(t *testing.T) {
	dir := t.TempDir()
	r := runCmd(t, nil, "", "user", "add", "alice@example.org", "pw", "--data-dir", dir)
	if r.code != exitUsage || !strings.Contains(r.stderr, `"alice@example.org" is not in a served domain (localhost;`) {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, app.DBFile)); err == nil {
		t.Error("a refused command created the database")
	}
}

func TestUserAddAcceptsEveryServedDomain(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"alice@a.test", "bob@B.test"} {
		if r := runCmd(t, nil, "", "user", "add", addr, "pw", "--data-dir", dir, "--domain", "a.test, b.test"); r.code != exitOK {
			t.Fatalf("user add %s: %d %s", addr, r.code, r.stderr)
		}
	}
	for _, addr := range []string{"alice@a.test", "bob@b.test"} {
		ok, err := openAccounts(t, dir).AccountExists(context.Background(), addr)
		if err != nil || !ok {
			t.Errorf("account %s: %v %v", addr, ok, err)
		}
	}
	r := runCmd(t, nil, "", "user", "add", "carol@c.test", "pw", "--data-dir", dir, "--domain", "a.test,b.test")
	if r.code != exitUsage || !strings.Contains(r.stderr, "a.test, b.test") {
		t.Errorf("carol@c.test: got %d %q", r.code, r.stderr)
	}
}

func TestUserAddRefusesNonAccountAddresses(t *testing.T) {
	for _, addr := range []string{"localhost", "alice@localhost/phone", "@localhost", "a b@localhost"} {
		r := runCmd(t, nil, "", "user", "add", addr, "pw", "--data-dir", t.TempDir())
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %q", addr, r.code, exitUsage, r.stderr)
		}
	}
}

func TestUserAddPasswordFromStdinDropsTrailingNewline(t *testing.T) {
	dir := t.TempDir()
	r := runCmd(t, nil, "pass word\n", "user", "add", "--password-file", "-", "carol@localhost", "--data-dir", dir)
	if r.code != exitOK {
		t.Fatalf("user add: %d %s", r.code, r.stderr)
	}
	if !scramPasswordIs(t, openAccounts(t, dir), "carol@localhost", "pass word") {
		t.Error("password from stdin was not stored as 'pass word'")
	}
}

func TestUserAddPasswordFromFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, "", "user", "add", "dave@localhost", "--data-dir", dir, "--password-file", pw)
	if r.code != exitOK {
		t.Fatalf("user add: %d %s", r.code, r.stderr)
	}
	if !scramPasswordIs(t, openAccounts(t, dir), "dave@localhost", "from-file") {
		t.Error("password from the file was not stored")
	}
}

func TestUserAddPasswordUsageErrors(t *testing.T) {
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"user", "add", "a@localhost"}, "", "missing <password>"},
		{[]string{"user", "add", "a@localhost", "pw", "--password-file", "-"}, "x", "not both"},
		{[]string{"user", "add", "a@localhost", "pw", "extra"}, "", "too many arguments"},
		{[]string{"user", "add", "--password-file", "-", "a@localhost"}, "\n", "empty password"},
		{[]string{"user", "add"}, "", "missing <jid>"},
		{[]string{"user"}, "", "user needs an action"},
		{[]string{"user", "rename", "a@localhost"}, "", `unknown user action "rename"`},
		{[]string{"user", "delete", "a@localhost", "pw"}, "", "takes one argument"},
	}
	for _, c := range cases {
		r := runCmd(t, nil, c.stdin, append(c.args, "--data-dir", t.TempDir())...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: %d %q, want status 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestUserPasswdAndDelete(t *testing.T) {
	dir := t.TempDir()
	if r := runCmd(t, nil, "", "user", "add", "erin@localhost", "one", "--data-dir", dir); r.code != exitOK {
		t.Fatalf("add: %s", r.stderr)
	}
	if r := runCmd(t, nil, "", "user", "passwd", "erin@localhost", "two", "--data-dir", dir); r.code != exitOK {
		t.Fatalf("passwd: %s", r.stderr)
	}
	if !scramPasswordIs(t, openAccounts(t, dir), "erin@localhost", "two") {
		t.Error("passwd did not change the keys")
	}
	if r := runCmd(t, nil, "", "user", "delete", "--data-dir", dir, "erin@localhost"); r.code != exitOK || r.stdout != "deleted erin@localhost\n" {
		t.Fatalf("delete: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "", "user", "delete", "erin@localhost", "--data-dir", dir); r.code != exitRuntime || !strings.Contains(r.stderr, "has no account") {
		t.Errorf("second delete: %d %q", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "", "user", "passwd", "nobody@localhost", "x", "--data-dir", dir); r.code != exitRuntime || !strings.Contains(r.stderr, "has no account") {
		t.Errorf("passwd of a missing account: %d %q", r.code, r.stderr)
	}
}
