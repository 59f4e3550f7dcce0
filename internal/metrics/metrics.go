// Package metrics holds the Prometheus metrics of every Switchboard service.
//
// Each process makes one Registry (New) and serves it on its health HTTP
// listener at /metrics. A service takes a struct of metric handles (C2S,
// Router, ...) through its Config; every method of those structs is safe on
// a nil pointer and then does nothing, so package tests and callers that
// want no metrics pass nil and need no registry.
//
// Names start with "switchboard_". Labels only take values from small,
// fixed sets (stanza kinds, outcomes, error conditions, operations,
// partitions): never an address, a JID or a session id.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "switchboard"

// Registry is the metrics of one process: the Go runtime and process
// collectors, and the metric sets of the services the process runs. The
// one-process binary registers every service's set on one Registry.
type Registry struct {
	reg *prometheus.Registry
}

// New returns a Registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg}
}

// Handler serves the registry in the Prometheus exposition formats. A nil
// Registry serves 404, so a process without metrics still has the route.
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Gatherer is the underlying gatherer, for tests that read values.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Registerer lets code outside this package add its own collectors.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Latency buckets in seconds: from 100µs (an in-process call) to 10s (a
// call at its timeout).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func (r *Registry) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	r.reg.MustRegister(v)
	return v
}

func (r *Registry) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	r.reg.MustRegister(c)
	return c
}

func (r *Registry) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	r.reg.MustRegister(v)
	return v
}

func (r *Registry) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: latencyBuckets})
	r.reg.MustRegister(h)
	return h
}

func (r *Registry) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: latencyBuckets}, labels)
	r.reg.MustRegister(v)
	return v
}

// Kinds are the stanza kinds, indexed like bus.v1 Kind (unspecified,
// message, presence, iq), so that a hot path picks a pre-made counter by
// the enum's value without a label lookup.
var kinds = [...]string{"other", "message", "presence", "iq"}

// byKind holds one counter per stanza kind.
type byKind [len(kinds)]prometheus.Counter

func newByKind(v *prometheus.CounterVec, first ...string) byKind {
	var b byKind
	for i, k := range kinds {
		b[i] = v.WithLabelValues(append(first, k)...)
	}
	return b
}

// inc counts one stanza of kind k (a bus.v1 Kind value); unknown values
// count as "other".
func (b *byKind) inc(k int32) {
	if k < 0 || int(k) >= len(b) {
		k = 0
	}
	b[k].Inc()
}

// Ops measures the calls a service makes to one backend (Postgres, Redis,
// SQLite), by operation: latency, and errors.
type Ops struct {
	seconds *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func (r *Registry) ops(prefix, backendHelp string) *Ops {
	return &Ops{
		seconds: r.histogramVec(prefix+"_seconds", "Latency of "+backendHelp+" operations, by operation.", "op"),
		errors:  r.counterVec(prefix+"_errors_total", backendHelp+" operations that failed, by operation.", "op"),
	}
}

// Observe records one operation op that started at start and ended with
// err. "Not found" answers that are part of normal work should be passed as
// nil.
func (o *Ops) Observe(op string, start time.Time, err error) {
	if o == nil {
		return
	}
	o.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		o.errors.WithLabelValues(op).Inc()
	}
}
