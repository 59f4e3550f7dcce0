package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// ErrNoAccount is returned by a Lookup for an unknown user. The server
// answers it exactly like a wrong password (not-authorized).
var ErrNoAccount = errors.New("sasl: no such account")

// SaltSize is the length of the random salt NewScramKeys draws.
const SaltSize = 16

// ScramKeys is what a server stores for one SCRAM hash (RFC 5802 section 3).
type ScramKeys struct {
	Hash       string // "SHA-1" or "SHA-256"
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Hash names of ScramKeys.Hash.
const (
	HashSHA1   = "SHA-1"
	HashSHA256 = "SHA-256"
)

// NewScramKeys derives keys for password with a fresh random salt.
// iterations below MinIterations are raised to it. The password is prepared
// with the PRECIS OpaqueString profile (RFC 8265), as the server and client
// of this package prepare it before hashing.
func NewScramKeys(hash, password string, iterations int) (ScramKeys, error) {
	h, ok := scramHashByName(hash)
	if !ok {
		return ScramKeys{}, fmt.Errorf("sasl: unknown SCRAM hash %q", hash)
	}
	p, err := preparePassword(password)
	if err != nil {
		return ScramKeys{}, err
	}
	if iterations < MinIterations {
		iterations = MinIterations
	}
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return ScramKeys{}, err
	}
	return deriveScramKeys(h, p, salt, iterations)
}

// DigestMD5Hash returns the RFC 2831 H(username:realm:password), the 16 raw
// bytes of the MD5 sum. As RFC 2831 section 2.1.2.1 asks of clients using
// charset=utf-8, each string that ISO 8859-1 can represent is hashed in
// that encoding, any other in UTF-8. Compute it with the prepared username:
// the server looks accounts up by that name.
func DigestMD5Hash(username, realm, password string) []byte {
	h := md5.New()
	h.Write(latin1IfPossible(username))
	h.Write([]byte{':'})
	h.Write(latin1IfPossible(realm))
	h.Write([]byte{':'})
	h.Write(latin1IfPossible(password))
	return h.Sum(nil)
}

// latin1IfPossible encodes s in ISO 8859-1 when every character fits,
// otherwise returns its UTF-8 bytes unchanged.
func latin1IfPossible(s string) []byte {
	if !utf8.ValidString(s) {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return []byte(s)
		}
		out = append(out, byte(r))
	}
	return out
}

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

// PrepareUsername applies the PRECIS UsernameCaseMapped profile (RFC 8265
// section 3.3), the form in which the server passes names to Lookup; store
// accounts under it.
func PrepareUsername(username string) (string, error) {
	return precis.UsernameCaseMapped.String(username)
}

func prepareUsername(s string) (string, error) { return PrepareUsername(s) }

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 section
// 4.2), the successor of SASLprep that RFC 5802 names.
func preparePassword(s string) (string, error) {
	return precis.OpaqueString.String(s)
}

// scramHash is one hash function SCRAM can run with.
type scramHash struct {
	name string // ScramKeys.Hash
	new  func() hash.Hash
	size int
}

var (
	hashSHA1   = scramHash{HashSHA1, sha1.New, sha1.Size}
	hashSHA256 = scramHash{HashSHA256, sha256.New, sha256.Size}
)

func scramHashByName(name string) (scramHash, bool) {
	switch name {
	case HashSHA1:
		return hashSHA1, true
	case HashSHA256:
		return hashSHA256, true
	}
	return scramHash{}, false
}

// scramMechanism maps a mechanism name to its hash and whether it binds to
// the channel.
func scramMechanism(mech string) (h scramHash, plus, ok bool) {
	switch mech {
	case ScramSHA1:
		return hashSHA1, false, true
	case ScramSHA1Plus:
		return hashSHA1, true, true
	case ScramSHA256:
		return hashSHA256, false, true
	case ScramSHA256Plus:
		return hashSHA256, true, true
	}
	return scramHash{}, false, false
}

func (h scramHash) hmac(key []byte, parts ...string) []byte {
	m := hmac.New(h.new, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (h scramHash) sum(b []byte) []byte {
	d := h.new()
	d.Write(b)
	return d.Sum(nil)
}

// saltedPassword is Hi(password, salt, i) of RFC 5802 section 2.2, which is
// PBKDF2 with HMAC and an output as long as the hash.
func (h scramHash) saltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(h.new, password, salt, iterations, h.size)
}

// deriveScramKeys computes the stored and server keys of RFC 5802 section 3
// from an already prepared password.
func deriveScramKeys(h scramHash, password string, salt []byte, iterations int) (ScramKeys, error) {
	salted, err := h.saltedPassword(password, salt, iterations)
	if err != nil {
		return ScramKeys{}, err
	}
	return ScramKeys{
		Hash:       h.name,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  h.sum(h.hmac(salted, "Client Key")),
		ServerKey:  h.hmac(salted, "Server Key"),
	}, nil
}

// usable reports whether stored keys are complete for h.
func (k *ScramKeys) usable(h scramHash) bool {
	return k.Hash == h.name && len(k.Salt) > 0 && k.Iterations > 0 &&
		len(k.StoredKey) == h.size && len(k.ServerKey) == h.size
}

// scramKeysFor returns the account's keys for h: found is false when the
// account has none for h, ok is false when what it has is damaged.
func (c *Credentials) scramKeysFor(h scramHash) (keys ScramKeys, found, ok bool) {
	for _, k := range c.Scram {
		if k.Hash == h.name {
			return k, true, k.usable(h)
		}
	}
	return ScramKeys{}, false, false
}
