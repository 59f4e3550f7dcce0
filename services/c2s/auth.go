package c2s

import (
	"context"
	_ "crypto/sha256" // crypto.SHA256 for tls-server-end-point
	_ "crypto/sha512" // crypto.SHA384 and SHA512 likewise
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// lookupFor adapts the credential service to a sasl.Lookup for domain.
// NotFound, and an answer without any usable secret, mean no such account
// (which SASL answers like a wrong password); every other failure is
// returned as is, and the sasl package turns it into temporary-auth-failure.
func lookupFor(src credentialSource, domain string) sasl.Lookup {
	return func(ctx context.Context, username string) (*sasl.Credentials, error) {
		resp, err := src.GetCredentials(ctx, &rosterv1.GetCredentialsRequest{Jid: username + "@" + domain})
		if err != nil {
			if status.Code(err) == codes.NotFound {
				return nil, sasl.ErrNoAccount
			}
			return nil, fmt.Errorf("c2s: credentials of %s@%s: %w", username, domain, err)
		}
		if resp == nil || (len(resp.GetScram()) == 0 && len(resp.GetDigestMd5()) == 0) {
			return nil, sasl.ErrNoAccount
		}
		cr := &sasl.Credentials{
			DigestMD5:   resp.GetDigestMd5(),
			DigestRealm: resp.GetDigestMd5Realm(),
			Disabled:    resp.GetDisabled(),
		}
		for _, k := range resp.GetScram() {
			cr.Scram = append(cr.Scram, sasl.ScramKeys{
				Hash:       k.GetHash(),
				Salt:       k.GetSalt(),
				Iterations: int(k.GetIterations()),
				StoredKey:  k.GetStoredKey(),
				ServerKey:  k.GetServerKey(),
			})
		}
		return cr, nil
	}
}

// exporterLabel is the TLS exporter label of RFC 9266.
const exporterLabel = "EXPORTER-Channel-Binding"

// channelBinding returns the channel binding data of a finished TLS
// connection, for the sasl package. leaf is the certificate this server
// presented on it.
func channelBinding(cs tls.ConnectionState, leaf *x509.Certificate) func(string) ([]byte, error) {
	return func(cbType string) ([]byte, error) {
		switch cbType {
		case sasl.CBTLSExporter:
			// RFC 9266 section 2: only with TLS 1.3, or TLS 1.2 with the
			// extended master secret. crypto/tls refuses to export
			// otherwise, which is exactly that rule.
			return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
		case sasl.CBTLSServerEndPoint:
			if leaf == nil {
				return nil, errNoChannelBinding
			}
			return sasl.TLSServerEndPoint(leaf)
		}
		return nil, errNoChannelBinding
	}
}

// tlsServer wraps a base configuration so that the certificate chosen for
// each connection is known afterwards (tls-server-end-point needs it, and
// tls.ConnectionState only carries the peer's certificates).
type tlsServer struct {
	base *tls.Config
}

// config returns a configuration for one connection and a function that
// reports the leaf certificate it presented. A client that sends no server
// name (SNI) is answered as if it had named fallback, the stream's domain.
func (t tlsServer) config(fallback string) (*tls.Config, func() *x509.Certificate) {
	var (
		mu     sync.Mutex
		chosen *tls.Certificate
	)
	cfg := t.base.Clone()
	certs := t.base.Certificates
	get := t.base.GetCertificate
	cfg.Certificates = nil
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		var c *tls.Certificate
		if get != nil {
			h := hello
			if h.ServerName == "" {
				named := *hello
				named.ServerName = fallback
				h = &named
			}
			var err error
			if c, err = get(h); err != nil {
				return nil, err
			}
		}
		if c == nil {
			c = pickCertificate(hello, certs)
		}
		if c == nil {
			return nil, errors.New("c2s: no certificate")
		}
		mu.Lock()
		chosen = c
		mu.Unlock()
		return c, nil
	}
	leaf := func() *x509.Certificate {
		mu.Lock()
		c := chosen
		mu.Unlock()
		if c == nil || len(c.Certificate) == 0 {
			return nil
		}
		if c.Leaf != nil {
			return c.Leaf
		}
		l, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil
		}
		return l
	}
	return cfg, leaf
}

// pickCertificate chooses like crypto/tls does for a list: the first
// certificate the client's hello supports, else the first.
func pickCertificate(hello *tls.ClientHelloInfo, certs []tls.Certificate) *tls.Certificate {
	if len(certs) == 0 {
		return nil
	}
	for i := range certs {
		if hello.SupportsCertificate(&certs[i]) == nil {
			return &certs[i]
		}
	}
	return &certs[0]
}
