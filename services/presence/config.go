package presence

import (
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
)

// Config configures the presence service.
type Config struct {
	// Store keeps the sessions. Required.
	Store Store
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
	// Events receives a SessionsRemoved event (proto/presence/v1) on
	// Subjects.SessionsRemoved() for sessions removed by the reaper or by
	// DropNode, and a PresenceChanged event on Subjects.PresenceChanged()
	// after every change of an account's sessions, for the routers'
	// caches; a *nats.Conn will do. Nil: removals are only logged, and
	// routers must not cache lookups.
	Events Publisher
	// Subjects names the bus subjects; bus.New("", 0) when its Prefix is
	// empty.
	Subjects bus.Subjects
	// ReapInterval is how often the Reaper looks for dead nodes;
	// DefaultReapInterval when zero.
	ReapInterval time.Duration
	// Metrics receives the service's metrics; nil means none.
	Metrics *metrics.Presence
}

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("presence: Config.Store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Subjects.Prefix == "" {
		c.Subjects = bus.New("", 0)
	}
	switch {
	case c.ReapInterval < 0:
		return c, errors.New("presence: Config.ReapInterval must not be negative")
	case c.ReapInterval == 0:
		c.ReapInterval = DefaultReapInterval
	}
	return c, nil
}
