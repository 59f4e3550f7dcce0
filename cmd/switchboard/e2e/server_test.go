package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// domain is the XMPP domain every test server serves.
const domain = "localhost"

// Timeouts of the tests. They bound waits that normally end in
// milliseconds; a loaded CI machine (2 cores shared by many jobs, -race)
// gets generous room before a test gives up.
const (
	startTimeout = 20 * time.Second // app.New and Run until ready
	stopTimeout  = 20 * time.Second // Run returning after its context ended
	ioTimeout    = 10 * time.Second // one login, one stanza's arrival
)

// server is one running Switchboard node.
type server struct {
	app    *app.App
	cfg    app.Config
	addr   string         // STARTTLS client listener, host:port
	caFile string         // the self-signed certificate the app made, PEM
	roots  *x509.CertPool // caFile as a pool
	logs   *logSink
}

// startServer runs an app.App until the test ends: loopback port 0, a fresh
// data directory, a self-signed certificate made by the app on its first
// start (the first-run path), and its log captured in memory (dumped to the
// test log when the test fails). opts adjust the configuration.
func startServer(t testing.TB, opts ...func(*app.Config)) *server {
	t.Helper()
	logs := newLogSink(slog.LevelInfo)
	cfg := app.Config{
		Domain:             domain,
		DataDir:            t.TempDir(),
		C2SListen:          "127.0.0.1:0",
		C2SDirectTLSListen: "off",
		NodeID:             "e2e",
		ShutdownTimeout:    10 * time.Second,
		Logger:             slog.New(logs.handler()),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	s := &server{app: a, cfg: a.Config(), addr: a.C2SAddr().String(), logs: logs}

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
		case <-time.After(stopTimeout):
			t.Errorf("app.Run did not return %v after its context ended", stopTimeout)
		}
		if t.Failed() {
			logs.dump(t, 400)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("app.Run returned before it was ready: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("app not ready after %v", startTimeout)
	}

	// The certificate the app generated for its domain on first start.
	crts, err := filepath.Glob(filepath.Join(cfg.DataDir, "*.crt"))
	if err != nil || len(crts) != 1 {
		t.Fatalf("want exactly one generated certificate in the data directory, found %v (%v)", crts, err)
	}
	s.caFile = crts[0]
	pem, err := os.ReadFile(s.caFile)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", s.caFile)
	}
	return s
}

// password is the password of a test account: known to every helper, and
// different per account so that one account's password never works for
// another.
func password(local string) string { return "pw-" + local + "-Tr0ub4dor&3" }

// bare returns local@domain.
func bare(local string) jid.JID { return jid.MustParse(local + "@" + domain) }

// full returns local@domain/resource.
func full(local, resource string) jid.JID {
	return jid.MustParse(local + "@" + domain + "/" + resource)
}

// createAccounts creates local@domain for each name, with password(name).
func (s *server) createAccounts(t testing.TB, locals ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	for _, l := range locals {
		if err := s.app.Roster().CreateAccount(ctx, bare(l).String(), password(l)); err != nil {
			t.Fatalf("CreateAccount %s: %v", l, err)
		}
	}
}

// tlsConfig trusts the server's certificate, and nothing else.
func (s *server) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: domain, MinVersion: tls.VersionTLS12}
}

// clientConfig is the configuration of the project's Go client for
// local/resource: the STARTTLS listener, the server's certificate as the
// only root, and SCRAM-SHA-256 only.
func (s *server) clientConfig(local, resource string) client.Config {
	return client.Config{
		JID:        bare(local),
		Password:   password(local),
		Resource:   resource,
		Addr:       s.addr,
		TLSConfig:  s.tlsConfig(),
		Mechanisms: []string{sasl.ScramSHA256},
	}
}

// dial logs local/resource in with the Go client and closes the session
// when the test ends.
func (s *server) dial(t testing.TB, local, resource string) *client.Client {
	t.Helper()
	return s.dialConfig(t, s.clientConfig(local, resource))
}

// dialConfig is dial with a configuration of the caller's.
func (s *server) dialConfig(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("client.Dial %s/%s: %v", cfg.JID, cfg.Resource, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// logRecord is one captured log line, its attributes flattened to strings
// (groups as "group.key"; a key given twice keeps the last value).
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (r logRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Msg)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// logSink keeps every record a server logged, so that tests can wait for
// and assert log lines (the structured log is part of the behaviour: the
// SASL mechanism used, why a stream ended).
type logSink struct {
	level slog.Level

	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced at every new record
}

func newLogSink(level slog.Level) *logSink {
	return &logSink{level: level, changed: make(chan struct{})}
}

func (s *logSink) handler() slog.Handler { return &sinkHandler{sink: s} }

func (s *logSink) add(r logRecord) {
	s.mu.Lock()
	s.records = append(s.records, r)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// first returns the first record that match accepts.
func (s *logSink) first(match func(logRecord) bool) (logRecord, bool) {
	r, _, ok := s.firstOrNext(match)
	return r, ok
}

// firstOrNext is first that also returns the channel that is closed when
// the next record comes.
func (s *logSink) firstOrNext(match func(logRecord) bool) (logRecord, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if match(r) {
			return r, nil, true
		}
	}
	return logRecord{}, s.changed, false
}

// wait returns the first record that match accepts, waiting up to timeout
// for it to be logged.
func (s *logSink) wait(t testing.TB, timeout time.Duration, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	r, err := s.waitErr(timeout, nil, match)
	if err != nil {
		t.Fatalf("log line %s: %v", what, err)
	}
	return r
}

// waitErr is wait returning an error; it also gives up when abort is
// closed (nil never is).
func (s *logSink) waitErr(timeout time.Duration, abort <-chan struct{}, match func(logRecord) bool) (logRecord, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r, changed, ok := s.firstOrNext(match)
		if ok {
			return r, nil
		}
		select {
		case <-changed:
		case <-abort:
			return logRecord{}, errAborted
		case <-deadline.C:
			return logRecord{}, fmt.Errorf("not logged within %v", timeout)
		}
	}
}

// dump writes the last n records to the test log.
func (s *logSink) dump(t testing.TB, n int) {
	s.mu.Lock()
	recs := s.records[max(0, len(s.records)-n):]
	s.mu.Unlock()
	t.Logf("last %d server log records:", len(recs))
	for _, r := range recs {
		t.Log("  " + r.String())
	}
}

// msgIs matches records with this message and, for each pair of kv, this
// attribute value.
func msgIs(msg string, kv ...string) func(logRecord) bool {
	return func(r logRecord) bool {
		if r.Msg != msg {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if r.Attrs[kv[i]] != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// sinkHandler is the slog.Handler of a logSink.
type sinkHandler struct {
	sink   *logSink
	attrs  []slog.Attr // resolved, keys already prefixed
	prefix string      // open groups, "a.b."
}

func (h *sinkHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.sink.level }

func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: make(map[string]string, len(h.attrs)+r.NumAttrs())}
	for _, a := range h.attrs {
		flatten(rec.Attrs, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(rec.Attrs, h.prefix, a)
		return true
	})
	h.sink.add(rec)
	return nil
}

func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		a.Key = h.prefix + a.Key
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *sinkHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func flatten(into map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(into, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	into[prefix+a.Key] = v.String()
}

// errAborted reports a wait given up because what it waited for can no
// longer happen.
var errAborted = errors.New("aborted")
