package roster

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
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
	// OfflineMessages and OfflineBytes are each account's offline storage
	// quota (XEP-0160): at most this many messages and stanza bytes. Zero
	// means DefaultOfflineMessages and DefaultOfflineBytes.
	OfflineMessages int
	OfflineBytes    int64
	// Limits of roster sets; zero fields get the defaults (RFC 6121 section
	// 2.3.3 leaves them to the server; past them a set is not-acceptable).
	Limits Limits
	// Metrics receives the service's metrics; nil means none.
	Metrics *metrics.Roster
}

// Limits bound the items a client may set.
type Limits struct {
	NameBytes  int // an item's name; DefaultNameBytes
	GroupBytes int // one group's name; DefaultGroupBytes
	Groups     int // groups per item; DefaultGroups
}

// Defaults of Config.
const (
	DefaultOfflineMessages       = 100
	DefaultOfflineBytes    int64 = 1 << 20
	DefaultNameBytes             = 1023
	DefaultGroupBytes            = 1023
	DefaultGroups                = 64
)

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
	if c.OfflineMessages < 0 || c.OfflineBytes < 0 {
		return c, fmt.Errorf("roster: Config.OfflineMessages (%d) and OfflineBytes (%d) must not be negative", c.OfflineMessages, c.OfflineBytes)
	}
	if c.OfflineMessages == 0 {
		c.OfflineMessages = DefaultOfflineMessages
	}
	if c.OfflineBytes == 0 {
		c.OfflineBytes = DefaultOfflineBytes
	}
	for _, l := range []struct {
		v   *int
		def int
	}{{&c.Limits.NameBytes, DefaultNameBytes}, {&c.Limits.GroupBytes, DefaultGroupBytes}, {&c.Limits.Groups, DefaultGroups}} {
		if *l.v <= 0 {
			*l.v = l.def
		}
	}
	return c, nil
}
