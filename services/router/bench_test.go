package router

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/memstore"
)

// BenchmarkRouteChatToFullJID measures the routing decision for the most
// common stanza, a chat message to a bound full JID: prepare both
// addresses, one session lookup (an in-memory fake here, so the figure
// excludes gRPC), and the delivery built. Publishing is not included.
func BenchmarkRouteChatToFullJID(b *testing.B) {
	reg := &fakeRegistry{}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	r := &Router{
		domain:   domain,
		node:     "bench",
		subjects: bus.New("bench", 16),
		sessions: reg,
		accounts: &fakeAccounts{},
		log:      testLogger(),
		metrics:  metrics.New().Router(), // as in every binary
	}
	el := msg(bobDesk.jid, "chat", "m1", "hello, this is a chat message of ordinary length")
	el.SetAttr("from", alicePhone.jid)
	st := &busv1.Stanza{
		From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: "m1",
		Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: 1,
	}
	ctx := context.Background()
	var out []outbound
	b.ReportAllocs()
	for b.Loop() {
		out = r.route(ctx, st, out[:0])
		if len(out) != 1 {
			b.Fatalf("routed to %d sessions, want 1", len(out))
		}
	}
}

// pathBench drives chats from many senders to bobDesk through some
// routing path and measures throughput and latency, from the sender's
// publish to the delivery's arrival on bob's node subject.
type pathBench struct {
	b        *testing.B
	subjects bus.Subjects
	nc       *nats.Conn // sender and receiver
	sent     []time.Time
	lat      []time.Duration
	mu       sync.Mutex
	arrived  chan struct{}
	payloads [][]byte // one envelope per message, built before timing
	senders  int
	window   int // messages in flight at most
}

// Messages in flight: loaded is what many sessions with ack windows put
// on the bus at once (throughput); idle is one at a time (latency of an
// otherwise idle path).
const (
	loaded = 1024
	idle   = 1
)

func newPathBench(b *testing.B, senders, window int) *pathBench {
	pb := &pathBench{b: b, subjects: bus.New(testPrefix("bench"), bus.DefaultPartitions),
		senders: senders, window: window, arrived: make(chan struct{}, loaded)}
	var err error
	if pb.nc, err = connectNATS(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pb.nc.Close)
	sub, err := pb.nc.Subscribe(pb.subjects.Node(bobDesk.node), func(m *nats.Msg) {
		var d busv1.Delivery
		if err := proto.Unmarshal(m.Data, &d); err != nil {
			b.Error(err)
			return
		}
		i, _ := strconv.Atoi(d.Id)
		pb.mu.Lock()
		pb.lat = append(pb.lat, time.Since(pb.sent[i]))
		pb.mu.Unlock()
		pb.arrived <- struct{}{}
	})
	if err != nil {
		b.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	pb.nc.Flush()
	return pb
}

// prepare builds n envelopes: message i comes from sender i mod senders,
// with per-sender seqs.
func (pb *pathBench) prepare(n int) {
	pb.payloads = make([][]byte, n)
	pb.sent = make([]time.Time, n)
	pb.lat = make([]time.Duration, 0, n)
	seqs := make([]uint64, pb.senders)
	for i := range n {
		s := i % pb.senders
		seqs[s]++
		from := fmt.Sprintf("user%d@example.com/r", s)
		el := msg(bobDesk.jid, "chat", strconv.Itoa(i), "hello, this is a chat message of ordinary length")
		el.SetAttr("from", from)
		st := &busv1.Stanza{From: from, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: strconv.Itoa(i),
			Origin: &busv1.Origin{Node: "n1", Session: fmt.Sprintf("s%d", s)}, Raw: el.Marshal(), Seq: seqs[s]}
		b, err := proto.Marshal(st)
		if err != nil {
			pb.b.Fatal(err)
		}
		pb.payloads[i] = b
	}
}

// run sends every prepared message with publish(i) and waits for all
// deliveries, keeping at most window in flight; it reports msgs/s and the
// latency percentiles.
func (pb *pathBench) run(publish func(i int, subject string, data []byte)) {
	b := pb.b
	n := len(pb.payloads)
	deadline := time.After(5 * time.Minute)
	wait := func() {
		select {
		case <-pb.arrived:
		case <-deadline:
			b.Fatal("deliveries did not arrive within 5 minutes")
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		if i >= pb.window {
			wait()
		}
		from := fmt.Sprintf("user%d@example.com", i%pb.senders)
		pb.mu.Lock()
		pb.sent[i] = time.Now()
		pb.mu.Unlock()
		publish(i, pb.subjects.RouteFor(from), pb.payloads[i])
	}
	for range min(n, pb.window) {
		wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(pb.lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(pb.lat[len(pb.lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(pb.lat[len(pb.lat)*99/100].Microseconds()), "p99-µs")
}

// startRouters runs n routers on pb's prefix until the benchmark ends and
// waits until each holds partitions.
func (pb *pathBench) startRouters(n int) {
	b := pb.b
	reg := &fakeRegistry{}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	js, err := jetstream.New(pb.nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := pb.subjects.EnsureRouteStream(context.Background(), js, testStream); err != nil {
		b.Fatal(err)
	}
	dropStreams(b, js, pb.subjects)
	for i := range n {
		rnc, err := connectNATS()
		if err != nil {
			b.Fatal(err)
		}
		r, err := New(Config{
			Domain: domain, Node: fmt.Sprintf("bench-%d", i), NATS: rnc, Subjects: pb.subjects,
			Sessions: reg, Accounts: &fakeAccounts{}, Roster: newFakeRoster(), Logger: testLogger(), Stream: testStream,
			Metrics: metrics.New().Router(),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		b.Cleanup(func() {
			cancel()
			<-done
			rnc.Close()
		})
	}
	kv, err := js.KeyValue(context.Background(), pb.subjects.LeaseBucket())
	for err != nil {
		kv, err = js.KeyValue(context.Background(), pb.subjects.LeaseBucket())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		owners := map[string]bool{}
		held := 0
		for p := range pb.subjects.Partitions {
			if e, err := kv.Get(context.Background(), pb.subjects.LeaseKey(p)); err == nil {
				owners[string(e.Value())] = true
				held++
			}
		}
		if len(owners) == n && held == pb.subjects.Partitions {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("routers did not share the partitions within 30s: %v", owners)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// BenchmarkRoutedPath is the path of design note 002: a JetStream publish
// acknowledged by the route stream (pipelined, as c2s does), a router
// holding the partition's lease consumes it, routes it (fake in-memory
// registry, so gRPC is not included) and publishes the delivery, which
// arrives on bob's node subject. 64 senders spread over 16 partitions.
func BenchmarkRoutedPath(b *testing.B) {
	for _, c := range []struct {
		routers, window int
	}{{1, loaded}, {2, loaded}, {1, idle}, {2, idle}} {
		b.Run(fmt.Sprintf("routers=%d/inflight=%d", c.routers, c.window), func(b *testing.B) {
			pb := newPathBench(b, 64, c.window)
			pb.startRouters(c.routers)
			js, err := jetstream.New(pb.nc, jetstream.WithPublishAsyncMaxPending(loaded))
			if err != nil {
				b.Fatal(err)
			}
			pb.prepare(b.N)
			pb.run(func(i int, subject string, data []byte) {
				s := i % pb.senders
				id := bus.StanzaMsgID("n1", "s"+strconv.Itoa(s), uint64(i))
				if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data}, jetstream.WithMsgID(id)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkCorePath is the design this note replaced, for comparison: a
// core NATS publish (no acknowledgement), one router in a queue group
// routing every partition in the callback, the delivery published. It
// keeps no stanza across a router's death and orders stanzas only with a
// single router.
func BenchmarkCorePath(b *testing.B) {
	for _, window := range []int{loaded, idle} {
		b.Run(fmt.Sprintf("inflight=%d", window), func(b *testing.B) { benchCorePath(b, window) })
	}
}

func benchCorePath(b *testing.B, window int) {
	pb := newPathBench(b, 64, window)
	reg := &fakeRegistry{}
	reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	r := &Router{domain: domain, node: "core", subjects: pb.subjects, sessions: reg, accounts: &fakeAccounts{}, log: testLogger()}
	rnc, err := connectNATS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rnc.Close)
	var out []outbound
	sub, err := rnc.QueueSubscribe(pb.subjects.RouteAll(), pb.subjects.Prefix+".routers", func(m *nats.Msg) {
		st := new(busv1.Stanza)
		if err := proto.Unmarshal(m.Data, st); err != nil {
			b.Error(err)
			return
		}
		out = r.route(context.Background(), st, out[:0])
		for _, o := range out {
			data, _ := proto.Marshal(o.d)
			rnc.Publish(o.subject, data)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	rnc.Flush()
	pb.prepare(b.N)
	pb.run(func(i int, subject string, data []byte) {
		if err := pb.nc.Publish(subject, data); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkRouteChatToFullJIDRegistry is BenchmarkRouteChatToFullJID with
// the real presence service (in-memory store) behind in-process gRPC, as
// in the one-process server: cache=off asks it for every stanza, cache=on
// finds bob's sessions in the session cache after the first.
func BenchmarkRouteChatToFullJIDRegistry(b *testing.B) {
	for _, size := range []int{0, DefaultSessionCacheSize} {
		b.Run(fmt.Sprintf("cache=%v", size > 0), func(b *testing.B) {
			svc, err := presence.New(presence.Config{Store: memstore.New()})
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer()
			svc.Register(srv)
			l := grpcx.Listen()
			go srv.Serve(l)
			b.Cleanup(srv.Stop)
			cc, err := grpcx.Dial(l)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cc.Close() })
			reg := presencev1.NewSessionRegistryClient(cc)
			if _, err := reg.Bind(context.Background(), &presencev1.BindRequest{Jid: bobDesk.jid, Node: bobDesk.node, SessionId: bobDesk.session}); err != nil {
				b.Fatal(err)
			}
			r := &Router{domain: domain, node: "bench", subjects: bus.New("bench", 16), sessions: reg,
				accounts: &fakeAccounts{}, log: testLogger(), cache: newSessionCache(size, DefaultSessionCacheTTL),
				metrics: metrics.New().Router()}
			r.cache.setOn(true)
			st := chatTo(bobDesk.jid)
			ctx := context.Background()
			var out []outbound
			b.ReportAllocs()
			for b.Loop() {
				out = r.route(ctx, st, out[:0])
				if len(out) != 1 {
					b.Fatalf("routed to %d sessions, want 1", len(out))
				}
			}
		})
	}
}
