package sasl

import (
	"context"
	"errors"
	"testing"
)

const (
	testHost     = "example.org"
	testUser     = "juliet"
	testPassword = "r0m30myr0m30"
)

// accounts is an in-memory Lookup.
type accounts map[string]*Credentials

func (a accounts) lookup(_ context.Context, username string) (*Credentials, error) {
	c, ok := a[username]
	if !ok {
		return nil, ErrNoAccount
	}
	return c, nil
}

// scramCredentials stores SHA-1 and SHA-256 keys for password.
func scramCredentials(t testing.TB, password string) *Credentials {
	t.Helper()
	var c Credentials
	for _, h := range []string{HashSHA1, HashSHA256} {
		k, err := NewScramKeys(h, password, MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		c.Scram = append(c.Scram, k)
	}
	return &c
}

// testBinding returns channel binding data for the given types only.
func testBinding(data map[string][]byte) func(string) ([]byte, error) {
	return func(cbType string) ([]byte, error) {
		if d, ok := data[cbType]; ok {
			return d, nil
		}
		return nil, errors.New("no such binding")
	}
}

var bothBindings = map[string][]byte{
	CBTLSExporter:       []byte("exporter-bytes-of-this-connection"),
	CBTLSServerEndPoint: []byte("hash-of-the-server-certificate!!"),
}

// tlsConfig is a stream after TLS with both channel bindings.
func tlsConfig(a accounts) *ServerConfig {
	return &ServerConfig{
		Lookup:         a.lookup,
		TLS:            true,
		ChannelBinding: testBinding(bothBindings),
		Host:           testHost,
	}
}

// run drives one exchange between a client and a server started for the
// client's mechanism. It returns the server's username and the first
// error of either side; serverErr tells whose it was.
func run(t testing.TB, cfg *ServerConfig, c Client) (username string, err error, serverErr bool) {
	t.Helper()
	ctx := context.Background()
	s, err := cfg.Start(c.Mechanism())
	if err != nil {
		return "", err, true
	}
	in, err := c.Start()
	if err != nil {
		return "", err, false
	}
	for range 10 {
		out, done, err := s.Step(ctx, in)
		if err != nil {
			return "", err, true
		}
		if done {
			if err := c.Verify(out); err != nil {
				return "", err, false
			}
			return s.Username(), nil, false
		}
		if in, err = c.Step(out); err != nil {
			return "", err, false
		}
	}
	t.Fatal("exchange did not finish in 10 steps")
	return "", nil, false
}

// wantFailure fails the test unless err is a *Failure with cond.
func wantFailure(t testing.TB, err error, cond Condition) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T), want *Failure %s", err, err, cond)
	}
	if f.Condition != cond {
		t.Fatalf("condition %s (%q), want %s", f.Condition, f.Text, cond)
	}
}

// fixed returns a nonce hook.
func fixed(nonce string) func() string { return func() string { return nonce } }
