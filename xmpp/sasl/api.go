// Package sasl implements the SASL mechanisms XMPP uses (RFC 6120 section 6):
// the server side of SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS forms, PLAIN
// and the legacy DIGEST-MD5, and the client side of SCRAM and PLAIN.
//
// API CONTRACT (stub written first so that c2s and client can be built in
// parallel; the implementation replaces the panics, keeps the signatures).
package sasl

import (
	"context"
	"errors"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// NS is the SASL namespace of RFC 6120.
const NS = "urn:ietf:params:xml:ns:xmpp-sasl"

// Mechanism names.
const (
	ScramSHA1       = "SCRAM-SHA-1"
	ScramSHA1Plus   = "SCRAM-SHA-1-PLUS"
	ScramSHA256     = "SCRAM-SHA-256"
	ScramSHA256Plus = "SCRAM-SHA-256-PLUS"
	Plain           = "PLAIN"
	DigestMD5       = "DIGEST-MD5"
)

// Channel binding types (RFC 9266, RFC 5929).
const (
	CBTLSExporter       = "tls-exporter"
	CBTLSServerEndPoint = "tls-server-end-point"
)

// MinIterations is the least PBKDF2 iteration count accepted for new keys.
const MinIterations = 4096

// Condition is a SASL failure condition of RFC 6120 section 6.5.
type Condition string

const (
	Aborted              Condition = "aborted"
	AccountDisabled      Condition = "account-disabled"
	CredentialsExpired   Condition = "credentials-expired"
	EncryptionRequired   Condition = "encryption-required"
	IncorrectEncoding    Condition = "incorrect-encoding"
	InvalidAuthzid       Condition = "invalid-authzid"
	InvalidMechanism     Condition = "invalid-mechanism"
	MalformedRequest     Condition = "malformed-request"
	MechanismTooWeak     Condition = "mechanism-too-weak"
	NotAuthorized        Condition = "not-authorized"
	TemporaryAuthFailure Condition = "temporary-auth-failure"
)

func (c Condition) Error() string { return "sasl: " + string(c) }

// Failure is a SASL failure; errors.Is(err, sasl.NotAuthorized) works.
type Failure struct {
	Condition Condition
	Text      string
}

func (f *Failure) Error() string { return "sasl failure: " + string(f.Condition) }

// Is reports whether target is f's Condition or a *Failure with it.
func (f *Failure) Is(target error) bool { panic("sasl: unimplemented") }

// Element returns <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>.
func (f *Failure) Element() *dom.Element { panic("sasl: unimplemented") }

// ParseFailure reads a <failure/> element.
func ParseFailure(el *dom.Element) *Failure { panic("sasl: unimplemented") }

// ErrNoAccount is returned by a Lookup for an unknown user. The server
// answers it exactly like a wrong password (not-authorized).
var ErrNoAccount = errors.New("sasl: no such account")

// ScramKeys is what a server stores for one SCRAM hash (RFC 5802 section 3).
type ScramKeys struct {
	Hash       string // "SHA-1" or "SHA-256"
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// NewScramKeys derives keys for password with a fresh random salt.
// iterations below MinIterations are raised to it.
func NewScramKeys(hash, password string, iterations int) (ScramKeys, error) {
	panic("sasl: unimplemented")
}

// DigestMD5Hash returns the RFC 2831 H(username:realm:password).
func DigestMD5Hash(username, realm, password string) []byte { panic("sasl: unimplemented") }

// Credentials are what a Lookup returns for one account.
type Credentials struct {
	Scram       []ScramKeys
	DigestMD5   []byte // nil unless the legacy option stored it
	DigestRealm string
	Disabled    bool
}

// Lookup fetches an account's credentials by (PRECIS-prepared) username.
// It returns ErrNoAccount for an unknown user; any other error becomes
// temporary-auth-failure.
type Lookup func(ctx context.Context, username string) (*Credentials, error)

// ServerConfig describes what a stream may negotiate.
type ServerConfig struct {
	Lookup Lookup
	// Mechanisms enabled by the operator, in preference order.
	Mechanisms []string
	// TLS reports whether the stream is encrypted.
	TLS bool
	// ChannelBinding returns the binding data of the TLS connection for a
	// type (CBTLSExporter, CBTLSServerEndPoint); nil without TLS.
	ChannelBinding func(cbType string) ([]byte, error)
	// AllowPlaintextWithoutTLS offers PLAIN (and DIGEST-MD5) on unencrypted
	// streams; off by default.
	AllowPlaintextWithoutTLS bool
	// Host is the served domain (DIGEST-MD5 digest-uri and realm).
	Host string
}

// Offered returns the mechanisms to advertise on this stream, in order.
func (c *ServerConfig) Offered() []string { panic("sasl: unimplemented") }

// ChannelBindingTypes returns the channel binding types available on this
// stream, for XEP-0440 advertisement.
func (c *ServerConfig) ChannelBindingTypes() []string { panic("sasl: unimplemented") }

// Server is one server-side authentication exchange.
type Server interface {
	// Step consumes the client's data (base64-decoded; the initial response
	// may be nil when the client sent none) and returns the challenge, or
	// with done set the additional data for <success/>. Errors are *Failure.
	Step(ctx context.Context, in []byte) (out []byte, done bool, err error)
	// Username is the authenticated (PRECIS-prepared) localpart, once done.
	Username() string
}

// Start begins an exchange for mech; an unknown or not offered mechanism
// gives a *Failure (invalid-mechanism, encryption-required, mechanism-too-weak).
func (c *ServerConfig) Start(mech string) (Server, error) { panic("sasl: unimplemented") }

// DecodePayload decodes the base64 text of <auth/> or <response/>; "=" is the
// empty payload. Bad base64 gives a *Failure with incorrect-encoding.
func DecodePayload(text string) ([]byte, error) { panic("sasl: unimplemented") }

// EncodePayload is the inverse of DecodePayload ("=" for empty).
func EncodePayload(b []byte) string { panic("sasl: unimplemented") }

// Client is the client side of one exchange.
type Client interface {
	Mechanism() string
	// Start returns the initial response.
	Start() ([]byte, error)
	// Step answers a challenge.
	Step(challenge []byte) ([]byte, error)
	// Verify checks the additional data of <success/> (the SCRAM server
	// signature); a mismatch is an error.
	Verify(success []byte) error
}

// NewScramClient returns a SCRAM client for mech (one of the four SCRAM
// names). For -PLUS, cbType and cbData give the channel binding; for the
// plain forms, serverSupportsPlus says whether the server offered -PLUS (the
// GS2 flag y/n).
func NewScramClient(mech, username, password, authzid, cbType string, cbData []byte, serverSupportsPlus bool) (Client, error) {
	panic("sasl: unimplemented")
}

// NewPlainClient returns a PLAIN client.
func NewPlainClient(username, password, authzid string) Client { panic("sasl: unimplemented") }
