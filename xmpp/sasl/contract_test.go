package sasl

import (
	"context"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// The c2s server, the client library and the roster service were written
// against the first stub of this package. These assignments stop the build
// if one of those signatures changes.
var (
	_ func(string, string, int) (ScramKeys, error)                               = NewScramKeys
	_ func(string, string, string) []byte                                        = DigestMD5Hash
	_ func(*dom.Element) *Failure                                                = ParseFailure
	_ func(string) ([]byte, error)                                               = DecodePayload
	_ func([]byte) string                                                        = EncodePayload
	_ func(string, string, string, string, string, []byte, bool) (Client, error) = NewScramClient
	_ func(string, string, string) Client                                        = NewPlainClient
	_ func(*ServerConfig) []string                                               = (*ServerConfig).Offered
	_ func(*ServerConfig) []string                                               = (*ServerConfig).ChannelBindingTypes
	_ func(*ServerConfig, string) (Server, error)                                = (*ServerConfig).Start
	_ func(*Failure, error) bool                                                 = (*Failure).Is
	_ func(*Failure) *dom.Element                                                = (*Failure).Element
	_ Lookup                                                                     = func(context.Context, string) (*Credentials, error) { return nil, ErrNoAccount }
	_ error                                                                      = NotAuthorized
	_ error                                                                      = (*Failure)(nil)
	_ interface {
		Step(context.Context, []byte) ([]byte, bool, error)
		Username() string
	} = Server(nil)
	_ interface {
		Mechanism() string
		Start() ([]byte, error)
		Step([]byte) ([]byte, error)
		Verify([]byte) error
	} = Client(nil)
)

func TestContractFieldsKeepTheirNames(t *testing.T) {
	cfg := ServerConfig{
		Lookup:                   func(context.Context, string) (*Credentials, error) { return nil, ErrNoAccount },
		Mechanisms:               []string{ScramSHA1, ScramSHA1Plus, ScramSHA256, ScramSHA256Plus, Plain, DigestMD5},
		TLS:                      true,
		ChannelBinding:           func(string) ([]byte, error) { return nil, nil },
		AllowPlaintextWithoutTLS: false,
		Host:                     "example.org",
	}
	creds := Credentials{Scram: []ScramKeys{{Hash: "SHA-256", Salt: nil, Iterations: MinIterations, StoredKey: nil, ServerKey: nil}}, DigestMD5: nil, DigestRealm: "", Disabled: false}
	f := Failure{Condition: Aborted, Text: ""}
	if got := cfg.Offered(); len(got) != 4 || len(creds.Scram) != 1 || f.Condition != Aborted || NS != "urn:ietf:params:xml:ns:xmpp-sasl" {
		t.Fatalf("Offered() = %v", got)
	}
}
