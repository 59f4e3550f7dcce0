package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is what a router did with one stanza.
type Outcome uint8

// Outcomes of routing, in the order Outcomes.Main picks from.
const (
	// Delivered: at least one delivery to a local session.
	Delivered Outcome = iota
	// Offline: stored for later delivery (XEP-0160).
	Offline
	// Remote: handed to the s2s service for another domain (an error for
	// a remote sender included).
	Remote
	// Bounced: an error went back to the sender.
	Bounced
	// Answered: the server handled it itself (an IQ to the server or the
	// account, a roster change) and answered.
	Answered
	// Dropped: the rules say to ignore it, or it was malformed, or nobody
	// was there to take it.
	Dropped
	// HandedBack: a delivery reached no node (its node is gone) and went
	// back to the route stream for the no-session rules. Counted per
	// delivery, apart from the stanza's own outcome.
	HandedBack
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"delivered", "offline", "remote", "bounced", "answered", "dropped", "handed_back"}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Outcomes collects what happened to one stanza: a presence broadcast may
// be delivered to some sessions and bounced by none, a message to a remote
// user prepares an error in case s2s is not there. The zero value is
// empty.
type Outcomes uint8

// Add notes outcome o.
func (s *Outcomes) Add(o Outcome) { *s |= 1 << o }

// Main is the outcome that sums the stanza up: the first in the order of
// the constants (delivered before offline before remote, and so on), or
// Dropped when none was noted.
func (s Outcomes) Main() Outcome {
	for o := range numOutcomes {
		if s&(1<<o) != 0 {
			return o
		}
	}
	return Dropped
}

// Router is the metrics of a router.
type Router struct {
	stanzas [len(kinds)][numOutcomes]prometheus.Counter
	latency prometheus.Histogram

	mu      sync.Mutex
	pending map[int]uint64 // by partition consumed here
}

// Router registers and returns the metrics of a router. A Registry holds at
// most one.
func (r *Registry) Router() *Router {
	m := &Router{
		latency: r.histogram("router_routing_seconds",
			"Time from a connection service publishing a stanza to the router publishing its deliveries "+
				"(across nodes, clock skew adds to it)."),
		pending: make(map[int]uint64),
	}
	v := r.counterVec("router_stanzas_total", "Stanzas routed, by kind and outcome.", "kind", "outcome")
	for k := range kinds {
		for o := range numOutcomes {
			m.stanzas[k][o] = v.WithLabelValues(kinds[k], outcomeNames[o])
		}
	}
	r.reg.MustRegister(routerCollector{m})
	return m
}

// Routed counts a stanza of kind k (a bus.v1 Kind value) routed with
// outcome o.
func (m *Router) Routed(k int32, o Outcome) {
	if m == nil || o >= numOutcomes {
		return
	}
	if k < 0 || int(k) >= len(kinds) {
		k = 0
	}
	m.stanzas[k][o].Inc()
}

// Latency records the routing latency of a stanza its connection service
// published at sent (unix nanoseconds; 0 means unknown and records
// nothing), its deliveries having been published at now.
func (m *Router) Latency(sent int64, now time.Time) {
	if m == nil || sent == 0 {
		return
	}
	d := now.Sub(time.Unix(0, sent))
	if d < 0 {
		d = 0 // the sender's clock is ahead
	}
	m.latency.Observe(d.Seconds())
}

// Consuming marks partition p as consumed here (leased) from now until the
// function it returns is called.
func (m *Router) Consuming(p int) func() {
	if m == nil {
		return func() {}
	}
	m.mu.Lock()
	m.pending[p] = 0
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.pending, p)
		m.mu.Unlock()
	}
}

// Pending records how many stanzas of partition p wait for this router,
// as its consumer last reported.
func (m *Router) Pending(p int, n uint64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if _, ok := m.pending[p]; ok {
		m.pending[p] = n
	}
	m.mu.Unlock()
}

var (
	routerLeasedDesc = prometheus.NewDesc(namespace+"_router_partitions_leased",
		"Route partitions this router holds the lease of and consumes.", nil, nil)
	routerPendingDesc = prometheus.NewDesc(namespace+"_router_pending_stanzas",
		"Stanzas waiting in the route stream for this router, by partition it consumes.", []string{"partition"}, nil)
)

type routerCollector struct{ m *Router }

func (c routerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- routerLeasedDesc
	ch <- routerPendingDesc
}

func (c routerCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(routerLeasedDesc, prometheus.GaugeValue, float64(len(c.m.pending)))
	for p, n := range c.m.pending {
		ch <- prometheus.MustNewConstMetric(routerPendingDesc, prometheus.GaugeValue, float64(n), strconv.Itoa(p))
	}
}
