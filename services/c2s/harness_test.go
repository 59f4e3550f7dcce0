package c2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	"github.com/switchboard-xmpp/switchboard/internal/tlsconf"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/memstore"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

const (
	testDomain   = "example.test"
	testNode     = "node1"
	testPassword = "correct horse"
	ioTimeout    = 10 * time.Second
)

// ---- the server under test ----

type env struct {
	t     testing.TB
	srv   *Server
	cfg   Config
	nc    *nats.Conn // the server's
	spy   *nats.Conn // the test's own connection
	nats  *natsembed.Server
	cc    *grpc.ClientConn // to the roster and presence services
	reg   presencev1.SessionRegistryClient
	logs  *logBook
	roots *x509.CertPool
	stop  func()
	// ran is closed when Run has returned (after a drain, without stop).
	ran chan struct{}
}

// services starts the real roster service (SQLite in a temporary
// directory, with accounts alice and bob) and presence service (in
// memory) on one gRPC server reached in process, as the one-process
// binary wires them.
func services(t testing.TB) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rs, err := roster.New(roster.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := rs.CreateAccount(ctx, u+"@"+testDomain, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := presence.New(presence.Config{Store: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rs.Register(gs)
	ps.Register(gs)
	l := grpcx.Listen()
	served := make(chan error, 1)
	go func() { served <- gs.Serve(l) }()
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("gRPC Serve: %v", err)
		}
	})
	return cc
}

// newEnv starts an embedded NATS server, the roster and presence services
// and a c2s Server on loopback ports. mod adjusts the configuration.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{JetStreamDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	spy, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Close)
	cert, err := certs.Pair([]string{testDomain}, false)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(leaf)
	cc := services(t)
	creds, reg := rosterv1.NewCredentialServiceClient(cc), presencev1.NewSessionRegistryClient(cc)
	e := &env{t: t, nc: nc, spy: spy, cc: cc, reg: reg, roots: roots, logs: &logBook{}, nats: ns}
	e.cfg = Config{
		Domain:          testDomain,
		Node:            testNode,
		Listen:          "127.0.0.1:0",
		ListenDirectTLS: "127.0.0.1:0",
		TLS:             tlsconf.Server([]tls.Certificate{cert}, false),
		Credentials:     creds,
		Sessions:        reg,
		NATS:            nc,
		Subjects:        bus.New("test", 4),
		Logger:          testLogger(t, e.logs),
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.srv, err = New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e.ran = make(chan struct{})
	go func() { done <- e.srv.Run(ctx); close(e.ran) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// testLogger writes the server's log to the test log (warnings, or
// everything when C2S_TEST_DEBUG is set) and keeps every line in logs.
func testLogger(t testing.TB, logs *logBook) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("C2S_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	text := slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level})
	all := slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(teeHandler{text, all})
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// logBook keeps log lines for tests that check what was logged.
type logBook struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBook) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(b))
	return len(b), nil
}

// find returns the first line containing every part, or "".
func (l *logBook) find(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	return ""
}

// teeHandler sends records to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.a.Enabled(ctx, r.Level) {
		h.a.Handle(ctx, r.Clone())
	}
	if h.b.Enabled(ctx, r.Level) {
		return h.b.Handle(ctx, r)
	}
	return nil
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.a.WithGroup(name), h.b.WithGroup(name)}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// routed subscribes to every route partition and returns the stanzas
// published there.
func (e *env) routed() <-chan *busv1.Stanza {
	e.t.Helper()
	ch := make(chan *busv1.Stanza, 64)
	sub, err := e.spy.Subscribe(e.cfg.Subjects.RouteAll(), func(m *nats.Msg) {
		var st busv1.Stanza
		if err := proto.Unmarshal(m.Data, &st); err != nil {
			e.t.Errorf("undecodable stanza envelope: %v", err)
			return
		}
		if want := e.cfg.Subjects.RouteFor(bareOf(st.GetFrom())); m.Subject != want {
			e.t.Errorf("stanza from %s on %s, want %s", st.GetFrom(), m.Subject, want)
		}
		ch <- &st
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.spy.Flush(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sub.Unsubscribe() })
	return ch
}

func bareOf(full string) string {
	if i := strings.IndexByte(full, '/'); i >= 0 {
		return full[:i]
	}
	return full
}

// deliver publishes a delivery for a session, as a router does.
func (e *env) deliver(sessionID string, raw string) {
	e.t.Helper()
	b, err := proto.Marshal(&busv1.Delivery{Session: sessionID, Action: busv1.Action_ACTION_DELIVER, Raw: []byte(raw)})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.spy.Publish(e.cfg.Subjects.Node(testNode), b); err != nil {
		e.t.Fatal(err)
	}
}

// ---- a raw-socket client ----

// recorder keeps every byte the server sent.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type client struct {
	t    testing.TB
	e    *env
	raw  net.Conn
	conn net.Conn // raw, or TLS over it
	// wire records what the server sent on the current layer (plaintext
	// before STARTTLS, decrypted bytes after).
	wire *recorder
	r    *stream.Reader
	jid  string
	// maxTLS caps the TLS version the client offers; 0 is Go's default.
	maxTLS uint16
}

// dial connects to the STARTTLS port.
func (e *env) dial() *client {
	e.t.Helper()
	return e.dialAddr(e.srv.Addr().String(), false)
}

// dialDirect connects to the direct TLS port and does the handshake.
func (e *env) dialDirect() *client {
	e.t.Helper()
	return e.dialAddr(e.srv.DirectTLSAddr().String(), true)
}

func (e *env) dialAddr(addr string, direct bool) *client {
	e.t.Helper()
	return e.dialVersion(addr, direct, 0)
}

func (e *env) dialVersion(addr string, direct bool, maxTLS uint16) *client {
	e.t.Helper()
	raw, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { raw.Close() })
	c := &client{t: e.t, e: e, raw: raw, conn: raw, maxTLS: maxTLS}
	if direct {
		c.handshake()
	}
	c.wire = &recorder{}
	c.r = stream.NewReader(io.TeeReader(c.conn, c.wire), stream.Limits{})
	return c
}

func (c *client) handshake() {
	c.t.Helper()
	tc := tls.Client(c.raw, &tls.Config{ServerName: testDomain, RootCAs: c.e.roots, MaxVersion: c.maxTLS})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
}

func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// open sends a client stream header.
func (c *client) open() {
	c.t.Helper()
	c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + testDomain + "' version='1.0'>")
}

// header reads the server's stream header.
func (c *client) header() stream.Header {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	h, err := c.r.ReadHeader()
	if err != nil {
		c.t.Fatalf("reading the response header: %v (received %q)", err, c.wire.String())
	}
	return h
}

// next reads one element.
func (c *client) next() *dom.Element {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	el, err := c.r.Next()
	if err != nil {
		c.t.Fatalf("reading an element: %v (received %q)", err, c.wire.String())
	}
	return el
}

// expect reads one element and compares its serialisation with want.
func (c *client) expect(want string) *dom.Element {
	c.t.Helper()
	el := c.next()
	if got := el.String(); got != want {
		c.t.Fatalf("received\n  %s\nwant\n  %s", got, want)
	}
	return el
}

// expectStreamError reads a stream error with condition cond, then the
// server's closing tag; it answers with its own and checks the server
// closes the connection.
func (c *client) expectStreamError(cond stream.Condition) *stream.Error {
	c.t.Helper()
	el := c.next()
	if el.Space != stream.NS || el.Local != "error" {
		c.t.Fatalf("got %s, want a stream error %s", el, cond)
	}
	serr := stream.ParseError(el)
	if serr.Condition != cond {
		c.t.Fatalf("stream error %s (%q), want %s", serr.Condition, serr.Text, cond)
	}
	c.expectClosed()
	return serr
}

// expectClosed reads </stream:stream>, sends ours, and waits for the
// server to close the connection without sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	el, err := c.r.Next()
	if !errors.Is(err, stream.ErrClosed) {
		c.t.Fatalf("want </stream:stream>, got %v, %v", el, err)
	}
	c.send("</stream:stream>")
	c.expectEOF()
}

// expectEOF checks the server closes the connection and sent nothing
// more.
func (c *client) expectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c.conn)
	if len(b) > 0 {
		c.t.Fatalf("the server sent %q after </stream:stream>", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("the server did not close the connection")
	}
}

// startTLS negotiates STARTTLS after the first features.
func (c *client) startTLS() {
	c.t.Helper()
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.handshake()
	c.wire = &recorder{}
	c.r.Reset(io.TeeReader(c.conn, c.wire))
}

// mechanisms returns the mechanisms of a features element.
func mechanisms(f *dom.Element) []string {
	var out []string
	if m := f.Child(sasl.NS, "mechanisms"); m != nil {
		for _, e := range m.Children() {
			out = append(out, e.Text())
		}
	}
	return out
}

// auth runs SCRAM (mech, with channel binding for -PLUS) and returns the
// final element (success or failure).
func (c *client) auth(mech, user, password string, plusOffered bool) *dom.Element {
	c.t.Helper()
	return c.authCB(mech, sasl.CBTLSExporter, user, password, plusOffered)
}

// authCB is auth with the channel binding type for -PLUS mechanisms,
// computed on the client's side of the connection.
func (c *client) authCB(mech, cbType, user, password string, plusOffered bool) *dom.Element {
	c.t.Helper()
	var cbData []byte
	if strings.HasSuffix(mech, "-PLUS") {
		cs := c.conn.(*tls.Conn).ConnectionState()
		var err error
		switch cbType {
		case sasl.CBTLSExporter:
			cbData, err = cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		case sasl.CBTLSServerEndPoint:
			cbData, err = sasl.TLSServerEndPoint(cs.PeerCertificates[0])
		}
		if err != nil {
			c.t.Fatal(err)
		}
	} else {
		cbType = ""
	}
	cl, err := sasl.NewScramClient(mech, user, password, "", cbType, cbData, plusOffered)
	if err != nil {
		c.t.Fatal(err)
	}
	first, err := cl.Start()
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(fmt.Sprintf("<auth xmlns='%s' mechanism='%s'>%s</auth>", sasl.NS, mech, sasl.EncodePayload(first)))
	for {
		el := c.next()
		switch el.Local {
		case "challenge":
			in, err := sasl.DecodePayload(el.Text())
			if err != nil {
				c.t.Fatal(err)
			}
			out, err := cl.Step(in)
			if err != nil {
				c.t.Fatal(err)
			}
			c.send(fmt.Sprintf("<response xmlns='%s'>%s</response>", sasl.NS, sasl.EncodePayload(out)))
		case "success":
			data, err := sasl.DecodePayload(el.Text())
			if err != nil {
				c.t.Fatal(err)
			}
			if err := cl.Verify(data); err != nil {
				c.t.Fatalf("server signature: %v", err)
			}
			return el
		default:
			return el
		}
	}
}

// login negotiates STARTTLS, SCRAM-SHA-256 and binds resource (generated
// when empty); it returns the bound full JID.
func (c *client) login(user, resource string) string {
	c.t.Helper()
	c.open()
	c.header()
	c.next() // features: STARTTLS
	c.startTLS()
	c.open()
	c.header()
	c.next() // features: SASL
	if el := c.auth(sasl.ScramSHA256, user, testPassword, true); el.Local != "success" {
		c.t.Fatalf("authentication failed: %s", el)
	}
	c.r.Reset(io.TeeReader(c.conn, c.wire))
	c.open()
	c.header()
	c.next() // features: bind
	return c.bind(resource)
}

// bind binds a resource and returns the full JID.
func (c *client) bind(resource string) string {
	c.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + res + "</bind></iq>")
	el := c.next()
	if el.Attr("type") != "result" {
		c.t.Fatalf("bind failed: %s", el)
	}
	c.jid = el.Child(nsBind, "bind").ChildText(nsBind, "jid")
	return c.jid
}

// lookup returns the registry's session for a full JID, or nil.
func (e *env) lookup(full string) *presencev1.Session {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	resp, err := e.reg.Lookup(ctx, &presencev1.LookupRequest{Jid: full})
	if err != nil {
		e.t.Fatalf("Lookup(%s): %v", full, err)
	}
	for _, s := range resp.GetSessions() {
		if s.GetJid() == full {
			return s
		}
	}
	return nil
}

// sessionID returns the id the registry knows the client's session by.
func (c *client) sessionID() string {
	c.t.Helper()
	s := c.e.lookup(c.jid)
	if s == nil {
		c.t.Fatalf("%s is not in the registry", c.jid)
	}
	return s.GetSessionId()
}

// recv waits for a routed stanza.
func recv(t testing.TB, ch <-chan *busv1.Stanza) *busv1.Stanza {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(ioTimeout):
		t.Fatal("no stanza was routed")
		return nil
	}
}

// r2 is the source of the client's reader after a restart on the same
// layer.
func (c *client) r2() io.Reader { return io.TeeReader(c.conn, c.wire) }
