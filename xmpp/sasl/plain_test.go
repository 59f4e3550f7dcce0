package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPlainRoundTripVerifiesStoredScramKeys_RFC4616_2(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	for _, authzid := range []string{"", "juliet@example.org", "juliet"} {
		user, err, _ := run(t, tlsConfig(a), NewPlainClient("JULIET", testPassword, authzid))
		if err != nil || user != testUser {
			t.Errorf("authzid %q: %q, %v", authzid, user, err)
		}
	}
}

func TestPlainWithOnlySHA1KeysOrOnlyLegacyHash_RFC4616_2(t *testing.T) {
	k, _ := NewScramKeys(HashSHA1, testPassword, MinIterations)
	a := accounts{
		"sha1":   {Scram: []ScramKeys{k}},
		"legacy": {DigestMD5: DigestMD5Hash("legacy", testHost, testPassword), DigestRealm: testHost},
	}
	for user := range a {
		if _, err, _ := run(t, tlsConfig(a), NewPlainClient(user, testPassword, "")); err != nil {
			t.Errorf("%s: %v", user, err)
		}
		_, err, _ := run(t, tlsConfig(a), NewPlainClient(user, "wrong", ""))
		wantFailure(t, err, NotAuthorized)
	}
}

func TestPlainFailures_RFC6120_6_5(t *testing.T) {
	disabled := scramCredentials(t, testPassword)
	disabled.Disabled = true
	a := accounts{testUser: scramCredentials(t, testPassword), "off": disabled}
	cases := []struct {
		name                string
		user, pass, authzid string
		want                Condition
	}{
		{"wrong password", testUser, "wrong", "", NotAuthorized},
		{"unknown user", "nobody", testPassword, "", NotAuthorized},
		{"disabled with right password", "off", testPassword, "", AccountDisabled},
		{"disabled with wrong password", "off", "wrong", "", NotAuthorized},
		{"other user's authzid", testUser, testPassword, "romeo@example.org", InvalidAuthzid},
		{"full JID authzid", testUser, testPassword, "juliet@example.org/r", InvalidAuthzid},
		{"name PRECIS refuses", "juliet capulet", testPassword, "", NotAuthorized},
		{"password PRECIS refuses", testUser, "bell\x07", "", NotAuthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err, byServer := run(t, tlsConfig(a), NewPlainClient(tc.user, tc.pass, tc.authzid))
			if !byServer {
				t.Fatalf("client error %v", err)
			}
			wantFailure(t, err, tc.want)
		})
	}
}

func TestPlainMalformedMessages_RFC4616_2(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	long := strings.Repeat("a", 256)
	for _, msg := range []string{
		"", "juliet", "\x00juliet", "\x00juliet\x00", "\x00\x00pw",
		"a\x00b\x00c\x00d", "\x00juliet\x00" + long, "\x00" + long + "\x00pw",
		"\x00jul\xffiet\x00pw",
	} {
		s, _ := tlsConfig(a).Start(Plain)
		_, _, err := s.Step(context.Background(), []byte(msg))
		wantFailure(t, err, MalformedRequest)
	}
}

func TestPlainNeedsTLSUnlessAllowed_RFC6120_6_5_4(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cfg := &ServerConfig{Lookup: a.lookup}
	_, err := cfg.Start(Plain)
	wantFailure(t, err, EncryptionRequired)
	cfg.AllowPlaintextWithoutTLS = true
	if _, err, _ := run(t, cfg, NewPlainClient(testUser, testPassword, "")); err != nil {
		t.Fatal(err)
	}
}

func TestPlainWithoutInitialResponse_RFC6120_6_4_2(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	s, _ := tlsConfig(a).Start(Plain)
	c := NewPlainClient(testUser, testPassword, "")
	out, done, err := s.Step(context.Background(), nil)
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("Step(nil) = %q, %v, %v", out, done, err)
	}
	c.Start()
	resp, err := c.Step(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, done, err := s.Step(context.Background(), resp); !done || err != nil || s.Username() != testUser {
		t.Fatalf("done %v, err %v, user %q", done, err, s.Username())
	}
}

func TestPlainLookupErrorIsTemporaryAuthFailure_RFC6120_6_5_11(t *testing.T) {
	cfg := &ServerConfig{TLS: true, Lookup: func(context.Context, string) (*Credentials, error) {
		return nil, errors.New("down")
	}}
	_, err, _ := run(t, cfg, NewPlainClient(testUser, testPassword, ""))
	wantFailure(t, err, TemporaryAuthFailure)
}

func TestPlainClientMessageAndSuccess_RFC4616_2(t *testing.T) {
	c := NewPlainClient("juliet", "pw", "juliet@example.org")
	if c.Mechanism() != Plain {
		t.Fatal(c.Mechanism())
	}
	msg, err := c.Start()
	if err != nil || string(msg) != "juliet@example.org\x00juliet\x00pw" {
		t.Fatalf("Start() = %q, %v", msg, err)
	}
	if _, err := c.Step([]byte("unexpected")); err == nil {
		t.Error("PLAIN client answered a non-empty challenge")
	}
	if err := c.Verify([]byte("v=x")); err == nil {
		t.Error("PLAIN client accepted success data")
	}
	if err := c.Verify(nil); err != nil {
		t.Error(err)
	}
}
