// Package natsconn connects the cluster binaries to NATS the same way: a
// bounded wait for the first connection at start, then reconnects forever
// with jitter, every loss and recovery logged.
package natsconn

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-xmpp/switchboard/internal/health"
)

// Hooks hear of a connection's events besides the log lines, for metrics
// (internal/metrics NATSClient).
type Hooks interface {
	Disconnected()
	Reconnected()
	Error()
}

// Connect connects to url under the client name, waiting up to timeout for
// a first connection (the error names NATS and the URL). Every event is
// logged and told to hooks.
func Connect(ctx context.Context, log *slog.Logger, url, name string, timeout time.Duration, hooks ...Hooks) (*nats.Conn, error) {
	var nc *nats.Conn
	err := health.Await(ctx, log, "NATS", url, timeout, func(context.Context) error {
		var err error
		nc, err = nats.Connect(url,
			nats.Name(name),
			nats.Timeout(2*time.Second),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(500*time.Millisecond),
			nats.ReconnectJitter(250*time.Millisecond, time.Second),
			nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
				if c.IsClosed() || c.IsDraining() {
					return // our own stop
				}
				log.Warn("NATS disconnected; reconnecting", "err", err)
				for _, h := range hooks {
					h.Disconnected()
				}
			}),
			nats.ReconnectHandler(func(c *nats.Conn) {
				log.Info("NATS reconnected", "url", c.ConnectedUrl())
				for _, h := range hooks {
					h.Reconnected()
				}
			}),
			nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
				subject := ""
				if sub != nil {
					subject = sub.Subject
				}
				log.Error("NATS error", "subject", subject, "err", err)
				for _, h := range hooks {
					h.Error()
				}
			}),
		)
		return err
	})
	return nc, err
}

// Check is a readiness check: an error while nc is not connected.
func Check(nc *nats.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	}
}

// Drain flushes what nc still has to send and closes it, or closes it at
// once when ctx ends first.
func Drain(ctx context.Context, nc *nats.Conn) error {
	done := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return err
	}
	select {
	case <-done:
	case <-ctx.Done():
		nc.Close()
	}
	return nil
}
