package sasl

import (
	"context"
	"errors"
	"testing"
)

// disabledTestClient returns a client of mech for password, binding to the test
// connection's tls-exporter data for -PLUS mechanisms.
func disabledTestClient(t *testing.T, mech, password string) Client {
	t.Helper()
	if mech == Plain {
		return NewPlainClient(testUser, password, "")
	}
	cbType, cbData := "", []byte(nil)
	if _, plus, _ := scramMechanism(mech); plus {
		cbType, cbData = CBTLSExporter, bothBindings[CBTLSExporter]
	}
	c, err := NewScramClient(mech, testUser, password, "", cbType, cbData, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A disabled account fails with <account-disabled/> under every mechanism
// (RFC 6120 section 6.5.2), but only for a client that proved the
// password: anyone else gets <not-authorized/>, as for a wrong password or
// an unknown name, so that the condition tells nothing to someone who
// only knows the name. The failure carries no text, and SCRAM never sends
// its server signature.
func TestDisabledAccountFailsEveryMechanismOnceThePasswordIsProved_RFC6120_6_5_2(t *testing.T) {
	disabled := scramCredentials(t, testPassword)
	disabled.Disabled = true
	a := accounts{testUser: disabled}
	for _, mech := range []string{ScramSHA1, ScramSHA256, ScramSHA1Plus, ScramSHA256Plus, Plain} {
		t.Run(mech, func(t *testing.T) {
			user, err, byServer := run(t, tlsConfig(a), disabledTestClient(t, mech, testPassword))
			if !byServer {
				t.Fatalf("client error %v", err)
			}
			wantFailure(t, err, AccountDisabled)
			if f := (*Failure)(nil); errors.As(err, &f) && f.Text != "" {
				t.Errorf("failure text %q, want none", f.Text)
			}
			if user != "" {
				t.Errorf("authenticated as %q", user)
			}

			_, err, byServer = run(t, tlsConfig(a), disabledTestClient(t, mech, "not the password"))
			if !byServer {
				t.Fatalf("client error %v", err)
			}
			wantFailure(t, err, NotAuthorized)
		})
	}
}

// Before the proof, SCRAM answers a disabled account's client-first-message
// exactly as it would if the account were enabled: the first message
// reveals nothing about the flag.
func TestScramFirstChallengeOfADisabledAccountIsTheEnabledOnes_RFC6120_6_5_2(t *testing.T) {
	enabled := scramCredentials(t, testPassword)
	disabled := *enabled
	disabled.Disabled = true
	for _, mech := range []string{ScramSHA1, ScramSHA256, ScramSHA1Plus, ScramSHA256Plus} {
		first, err := disabledTestClient(t, mech, testPassword).Start()
		if err != nil {
			t.Fatal(err)
		}
		var challenges [2]string
		for i, creds := range []*Credentials{enabled, &disabled} {
			cfg := tlsConfig(accounts{testUser: creds})
			cfg.nonce = fixed("server-nonce")
			s, err := cfg.Start(mech)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := s.Step(context.Background(), first)
			if err != nil || done {
				t.Fatalf("%s: first step = %q, %v, %v; want a challenge", mech, out, done, err)
			}
			challenges[i] = string(out)
		}
		if challenges[0] != challenges[1] {
			t.Errorf("%s: first challenge %q when enabled, %q when disabled", mech, challenges[0], challenges[1])
		}
	}
}
