package grpcx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

// pki is a CA and the files of certificates it signed, in a test directory.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, name+"-ca.crt", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue returns the files of a certificate for 127.0.0.1 signed by p, good
// for both server and client authentication.
func (p *pki) issue(t *testing.T, name string) grpcx.TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return grpcx.TLSFiles{
		Cert: p.write(t, name+".crt", "CERTIFICATE", der),
		Key:  p.write(t, name+".key", "PRIVATE KEY", kder),
		CA:   p.caFile,
	}
}

// serveMTLS serves the health service over TCP with the server options of
// f and returns its address.
func serveMTLS(t *testing.T, f grpcx.TLSFiles) string {
	t.Helper()
	opts, err := grpcx.ServerOptions(f)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func check(t *testing.T, cc *grpc.ClientConn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLSClientWithCertificateOfTheCAIsServed(t *testing.T) {
	p := newPKI(t, "cluster")
	addr := serveMTLS(t, p.issue(t, "server"))
	cc, err := grpcx.NewClient(addr, p.issue(t, "client"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := check(t, cc); err != nil {
		t.Fatalf("health check with a client certificate: %v", err)
	}
}

func TestMutualTLSClientWithoutCertificateIsRefused(t *testing.T) {
	p := newPKI(t, "cluster")
	addr := serveMTLS(t, p.issue(t, "server"))
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	// Trusts the server, but has no certificate of its own.
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := check(t, cc); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

func TestMutualTLSClientCertificateOfAnotherCAIsRefused(t *testing.T) {
	p := newPKI(t, "cluster")
	addr := serveMTLS(t, p.issue(t, "server"))
	other := newPKI(t, "other")
	f := other.issue(t, "intruder")
	f.CA = p.caFile // trusts the server, presents a certificate it cannot verify
	cc, err := grpcx.NewClient(addr, f)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := check(t, cc); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
}

func TestPlaintextClientIsRefusedByTLSServer(t *testing.T) {
	p := newPKI(t, "cluster")
	addr := serveMTLS(t, p.issue(t, "server"))
	cc, err := grpcx.NewClient(addr, grpcx.TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := check(t, cc); err == nil {
		t.Fatal("a plaintext client was served by a mutual TLS server")
	}
}

func TestTLSFilesMustBeSetTogether(t *testing.T) {
	f := grpcx.TLSFiles{Cert: "a.crt", Key: "a.key"}
	if _, err := grpcx.ServerOptions(f); !errors.Is(err, grpcx.ErrTLSIncomplete) {
		t.Errorf("ServerOptions without a CA: err = %v, want ErrTLSIncomplete", err)
	}
	if _, err := grpcx.DialOptions(f); !errors.Is(err, grpcx.ErrTLSIncomplete) {
		t.Errorf("DialOptions without a CA: err = %v, want ErrTLSIncomplete", err)
	}
}
