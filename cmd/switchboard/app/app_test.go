package app

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// testConfig is an App on loopback port 0 in a fresh data directory.
func testConfig(t *testing.T) Config {
	return Config{
		Domain:             "localhost",
		DataDir:            t.TempDir(),
		C2SListen:          "127.0.0.1:0",
		C2SDirectTLSListen: "127.0.0.1:0",
		NodeID:             "test-node",
		ShutdownTimeout:    5 * time.Second,
		Logger:             slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// testLog sends log lines to t.Log, so they show only for failed tests.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startApp runs an App until the test ends, and checks that it then stops
// cleanly.
func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return 15s after its context ended")
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("not ready after 15s")
	}
	return a
}

// features is what a test reads of <stream:features/>.
type features struct {
	StartTLS *struct {
		Required *struct{} `xml:"required"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechanisms []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
}

// openStream sends an initial stream header for domain on conn and returns
// the response header's attributes and the features that follow.
func openStream(t *testing.T, conn net.Conn, domain string) (map[string]string, features) {
	t.Helper()
	h, f, _ := openStreamDecoder(t, conn, domain)
	return h, f
}

func openStreamDecoder(t *testing.T, conn net.Conn, domain string) (map[string]string, features, *xml.Decoder) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "+
		"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", domain)
	if err != nil {
		t.Fatalf("write header: %v", err)
	}
	d := xml.NewDecoder(conn)
	var header map[string]string
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("read: %v (header so far %v)", err, header)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if header == nil {
			if se.Name != (xml.Name{Space: "http://etherx.jabber.org/streams", Local: "stream"}) {
				t.Fatalf("first element %v, want stream:stream", se.Name)
			}
			header = map[string]string{}
			for _, a := range se.Attr {
				header[a.Name.Local] = a.Value
			}
			continue
		}
		if se.Name != (xml.Name{Space: "http://etherx.jabber.org/streams", Local: "features"}) {
			t.Fatalf("element %v after the header, want stream:features", se.Name)
		}
		var f features
		if err := d.DecodeElement(&f, &se); err != nil {
			t.Fatalf("features: %v", err)
		}
		return header, f, d
	}
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// With the default settings a client must negotiate TLS first: the server
// offers STARTTLS as mandatory-to-negotiate (RFC 6120 section 5.3.1) and no
// SASL mechanism before it (section 6.4.1 forbids them before TLS unless
// the operator allows it).
func TestPlainStreamOffersRequiredSTARTTLS_RFC6120_5_3_1(t *testing.T) {
	a := startApp(t, testConfig(t))
	if err := a.Roster().CreateAccount(context.Background(), "alice@localhost", "secret"); err != nil {
		t.Fatalf("create account: %v", err)
	}
	header, f := openStream(t, dial(t, a.C2SAddr()), "localhost")
	if header["from"] != "localhost" || header["version"] != "1.0" || header["id"] == "" {
		t.Errorf("stream header %v: want from=localhost, version=1.0 and an id (RFC 6120 section 4.7)", header)
	}
	if f.StartTLS == nil || f.StartTLS.Required == nil {
		t.Fatalf("features %+v: want <starttls><required/></starttls>", f)
	}
	if len(f.Mechanisms) != 0 {
		t.Errorf("SASL mechanisms %v offered before TLS", f.Mechanisms)
	}
}

func TestAppsRunSideBySideInOneProcess(t *testing.T) {
	c1, c2 := testConfig(t), testConfig(t)
	c1.Domain, c2.Domain = "one.example", "two.example"
	c1.NATSListen, c2.NATSListen = "127.0.0.1:0", "127.0.0.1:0"
	c1.GRPCListen, c2.GRPCListen = "127.0.0.1:0", "127.0.0.1:0"
	c1.MetricsListen, c2.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	a1, a2 := startApp(t, c1), startApp(t, c2)
	for _, x := range []struct {
		a      *App
		domain string
	}{{a1, "one.example"}, {a2, "two.example"}} {
		h, _ := openStream(t, dial(t, x.a.C2SAddr()), x.domain)
		if h["from"] != x.domain {
			t.Errorf("app for %s answered from %q", x.domain, h["from"])
		}
	}
	if a1.C2SAddr().String() == a2.C2SAddr().String() || a1.NATSURL() == a2.NATSURL() {
		t.Errorf("apps share an address: %v %v, %s %s", a1.C2SAddr(), a2.C2SAddr(), a1.NATSURL(), a2.NATSURL())
	}
}

func readCert(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return blk.Bytes
}

// XEP-0368: TLS from the first byte, with the certificate made on first
// start in the data directory, and then SASL without STARTTLS.
func TestDirectTLSPresentsSelfSignedCertificateFromDataDir_XEP0368(t *testing.T) {
	cfg := testConfig(t)
	a := startApp(t, cfg)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.DirectTLSAddr().String(),
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	want := readCert(t, filepath.Join(cfg.DataDir, "selfsigned-localhost-ecdsa.crt"))
	if got := c.ConnectionState().PeerCertificates[0].Raw; !slices.Equal(got, want) {
		t.Error("the server presented a certificate other than the one in its data directory")
	}
	if err := c.ConnectionState().PeerCertificates[0].VerifyHostname("localhost"); err != nil {
		t.Errorf("self-signed certificate is not for the domain: %v", err)
	}
	_, f := openStream(t, c, "localhost")
	if f.StartTLS != nil {
		t.Error("STARTTLS offered on a TLS stream")
	}
	if !slices.Contains(f.Mechanisms, "SCRAM-SHA-256") {
		t.Errorf("mechanisms %v lack SCRAM-SHA-256", f.Mechanisms)
	}
	if slices.Contains(f.Mechanisms, "DIGEST-MD5") {
		t.Errorf("DIGEST-MD5 offered while the option is off: %v", f.Mechanisms)
	}
}

func TestSelfSignedCertificateIsKeptAcrossRestarts(t *testing.T) {
	cfg := testConfig(t)
	for i := 0; i < 2; i++ {
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	path := filepath.Join(cfg.DataDir, "selfsigned-localhost-ecdsa.crt")
	first := readCert(t, path)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if !slices.Equal(first, readCert(t, path)) {
		t.Error("a restart replaced the certificate")
	}
}

// The legacy option adds an RSA certificate, which the RSA key exchange of
// TLS_RSA_WITH_3DES_EDE_CBC_SHA needs, and a client that knows only that
// suite completes a handshake.
func TestLegacy3DESServesRSAKeyExchangeClient(t *testing.T) {
	cfg := testConfig(t)
	cfg.Legacy3DES = true
	a := startApp(t, cfg)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.DirectTLSAddr().String(), &tls.Config{
		InsecureSkipVerify: true,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
	})
	if err != nil {
		t.Fatalf("3DES-only handshake: %v", err)
	}
	defer c.Close()
	if s := c.ConnectionState().CipherSuite; s != tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA {
		t.Errorf("suite %s", tls.CipherSuiteName(s))
	}
	want := readCert(t, filepath.Join(cfg.DataDir, "selfsigned-localhost-rsa.crt"))
	if !slices.Equal(c.ConnectionState().PeerCertificates[0].Raw, want) {
		t.Error("the 3DES handshake did not use the RSA certificate of the data directory")
	}
}

func TestWithout3DESOptionRSAKeyExchangeClientIsRefused(t *testing.T) {
	a := startApp(t, testConfig(t))
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.DirectTLSAddr().String(), &tls.Config{
		InsecureSkipVerify: true,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
	})
	if err == nil {
		c.Close()
		t.Fatal("a 3DES-only client completed a handshake with the option off")
	}
}

func TestDigestMD5OptionOffersTheMechanism(t *testing.T) {
	cfg := testConfig(t)
	cfg.DigestMD5 = true
	a := startApp(t, cfg)
	c, err := tls.Dial("tcp", a.DirectTLSAddr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, f := openStream(t, c, "localhost")
	if !slices.Contains(f.Mechanisms, "DIGEST-MD5") || !slices.Contains(f.Mechanisms, "SCRAM-SHA-256") {
		t.Errorf("mechanisms %v, want DIGEST-MD5 besides the defaults", f.Mechanisms)
	}
}

func TestGRPCListenerServesHealthAndAccounts(t *testing.T) {
	cfg := testConfig(t)
	cfg.GRPCListen = "127.0.0.1:0"
	a := startApp(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Roster().CreateAccount(ctx, "alice@localhost", "secret"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(a.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, svc := range []string{"", "switchboard.roster.v1.AccountService", "switchboard.presence.v1.SessionRegistry"} {
		h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v %v", svc, h, err)
		}
	}
	r, err := rosterv1.NewAccountServiceClient(cc).AccountExists(ctx, &rosterv1.AccountExistsRequest{Jid: "alice@localhost"})
	if err != nil || !r.Exists {
		t.Errorf("AccountExists over TCP: %v %v", r, err)
	}
}

func TestMetricsListenerServesHealthAndReadiness(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsListen = "127.0.0.1:0"
	a := startApp(t, cfg)
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := hc.Get("http://" + a.MetricsAddr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
}

func TestNATSListenerAcceptsOutsideClients(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATSListen = "127.0.0.1:0"
	a := startApp(t, cfg)
	if !strings.HasPrefix(a.NATSURL(), "nats://127.0.0.1:") {
		t.Fatalf("NATS URL %q", a.NATSURL())
	}
	nc, err := nats.Connect(a.NATSURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Error(err)
	}
}

func TestOptionalListenersAreOffByDefault(t *testing.T) {
	cfg := testConfig(t)
	cfg.C2SDirectTLSListen = "off"
	a := startApp(t, cfg)
	if a.GRPCAddr() != nil || a.MetricsAddr() != nil || a.NATSURL() != "" || a.DirectTLSAddr() != nil {
		t.Errorf("grpc %v metrics %v nats %q direct TLS %v; want all off", a.GRPCAddr(), a.MetricsAddr(), a.NATSURL(), a.DirectTLSAddr())
	}
}

// `switchboard user add` opens the database on its own while the server
// runs; the server must see the account at once.
func TestAccountAddedBesideRunningServerIsVisibleToIt(t *testing.T) {
	cfg := testConfig(t)
	a := startApp(t, cfg)
	acc, err := OpenAccounts(cfg.DataDir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	ctx := context.Background()
	if err := acc.CreateAccount(ctx, "bob@localhost", "pw"); err != nil {
		t.Fatal(err)
	}
	ok, err := a.Roster().AccountExists(ctx, "bob@localhost")
	if err != nil || !ok {
		t.Errorf("running server does not see the account: %v %v", ok, err)
	}
}

func refused(addr net.Addr) error {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s still accepts connections", addr)
	}
	return nil
}

func TestRunStopsEveryListenerWhenContextEnds(t *testing.T) {
	cfg := testConfig(t)
	cfg.GRPCListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	client := dial(t, a.C2SAddr())
	_, _, d := openStreamDecoder(t, client, "localhost")
	cancel()

	// A client with an open stream is told why it ends (RFC 6120 section
	// 4.9.3.22) and, once it closes its side, sees the connection close.
	client.SetDeadline(time.Now().Add(10 * time.Second))
	var streamErr struct {
		Shutdown *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-streams system-shutdown"`
	}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("reading after stop: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "error" {
			if err := d.DecodeElement(&streamErr, &se); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if streamErr.Shutdown == nil {
		t.Error("stream error is not <system-shutdown/>")
	}
	io.WriteString(client, "</stream:stream>")
	if _, err := io.Copy(io.Discard, client); err != nil {
		t.Errorf("after the closing tag: %v, want EOF", err)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	for _, addr := range []net.Addr{a.C2SAddr(), a.DirectTLSAddr(), a.GRPCAddr(), a.MetricsAddr()} {
		if err := refused(addr); err != nil {
			t.Error(err)
		}
	}
	if err := a.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestCloseWithoutRunReleasesListeners(t *testing.T) {
	cfg := testConfig(t)
	cfg.GRPCListen, cfg.MetricsListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close() // twice is fine
	for _, addr := range []net.Addr{a.C2SAddr(), a.DirectTLSAddr(), a.GRPCAddr(), a.MetricsAddr()} {
		if err := refused(addr); err != nil {
			t.Error(err)
		}
	}
}

func TestNewFailsOnBusyPortNamingTheSettingAndReleasesTheRest(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	cfg := testConfig(t)
	for _, c := range []struct {
		setting string
		set     func(*Config)
	}{
		{SettingC2SListen, func(c *Config) { c.C2SListen = addr }},
		{SettingC2SDirectTLSListen, func(c *Config) { c.C2SDirectTLSListen = addr }},
		{SettingGRPCListen, func(c *Config) { c.GRPCListen = addr }},
		{SettingNATSListen, func(c *Config) { c.NATSListen = addr }},
		{SettingMetricsListen, func(c *Config) { c.MetricsListen = addr }},
	} {
		bad := cfg
		c.set(&bad)
		_, err := New(bad)
		var se *SettingError
		if !errors.As(err, &se) || se.Setting != c.setting || se.Value != addr {
			t.Errorf("%s on a busy port: error %v, want a SettingError naming it", c.setting, err)
		}
	}
	// Each failed New closed the database and the listeners it had opened:
	// a new App on the same directory and the default ports starts.
	a := startApp(t, cfg)
	if _, f := openStream(t, dial(t, a.C2SAddr()), "localhost"); f.StartTLS == nil {
		t.Error("no STARTTLS offered after the failed starts")
	}
}

func TestNormalizeNamesTheFieldAtFault(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.C2SListen = "nohost" }, `C2SListen "nohost": missing port`},
		{func(c *Config) { c.NodeID = "a b" }, `NodeID "a b"`},
		{func(c *Config) { c.Domain = "x@y" }, `Domain "x@y"`},
		{func(c *Config) { c.KeyFile = "k.pem" }, `CertFile`},
		{func(c *Config) { c.Mechanisms = []string{"PLAIN", "X-OAUTH"} }, `unknown mechanism "X-OAUTH"`},
	}
	for _, c := range cases {
		cfg := Config{}
		c.mod(&cfg)
		_, err := cfg.Normalize()
		var se *SettingError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want a SettingError containing %q", err, c.want)
		}
	}
	cfg, err := Config{C2SDirectTLSListen: "off"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "localhost" || cfg.C2SListen != DefaultC2SListen || cfg.C2SDirectTLSListen != "" || cfg.NodeID == "" {
		t.Errorf("defaults: %+v", cfg)
	}
}

// The legacy option applies to server-to-server streams too: after
// STARTTLS on the s2s listener, a peer that knows only
// TLS_RSA_WITH_3DES_EDE_CBC_SHA completes the handshake; without the
// option it does not.
func TestLegacy3DESAppliesToS2SStreams(t *testing.T) {
	for _, legacy := range []bool{true, false} {
		cfg := testConfig(t)
		cfg.Legacy3DES = legacy
		cfg.S2SListen = "127.0.0.1:0"
		a := startApp(t, cfg)
		conn, err := net.DialTimeout("tcp", a.S2SAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='peer.test' to='localhost' version='1.0'>")
		r := stream.NewReader(conn, stream.Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil { // features
			t.Fatal(err)
		}
		io.WriteString(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		if el, err := r.Next(); err != nil || el.Local != "proceed" {
			t.Fatalf("after starttls: %v %v", el, err)
		}
		c := tls.Client(conn, &tls.Config{
			InsecureSkipVerify: true,
			MaxVersion:         tls.VersionTLS12,
			CipherSuites:       []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
		})
		err = c.Handshake()
		conn.Close()
		if legacy && err != nil {
			t.Fatalf("3DES-only s2s handshake with the option on: %v", err)
		}
		if !legacy && err == nil {
			t.Fatal("3DES-only s2s handshake completed with the option off")
		}
	}
}

// Reflection lists the services of the one gRPC server on both of its
// listeners: the TCP one (--grpc-listen) and the in-process one the
// services use.
func TestGRPCListenersServeReflection(t *testing.T) {
	cfg := testConfig(t)
	cfg.GRPCListen = "127.0.0.1:0"
	a := startApp(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tcp, err := grpc.NewClient(a.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for name, cc := range map[string]grpc.ClientConnInterface{"TCP": tcp, "in-process": a.conn} {
		got, err := grpcx.ListServices(ctx, cc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, want := range []string{
			"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
			"switchboard.roster.v1.AccountService", "switchboard.roster.v1.CredentialService",
			"switchboard.roster.v1.RosterService", "switchboard.presence.v1.SessionRegistry",
		} {
			if !slices.Contains(got, want) {
				t.Errorf("%s listener lists %q, without %s", name, got, want)
			}
		}
	}
}
