package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// writeCert writes a new self-signed pair for name as certFile and keyFile,
// each under a temporary name renamed over the old file (how an operator
// or a tool replaces a certificate), and returns the certificate.
func writeCert(t testing.TB, certFile, keyFile, name string) *x509.Certificate {
	t.Helper()
	c, k, err := certs.Generate([]string{name}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, keyFile, k)
	replaceFile(t, certFile, c)
	blk, _ := pem.Decode(c)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// replaceFile writes b to a temporary file beside path and renames it over
// path.
func replaceFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// domainCert writes <dir>/<domain>/tls.crt and tls.key, the layout of a
// Kubernetes TLS Secret mounted per domain.
func domainCert(t testing.TB, dir, domain string) *x509.Certificate {
	t.Helper()
	return writeCert(t, filepath.Join(dir, domain, certs.DirCertFile), filepath.Join(dir, domain, certs.DirKeyFile), domain)
}

// peerCert is the leaf certificate the server presented to c.
func peerCert(t testing.TB, c *client.Client) *x509.Certificate {
	t.Helper()
	st, ok := c.TLS()
	if !ok || len(st.PeerCertificates) == 0 {
		t.Fatalf("%s: no TLS peer certificate", c.JID())
	}
	return st.PeerCertificates[0]
}

// multiDomain is a server of two domains, each with its certificate in a
// certificate directory, and a default certificate for any other name.
type multiDomain struct {
	*server
	certDir    string
	a, b, def  *x509.Certificate
	directAddr string
}

func startTwoDomains(t *testing.T, opts ...func(*app.Config)) *multiDomain {
	t.Helper()
	m := &multiDomain{certDir: t.TempDir()}
	m.a = domainCert(t, m.certDir, "a.test")
	m.b = domainCert(t, m.certDir, "b.test")
	m.server = startServer(t, append([]func(*app.Config){func(c *app.Config) {
		c.Domain = "a.test, b.test"
		c.CertDir = m.certDir
		// The default certificate; in the data directory, where
		// startServer looks for the one certificate the app presents
		// by default.
		c.CertFile, c.KeyFile = filepath.Join(c.DataDir, "default.crt"), filepath.Join(c.DataDir, "default.key")
		m.def = writeCert(t, c.CertFile, c.KeyFile, "default.test")
		c.C2SDirectTLSListen = "127.0.0.1:0"
	}}, opts...)...)
	m.directAddr = m.app.DirectTLSAddr().String()
	return m
}

// roots trusts exactly the given certificates.
func roots(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}

// login logs addr (local@domain) in, verifying the server's certificate
// against trust with the domain as the server name (SNI).
func (m *multiDomain) login(t *testing.T, addr string, direct bool, trust *x509.CertPool) *client.Client {
	t.Helper()
	j := jid.MustParse(addr)
	cfg := client.Config{
		JID:        j,
		Password:   password(j.Localpart()),
		Resource:   "r",
		Addr:       m.addr,
		TLSConfig:  &tls.Config{RootCAs: trust, MinVersion: tls.VersionTLS12},
		Mechanisms: []string{sasl.ScramSHA256},
	}
	if direct {
		cfg.Addr, cfg.DirectTLS = m.directAddr, true
	}
	return m.dialConfig(t, cfg)
}

func (m *multiDomain) createAccount(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := m.app.Roster().CreateAccount(ctx, addr, password(jid.MustParse(addr).Localpart())); err != nil {
		t.Fatalf("CreateAccount %s: %v", addr, err)
	}
}

// tlsNames opens a raw connection and returns the names of the
// certificate the server presents: on the direct TLS port with sni as the
// server name, or after STARTTLS on a stream to streamTo when streamTo is
// set. An empty sni sends no server name.
func tlsNames(t *testing.T, addr, streamTo, sni, ns string) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if streamTo != "" {
		io.WriteString(conn, "<?xml version='1.0'?><stream:stream xmlns='"+ns+"' xmlns:stream='http://etherx.jabber.org/streams' from='peer.test' to='"+streamTo+"' version='1.0'>")
		r := stream.NewReader(conn, stream.Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil { // features
			t.Fatal(err)
		}
		io.WriteString(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		if el, err := r.Next(); err != nil || el.Local != "proceed" {
			t.Fatalf("after <starttls/>: %v %v", el, err)
		}
	}
	c := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake (sni %q, stream to %q): %v", sni, streamTo, err)
	}
	return c.ConnectionState().PeerCertificates[0].DNSNames
}

// TestTwoDomainsInOneDeploymentEachWithItsCertificate serves a.test and
// b.test from one process: alice@a.test logs in over STARTTLS and
// bob@b.test over direct TLS, each verifying the certificate of its own
// domain (chosen by SNI) against a pool holding only the two domain
// certificates, and they chat across the domains. The server of the other
// domain answers a ping; a domain not served gets <host-unknown/>.
func TestTwoDomainsInOneDeploymentEachWithItsCertificate(t *testing.T) {
	m := startTwoDomains(t)
	m.createAccount(t, "alice@a.test")
	m.createAccount(t, "bob@b.test")
	trust := roots(m.a, m.b)
	alice := m.login(t, "alice@a.test", false, trust)
	bob := m.login(t, "bob@b.test", true, trust)
	if got := peerCert(t, alice).DNSNames; !slices.Equal(got, []string{"a.test"}) {
		t.Fatalf("alice (STARTTLS, SNI a.test) got a certificate for %v", got)
	}
	if got := peerCert(t, bob).DNSNames; !slices.Equal(got, []string{"b.test"}) {
		t.Fatalf("bob (direct TLS, SNI b.test) got a certificate for %v", got)
	}
	if alice.JID() != jid.MustParse("alice@a.test/r") || bob.JID() != jid.MustParse("bob@b.test/r") {
		t.Fatalf("bound %s and %s", alice.JID(), bob.JID())
	}
	exchange(t, alice, bob, "across domains")

	// The other served domain is local: its server answers a ping.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	res, err := alice.IQ(ctx, dom.New(stream.NSClient, "iq", "type", "get", "id", "ping-b", "to", "b.test").Append(dom.New("urn:xmpp:ping", "ping")))
	if err != nil || res.Attr("type") != "result" || res.Attr("from") != "b.test" {
		t.Fatalf("ping to b.test from alice@a.test: %v %v", res, err)
	}

	// Only the accounts of the stream's domain authenticate there: bob's
	// credentials on a stream to a.test name bob@a.test, which does not
	// exist.
	_, err = client.Dial(ctx, client.Config{JID: jid.MustParse("bob@a.test"), Password: password("bob"), Addr: m.addr,
		TLSConfig: &tls.Config{RootCAs: trust}, Mechanisms: []string{sasl.ScramSHA256}})
	if err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Fatalf("bob's password for bob@a.test: %v, want not-authorized", err)
	}
	// A domain not served.
	_, err = client.Dial(ctx, client.Config{JID: jid.MustParse("carol@c.test"), Password: "x", Addr: m.addr, InsecureSkipVerify: true})
	if err == nil || !strings.Contains(err.Error(), "host-unknown") {
		t.Fatalf("a stream to c.test: %v, want host-unknown", err)
	}

	// Without SNI: after STARTTLS the stream's domain picks the
	// certificate; on the direct TLS port the default domain (the first).
	// An unknown name gets the default certificate.
	for _, tc := range []struct {
		addr, streamTo, sni string
		want                string
	}{
		{m.addr, "b.test", "", "b.test"},
		{m.addr, "a.test", "", "a.test"},
		{m.addr, "a.test", "b.test", "b.test"},
		{m.directAddr, "", "", "a.test"},
		{m.directAddr, "", "b.test", "b.test"},
		{m.directAddr, "", "unknown.test", "default.test"},
	} {
		if got := tlsNames(t, tc.addr, tc.streamTo, tc.sni, stream.NSClient); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("stream to %q, SNI %q: certificate for %v, want %s", tc.streamTo, tc.sni, got, tc.want)
		}
	}
}

// TestCertificateReplacedOnDiskIsUsedWithoutRestart replaces a domain's
// certificate files (a new pair renamed over the old): the next handshakes
// present the new certificate while a session made with the old one goes
// on; a broken replacement is logged and the certificate in use stays.
func TestCertificateReplacedOnDiskIsUsedWithoutRestart(t *testing.T) {
	m := startTwoDomains(t, func(c *app.Config) { c.CertReloadInterval = 20 * time.Millisecond })
	m.createAccount(t, "alice@a.test")
	m.createAccount(t, "bob@a.test")
	alice := m.login(t, "alice@a.test", false, roots(m.a))

	newA := domainCert(t, m.certDir, "a.test")
	deadline := time.Now().Add(ioTimeout)
	for {
		cs := tlsConn(t, m.directAddr, "a.test")
		if bytes.Equal(cs.PeerCertificates[0].Raw, newA.Raw) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced certificate was not presented within %v", ioTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A client trusting only the new certificate logs in, and chats with
	// the session made before the change.
	bob := m.login(t, "bob@a.test", false, roots(newA))
	exchange(t, alice, bob, "after the reload")

	// A broken replacement: the error is logged, the certificate stays.
	replaceFile(t, filepath.Join(m.certDir, "a.test", certs.DirCertFile), []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	m.logs.wait(t, ioTimeout, "the broken certificate reported", msgIs("certificate not reloaded; the previous one stays in use", "domain", "a.test"))
	if cs := tlsConn(t, m.directAddr, "a.test"); !bytes.Equal(cs.PeerCertificates[0].Raw, newA.Raw) {
		t.Fatal("a broken replacement changed the certificate presented")
	}
	m.login(t, "bob@a.test", true, roots(newA))

	// The default certificate file is reloaded too.
	newDef := writeCert(t, m.cfg.CertFile, m.cfg.KeyFile, "default.test")
	deadline = time.Now().Add(ioTimeout)
	for !bytes.Equal(tlsConn(t, m.directAddr, "other.test").PeerCertificates[0].Raw, newDef.Raw) {
		if time.Now().After(deadline) {
			t.Fatalf("the replaced default certificate was not presented within %v", ioTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsConn runs one TLS handshake with sni on the direct TLS port and
// returns its state.
func tlsConn(t *testing.T, addr, sni string) tls.ConnectionState {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState()
}

// TestS2SPresentsEachDomainsCertificate checks the s2s listener of a
// two-domain server: a peer's SNI picks the certificate, and without SNI
// the domain its stream header named.
func TestS2SPresentsEachDomainsCertificate(t *testing.T) {
	m := startTwoDomains(t, func(c *app.Config) { c.S2SListen = "127.0.0.1:0" })
	addr := m.app.S2SAddr().String()
	for _, tc := range []struct{ streamTo, sni, want string }{
		{"b.test", "", "b.test"},
		{"a.test", "", "a.test"},
		{"a.test", "b.test", "b.test"},
	} {
		if got := tlsNames(t, addr, tc.streamTo, tc.sni, "jabber:server"); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("s2s stream to %q, SNI %q: certificate for %v, want %s", tc.streamTo, tc.sni, got, tc.want)
		}
	}
}

// TestTwoLocalDomainsFederateEachWithItsOwnCertificate has one server of
// a.test and b.test federate with a server of c.test, with certificates
// of a CA all trust: alice@a.test and bob@b.test each chat with
// carol@c.test. Each (local, remote) pair has its own outbound stream from
// the right domain, and each authenticates with SASL EXTERNAL, which
// needs the client certificate of that local domain (b.test's comes from
// the certificate directory, a.test's is the default one).
func TestTwoLocalDomainsFederateEachWithItsOwnCertificate(t *testing.T) {
	caFile, issue := testCA(t, t.TempDir())
	addrX, addrY := freeAddr(t), freeAddr(t)
	certDir := t.TempDir()
	bCrt, bKey := issue(t.TempDir(), "b.test")
	for src, dst := range map[string]string{bCrt: certs.DirCertFile, bKey: certs.DirKeyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(certDir, "b.test"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certDir, "b.test", dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	x := startDomain(t, "a.test", addrX, "c.test", addrY, func(c *app.Config) {
		c.Domain = "a.test,b.test"
		c.CertFile, c.KeyFile = issue(c.DataDir, "a.test")
		c.CertDir = certDir
		c.S2SCAFile = caFile
	})
	y := startDomain(t, "c.test", addrY, "a.test", addrX, func(c *app.Config) {
		c.CertFile, c.KeyFile = issue(c.DataDir, "c.test")
		c.S2SCAFile = caFile
		c.S2SHostMap["b.test"] = addrX
	})
	alice := x.login(t, "alice", "phone")
	xb := &fedServer{server: x.server, domain: "b.test"}
	bobTrust := &tls.Config{RootCAs: roots(), MinVersion: tls.VersionTLS12}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	bobTrust.RootCAs.AppendCertsFromPEM(caPEM)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := x.app.Roster().CreateAccount(ctx, "bob@b.test", password("bob")); err != nil {
		t.Fatal(err)
	}
	bob := xb.dialConfig(t, client.Config{JID: jid.MustParse("bob@b.test"), Password: password("bob"), Resource: "desk",
		Addr: x.addr, TLSConfig: bobTrust, Mechanisms: []string{sasl.ScramSHA256}})
	carol := y.login(t, "carol", "laptop")

	for _, from := range []*client.Client{alice, bob} {
		m := client.Message{ID: "to-carol-" + from.JID().Localpart(), To: carol.JID(), Type: client.MessageChat, Body: "hello from " + from.JID().Domainpart()}
		send(t, from, m)
		m.From = from.JID()
		checkMessage(t, "carol", nextMessage(t, carol), m)
		r := client.Message{ID: "re-" + from.JID().Localpart(), To: from.JID(), Type: client.MessageChat, Body: "hello " + from.JID().Domainpart()}
		send(t, carol, r)
		r.From = carol.JID()
		checkMessage(t, from.JID().String(), nextMessage(t, from), r)
	}
	for _, local := range []string{"a.test", "b.test"} {
		x.logs.wait(t, ioTimeout, "outbound "+local+" to c.test by EXTERNAL",
			msgIs("s2s outbound stream up", "local", local, "remote", "c.test", "method", "EXTERNAL"))
		y.logs.wait(t, ioTimeout, "inbound from "+local+" by EXTERNAL",
			msgIs("s2s inbound authenticated", "domain", local, "method", "EXTERNAL"))
	}
}
