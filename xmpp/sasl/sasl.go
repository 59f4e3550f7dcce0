// Package sasl implements the SASL mechanisms XMPP uses (RFC 6120 section 6):
// the server side of SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS forms, PLAIN
// and the legacy DIGEST-MD5, and the client side of SCRAM and PLAIN.
//
// # Server
//
// A ServerConfig describes one stream: which mechanisms the operator enabled,
// whether TLS is up, and how to get channel binding data and credentials.
// Offered lists what to advertise; Start begins an exchange whose Step is fed
// the decoded payloads of <auth/> and <response/>. Every error a Server
// returns is a *Failure ready to be written with Element.
//
// The server never needs a password: SCRAM and PLAIN are checked against the
// stored keys of RFC 5802 section 3 (see NewScramKeys), DIGEST-MD5 against
// the RFC 2831 hash (see DigestMD5Hash). An unknown user gets the same
// exchange as a known one, with a salt derived from the name and a server
// secret, and fails with not-authorized like a wrong password. A disabled
// account is reported (account-disabled) by every mechanism, but only once
// the password was proved: RFC 6120 section 6.5.2 allows the condition in
// reply to <response/> as well as <auth/>, and saying it earlier would tell
// anyone who knows only a name that the account exists. Until then a
// disabled account's exchange is the same as an enabled one's.
//
// # Names and passwords
//
// Usernames are prepared with the PRECIS UsernameCaseMapped profile and
// passwords with OpaqueString (RFC 8265), which replace SASLprep.
//
// # Legacy mechanisms
//
// DIGEST-MD5 was moved to Historic by RFC 6331 (weak hash, a stored secret
// that is equivalent to the password, interoperability problems). It is in
// no default and is offered only when listed in ServerConfig.Mechanisms.
package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
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

// maxMessage bounds one SASL message of any mechanism here; real ones are a
// few hundred bytes.
const maxMessage = 4096

// DefaultMechanisms returns the mechanisms enabled when
// ServerConfig.Mechanisms is nil, strongest first. DIGEST-MD5 is never among
// them.
func DefaultMechanisms() []string {
	return []string{ScramSHA256Plus, ScramSHA1Plus, ScramSHA256, ScramSHA1, Plain}
}

// ServerConfig describes what a stream may negotiate.
type ServerConfig struct {
	Lookup Lookup
	// Mechanisms enabled by the operator, in preference order; nil means
	// DefaultMechanisms. Unknown names are ignored.
	Mechanisms []string
	// TLS reports whether the stream is encrypted.
	TLS bool
	// ChannelBinding returns the binding data of the TLS connection for a
	// type (CBTLSExporter, CBTLSServerEndPoint); nil without TLS.
	// TLSChannelBinding builds one from a connection state.
	ChannelBinding func(cbType string) ([]byte, error)
	// AllowPlaintextWithoutTLS offers PLAIN (and DIGEST-MD5) on unencrypted
	// streams; off by default.
	AllowPlaintextWithoutTLS bool
	// Host is the served domain (DIGEST-MD5 digest-uri and realm, and the
	// domain an authzid may name).
	Host string
	// UnknownUserSecret keys the fake SCRAM salt of unknown users. Give every
	// node of a cluster the same secret, or a client asking two nodes sees
	// two salts for a missing account where a real one has one. When empty,
	// a random secret is drawn once per process.
	UnknownUserSecret []byte
	// UnknownUserIterations is the iteration count announced for unknown
	// users; set it to what the account store uses. Zero means MinIterations.
	UnknownUserIterations int

	// nonce, when set, makes the server part of the nonces (tests only).
	nonce func() string
}

// mechanisms returns the enabled list.
func (c *ServerConfig) mechanisms() []string {
	if c.Mechanisms == nil {
		return DefaultMechanisms()
	}
	return c.Mechanisms
}

// check tells whether mech may run on this stream, and if not, the
// condition to answer a client that asks for it anyway.
func (c *ServerConfig) check(mech string) Condition {
	enabled := false
	for _, m := range c.mechanisms() {
		if m == mech {
			enabled = true
			break
		}
	}
	if !enabled {
		return InvalidMechanism
	}
	switch mech {
	case ScramSHA1, ScramSHA256:
		return ""
	case ScramSHA1Plus, ScramSHA256Plus:
		if len(c.ChannelBindingTypes()) == 0 {
			return InvalidMechanism
		}
		return ""
	case Plain:
		if !c.TLS && !c.AllowPlaintextWithoutTLS {
			return EncryptionRequired
		}
		return ""
	case DigestMD5:
		if c.Host == "" {
			return InvalidMechanism
		}
		if !c.TLS && !c.AllowPlaintextWithoutTLS {
			return EncryptionRequired
		}
		return ""
	}
	return InvalidMechanism
}

// Offered returns the mechanisms to advertise on this stream, in order.
func (c *ServerConfig) Offered() []string {
	var out []string
	for _, m := range c.mechanisms() {
		if c.check(m) != "" || slices.Contains(out, m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// offersPlus reports whether a -PLUS mechanism is advertised; a client that
// says 'y' (it could bind but thinks the server cannot) then saw a stripped
// list (RFC 5802 section 6).
func (c *ServerConfig) offersPlus() bool {
	for _, m := range c.Offered() {
		if m == ScramSHA1Plus || m == ScramSHA256Plus {
			return true
		}
	}
	return false
}

// ChannelBindingTypes returns the channel binding types available on this
// stream, for XEP-0440 advertisement.
func (c *ServerConfig) ChannelBindingTypes() []string {
	var out []string
	for _, t := range []string{CBTLSExporter, CBTLSServerEndPoint} {
		if c.channelBinding(t) != nil {
			out = append(out, t)
		}
	}
	return out
}

// channelBinding returns the data for cbType, or nil when there is none.
func (c *ServerConfig) channelBinding(cbType string) []byte {
	if c.ChannelBinding == nil || cbType == "" {
		return nil
	}
	data, err := c.ChannelBinding(cbType)
	if err != nil || len(data) == 0 {
		return nil
	}
	return data
}

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
// gives a *Failure (invalid-mechanism; encryption-required for PLAIN and
// DIGEST-MD5 without TLS). The exchange works on a copy of c.
func (c *ServerConfig) Start(mech string) (Server, error) {
	if cond := c.check(mech); cond != "" {
		return nil, fail(cond, "")
	}
	cfg := *c
	if h, plus, ok := scramMechanism(mech); ok {
		return &scramServer{cfg: cfg, hash: h, plus: plus}, nil
	}
	switch mech {
	case Plain:
		return &plainServer{cfg: cfg}, nil
	case DigestMD5:
		return &digestServer{cfg: cfg}, nil
	}
	return nil, fail(InvalidMechanism, "")
}

// DecodePayload decodes the base64 text of <auth/> or <response/>; "=" is the
// empty payload and no text at all gives nil (no initial response). Bad
// base64, including the whitespace RFC 6120 section 6.4.2 forbids, gives a
// *Failure with incorrect-encoding.
func DecodePayload(text string) ([]byte, error) {
	switch text {
	case "":
		return nil, nil
	case "=":
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || strings.ContainsAny(text, "\r\n") {
		return nil, fail(IncorrectEncoding, "")
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// EncodePayload is the inverse of DecodePayload ("=" for empty).
func EncodePayload(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

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

// serverNonce returns the server's part of a nonce: 18 random bytes in
// base64, which has no ',' and is printable as RFC 5802 wants.
func (c *ServerConfig) serverNonce() string {
	if c.nonce != nil {
		return c.nonce()
	}
	return randomNonce()
}

func randomNonce() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; if it ever
		// does, no exchange may run on a predictable nonce.
		panic("sasl: crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

var (
	processSecretOnce sync.Once
	processSecret     []byte
)

// unknownUserSecret returns the configured secret or the per-process one.
func (c *ServerConfig) unknownUserSecret() []byte {
	if len(c.UnknownUserSecret) > 0 {
		return c.UnknownUserSecret
	}
	processSecretOnce.Do(func() {
		processSecret = make([]byte, 32)
		if _, err := rand.Read(processSecret); err != nil {
			panic("sasl: crypto/rand failed: " + err.Error())
		}
	})
	return processSecret
}

// fakeScramKeys returns keys for an account that does not exist: the salt
// depends only on the secret, the hash and the name, so asking twice gives
// the same salt, as it would for a real account. No proof matches them; the
// caller also refuses them explicitly.
func (c *ServerConfig) fakeScramKeys(h scramHash, username string) ScramKeys {
	secret := c.unknownUserSecret()
	derive := func(purpose string, n int) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("switchboard sasl unknown user\x00" + purpose + "\x00" + h.name + "\x00" + username))
		return m.Sum(nil)[:n]
	}
	iter := c.UnknownUserIterations
	if iter <= 0 {
		iter = MinIterations
	}
	return ScramKeys{
		Hash:       h.name,
		Salt:       derive("salt", SaltSize),
		Iterations: iter,
		StoredKey:  derive("stored", h.size),
		ServerKey:  derive("server", h.size),
	}
}

// checkAuthzid accepts an authorization identity that names the
// authenticated user: the bare JID user@Host, or the bare localpart that
// some clients send. Anything else (another user, another domain, a full
// JID) is refused with invalid-authzid (RFC 6120 section 6.4.6).
func (c *ServerConfig) checkAuthzid(authzid, username string) error {
	if authzid == "" {
		return nil
	}
	bad := fail(InvalidAuthzid, "")
	if strings.Contains(authzid, "/") {
		return bad
	}
	local := authzid
	if l, domain, ok := strings.Cut(authzid, "@"); ok {
		host := strings.TrimSuffix(c.Host, ".")
		if host == "" || !strings.EqualFold(strings.TrimSuffix(domain, "."), host) {
			return bad
		}
		local = l
	}
	p, err := prepareUsername(local)
	if err != nil || p != username {
		return bad
	}
	return nil
}
