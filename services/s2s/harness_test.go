package s2s

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// checkFor polls f until it returns nil or the time is up.
func checkFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

// issue returns a certificate for name valid from notBefore to notAfter.
func (ca *testCA) issue(t testing.TB, name string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func (ca *testCA) valid(t testing.TB, name string) tls.Certificate {
	return ca.issue(t, name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

func selfSigned(t testing.TB, name string) tls.Certificate {
	t.Helper()
	c, err := certs.Pair([]string{name}, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logRecorder keeps log records for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l, as}
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// count returns how many records contain every one of parts.
func (l *logRecorder) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
outer:
	for _, r := range l.recs {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue outer
			}
		}
		n++
	}
	return n
}

type attrHandler struct {
	*logRecorder
	as []slog.Attr
}

func (h *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(h.as...)
	return h.logRecorder.Handle(ctx, r)
}
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h.logRecorder, append(append([]slog.Attr{}, h.as...), as...)}
}

// env is one NATS server shared by the test's s2s servers, each under
// its own subject prefix (its own deployment).
type env struct {
	t  *testing.T
	ns *natsembed.Server
	nc *nats.Conn
}

func newEnv(t *testing.T) *env {
	ns, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &env{t: t, ns: ns, nc: nc}
}

// node is a running s2s server with what the test observes of it.
type node struct {
	srv    *Server
	cfg    Config
	logs   *logRecorder
	routed chan *busv1.Stanza // what it published for its routers
}

// start runs an s2s server for domain; mod adjusts its config.
func (e *env) start(domain string, cert tls.Certificate, mod func(*Config)) *node {
	t := e.t
	logs := &logRecorder{}
	cfg := Config{
		Domains:        []string{domain},
		Node:           "s2s-" + strings.ReplaceAll(domain, ".", "-"),
		Listen:         "127.0.0.1:0",
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Secret:         "secret of " + domain,
		HostMap:        map[string]string{},
		ConnectTimeout: 5 * time.Second,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		NATS:           e.nc,
		Subjects:       bus.New(strings.ReplaceAll(domain, ".", "_"), 4),
		Logger:         slog.New(logs),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{srv: srv, cfg: cfg, logs: logs, routed: make(chan *busv1.Stanza, 64)}
	t.Cleanup(func() {
		if t.Failed() {
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for _, r := range logs.recs {
				t.Logf("%s log: %s", domain, r)
			}
		}
	})
	sub, err := e.nc.Subscribe(cfg.Subjects.RouteAll(), func(m *nats.Msg) {
		var st busv1.Stanza
		if proto.Unmarshal(m.Data, &st) == nil {
			n.routed <- &st
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("s2s server did not stop")
		}
	})
	select {
	case <-srv.Ready():
	case <-time.After(wait):
		t.Fatal("s2s server not ready")
	}
	return n
}

// link points a's host map at b for b's domain, and b's at a.
func federate(a, b *node) {
	a.srv.cfg.HostMap[b.cfg.Domains[0]] = b.srv.Addr().String()
	b.srv.cfg.HostMap[a.cfg.Domains[0]] = a.srv.Addr().String()
}

// send plays the router of n: it publishes a stanza for a remote domain on
// n's outbound subject.
func (e *env) send(n *node, raw string) {
	e.t.Helper()
	el := parseRaw(e.t, raw)
	to := el.Attr("to")
	domain := to
	if i := strings.IndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	if i := strings.IndexByte(domain, '/'); i >= 0 {
		domain = domain[:i]
	}
	st := &busv1.Stanza{From: el.Attr("from"), To: to, Kind: kinds[el.Local], Type: el.Attr("type"), Id: el.Attr("id"),
		Origin: &busv1.Origin{Node: "c2s-test", Session: "1"}, Raw: el.Marshal(), Seq: 1}
	b, _ := proto.Marshal(st)
	if err := e.nc.Publish(n.cfg.Subjects.S2SOut(domain), b); err != nil {
		e.t.Fatal(err)
	}
}

func parseRaw(t testing.TB, raw string) *dom.Element {
	t.Helper()
	el, err := decodeRaw([]byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return el
}

// routedTo waits for n to publish a stanza matching f.
func (n *node) routedTo(t testing.TB, within time.Duration, f func(*busv1.Stanza) bool) *busv1.Stanza {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case st := <-n.routed:
			if f(st) {
				return st
			}
		case <-timer.C:
			t.Fatalf("nothing matching was routed within %v", within)
			return nil
		}
	}
}

// rawPeer is the test playing a remote server on an inbound stream.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	r  *stream.Reader
	w  *stream.Writer
	h  stream.Header // the server's latest header
	f  *dom.Element  // the server's latest features
}

// dialRaw opens a stream from "from" to "to" at addr and negotiates
// STARTTLS with cert (nil: none).
func dialRaw(t testing.TB, addr, from, to string, cert *tls.Certificate) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	p := &rawPeer{t: t, nc: nc, r: stream.NewReader(nc, stream.Limits{}), w: stream.NewWriter(nc, stream.NSServer)}
	p.open(from, to)
	if feature(p.f, nsTLS, "starttls") == nil {
		t.Fatalf("no STARTTLS offered: %s", p.f)
	}
	p.write(dom.New(nsTLS, "starttls"))
	if el := p.next(); !isElem(el, nsTLS, "proceed") {
		t.Fatalf("got %s, want <proceed/>", el)
	}
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: to}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	p.nc = tc
	p.r.Reset(tc)
	p.w.Reset(tc)
	p.open(from, to)
	return p
}

func (p *rawPeer) open(from, to string) {
	p.t.Helper()
	if err := p.w.WriteHeader(stream.Header{From: from, To: to, Version: "1.0", NS: stream.NSServer, Prefixes: map[string]string{"db": "jabber:server:dialback"}}); err != nil {
		p.t.Fatal(err)
	}
	p.w.Flush()
	p.r.Reset(p.nc)
	h, err := p.r.ReadHeader()
	if err != nil {
		p.t.Fatal(err)
	}
	p.h = h
	p.f = p.next()
}

func (p *rawPeer) write(el *dom.Element) {
	p.t.Helper()
	if err := p.w.WriteElement(el); err != nil {
		p.t.Fatal(err)
	}
	if err := p.w.Flush(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) writeRaw(s string) {
	p.t.Helper()
	p.w.WriteRaw([]byte(s))
	if err := p.w.Flush(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) next() *dom.Element {
	p.t.Helper()
	el, err := p.r.Next()
	if err != nil {
		p.t.Fatalf("reading: %v", err)
	}
	return el
}

// streamError reads until a stream error and returns its condition.
func (p *rawPeer) streamError() stream.Condition {
	p.t.Helper()
	for {
		el, err := p.r.Next()
		if err != nil {
			var se *stream.Error
			if ok := asStreamError(err, &se); ok {
				return se.Condition
			}
			p.t.Fatalf("stream ended without a stream error: %v", err)
		}
		if isElem(el, stream.NS, "error") {
			return stream.ParseError(el).Condition
		}
	}
}

func asStreamError(err error, se **stream.Error) bool {
	e, ok := err.(*stream.Error)
	if ok {
		*se = e
	}
	return ok
}

// dialRawOn opens a stream on nc without STARTTLS.
func dialRawOn(t testing.TB, nc net.Conn, from, to string) *rawPeer {
	t.Helper()
	p := &rawPeer{t: t, nc: nc, r: stream.NewReader(nc, stream.Limits{}), w: stream.NewWriter(nc, stream.NSServer)}
	p.open(from, to)
	return p
}
