package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/certs"
)

// handshake runs one TLS handshake over a pipe between a server using srv
// and a client using cli, and returns the client's connection state and the
// first error of either side.
func handshake(t *testing.T, srv, cli *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(a, srv)
		err := s.Handshake()
		if err != nil {
			a.Close()
		}
		srvErr <- err
	}()
	c := tls.Client(b, cli)
	cerr := c.Handshake()
	if cerr != nil {
		b.Close()
	}
	serr := <-srvErr
	return c.ConnectionState(), errors.Join(cerr, serr)
}

func pairs(t *testing.T) []tls.Certificate {
	t.Helper()
	ec, err := certs.Pair([]string{"example.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := certs.Pair([]string{"example.test"}, true)
	if err != nil {
		t.Fatal(err)
	}
	return []tls.Certificate{ec, rsa}
}

func TestLegacy3DESClientConnectsOnlyWhenEnabled(t *testing.T) {
	cs := pairs(t)
	legacyClient := &tls.Config{
		InsecureSkipVerify: true,
		ServerName:         "example.test",
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
	}
	if _, err := handshake(t, Server(cs, false), legacyClient); err == nil {
		t.Fatal("3DES-only client connected with the legacy option off")
	}
	st, err := handshake(t, Server(cs, true), legacyClient)
	if err != nil {
		t.Fatalf("3DES-only client with the legacy option on: %v", err)
	}
	if st.CipherSuite != tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA {
		t.Fatalf("suite = %s, want TLS_RSA_WITH_3DES_EDE_CBC_SHA", tls.CipherSuiteName(st.CipherSuite))
	}
}

func TestModernClientsNegotiateAEAD(t *testing.T) {
	cs := pairs(t)
	for _, legacy := range []bool{false, true} {
		// A default Go client: TLS 1.3.
		st, err := handshake(t, Server(cs, legacy), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("legacy=%v: %v", legacy, err)
		}
		if st.Version != tls.VersionTLS13 {
			t.Fatalf("legacy=%v: version %x, want TLS 1.3", legacy, st.Version)
		}
		// A TLS 1.2 client with Go's defaults gets an ECDHE AEAD suite,
		// never the legacy one, even when it is enabled.
		st, err = handshake(t, Server(cs, legacy), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("legacy=%v, TLS 1.2: %v", legacy, err)
		}
		found := false
		for _, s := range modernSuites {
			found = found || s == st.CipherSuite
		}
		if !found {
			t.Fatalf("legacy=%v: TLS 1.2 suite %s is not a modern one", legacy, tls.CipherSuiteName(st.CipherSuite))
		}
	}
}

func TestTLS11IsRefused(t *testing.T) {
	cli := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, err := handshake(t, Server(pairs(t), true), cli); err == nil {
		t.Fatal("a TLS 1.1 client connected")
	}
}

// TestDynamicWithAStoreServesLegacyClientsTheRSACertificate checks that a
// store holding an ECDSA and an RSA certificate gives each client one it
// supports.
func TestDynamicWithAStoreServesLegacyClientsTheRSACertificate(t *testing.T) {
	cs := pairs(t)
	store, err := certs.NewStore(certs.StoreOptions{Static: cs})
	if err != nil {
		t.Fatal(err)
	}
	legacyClient := &tls.Config{
		InsecureSkipVerify: true,
		ServerName:         "example.test",
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
	}
	st, err := handshake(t, Dynamic(store.GetCertificate, true), legacyClient)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerCertificates[0].PublicKeyAlgorithm != x509.RSA {
		t.Fatalf("legacy client got a %v certificate", st.PeerCertificates[0].PublicKeyAlgorithm)
	}
	st, err = handshake(t, Dynamic(store.GetCertificate, true), &tls.Config{InsecureSkipVerify: true, ServerName: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerCertificates[0].PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("modern client got a %v certificate", st.PeerCertificates[0].PublicKeyAlgorithm)
	}
	if _, err := handshake(t, Dynamic(store.GetCertificate, false), legacyClient); err == nil {
		t.Fatal("3DES-only client connected with the legacy option off")
	}
}
