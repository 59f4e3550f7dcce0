package sasl

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"
)

// digestServer is the server side of DIGEST-MD5 (RFC 2831) with qop=auth
// only: authentication, no integrity or confidentiality layer.
type digestServer struct {
	cfg           ServerConfig
	state         int
	err           error
	nonce         string
	authenticated string
	username      string
}

func (s *digestServer) Username() string { return s.authenticated }

func (s *digestServer) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	var (
		out []byte
		err error
	)
	switch s.state {
	case stateFailed:
		return nil, false, s.err
	case stateDone:
		return nil, false, fail(MalformedRequest, "exchange already complete")
	case stateStart:
		// DIGEST-MD5 starts with the server (RFC 2831 section 2.1).
		if len(in) != 0 {
			err = fail(MalformedRequest, "DIGEST-MD5 has no initial response")
			break
		}
		s.nonce = s.cfg.serverNonce()
		s.state = stateContinue
		return []byte(`realm=` + quote(s.cfg.Host) + `,nonce=` + quote(s.nonce) +
			`,qop="auth",charset=utf-8,algorithm=md5-sess`), false, nil
	case stateContinue:
		if out, err = s.response(ctx, in); err == nil {
			s.state = stateFinal
			return out, false, nil
		}
	case stateFinal:
		// The client acknowledges rspauth with an empty response
		// (RFC 2831 section 2.1.3).
		if len(in) != 0 {
			err = fail(MalformedRequest, "")
			break
		}
		s.state, s.authenticated = stateDone, s.username
		return nil, true, nil
	}
	s.state, s.err = stateFailed, err
	return nil, false, err
}

// response checks the digest-response of RFC 2831 section 2.1.2 and returns
// the response-auth of section 2.1.3.
func (s *digestServer) response(ctx context.Context, in []byte) ([]byte, error) {
	if len(in) > maxMessage {
		return nil, fail(MalformedRequest, "")
	}
	d, err := parseDirectives(string(in))
	if err != nil {
		return nil, err
	}
	malformed := func(text string) ([]byte, error) { return nil, fail(MalformedRequest, text) }
	// charset=utf-8 is what we offered; without it the strings are
	// ISO 8859-1 (RFC 2831 section 2.1.2).
	utf8Charset := false
	if cs, ok := d["charset"]; ok {
		if cs != "utf-8" {
			return malformed("bad charset")
		}
		utf8Charset = true
	}
	text := func(v string) (string, bool) {
		if utf8Charset {
			return v, utf8.ValidString(v)
		}
		return latin1ToUTF8(v), true
	}
	rawUser, userOK := d["username"]
	cnonce, cnonceOK := d["cnonce"]
	uri, uriOK := d["digest-uri"]
	resp, respOK := d["response"]
	if !userOK || rawUser == "" || !cnonceOK || cnonce == "" || !uriOK || !respOK {
		return malformed("missing directive")
	}
	if d["nonce"] != s.nonce {
		return malformed("nonce mismatch")
	}
	if d["nc"] != "00000001" {
		return malformed("nonce count must be 00000001")
	}
	if qop, ok := d["qop"]; ok && qop != "auth" {
		return malformed("only qop=auth is supported")
	}
	resp = strings.ToLower(resp)
	if len(resp) != 32 || !isHex(resp) {
		return malformed("bad response")
	}
	authzid, authzOK := d["authzid"]
	if authzOK && authzid == "" {
		return malformed("empty authzid")
	}
	userText, ok1 := text(rawUser)
	realmText, ok2 := text(d["realm"])
	authzText, ok3 := text(authzid)
	if !ok1 || !ok2 || !ok3 {
		return malformed("not UTF-8")
	}
	// digest-uri is "xmpp/" host (RFC 6120 used to say serv-type xmpp).
	if h, ok := strings.CutPrefix(uri, "xmpp/"); !ok || !strings.EqualFold(h, s.cfg.Host) {
		return nil, fail(NotAuthorized, "bad digest-uri")
	}

	user, err := prepareUsername(userText)
	if err != nil {
		return nil, fail(NotAuthorized, "")
	}
	if err := s.cfg.checkAuthzid(authzText, user); err != nil {
		return nil, err
	}
	if s.cfg.Lookup == nil {
		return nil, fail(TemporaryAuthFailure, "")
	}
	creds, err := s.cfg.Lookup(ctx, user)
	switch {
	case errors.Is(err, ErrNoAccount):
		creds = &Credentials{}
	case err != nil || creds == nil:
		return nil, fail(TemporaryAuthFailure, "")
	}
	known := len(creds.DigestMD5) == md5.Size && creds.DigestRealm == realmText
	secret := creds.DigestMD5
	if !known {
		// Same work for a missing account, a realm that is not the
		// account's, or an account without the legacy hash.
		secret = make([]byte, md5.Size)
	}

	want := digestResponse(secret, s.nonce, cnonce, authzid, uri, "AUTHENTICATE:")
	if subtle.ConstantTimeCompare([]byte(want), []byte(resp)) != 1 || !known {
		return nil, fail(NotAuthorized, "")
	}
	if creds.Disabled {
		return nil, fail(AccountDisabled, "")
	}
	s.username = user
	return []byte("rspauth=" + digestResponse(secret, s.nonce, cnonce, authzid, uri, ":")), nil
}

// digestResponse computes RFC 2831 section 2.1.2.1 for qop=auth and the
// first nonce count: with a2Prefix "AUTHENTICATE:" the client's
// response-value, with ":" the server's response-auth (section 2.1.3).
// userHash is H(username:realm:password); an empty authzid is left out of
// A1.
func digestResponse(userHash []byte, nonce, cnonce, authzid, uri, a2Prefix string) string {
	a1 := md5.New()
	a1.Write(userHash)
	a1.Write([]byte(":" + nonce + ":" + cnonce))
	if authzid != "" {
		a1.Write([]byte(":" + authzid))
	}
	ha1 := hex.EncodeToString(a1.Sum(nil))
	ha2 := md5.Sum([]byte(a2Prefix + uri))
	kd := md5.Sum([]byte(ha1 + ":" + nonce + ":00000001:" + cnonce + ":auth:" + hex.EncodeToString(ha2[:])))
	return hex.EncodeToString(kd[:])
}

// parseDirectives reads a digest-response: comma-separated name=value
// pairs, values as tokens or quoted strings (RFC 2831 section 7.1). Names
// are case-insensitive; a name given twice is an error, as RFC 2831 allows
// each directive once.
func parseDirectives(s string) (map[string]string, error) {
	bad := fail(MalformedRequest, "bad directive syntax")
	d := make(map[string]string)
	i := 0
	skipLWS := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for {
		skipLWS()
		for i < len(s) && s[i] == ',' {
			i++
			skipLWS()
		}
		if i == len(s) {
			return d, nil
		}
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		skipLWS()
		if name == "" || i == len(s) || s[i] != '=' {
			return nil, bad
		}
		i++
		skipLWS()
		var value string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i < len(s) {
					c = s[i]
					i++
				}
				b.WriteByte(c)
			}
			if !closed {
				return nil, bad
			}
			value = b.String()
		} else {
			start := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			value = s[start:i]
		}
		if _, dup := d[name]; dup {
			return nil, bad
		}
		d[name] = value
		skipLWS()
		if i < len(s) && s[i] != ',' {
			return nil, bad
		}
	}
}

// isTokenChar reports whether c may appear in an RFC 2616 token.
func isTokenChar(c byte) bool {
	if c <= 32 || c >= 127 {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?={}`, rune(c))
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// quote writes s as a quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// latin1ToUTF8 reads s as ISO 8859-1.
func latin1ToUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
