package presence

import (
	"errors"
	"log/slog"
)

// Config configures the presence service.
type Config struct {
	// Store keeps the sessions. Required.
	Store Store
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("presence: Config.Store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
