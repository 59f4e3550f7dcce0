package sasl

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxClientIterations bounds the work a server can ask of the client.
const maxClientIterations = 10_000_000

// scramClient runs RFC 5802 section 5 on the client side.
type scramClient struct {
	mech      string
	hash      scramHash
	username  string // prepared and saslname-encoded
	password  string // prepared
	gs2Header string
	cbData    []byte
	nonce     string

	cache *ScramCache // nil: derive the salted password every time

	state           int // 0 new, 1 started, 2 final sent, 3 verified
	clientFirstBare string
	serverSig       []byte
}

// NewScramClient returns a SCRAM client for mech (one of the four SCRAM
// names). For -PLUS, cbType and cbData give the channel binding; for the
// plain forms, serverSupportsPlus says whether the server offered -PLUS (the
// GS2 flag y/n): when it did not, the client says 'y' (it could bind) so
// that a server that did offer -PLUS notices the list was tampered with.
// The username is prepared with UsernameCaseMapped, the password with
// OpaqueString.
func NewScramClient(mech, username, password, authzid, cbType string, cbData []byte, serverSupportsPlus bool) (Client, error) {
	h, plus, ok := scramMechanism(mech)
	if !ok {
		return nil, fmt.Errorf("sasl: %q is not a SCRAM mechanism", mech)
	}
	user, err := prepareUsername(username)
	if err != nil {
		return nil, fmt.Errorf("sasl: username: %w", err)
	}
	pass, err := preparePassword(password)
	if err != nil {
		return nil, fmt.Errorf("sasl: password: %w", err)
	}
	if strings.IndexByte(authzid, 0) >= 0 {
		return nil, errors.New("sasl: authzid contains NUL")
	}
	c := &scramClient{mech: mech, hash: h, username: encodeSaslname(user), password: pass, nonce: randomNonce()}
	switch {
	case plus:
		if !validCBName(cbType) || len(cbData) == 0 {
			return nil, fmt.Errorf("sasl: %s needs a channel binding type and data", mech)
		}
		c.gs2Header = "p=" + cbType
		c.cbData = append([]byte(nil), cbData...)
	case serverSupportsPlus:
		c.gs2Header = "n"
	default:
		c.gs2Header = "y"
	}
	c.gs2Header += ","
	if authzid != "" {
		c.gs2Header += "a=" + encodeSaslname(authzid)
	}
	c.gs2Header += ","
	return c, nil
}

func (c *scramClient) Mechanism() string { return c.mech }

func (c *scramClient) Start() ([]byte, error) {
	if c.state != 0 {
		return nil, errors.New("sasl: SCRAM client already started")
	}
	c.state = 1
	c.clientFirstBare = "n=" + c.username + ",r=" + c.nonce
	return []byte(c.gs2Header + c.clientFirstBare), nil
}

func (c *scramClient) Step(challenge []byte) ([]byte, error) {
	switch c.state {
	case 1:
		return c.serverFirst(string(challenge))
	case 2:
		// Some servers send server-final-message as a challenge and wait
		// for an empty response before <success/>.
		if err := c.Verify(challenge); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	return nil, errors.New("sasl: unexpected SCRAM challenge")
}

// serverFirst checks server-first-message and returns client-final-message.
func (c *scramClient) serverFirst(msg string) ([]byte, error) {
	attrs := strings.Split(msg, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, errors.New("sasl: server requires an unsupported SCRAM extension")
	}
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "r=") ||
		!strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
		return nil, errors.New("sasl: malformed SCRAM server-first-message")
	}
	nonce := attrs[0][2:]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) || !validNonce(nonce) {
		return nil, errors.New("sasl: SCRAM server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(attrs[1][2:])
	if err != nil || len(salt) == 0 {
		return nil, errors.New("sasl: bad SCRAM salt")
	}
	iter, err := strconv.Atoi(attrs[2][2:])
	if err != nil || attrs[2][2] == '+' || attrs[2][2] == '-' {
		return nil, errors.New("sasl: bad SCRAM iteration count")
	}
	if iter < MinIterations || iter > maxClientIterations {
		return nil, fmt.Errorf("sasl: SCRAM iteration count %d outside [%d, %d]", iter, MinIterations, maxClientIterations)
	}

	var salted []byte
	if c.cache != nil {
		salted, err = c.cache.saltedPassword(c.hash, c.password, salt, iter)
	} else {
		salted, err = c.hash.saltedPassword(c.password, salt, iter)
	}
	if err != nil {
		return nil, err
	}
	clientKey := c.hash.hmac(salted, "Client Key")
	storedKey := c.hash.sum(clientKey)
	cbInput := append([]byte(c.gs2Header), c.cbData...)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cbInput) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + msg + "," + withoutProof
	clientSig := c.hash.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, clientSig)
	c.serverSig = c.hash.hmac(c.hash.hmac(salted, "Server Key"), authMessage)
	c.state = 2
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks server-final-message. Empty data is accepted only when the
// signature already came as a challenge.
func (c *scramClient) Verify(success []byte) error {
	switch {
	case c.state == 3 && len(success) == 0:
		return nil
	case c.state != 2 && c.state != 3:
		return errors.New("sasl: SCRAM exchange not at its final message")
	}
	msg, _, _ := strings.Cut(string(success), ",")
	if e, ok := strings.CutPrefix(msg, "e="); ok {
		return fmt.Errorf("sasl: SCRAM server error %q", e)
	}
	v, ok := strings.CutPrefix(msg, "v=")
	if !ok {
		return errors.New("sasl: SCRAM server sent no signature")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || subtle.ConstantTimeCompare(sig, c.serverSig) != 1 {
		return errors.New("sasl: SCRAM server signature does not match")
	}
	c.state = 3
	return nil
}
