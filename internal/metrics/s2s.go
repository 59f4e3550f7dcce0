package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Direction is the direction of a server-to-server stream.
type Direction uint8

// Directions of s2s streams.
const (
	// Inbound: a peer connected to us.
	Inbound Direction = iota
	// Outbound: we connected to a peer.
	Outbound
)

var directionNames = [...]string{"inbound", "outbound"}

// S2S is the metrics of the s2s service.
type S2S struct {
	negotiating, authenticated [2]prometheus.Gauge
	stanzas                    [2]prometheus.Counter
	auth                       *prometheus.CounterVec
}

// S2S registers and returns the metrics of the s2s service. A Registry
// holds at most one.
func (r *Registry) S2S() *S2S {
	streams := r.gaugeVec("s2s_streams",
		"Server-to-server streams by direction and state (negotiating: TLS and authentication; authenticated). "+
			"Outbound streams are counted once authenticated.", "direction", "state")
	stanzas := r.counterVec("s2s_stanzas_total",
		"Stanzas received from peers and published to the routers (inbound), and sent to peers (outbound).", "direction")
	m := &S2S{auth: r.counterVec("s2s_auth_total",
		"Server authentications by direction, method (external: SASL EXTERNAL; dialback) and result (valid, invalid, error).",
		"direction", "method", "result")}
	for d, name := range directionNames {
		m.negotiating[d] = streams.WithLabelValues(name, "negotiating")
		m.authenticated[d] = streams.WithLabelValues(name, "authenticated")
		m.stanzas[d] = stanzas.WithLabelValues(name)
	}
	return m
}

// Stream counts a stream that opens now, negotiating; the stream reports
// its authentication and its end through the handle.
func (m *S2S) Stream(d Direction) *S2SStream {
	if m == nil || int(d) >= len(directionNames) {
		return nil
	}
	m.negotiating[d].Inc()
	return &S2SStream{m: m, d: d}
}

// Stanza counts a stanza received (Inbound) or sent (Outbound).
func (m *S2S) Stanza(d Direction) {
	if m == nil || int(d) >= len(directionNames) {
		return
	}
	m.stanzas[d].Inc()
}

// Auth counts an authentication of a stream in direction d by method
// ("external" or "dialback") with result ("valid", "invalid" or "error").
func (m *S2S) Auth(d Direction, method, result string) {
	if m == nil || int(d) >= len(directionNames) {
		return
	}
	m.auth.WithLabelValues(directionNames[d], method, result).Inc()
}

// S2SStream is one stream's place in the streams gauge.
type S2SStream struct {
	m      *S2S
	d      Direction
	mu     sync.Mutex
	authed bool
	closed bool
}

// Authenticated moves the stream from negotiating to authenticated (once).
func (s *S2SStream) Authenticated() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authed || s.closed {
		return
	}
	s.authed = true
	s.m.negotiating[s.d].Dec()
	s.m.authenticated[s.d].Inc()
}

// Closed takes the stream out of the gauge (once).
func (s *S2SStream) Closed() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.authed {
		s.m.authenticated[s.d].Dec()
	} else {
		s.m.negotiating[s.d].Dec()
	}
}
