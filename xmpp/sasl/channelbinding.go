package sasl

import (
	"crypto"
	_ "crypto/sha512" // crypto.SHA384 and SHA512 for tls-server-end-point
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLSExporter returns the tls-exporter channel binding of RFC 9266: 32
// bytes exported under the label "EXPORTER-Channel-Binding" with an empty
// context. It is defined here for TLS 1.3 only; on older versions use
// tls-server-end-point.
func TLSExporter(cs *tls.ConnectionState) ([]byte, error) {
	if cs == nil || !cs.HandshakeComplete {
		return nil, errors.New("sasl: tls-exporter needs a completed TLS handshake")
	}
	if cs.Version < tls.VersionTLS13 {
		return nil, errors.New("sasl: tls-exporter needs TLS 1.3")
	}
	return cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
}

// TLSServerEndPoint returns the tls-server-end-point channel binding of
// RFC 5929 section 4.1: the hash of the server's certificate, with the hash
// of its signature algorithm, SHA-256 in place of MD5 and SHA-1. Ed25519
// and unknown algorithms have no defined hash and give an error.
func TLSServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	if cert == nil {
		return nil, errors.New("sasl: tls-server-end-point needs the server certificate")
	}
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("sasl: tls-server-end-point undefined for %v certificates", cert.SignatureAlgorithm)
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil), nil
}

// TLSChannelBinding returns a ServerConfig.ChannelBinding for a connection.
// serverCert is the server's leaf certificate: on the server its own, on a
// client cs.PeerCertificates[0]. Types without data give an error.
func TLSChannelBinding(cs *tls.ConnectionState, serverCert *x509.Certificate) func(cbType string) ([]byte, error) {
	return func(cbType string) ([]byte, error) {
		switch cbType {
		case CBTLSExporter:
			return TLSExporter(cs)
		case CBTLSServerEndPoint:
			return TLSServerEndPoint(serverCert)
		}
		return nil, fmt.Errorf("sasl: unknown channel binding type %q", cbType)
	}
}
