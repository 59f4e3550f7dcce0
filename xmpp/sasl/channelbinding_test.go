package sasl

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned returns a certificate for testHost signed by key.
func selfSigned(t *testing.T, key any, pub any) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{testHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// handshake connects a TLS client and server over a pipe and returns both
// connection states.
func handshake(t *testing.T, cert tls.Certificate, version uint16) (client, server tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	cli := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: testHost, MinVersion: version, MaxVersion: version})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cli.ConnectionState(), srv.ConnectionState()
}

func TestTLSChannelBindingsAgreeOnBothEnds_RFC9266_RFC5929(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, key, &key.PublicKey)
	ccs, scs := handshake(t, cert, tls.VersionTLS13)

	ce, err1 := TLSExporter(&ccs)
	se, err2 := TLSExporter(&scs)
	if err1 != nil || err2 != nil || len(ce) != 32 || !bytes.Equal(ce, se) {
		t.Fatalf("tls-exporter: %x (%v) vs %x (%v)", ce, err1, se, err2)
	}
	cp, err1 := TLSServerEndPoint(ccs.PeerCertificates[0])
	sp, err2 := TLSServerEndPoint(cert.Leaf)
	want := sha256.Sum256(cert.Leaf.Raw)
	if err1 != nil || err2 != nil || !bytes.Equal(cp, want[:]) || !bytes.Equal(sp, want[:]) {
		t.Fatalf("tls-server-end-point: %x (%v) vs %x (%v)", cp, err1, sp, err2)
	}

	// A full SCRAM-SHA-256-PLUS exchange on each binding of this channel.
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cfg := &ServerConfig{Lookup: a.lookup, TLS: true, ChannelBinding: TLSChannelBinding(&scs, cert.Leaf)}
	clientCB := TLSChannelBinding(&ccs, ccs.PeerCertificates[0])
	for _, cbType := range []string{CBTLSExporter, CBTLSServerEndPoint} {
		data, err := clientCB(cbType)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewScramClient(ScramSHA256Plus, testUser, testPassword, "", cbType, data, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err, _ := run(t, cfg, c); err != nil {
			t.Fatalf("%s: %v", cbType, err)
		}
	}
	if _, err := clientCB("tls-unique"); err == nil {
		t.Error("tls-unique has data")
	}
}

func TestTLSExporterOnlyOnTLS13_RFC9266_3(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(t, key, &key.PublicKey)
	ccs, _ := handshake(t, cert, tls.VersionTLS12)
	if _, err := TLSExporter(&ccs); err == nil {
		t.Error("tls-exporter on TLS 1.2")
	}
	if _, err := TLSExporter(nil); err == nil {
		t.Error("tls-exporter without a connection")
	}
	cfg := &ServerConfig{TLS: true, ChannelBinding: TLSChannelBinding(&ccs, ccs.PeerCertificates[0])}
	if got := cfg.ChannelBindingTypes(); len(got) != 1 || got[0] != CBTLSServerEndPoint {
		t.Errorf("TLS 1.2 binding types %v", got)
	}
}

func TestTLSServerEndPointUndefinedForEd25519_RFC5929_4_1(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cert := selfSigned(t, priv, pub)
	if _, err := TLSServerEndPoint(cert.Leaf); err == nil {
		t.Error("tls-server-end-point for an Ed25519 certificate")
	}
	if _, err := TLSServerEndPoint(nil); err == nil {
		t.Error("tls-server-end-point without a certificate")
	}
}
