// Package tlsconf builds the TLS configuration of Switchboard's listeners.
//
// The policy is TLS 1.2 as the floor, with only forward-secret AEAD suites
// (ECDHE with AES-GCM or ChaCha20-Poly1305) for TLS 1.2, and TLS 1.3, whose
// suites Go fixes and which are all AEAD.
//
// # The legacy 3DES option
//
// The draft this project's checklist cites (rfc3920bis) names
// TLS_RSA_WITH_3DES_EDE_CBC_SHA as the suite every implementation must
// support. RFC 6120 dropped that requirement, and the suite is off here by
// default because:
//
//   - RSA key exchange has no forward secrecy: whoever later obtains the
//     server's private key can decrypt every recorded session.
//   - 3DES has 64-bit blocks, so a long-lived connection such as an XMPP
//     stream is exposed to birthday attacks (SWEET32, CVE-2016-2183).
//   - CBC with HMAC-SHA1 in MAC-then-encrypt order is the construction
//     behind the Lucky Thirteen and padding-oracle family of attacks.
//
// An operator who must serve a client that knows nothing newer can turn it on
// with legacy3DES; it then needs an RSA certificate among the certificates,
// since the suite's key exchange encrypts with the server's RSA key.
package tlsconf

import (
	"crypto/tls"
)

// modernSuites are the TLS 1.2 suites offered by default, strongest first.
// Go picks among them by its own preference order; the list only enables.
var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Legacy3DESSuite is the suite the legacy option adds.
const Legacy3DESSuite = tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA

// Server returns the configuration of a server presenting certs. With
// several certificates, the first one the client's handshake supports is
// used (for example the RSA one for a client restricted to the legacy suite).
func Server(certs []tls.Certificate, legacy3DES bool) *tls.Config {
	suites := append([]uint16(nil), modernSuites...)
	if legacy3DES {
		suites = append(suites, Legacy3DESSuite)
	}
	return &tls.Config{
		Certificates: certs,
		MinVersion:   tls.VersionTLS12,
		CipherSuites: suites,
	}
}

// Dynamic returns the configuration of a server whose certificate get
// chooses for each handshake, such as internal/certs.Store.GetCertificate
// (by the name the client asked for, reloaded when the files change). With
// legacy3DES, get must be able to return an RSA certificate for a client
// that supports only the legacy suite.
func Dynamic(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), legacy3DES bool) *tls.Config {
	c := Server(nil, legacy3DES)
	c.GetCertificate = get
	return c
}
