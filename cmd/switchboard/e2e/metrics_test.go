package e2e

import (
	"context"
	"testing"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/internal/metrics/metricstest"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
)

// TestMetricsCountTrafficAfterChatAndFailedLogin scrapes the one-process
// binary's /metrics after two clients chatted, a login failed and a
// session was replaced: the series docs/operations.md lists under "What
// to watch" are there and counted what happened.
func TestMetricsCountTrafficAfterChatAndFailedLogin(t *testing.T) {
	s := startServer(t, func(c *app.Config) { c.MetricsListen = "127.0.0.1:0" })
	url := "http://" + s.app.MetricsAddr().String() + "/metrics"
	s.createAccounts(t, "alice", "bob")
	alice := s.dial(t, "alice", "laptop")
	bob := s.dial(t, "bob", "desk")
	available(t, alice, 0)
	available(t, bob, 0)
	exchange(t, alice, bob, "metrics")

	bad := s.clientConfig("bob", "phone")
	bad.Password = "not bob's password"
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if c, err := client.Dial(ctx, bad); err == nil {
		c.Close(ctx)
		t.Fatal("a login with a wrong password succeeded")
	}
	// Binding alice/laptop again replaces the first session with a
	// <conflict/> stream error (RFC 6120 section 7.7.2.2).
	s.dial(t, "alice", "laptop")

	ss := metricstest.WaitFor(t, url, ioTimeout,
		metricstest.Positive("switchboard_c2s_connections", "state", "bound"),
		metricstest.Present("switchboard_c2s_connections", "state", "negotiating"),
		metricstest.Present("switchboard_c2s_outbound_queued"),
		metricstest.Positive("switchboard_c2s_stanzas_received_total", "kind", "message"),
		metricstest.Positive("switchboard_c2s_stanzas_received_total", "kind", "presence"),
		metricstest.Positive("switchboard_c2s_stanzas_delivered_total", "kind", "message"),
		metricstest.Positive("switchboard_c2s_auth_failures_total", "mechanism", "SCRAM-SHA-256", "condition", "not-authorized"),
		metricstest.Positive("switchboard_c2s_stream_errors_total", "condition", "conflict"),
		metricstest.Positive("switchboard_c2s_nats_publish_seconds_count"),
		metricstest.Present("switchboard_c2s_nats_publish_errors_total"),
		metricstest.Positive("switchboard_router_stanzas_total", "kind", "message", "outcome", "delivered"),
		metricstest.Positive("switchboard_router_stanzas_total", "kind", "presence"),
		metricstest.Positive("switchboard_router_routing_seconds_count"),
		metricstest.Positive("switchboard_router_partitions_leased"),
		metricstest.Present("switchboard_router_pending_stanzas"),
		metricstest.Positive("switchboard_grpc_client_seconds_count", "code", "OK"),
		metricstest.Positive("switchboard_grpc_server_seconds_count", "method", "/switchboard.presence.v1.SessionRegistry/Bind"),
		metricstest.Positive("switchboard_roster_store_seconds_count", "op", "account"),
		metricstest.Positive("switchboard_presence_store_seconds_count", "op", "bind"),
		metricstest.Present("switchboard_nats_events_total", "client", "c2s", "event", "disconnected"),
		metricstest.Positive("go_goroutines"),
	)
	// Two chat messages and none lost: the c2s counts agree with the
	// router's.
	in, _ := ss.Sum("switchboard_c2s_stanzas_received_total", "kind", "message")
	out, _ := ss.Sum("switchboard_c2s_stanzas_delivered_total", "kind", "message")
	if in != 2 || out != 2 {
		t.Errorf("c2s counted %v messages received and %v delivered, want 2 and 2", in, out)
	}
}
