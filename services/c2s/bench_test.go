package c2s

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

// BenchmarkInboundStanzas measures one client's stanzas from its socket to
// the route subjects: read, check, stamp, serialise, publish.
func BenchmarkInboundStanzas(b *testing.B) {
	// The per-session stanza and byte limits, meant for people, would
	// throttle the sender within a second and the benchmark would time
	// out waiting for stanzas they held back.
	e := newEnv(b, func(c *Config) { withMetrics(c); c.Abuse.StanzaRate, c.Abuse.ByteRate = -1, -1 })
	var n atomic.Int64
	sub, err := e.spy.Subscribe(e.cfg.Subjects.RouteAll(), func(*nats.Msg) { n.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(-1, -1)
	e.spy.Flush()
	c := e.dial()
	c.login("alice", "bench")
	msg := "<message to='bob@example.test' type='chat'><body>" + strings.Repeat("x", 100) + "</body></message>"
	batch := strings.Repeat(msg, 64)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(64, b.N-sent)
		if k == 64 {
			c.send(batch)
		} else {
			c.send(strings.Repeat(msg, k))
		}
		sent += k
	}
	waitForB(b, func() bool { return n.Load() >= int64(b.N) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stanzas/s")
}

// BenchmarkDeliveries measures deliveries from the node subject to a
// client's socket: decode, queue, write.
func BenchmarkDeliveries(b *testing.B) {
	e := newEnv(b, withMetrics)
	c := e.dial()
	c.login("bob", "bench")
	id := c.sessionID()
	raw := "<message xmlns='jabber:client' from='alice@example.test/x' to='bob@example.test/bench' type='chat'><body>" + strings.Repeat("x", 100) + "</body></message>"
	payload, err := proto.Marshal(&busv1.Delivery{Session: id, Action: busv1.Action_ACTION_DELIVER, Raw: []byte(raw)})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		for got.Load() < int64(b.N) {
			c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
			if _, err := c.r.Next(); err != nil {
				done <- err
				return
			}
			got.Add(1)
		}
		done <- nil
	}()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := range b.N {
		if err := e.spy.Publish(e.cfg.Subjects.Node(testNode), payload); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			// Keep within the queue: the benchmark measures throughput,
			// not the full-queue rule.
			waitForB(b, func() bool { return got.Load() >= int64(i+1-e.cfg.QueueSize/2) })
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stanzas/s")
}

func waitForB(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal(errors.New("timed out"))
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// withMetrics turns the node's metrics on, as every binary has them, so
// that the benchmarks include their cost.
func withMetrics(c *Config) { c.Metrics = metrics.New().C2S() }
