package metrics

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// NATS counts the events of a process's NATS connections.
type NATS struct {
	events *prometheus.CounterVec
}

// NATS registers and returns the NATS connection metrics. A Registry holds
// at most one; every connection of the process reports into it under its
// own client name.
func (r *Registry) NATS() *NATS {
	return &NATS{events: r.counterVec("nats_events_total",
		"NATS connection events (disconnected, reconnected, error), by client (the service owning the connection).",
		"client", "event")}
}

// NATSClient counts the events of one connection. It satisfies
// internal/natsconn's Hooks.
type NATSClient struct {
	disconnected, reconnected, errors prometheus.Counter
}

// Client returns the counters of the connection of client (a service name:
// "c2s", "router", ...).
func (m *NATS) Client(client string) *NATSClient {
	if m == nil {
		return nil
	}
	return &NATSClient{
		disconnected: m.events.WithLabelValues(client, "disconnected"),
		reconnected:  m.events.WithLabelValues(client, "reconnected"),
		errors:       m.events.WithLabelValues(client, "error"),
	}
}

// Disconnected counts a lost connection.
func (c *NATSClient) Disconnected() {
	if c != nil {
		c.disconnected.Inc()
	}
}

// Reconnected counts a recovered connection.
func (c *NATSClient) Reconnected() {
	if c != nil {
		c.reconnected.Inc()
	}
}

// Error counts an asynchronous error (a slow consumer, a permission
// violation).
func (c *NATSClient) Error() {
	if c != nil {
		c.errors.Inc()
	}
}

// Options returns connection options that count the events, for a
// connection not made through internal/natsconn (the one-process binary's
// in-process connections). They set the disconnect, reconnect and error
// handlers.
func (c *NATSClient) Options() []nats.Option {
	if c == nil {
		return nil
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, _ error) {
			if !nc.IsClosed() && !nc.IsDraining() {
				c.Disconnected()
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { c.Reconnected() }),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { c.Error() }),
	}
}
