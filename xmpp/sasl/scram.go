package sasl

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// exchange states shared by the server mechanisms.
const (
	stateStart = iota
	stateEmptyChallengeSent
	stateContinue
	stateFinal
	stateDone
	stateFailed
)

// scramServer runs RFC 5802 section 5 on the server side.
type scramServer struct {
	cfg   ServerConfig
	hash  scramHash
	plus  bool
	state int
	err   error

	username        string // prepared
	gs2Header       string
	cbInput         []byte // expected decoded c= value
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
	keys            ScramKeys
	unknown         bool // no account or no keys for this hash
	disabled        bool
	authenticated   string
}

func (s *scramServer) Username() string { return s.authenticated }

func (s *scramServer) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	switch s.state {
	case stateFailed:
		return nil, false, s.err
	case stateDone:
		return nil, false, fail(MalformedRequest, "exchange already complete")
	case stateStart:
		if in == nil {
			// No initial response: an empty challenge asks for it
			// (RFC 6120 section 6.4.2).
			s.state = stateEmptyChallengeSent
			return []byte{}, false, nil
		}
		fallthrough
	case stateEmptyChallengeSent:
		out, err := s.clientFirst(ctx, in)
		if err != nil {
			return s.failed(err)
		}
		s.state = stateContinue
		return out, false, nil
	default:
		out, err := s.clientFinal(in)
		if err != nil {
			return s.failed(err)
		}
		s.state = stateDone
		return out, true, nil
	}
}

func (s *scramServer) failed(err error) ([]byte, bool, error) {
	s.state, s.err = stateFailed, err
	return nil, false, err
}

// gs2Header is the parsed GS2 header of RFC 5802 section 7.
type gs2Header struct {
	flag    byte   // 'n', 'y' or 'p'
	cbName  string // with 'p'
	authzid string // decoded
	raw     string // header as sent, with its trailing ','
}

// parseGS2Header splits a client-first-message into its GS2 header and the
// client-first-message-bare.
func parseGS2Header(msg string) (gs2Header, string, error) {
	var h gs2Header
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return h, "", fail(MalformedRequest, "no GS2 header")
	}
	switch {
	case flag == "n" || flag == "y":
		h.flag = flag[0]
	case strings.HasPrefix(flag, "p="):
		h.flag, h.cbName = 'p', flag[2:]
		if !validCBName(h.cbName) {
			return h, "", fail(MalformedRequest, "bad channel binding name")
		}
	default:
		return h, "", fail(MalformedRequest, "bad GS2 channel binding flag")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return h, "", fail(MalformedRequest, "truncated GS2 header")
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return h, "", fail(MalformedRequest, "bad GS2 authzid")
		}
		if h.authzid, ok = decodeSaslname(v); !ok {
			return h, "", fail(MalformedRequest, "bad authzid encoding")
		}
	}
	h.raw = msg[:len(flag)+1+len(authz)+1]
	return h, bare, nil
}

// validCBName checks cb-name = 1*(ALPHA / DIGIT / "." / "-").
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// decodeSaslname undoes the '=2C' and '=3D' escapes of RFC 5802 section
// 5.1; any other '=' is an error, as are NUL and an empty name.
func decodeSaslname(s string) (string, bool) {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return "", false
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// encodeSaslname is the inverse of decodeSaslname.
func encodeSaslname(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// validNonce checks c-nonce = 1*printable, printable being %x21-2B / %x2D-7E.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7E || s[i] == ',' {
			return false
		}
	}
	return true
}

// validExtension checks an attr-val of an extension: one letter, '=', and
// a value.
func validExtension(s string) bool {
	return len(s) >= 3 && isAlpha(s[0]) && s[1] == '='
}

// clientFirst handles client-first-message and answers server-first-message.
func (s *scramServer) clientFirst(ctx context.Context, in []byte) ([]byte, error) {
	if len(in) > maxMessage || !utf8.Valid(in) {
		return nil, fail(MalformedRequest, "")
	}
	msg := string(in)
	gs2, bare, err := parseGS2Header(msg)
	if err != nil {
		return nil, err
	}
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, fail(MalformedRequest, "mandatory extension not supported")
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fail(MalformedRequest, "")
	}
	for _, a := range attrs[2:] {
		if !validExtension(a) {
			return nil, fail(MalformedRequest, "")
		}
	}
	rawUser, ok := decodeSaslname(attrs[0][2:])
	if !ok {
		return nil, fail(MalformedRequest, "bad username encoding")
	}
	clientNonce := attrs[1][2:]
	if !validNonce(clientNonce) {
		return nil, fail(MalformedRequest, "bad nonce")
	}

	// Channel binding: the flag must agree with the mechanism (RFC 5802
	// section 6), and 'y' means someone removed -PLUS from our list.
	cbInput := []byte(gs2.raw)
	switch {
	case s.plus && gs2.flag != 'p':
		return nil, fail(MalformedRequest, "-PLUS mechanism without channel binding")
	case !s.plus && gs2.flag == 'p':
		return nil, fail(MalformedRequest, "channel binding requested with a mechanism without -PLUS")
	case gs2.flag == 'y' && s.cfg.offersPlus():
		return nil, fail(NotAuthorized, "channel binding downgrade detected")
	case gs2.flag == 'p':
		data := s.cfg.channelBinding(gs2.cbName)
		if data == nil {
			return nil, fail(MalformedRequest, "unsupported channel binding type")
		}
		cbInput = append(cbInput, data...)
	}

	user, err := prepareUsername(rawUser)
	if err != nil {
		return nil, fail(NotAuthorized, "")
	}
	if err := s.cfg.checkAuthzid(gs2.authzid, user); err != nil {
		return nil, err
	}
	if err := s.lookup(ctx, user); err != nil {
		return nil, err
	}

	s.username = user
	s.gs2Header = gs2.raw
	s.cbInput = cbInput
	s.clientFirstBare = bare
	s.nonce = clientNonce + s.cfg.serverNonce()
	s.serverFirst = "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(s.keys.Salt) +
		",i=" + strconv.Itoa(s.keys.Iterations)
	return []byte(s.serverFirst), nil
}

// lookup fetches the keys, or fake ones for an unknown account.
func (s *scramServer) lookup(ctx context.Context, user string) error {
	if s.cfg.Lookup == nil {
		return fail(TemporaryAuthFailure, "")
	}
	creds, err := s.cfg.Lookup(ctx, user)
	switch {
	case errors.Is(err, ErrNoAccount):
		creds = nil
	case err != nil || creds == nil:
		return fail(TemporaryAuthFailure, "")
	}
	if creds != nil {
		keys, found, ok := creds.scramKeysFor(s.hash)
		if found && !ok {
			return fail(TemporaryAuthFailure, "")
		}
		if found {
			s.keys, s.disabled = keys, creds.Disabled
			return nil
		}
	}
	// An account without keys for this hash cannot log in with it either;
	// it looks like any unknown name.
	s.keys, s.unknown = s.cfg.fakeScramKeys(s.hash, user), true
	return nil
}

// clientFinal checks client-final-message and answers server-final-message.
func (s *scramServer) clientFinal(in []byte) ([]byte, error) {
	if len(in) > maxMessage || !utf8.Valid(in) {
		return nil, fail(MalformedRequest, "")
	}
	msg := string(in)
	attrs := strings.Split(msg, ",")
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fail(MalformedRequest, "")
	}
	last := attrs[len(attrs)-1]
	if !strings.HasPrefix(last, "p=") {
		return nil, fail(MalformedRequest, "proof missing or not last")
	}
	for _, a := range attrs[2 : len(attrs)-1] {
		if !validExtension(a) {
			return nil, fail(MalformedRequest, "")
		}
	}
	cb, err := base64.StdEncoding.Strict().DecodeString(attrs[0][2:])
	if err != nil {
		return nil, fail(IncorrectEncoding, "")
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(last[2:])
	if err != nil {
		return nil, fail(IncorrectEncoding, "")
	}
	if len(proof) != s.hash.size {
		return nil, fail(MalformedRequest, "bad proof length")
	}
	if subtle.ConstantTimeCompare(cb, s.cbInput) != 1 {
		return nil, fail(NotAuthorized, "channel binding mismatch")
	}
	if attrs[1][2:] != s.nonce {
		return nil, fail(NotAuthorized, "nonce mismatch")
	}

	// RFC 5802 section 3: recover ClientKey from the proof and compare its
	// hash with StoredKey.
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + msg[:len(msg)-len(last)-1]
	clientSig := s.hash.hmac(s.keys.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSig)
	match := subtle.ConstantTimeCompare(s.hash.sum(clientKey), s.keys.StoredKey) == 1
	if !match || s.unknown {
		return nil, fail(NotAuthorized, "")
	}
	if s.disabled {
		return nil, fail(AccountDisabled, "")
	}
	s.authenticated = s.username
	serverSig := s.hash.hmac(s.keys.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}
