package sasl

import (
	"context"
	"testing"
)

// BenchmarkScramSHA256ServerExchange measures the server's share of one
// SCRAM-SHA-256 login (stored keys at 4096 iterations): Start and both
// steps. The client's PBKDF2 is done once, outside the loop.
func BenchmarkScramSHA256ServerExchange(b *testing.B) {
	k, err := NewScramKeys(HashSHA256, testPassword, 4096)
	if err != nil {
		b.Fatal(err)
	}
	cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{k}}})
	cfg.nonce = fixed("benchservernonce")
	c, _ := NewScramClient(ScramSHA256, testUser, testPassword, "", "", nil, true)
	c.(*scramClient).nonce = "benchclientnonce"
	first, _ := c.Start()
	s, _ := cfg.Start(ScramSHA256)
	sf, _, _ := s.Step(context.Background(), first)
	final, _ := c.Step(sf)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := cfg.Start(ScramSHA256)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Step(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := s.Step(ctx, final); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// BenchmarkScramSHA256ClientServerLogin is a whole login with both sides,
// dominated by the client's PBKDF2 at 4096 iterations.
func BenchmarkScramSHA256ClientServerLogin(b *testing.B) {
	k, err := NewScramKeys(HashSHA256, testPassword, 4096)
	if err != nil {
		b.Fatal(err)
	}
	cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{k}}})
	b.ReportAllocs()
	for b.Loop() {
		c, _ := NewScramClient(ScramSHA256Plus, testUser, testPassword, "", CBTLSExporter, bothBindings[CBTLSExporter], true)
		if _, err, _ := run(b, cfg, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainServer is one PLAIN login checked against SCRAM-SHA-256
// keys at 4096 iterations: the server runs PBKDF2.
func BenchmarkPlainServer(b *testing.B) {
	k, err := NewScramKeys(HashSHA256, testPassword, 4096)
	if err != nil {
		b.Fatal(err)
	}
	cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{k}}})
	msg := []byte("\x00" + testUser + "\x00" + testPassword)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, _ := cfg.Start(Plain)
		if _, done, err := s.Step(ctx, msg); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}
