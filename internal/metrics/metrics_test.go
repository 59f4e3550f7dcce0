package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics/metricstest"
)

// TestNilSetsDoNothing: a service given no metrics calls the same methods
// on nil pointers.
func TestNilSetsDoNothing(t *testing.T) {
	var c *C2S
	c.StanzaIn(1)
	c.StanzaOut(1)
	c.HandedBack()
	c.AuthFailure("PLAIN", "not-authorized")
	c.StreamError("conflict")
	c.Published(time.Now(), true)
	c.SetState(func() C2SState { return C2SState{} })
	var r *Router
	r.Routed(1, Delivered)
	r.Latency(time.Now().UnixNano(), time.Now())
	r.Consuming(3)()
	r.Pending(3, 7)
	var o *Ops
	o.Observe("op", time.Now(), errors.New("x"))
	var n *NATS
	n.Client("c2s").Disconnected()
	var g *GRPC
	_ = g.UnaryClient()
	var s *S2S
	st := s.Stream(Inbound)
	st.Authenticated()
	st.Closed()
	s.Stanza(Outbound)
	s.Auth(Inbound, "dialback", "valid")
	var reg *Registry
	if rec := httptest.NewRecorder(); true {
		reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 404 {
			t.Errorf("a nil Registry's handler answered %d, want 404", rec.Code)
		}
	}
}

func TestOutcomesMainPicksTheFirstInOrder(t *testing.T) {
	for _, tc := range []struct {
		add  []Outcome
		want Outcome
	}{
		{nil, Dropped},
		{[]Outcome{Answered}, Answered},
		{[]Outcome{Answered, Bounced}, Bounced},
		{[]Outcome{Bounced, Remote}, Remote},
		{[]Outcome{Dropped, Delivered, Offline}, Delivered},
	} {
		var s Outcomes
		for _, o := range tc.add {
			s.Add(o)
		}
		if got := s.Main(); got != tc.want {
			t.Errorf("%v: Main() = %v, want %v", tc.add, got, tc.want)
		}
	}
}

// TestScrapeShowsWhatWasCounted registers every set on one registry, as
// the one-process binary does, counts a little and reads it back through
// the handler.
func TestScrapeShowsWhatWasCounted(t *testing.T) {
	reg := New()
	c := reg.C2S()
	r := reg.Router()
	ro := reg.Roster()
	reg.Presence()
	reg.GRPC()
	nc := reg.NATS().Client("router")

	c.SetState(func() C2SState { return C2SState{Negotiating: 1, Bound: 2, Queued: 5} })
	c.StanzaIn(1)
	c.StanzaIn(1)
	c.StanzaIn(99) // unknown kinds count as other
	c.AuthFailure("X-MADE-UP", "not-authorized")
	c.LimitHit("stanza_rate")
	c.Published(time.Now().Add(-time.Millisecond), true)
	r.Routed(2, Delivered)
	done := r.Consuming(4)
	r.Pending(4, 9)
	r.Pending(5, 1) // not consumed here: ignored
	r.Latency(time.Now().Add(-2*time.Millisecond).UnixNano(), time.Now())
	ro.Store.Observe("account", time.Now(), nil)
	ro.Store.Observe("account", time.Now(), errors.New("connection refused"))
	nc.Reconnected()

	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	ss := metricstest.WaitFor(t, srv.URL, 5*time.Second,
		metricstest.Positive("switchboard_c2s_connections", "state", "bound"),
		metricstest.Positive("switchboard_c2s_outbound_queued"),
		metricstest.Positive("switchboard_c2s_stanzas_received_total", "kind", "other"),
		metricstest.Positive("switchboard_c2s_auth_failures_total", "mechanism", "other"),
		metricstest.Positive("switchboard_c2s_nats_publish_seconds_count"),
		metricstest.Positive("switchboard_c2s_limit_hits_total", "limit", "stanza_rate"),
		metricstest.Positive("switchboard_router_stanzas_total", "kind", "presence", "outcome", "delivered"),
		metricstest.Positive("switchboard_router_partitions_leased"),
		metricstest.Positive("switchboard_router_pending_stanzas", "partition", "4"),
		metricstest.Positive("switchboard_router_routing_seconds_count"),
		metricstest.Positive("switchboard_roster_store_errors_total", "op", "account"),
		metricstest.Positive("switchboard_nats_events_total", "client", "router", "event", "reconnected"),
		metricstest.Positive("process_cpu_seconds_total"),
	)
	if v, _ := ss.Sum("switchboard_c2s_stanzas_received_total", "kind", "message"); v != 2 {
		t.Errorf("messages received = %v, want 2", v)
	}
	if _, ok := ss.Sum("switchboard_router_pending_stanzas", "partition", "5"); ok {
		t.Error("a partition this router does not consume has a pending series")
	}
	done()
	ss, err := metricstest.Scrape(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ss.Sum("switchboard_router_partitions_leased"); v != 0 {
		t.Errorf("partitions leased after the worker stopped = %v, want 0", v)
	}
	for _, name := range ss.Names() {
		if !strings.HasPrefix(name, "switchboard_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("series %s lacks the switchboard_ prefix", name)
		}
	}
}
