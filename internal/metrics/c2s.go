package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// C2SState is what a c2s node reports of its connections when it is
// scraped: counted then, so that keeping the gauges costs nothing on the
// connection's paths.
type C2SState struct {
	// Connections by state: negotiating (TLS, SASL, binding), bound (a
	// resource is bound and the stream is open), closing (a close started
	// and the closing handshake runs).
	Negotiating, Bound, Closing int
	// Queued is the number of stanzas waiting in every session's outbound
	// queue.
	Queued int
}

// C2S is the metrics of a c2s node.
type C2S struct {
	in, out      byKind
	handedBack   prometheus.Counter
	authFailures *prometheus.CounterVec
	streamErrors *prometheus.CounterVec
	publish      prometheus.Histogram
	publishErrs  prometheus.Counter
	limitHits    *prometheus.CounterVec

	state atomic.Pointer[func() C2SState]
}

// C2S registers and returns the metrics of a c2s node. A Registry holds at
// most one.
func (r *Registry) C2S() *C2S {
	m := &C2S{
		in: newByKind(r.counterVec("c2s_stanzas_received_total",
			"Stanzas received from clients and published to the routers, by kind.", "kind")),
		out: newByKind(r.counterVec("c2s_stanzas_delivered_total",
			"Stanzas routed to a session of this node and queued for its client, by kind.", "kind")),
		handedBack: r.counter("c2s_deliveries_handed_back_total",
			"Deliveries no session here could take (ended, closing, queue full), handed back to the routers."),
		authFailures: r.counterVec("c2s_auth_failures_total",
			"Failed SASL authentications, by mechanism and SASL failure condition.", "mechanism", "condition"),
		streamErrors: r.counterVec("c2s_stream_errors_total",
			"Stream errors sent to clients, by condition (RFC 6120 section 4.9.3).", "condition"),
		publish: r.histogram("c2s_nats_publish_seconds",
			"Time from publishing a stanza to the route stream to its acknowledgement."),
		publishErrs: r.counter("c2s_nats_publish_errors_total",
			"Stanzas the route stream refused or did not acknowledge in time."),
		limitHits: r.counterVec("c2s_limit_hits_total",
			"Times an abuse limit bit (a connection refused, a stanza refused, a read shaped, a login locked out), by limit.", "limit"),
	}
	r.reg.MustRegister(c2sCollector{m})
	return m
}

// SetState installs the function that counts the node's connections at
// each scrape; a node calls it once when it starts.
func (m *C2S) SetState(f func() C2SState) {
	if m == nil {
		return
	}
	m.state.Store(&f)
}

// StanzaIn counts a stanza of kind k (a bus.v1 Kind value) published to
// the routers.
func (m *C2S) StanzaIn(k int32) {
	if m == nil {
		return
	}
	m.in.inc(k)
}

// StanzaOut counts a delivery queued for a client.
func (m *C2S) StanzaOut(k int32) {
	if m == nil {
		return
	}
	m.out.inc(k)
}

// HandedBack counts a delivery handed back to the routers.
func (m *C2S) HandedBack() {
	if m == nil {
		return
	}
	m.handedBack.Inc()
}

// AuthFailure counts a failed SASL exchange with mechanism ending in the
// SASL condition (RFC 6120 section 6.5). The mechanism is what the client
// named: one this server does not know is counted as "other", so a client
// cannot add label values.
func (m *C2S) AuthFailure(mechanism, condition string) {
	if m == nil {
		return
	}
	switch mechanism {
	case "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN", "DIGEST-MD5", "EXTERNAL":
	case "":
		mechanism = "none"
	default:
		mechanism = "other"
	}
	m.authFailures.WithLabelValues(mechanism, condition).Inc()
}

// StreamError counts a stream error sent with condition.
func (m *C2S) StreamError(condition string) {
	if m == nil {
		return
	}
	m.streamErrors.WithLabelValues(condition).Inc()
}

// Published records the route stream's answer to a stanza published at
// start: acknowledged (ok) or not.
func (m *C2S) Published(start time.Time, ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.publishErrs.Inc()
		return
	}
	m.publish.Observe(time.Since(start).Seconds())
}

var (
	c2sConnsDesc = prometheus.NewDesc(namespace+"_c2s_connections",
		"Client connections by state: negotiating (TLS, SASL, binding), bound, closing.", []string{"state"}, nil)
	c2sQueuedDesc = prometheus.NewDesc(namespace+"_c2s_outbound_queued",
		"Stanzas waiting in the outbound queues of every session of the node.", nil, nil)
)

// c2sCollector reads the node's state at scrape time.
type c2sCollector struct{ m *C2S }

func (c c2sCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c2sConnsDesc
	ch <- c2sQueuedDesc
}

func (c c2sCollector) Collect(ch chan<- prometheus.Metric) {
	var st C2SState
	if f := c.m.state.Load(); f != nil {
		st = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(c2sConnsDesc, prometheus.GaugeValue, float64(st.Negotiating), "negotiating")
	ch <- prometheus.MustNewConstMetric(c2sConnsDesc, prometheus.GaugeValue, float64(st.Bound), "bound")
	ch <- prometheus.MustNewConstMetric(c2sConnsDesc, prometheus.GaugeValue, float64(st.Closing), "closing")
	ch <- prometheus.MustNewConstMetric(c2sQueuedDesc, prometheus.GaugeValue, float64(st.Queued))
}

// LimitHit counts one bite of the abuse limit named limit (one of the
// c2s package's Limit* names, a small fixed set).
func (m *C2S) LimitHit(limit string) {
	if m == nil {
		return
	}
	m.limitHits.WithLabelValues(limit).Inc()
}
