package grpcx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLSFiles are the PEM files of service-to-service TLS. Either all three
// are set, and every gRPC server requires and verifies a client certificate
// signed by CA while every client presents Cert and verifies the server
// against CA (mutual TLS), or none is, and gRPC runs in the clear (for a
// trusted network, such as one machine).
type TLSFiles struct {
	Cert string // this process's certificate chain, for both roles
	Key  string // its private key
	CA   string // the CA bundle that signs the peers' certificates
}

// Enabled reports whether any file is set.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Errors of TLSFiles.Check.
var (
	// ErrTLSIncomplete means some but not all of the files are set.
	ErrTLSIncomplete = errors.New("grpcx: TLS needs a certificate, its key and a CA bundle together")
)

// Check reports whether the files are all set or none is.
func (f TLSFiles) Check() error {
	if f.Enabled() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return ErrTLSIncomplete
	}
	return nil
}

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	if err := f.Check(); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("grpcx: certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("grpcx: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("grpcx: CA bundle %s holds no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// ServerTLS returns the TLS configuration of a gRPC server for f: TLS 1.3,
// and a client certificate signed by f.CA is required.
func ServerTLS(f TLSFiles) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLS returns the TLS configuration of a gRPC client for f: it
// presents f.Cert and verifies the server's certificate against f.CA (the
// host name checked is the one dialled).
func ClientTLS(f TLSFiles) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}, nil
}

// ServerOptions returns the grpc.ServerOptions for f: mutual TLS when f is
// set, nothing (plaintext) otherwise.
func ServerOptions(f TLSFiles) ([]grpc.ServerOption, error) {
	if !f.Enabled() {
		return nil, nil
	}
	c, err := ServerTLS(f)
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(c))}, nil
}

// DialOptions returns the transport credentials of a client for f: mutual
// TLS when f is set, insecure (plaintext) otherwise.
func DialOptions(f TLSFiles) ([]grpc.DialOption, error) {
	if !f.Enabled() {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	c, err := ClientTLS(f)
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(c))}, nil
}
