package admin

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"crypto/rand"
	"encoding/base64"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/switchboard-xmpp/switchboard/internal/certs"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
)

// ServiceName is the AdminService's name, for health checks.
var ServiceName = adminv1.AdminService_ServiceDesc.ServiceName

// GRPCServer returns the admin port's gRPC server: TLS with tlsConf, the
// token check on every call but the health service's, the AdminService,
// the health service hs (open, so that probes need no token) and server
// reflection (behind the token, like the API).
func (s *Server) GRPCServer(tlsConf *tls.Config, hs *health.Server) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.cfg.Tokens.UnaryInterceptor(s.log)),
		grpc.ChainStreamInterceptor(s.cfg.Tokens.StreamInterceptor(s.log)),
	}
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	g := grpc.NewServer(opts...)
	s.Register(g)
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return g
}

// ServerTLS returns the admin port's TLS configuration: the certificate
// and key files when given, through a certs.Store that the caller keeps
// current with its Watch (returned; nil otherwise), else a self-signed
// certificate for names made now, in memory, which clients accept only
// with its CA file or without verification.
func ServerTLS(certFile, keyFile string, names []string, log *slog.Logger) (*tls.Config, *certs.Store, error) {
	if certFile != "" || keyFile != "" {
		st, err := certs.NewStore(certs.StoreOptions{CertFile: certFile, KeyFile: keyFile, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: st.GetCertificate, NextProtos: []string{"h2"}}, st, nil
	}
	c, err := certs.Pair(names, false)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}, NextProtos: []string{"h2"}}, nil, nil
}

// TokenFileName is the token file the one-process binary makes in its
// data directory when none is configured.
const TokenFileName = "admin-token"

// EnsureTokenFile returns path when it is set; otherwise the token file in
// dir, made with one new random token (mode 0600) when missing. created
// tells whether it was made now.
func EnsureTokenFile(path, dir string) (file string, created bool, err error) {
	if path != "" {
		return path, false, nil
	}
	file = filepath.Join(dir, TokenFileName)
	if _, err := os.Stat(file); err == nil {
		return file, false, nil
	} else if !os.IsNotExist(err) {
		return "", false, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("making %s: %w", file, err)
	}
	_, werr := f.WriteString("# admin API token made at first start; xmppctl --token-file " + strings.ReplaceAll(file, "\n", "") + "\nadmin " + tok + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(file)
		return "", false, werr
	}
	return file, true, nil
}
