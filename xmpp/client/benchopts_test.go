package client

import (
	"errors"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

func TestDisableStartTLSStaysInTheClear(t *testing.T) {
	s := newTestServer(t, serverOpts{optionalTLS: true})
	// Without the setting, an offered STARTTLS is taken.
	c, _ := s.dial(t, s.config())
	if _, ok := c.TLS(); !ok {
		t.Error("STARTTLS offered and not taken")
	}
	cfg := s.config()
	cfg.AllowPlaintext, cfg.DisableStartTLS = true, true
	c, _ = s.dial(t, cfg)
	if _, ok := c.TLS(); ok {
		t.Error("STARTTLS taken with DisableStartTLS")
	}
	if got := c.Mechanism(); got != sasl.ScramSHA256 {
		t.Errorf("mechanism %s, want SCRAM-SHA-256", got)
	}
}

func TestDisableStartTLSNeedsPlaintextAndAnOptionalSTARTTLS(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      serverOpts
		plaintext bool
	}{
		{"without AllowPlaintext", serverOpts{optionalTLS: true}, false},
		{"against a server requiring STARTTLS", serverOpts{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.opts)
			cfg := s.config()
			cfg.AllowPlaintext, cfg.DisableStartTLS = tc.plaintext, true
			if _, err := Dial(testCtx(t), cfg); !errors.Is(err, ErrTLSRequired) {
				t.Fatalf("Dial error %v, want ErrTLSRequired", err)
			}
			_ = s.endedWith(t)
		})
	}
}

func TestScramCacheSharedByLogins_RFC5802_5_1(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.ScramCache = sasl.NewScramCache(0)
	for range 2 {
		c, _ := s.dial(t, cfg)
		if got := c.Mechanism(); got != sasl.ScramSHA256Plus {
			t.Errorf("mechanism %s", got)
		}
	}
	if hits, misses := cfg.ScramCache.Stats(); hits != 1 || misses != 1 {
		t.Errorf("cache hits %d, misses %d; want 1 and 1", hits, misses)
	}
}
