package roster

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// DefaultIterations is the PBKDF2 iteration count used when Config leaves
// it zero: the minimum RFC 7677 recommends for SCRAM-SHA-256.
const DefaultIterations = sasl.MinIterations

// Config configures the roster service.
type Config struct {
	// Store keeps the accounts. Required.
	Store Store
	// Iterations is the PBKDF2 iteration count for new SCRAM keys; zero
	// means DefaultIterations, and less than sasl.MinIterations is refused.
	// Existing keys keep their count until the password changes.
	Iterations int
	// DigestMD5 also stores the RFC 2831 hash so that the legacy DIGEST-MD5
	// mechanism can work. It is off by default: the hash is a
	// password-equivalent (anyone holding it can log in) and MD5-based,
	// which RFC 6331 moved DIGEST-MD5 to Historic for. With it off, every
	// password change and every new account stores no such hash and drops
	// an old one.
	DigestMD5 bool
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("roster: Config.Store is required")
	}
	switch {
	case c.Iterations == 0:
		c.Iterations = DefaultIterations
	case c.Iterations < sasl.MinIterations:
		return c, fmt.Errorf("roster: Config.Iterations is %d, the minimum is %d", c.Iterations, sasl.MinIterations)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
