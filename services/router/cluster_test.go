package router

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

// cluster is several routers sharing one subject prefix, with a test
// publisher in place of c2s and a receiver on every node subject.
type cluster struct {
	t        *testing.T
	subjects bus.Subjects
	reg      *fakeRegistry
	acc      *fakeAccounts
	nc       *nats.Conn
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	routers  []*member

	mu  sync.Mutex
	got []*busv1.Delivery // every delivery published, in arrival order
}

// member is one router of a cluster with its own connection, which a test
// may close to kill it.
type member struct {
	r      *Router
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// newCluster makes a cluster; its receiver subscribes to the subjects of
// nodes, or of every node when none are named.
func newCluster(t *testing.T, partitions int, nodes ...string) *cluster {
	t.Helper()
	c := &cluster{
		t:        t,
		subjects: bus.New(testPrefix("c"), partitions),
		reg:      &fakeRegistry{},
		acc:      &fakeAccounts{exists: map[string]bool{"alice@example.com": true, "bob@example.com": true}},
	}
	var err error
	if c.nc, err = connectNATS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.subjects.EnsureRouteStream(ctx, c.js, testStream); err != nil {
		t.Fatal(err)
	}
	dropStreams(t, c.js, c.subjects)
	if c.kv, err = c.subjects.EnsureLeaseBucket(ctx, c.js, testLeaseTTL, testStream); err != nil {
		t.Fatal(err)
	}
	subject := c.subjects.Prefix + ".node.*"
	if len(nodes) == 1 {
		subject = c.subjects.Node(nodes[0])
	}
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		d := new(busv1.Delivery)
		if err := proto.Unmarshal(m.Data, d); err != nil {
			t.Errorf("undecodable delivery: %v", err)
			return
		}
		c.mu.Lock()
		c.got = append(c.got, d)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// start adds a running router.
func (c *cluster) start(name string) *member {
	c.t.Helper()
	nc, err := connectNATS()
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	r, err := New(Config{
		Domain: domain, Node: name, NATS: nc, Subjects: c.subjects,
		Sessions: c.reg, Accounts: c.acc, Roster: newFakeRoster(), Logger: testLogger(), LeaseTTL: testLeaseTTL, Stream: testStream,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{r: r, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- r.Run(ctx) }()
	c.routers = append(c.routers, m)
	c.t.Cleanup(func() { c.stop(m) })
	return m
}

// stop stops m gracefully; it hands its partitions back.
func (c *cluster) stop(m *member) {
	c.t.Helper()
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		if err != nil && !errors.Is(err, ErrSubscriptionClosed) {
			c.t.Errorf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		c.t.Error("router did not stop within 15s")
	}
}

// kill stops m as SIGKILL would: its connection closes without draining,
// so nothing more it had in hand is published or acknowledged, and its
// leases stay until they expire.
func (c *cluster) kill(m *member) {
	c.t.Helper()
	m.nc.Close()
	select {
	case err := <-m.done:
		if !errors.Is(err, ErrSubscriptionClosed) {
			c.t.Errorf("Run of a killed router = %v, want ErrSubscriptionClosed", err)
		}
	case <-time.After(15 * time.Second):
		c.t.Fatal("killed router's Run did not return within 15s")
	}
	m.cancel = nil
}

// owners returns how many partitions each router instance holds a lease
// for.
func (c *cluster) owners() map[string]int {
	out := map[string]int{}
	for p := range c.subjects.Partitions {
		e, err := c.kv.Get(context.Background(), c.subjects.LeaseKey(p))
		if err != nil {
			continue
		}
		out[string(e.Value())]++
	}
	return out
}

// waitEvenShare waits until every router holds the same number of
// partitions: from then on no lease moves until a router leaves.
func (c *cluster) waitEvenShare() {
	c.t.Helper()
	poll(c.t, 10*time.Second, "an even share of the partitions", func() bool {
		o := c.owners()
		for _, m := range c.routers {
			if o[m.r.instance] != c.subjects.Partitions/len(c.routers) {
				return false
			}
		}
		return true
	})
}

// owner is the router that holds partition p's lease, or nil.
func (c *cluster) owner(p int) *member {
	e, err := c.kv.Get(context.Background(), c.subjects.LeaseKey(p))
	if err != nil {
		return nil
	}
	for _, m := range c.routers {
		if m.r.instance == string(e.Value()) {
			return m
		}
	}
	return nil
}

// poll calls cond until it holds or d passes.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("not within %v: %s", d, what)
		case <-tick.C:
		}
	}
}

// publishChats publishes chat messages from alicePhone to bobDesk with
// seqs from..to (inclusive) as c2s does: asynchronously, in order, each
// with its message id, and waits for every acknowledgement.
func (c *cluster) publishChats(from, to uint64) {
	c.t.Helper()
	subject := c.subjects.RouteFor("alice@example.com")
	for seq := from; seq <= to; seq++ {
		id := "m" + itoa(int(seq))
		el := msg(bobDesk.jid, "chat", id, "number "+itoa(int(seq)))
		el.SetAttr("from", alicePhone.jid)
		st := &busv1.Stanza{
			From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Type: "chat", Id: id,
			Origin: &busv1.Origin{Node: alicePhone.node, Session: alicePhone.session}, Raw: el.Marshal(), Seq: seq,
		}
		b, err := proto.Marshal(st)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := c.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: b},
			jetstream.WithMsgID(bus.StanzaMsgID(alicePhone.node, alicePhone.session, seq))); err != nil {
			c.t.Fatal(err)
		}
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		c.t.Fatal("publishes not acknowledged within 30s")
	}
}

// received returns the seqs of the chats delivered to bobDesk, in arrival
// order, as published (duplicates included) and as a receiving c2s passes
// them on (dropping any seq not above the last one passed on).
func (c *cluster) received() (raw, passed []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last uint64
	for _, d := range c.got {
		if d.Session != bobDesk.session || d.Type != "chat" {
			continue
		}
		raw = append(raw, d.Seq)
		if d.Seq > last {
			passed = append(passed, d.Seq)
			last = d.Seq
		}
	}
	return raw, passed
}

// wantAllInOrder checks that bobDesk was passed exactly 1..n, in order.
func wantAllInOrder(t *testing.T, passed []uint64, n int) {
	t.Helper()
	if len(passed) != n {
		t.Fatalf("bob was passed %d messages, want %d", len(passed), n)
	}
	for i, s := range passed {
		if s != uint64(i+1) {
			t.Fatalf("message %d passed to bob is seq %d, want %d", i, s, i+1)
		}
	}
}

const orderedMessages = 10000

// TestPerSenderOrderAcrossTwoRouters_RFC6120_10_1 sends 10,000 numbered
// chats from one session to another while two routers share the
// partitions: every one arrives, once, in the order sent.
func TestPerSenderOrderAcrossTwoRouters_RFC6120_10_1(t *testing.T) {
	c := newCluster(t, 4)
	c.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	c.start("r1")
	c.start("r2")
	c.waitEvenShare()
	c.publishChats(1, orderedMessages)
	poll(t, 30*time.Second, "all messages delivered", func() bool {
		_, passed := c.received()
		return len(passed) == orderedMessages
	})
	raw, passed := c.received()
	wantAllInOrder(t, passed, orderedMessages)
	if len(raw) != orderedMessages {
		t.Errorf("%d deliveries published for %d messages without any failover", len(raw), orderedMessages)
	}
}

// TestRouterKilledHalfwayLosesNothing_RFC6120_10_1 kills the router that
// consumes the sender's partition halfway through 10,000 chats (its
// connection closed without draining, as SIGKILL leaves it): the other
// router takes the partition over and routes what was not acknowledged
// again. After the receiving node's duplicate check, nothing is lost,
// nothing repeated, and the order holds.
func TestRouterKilledHalfwayLosesNothing_RFC6120_10_1(t *testing.T) {
	c := newCluster(t, 4)
	c.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	c.start("r1")
	c.start("r2")
	p := c.subjects.Partition("alice@example.com")
	c.waitEvenShare()
	victim := c.owner(p)
	// The victim dies at the worst moment: once half the messages are
	// delivered, right after it published a batch's deliveries and
	// before it acknowledged the batch's stanzas.
	var once sync.Once
	killed := make(chan time.Time, 1)
	hook := func() {
		if _, passed := c.received(); len(passed) >= orderedMessages/2 {
			once.Do(func() {
				killed <- time.Now()
				victim.nc.Close()
			})
		}
	}
	victim.r.afterFlush.Store(&hook)

	c.publishChats(1, orderedMessages)
	var killedAt time.Time
	select {
	case killedAt = <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the victim was not killed within 30s")
	}
	c.kill(victim)
	poll(t, 30*time.Second, "all messages delivered after the takeover", func() bool {
		_, passed := c.received()
		return len(passed) == orderedMessages
	})
	took := time.Since(killedAt)
	raw, passed := c.received()
	wantAllInOrder(t, passed, orderedMessages)
	if heir := c.owner(p); heir == nil || heir == victim {
		t.Errorf("partition %d not taken over", p)
	}
	t.Logf("takeover and rest delivered %v after the kill; %d deliveries published for %d messages (%d routed twice)",
		took, len(raw), orderedMessages, len(raw)-orderedMessages)
}

// TestPartitionsRebalanceAsRoutersJoinAndLeave checks the fair share: one
// router takes every partition, a second one gets half of them, and when it
// stops the first takes them all back at once (the leases are handed back,
// not left to expire).
func TestPartitionsRebalanceAsRoutersJoinAndLeave(t *testing.T) {
	c := newCluster(t, 8)
	r1 := c.start("r1")
	poll(t, 10*time.Second, "r1 holds all 8 partitions", func() bool { return c.owners()[r1.r.instance] == 8 })
	r2 := c.start("r2")
	poll(t, 10*time.Second, "4 partitions each", func() bool {
		o := c.owners()
		return o[r1.r.instance] == 4 && o[r2.r.instance] == 4
	})
	stopped := time.Now()
	c.stop(r2)
	poll(t, 10*time.Second, "r1 holds all 8 again", func() bool { return c.owners()[r1.r.instance] == 8 })
	if d := time.Since(stopped); d > 2*testLeaseTTL {
		t.Errorf("partitions of a stopped router came back after %v, want less than two lease TTLs", d)
	}
}

// TestLeaseTakeoverAfterKill checks that a killed router's partitions move
// to the survivor within a few lease TTLs, and that routing goes on there.
func TestLeaseTakeoverAfterKill(t *testing.T) {
	c := newCluster(t, 4)
	c.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	r1 := c.start("r1")
	r2 := c.start("r2")
	poll(t, 10*time.Second, "2 partitions each", func() bool {
		o := c.owners()
		return o[r1.r.instance] == 2 && o[r2.r.instance] == 2
	})
	killed := time.Now()
	c.kill(r1)
	poll(t, 5*testLeaseTTL, "r2 holds all 4 partitions", func() bool { return c.owners()[r2.r.instance] == 4 })
	t.Logf("takeover took %v with a lease TTL of %v", time.Since(killed), testLeaseTTL)
	c.publishChats(1, 10)
	poll(t, 10*time.Second, "messages delivered by the survivor", func() bool {
		_, passed := c.received()
		return len(passed) == 10
	})
}

// TestOneConsumerPerPartition checks the server side of exclusivity: the
// work-queue stream refuses a second consumer on a partition's subject, so
// even a router that wrongly believed it held a lease could not consume
// beside the owner.
func TestOneConsumerPerPartition(t *testing.T) {
	c := newCluster(t, 2)
	r1 := c.start("r1")
	poll(t, 10*time.Second, "r1 consumes both partitions", func() bool {
		_, err := c.js.Consumer(context.Background(), c.subjects.RouteStream(), c.subjects.RouteConsumer(0))
		return c.owners()[r1.r.instance] == 2 && err == nil
	})
	_, err := c.js.CreateConsumer(context.Background(), c.subjects.RouteStream(), jetstream.ConsumerConfig{
		Durable: "intruder", FilterSubject: c.subjects.Route(0), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err == nil {
		t.Fatal("a second consumer on a partition was accepted")
	}
}

// logLines keeps a router's log for tests that wait for a line.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// A router whose lease was taken from it (as when it stalled past the TTL
// and another router took over) stops consuming the partition at once and
// takes it again only once the other holder's lease has expired: two
// routers never consume one partition together.
func TestLeaseTakenAwayStopsConsuming(t *testing.T) {
	c := newCluster(t, 1)
	c.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "")
	logs := &logLines{}
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r, err := New(Config{
		Domain: domain, Node: "r1", NATS: nc, Subjects: c.subjects, Sessions: c.reg, Accounts: c.acc, Roster: newFakeRoster(),
		Logger: slog.New(slog.NewTextHandler(logs, nil)), LeaseTTL: testLeaseTTL, Stream: testStream,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c.publishChats(1, 1)
	poll(t, 10*time.Second, "the first chat delivered", func() bool {
		_, passed := c.received()
		return len(passed) == 1
	})

	// Another holder takes the lease.
	key := c.subjects.LeaseKey(0)
	e, err := c.kv.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.kv.Delete(context.Background(), key, jetstream.LastRevision(e.Revision())); err != nil {
		t.Fatal(err)
	}
	stolen := time.Now()
	if _, err := c.kv.Create(context.Background(), key, []byte("thief")); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the router noticing", func() bool { return logs.has("lease lost") })
	c.publishChats(2, 2)
	poll(t, 10*time.Second, "the second chat delivered once the thief's lease expired", func() bool {
		_, passed := c.received()
		return len(passed) == 2
	})
	if d := time.Since(stolen); d < testLeaseTTL*9/10 {
		t.Errorf("the router consumed again %v after losing its lease, before the new holder's lease (TTL %v) expired", d, testLeaseTTL)
	}
}
