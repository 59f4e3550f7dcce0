package sasl

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"unicode/utf8"
)

// plainServer checks RFC 4616 PLAIN against stored SCRAM keys.
type plainServer struct {
	cfg           ServerConfig
	state         int
	err           error
	authenticated string
}

func (s *plainServer) Username() string { return s.authenticated }

func (s *plainServer) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	switch s.state {
	case stateFailed:
		return nil, false, s.err
	case stateDone:
		return nil, false, fail(MalformedRequest, "exchange already complete")
	case stateStart:
		if in == nil {
			s.state = stateEmptyChallengeSent
			return []byte{}, false, nil
		}
	}
	if err := s.verify(ctx, in); err != nil {
		s.state, s.err = stateFailed, err
		return nil, false, err
	}
	s.state = stateDone
	return nil, true, nil
}

// parsePlain splits message = [authzid] NUL authcid NUL passwd (RFC 4616
// section 2); each part is UTF-8 of at most 255 octets, authcid and passwd
// are not empty.
func parsePlain(in []byte) (authzid, authcid, passwd string, err error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fail(MalformedRequest, "")
	}
	for _, p := range parts {
		if len(p) > 255 || !utf8.Valid(p) {
			return "", "", "", fail(MalformedRequest, "")
		}
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

func (s *plainServer) verify(ctx context.Context, in []byte) error {
	authzid, authcid, passwd, err := parsePlain(in)
	if err != nil {
		return err
	}
	user, err := prepareUsername(authcid)
	if err != nil {
		return fail(NotAuthorized, "")
	}
	prepared, err := preparePassword(passwd)
	if err != nil {
		return fail(NotAuthorized, "")
	}
	if err := s.cfg.checkAuthzid(authzid, user); err != nil {
		return err
	}
	if s.cfg.Lookup == nil {
		return fail(TemporaryAuthFailure, "")
	}
	creds, err := s.cfg.Lookup(ctx, user)
	switch {
	case errors.Is(err, ErrNoAccount):
		creds = &Credentials{}
	case err != nil || creds == nil:
		return fail(TemporaryAuthFailure, "")
	}
	ok, err := s.check(creds, user, prepared, passwd)
	if err != nil {
		return fail(TemporaryAuthFailure, "")
	}
	if !ok {
		return fail(NotAuthorized, "")
	}
	if creds.Disabled {
		return fail(AccountDisabled, "")
	}
	s.authenticated = user
	return nil
}

// check compares the password with the account's strongest SCRAM keys, or,
// for an account that has only the legacy hash, with that. An account with
// neither (or none at all) costs the same PBKDF2 run as a real one, so
// response times do not tell which names exist.
func (s *plainServer) check(creds *Credentials, user, prepared, raw string) (bool, error) {
	for _, h := range []scramHash{hashSHA256, hashSHA1} {
		keys, found, ok := creds.scramKeysFor(h)
		if !found {
			continue
		}
		if !ok {
			return false, errors.New("sasl: damaged stored keys")
		}
		salted, err := h.saltedPassword(prepared, keys.Salt, keys.Iterations)
		if err != nil {
			return false, err
		}
		stored := h.sum(h.hmac(salted, "Client Key"))
		return subtle.ConstantTimeCompare(stored, keys.StoredKey) == 1, nil
	}
	if creds.DigestMD5 != nil {
		got := DigestMD5Hash(user, creds.DigestRealm, raw)
		return subtle.ConstantTimeCompare(got, creds.DigestMD5) == 1, nil
	}
	fake := s.cfg.fakeScramKeys(hashSHA256, user)
	if _, err := hashSHA256.saltedPassword(prepared, fake.Salt, fake.Iterations); err != nil {
		return false, err
	}
	return false, nil
}

// plainClient is the client side of PLAIN.
type plainClient struct {
	msg     []byte
	started bool
}

// NewPlainClient returns a PLAIN client. The server prepares the strings,
// so they are sent as given.
func NewPlainClient(username, password, authzid string) Client {
	msg := make([]byte, 0, len(authzid)+len(username)+len(password)+2)
	msg = append(msg, authzid...)
	msg = append(msg, 0)
	msg = append(msg, username...)
	msg = append(msg, 0)
	msg = append(msg, password...)
	return &plainClient{msg: msg}
}

func (c *plainClient) Mechanism() string { return Plain }

func (c *plainClient) Start() ([]byte, error) {
	if c.started {
		return nil, errors.New("sasl: PLAIN client already started")
	}
	c.started = true
	return c.msg, nil
}

// Step answers the empty challenge of a server that ignored the initial
// response; PLAIN has no other challenge.
func (c *plainClient) Step(challenge []byte) ([]byte, error) {
	if len(challenge) != 0 || !c.started {
		return nil, errors.New("sasl: unexpected PLAIN challenge")
	}
	return c.msg, nil
}

// Verify accepts only an empty <success/>: PLAIN has no additional data.
func (c *plainClient) Verify(success []byte) error {
	if len(success) != 0 {
		return errors.New("sasl: unexpected data in PLAIN success")
	}
	return nil
}
