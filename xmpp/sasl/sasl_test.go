package sasl

import (
	"errors"
	"slices"
	"testing"
)

func TestOfferedFollowsConfigOrderAndStreamState_RFC6120_6_3_3(t *testing.T) {
	all := []string{ScramSHA256Plus, ScramSHA1Plus, ScramSHA256, ScramSHA1, Plain}
	exporterOnly := testBinding(map[string][]byte{CBTLSExporter: []byte("x")})
	broken := func(string) ([]byte, error) { return nil, errors.New("no TLS state") }
	cases := []struct {
		name string
		cfg  ServerConfig
		want []string
	}{
		{"defaults over TLS with bindings", ServerConfig{TLS: true, ChannelBinding: testBinding(bothBindings)}, all},
		{"defaults over TLS, one binding", ServerConfig{TLS: true, ChannelBinding: exporterOnly}, all},
		{"TLS without binding data", ServerConfig{TLS: true, ChannelBinding: broken}, []string{ScramSHA256, ScramSHA1, Plain}},
		{"TLS, nil ChannelBinding", ServerConfig{TLS: true}, []string{ScramSHA256, ScramSHA1, Plain}},
		{"no TLS", ServerConfig{}, []string{ScramSHA256, ScramSHA1}},
		{"no TLS, plaintext allowed", ServerConfig{AllowPlaintextWithoutTLS: true}, []string{ScramSHA256, ScramSHA1, Plain}},
		{"operator order, unknown and repeated names", ServerConfig{TLS: true, Host: testHost,
			Mechanisms: []string{Plain, "X-UNKNOWN", DigestMD5, ScramSHA1, Plain, ScramSHA256Plus}},
			[]string{Plain, DigestMD5, ScramSHA1}},
		{"DIGEST-MD5 needs a host", ServerConfig{TLS: true, Mechanisms: []string{DigestMD5}}, nil},
		{"DIGEST-MD5 needs TLS", ServerConfig{Host: testHost, Mechanisms: []string{DigestMD5, ScramSHA1}}, []string{ScramSHA1}},
		{"nothing enabled", ServerConfig{TLS: true, Mechanisms: []string{}}, nil},
	}
	for _, tc := range cases {
		if got := tc.cfg.Offered(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Offered() = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !slices.Equal(DefaultMechanisms(), all) {
		t.Errorf("DefaultMechanisms() = %v", DefaultMechanisms())
	}
}

func TestChannelBindingTypesListsTypesWithData_XEP0440(t *testing.T) {
	cfg := ServerConfig{TLS: true, ChannelBinding: testBinding(bothBindings)}
	if got := cfg.ChannelBindingTypes(); !slices.Equal(got, []string{CBTLSExporter, CBTLSServerEndPoint}) {
		t.Error(got)
	}
	cfg.ChannelBinding = testBinding(map[string][]byte{CBTLSServerEndPoint: []byte("x"), CBTLSExporter: {}})
	if got := cfg.ChannelBindingTypes(); !slices.Equal(got, []string{CBTLSServerEndPoint}) {
		t.Error(got)
	}
	if got := (&ServerConfig{}).ChannelBindingTypes(); got != nil {
		t.Error(got)
	}
}

func TestStartRefusesWhatIsNotOffered_RFC6120_6_4_1(t *testing.T) {
	cases := []struct {
		cfg  ServerConfig
		mech string
		want Condition
	}{
		{ServerConfig{TLS: true}, "X-OAUTH", InvalidMechanism},
		{ServerConfig{TLS: true}, "scram-sha-1", InvalidMechanism},
		{ServerConfig{TLS: true}, ScramSHA256Plus, InvalidMechanism},
		{ServerConfig{TLS: true, Host: testHost}, DigestMD5, InvalidMechanism},
		{ServerConfig{TLS: true, Mechanisms: []string{ScramSHA256}}, ScramSHA1, InvalidMechanism},
		{ServerConfig{}, Plain, EncryptionRequired},
	}
	for _, tc := range cases {
		s, err := tc.cfg.Start(tc.mech)
		if s != nil {
			t.Errorf("%s started", tc.mech)
		}
		wantFailure(t, err, tc.want)
	}
}

func TestPayloadBase64_RFC6120_6_4_2(t *testing.T) {
	if b, err := DecodePayload("="); err != nil || b == nil || len(b) != 0 {
		t.Errorf(`DecodePayload("=") = %v, %v`, b, err)
	}
	if b, err := DecodePayload(""); err != nil || b != nil {
		t.Errorf(`DecodePayload("") = %v, %v`, b, err)
	}
	if b, err := DecodePayload("bixhPWp1bGlldA=="); err != nil || string(b) != "n,a=juliet" {
		t.Errorf("DecodePayload = %q, %v", b, err)
	}
	for _, bad := range []string{"!!!!", "bixh\nPWp1bGlldA==", "bixhPWp1bGlldA", "bixhPWp1bGlldB==", " bixh"} {
		_, err := DecodePayload(bad)
		wantFailure(t, err, IncorrectEncoding)
	}
	for _, b := range [][]byte{nil, {}, []byte("x"), []byte("n,,n=user,r=abc")} {
		back, err := DecodePayload(EncodePayload(b))
		if err != nil || string(back) != string(b) || back == nil {
			t.Errorf("round trip of %q: %q, %v", b, back, err)
		}
	}
	if EncodePayload(nil) != "=" {
		t.Error(EncodePayload(nil))
	}
}
