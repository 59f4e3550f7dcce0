package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
)

// reapWithin bounds how long a test waits for a reap to find an expired
// node, well above the TTLs the tests use.
const reapWithin = 10 * time.Second

// sessionOn is session on a given node.
func sessionOn(full, id, node string) presence.Session {
	s := session(full, id)
	s.Node = node
	return s
}

func heartbeat(t *testing.T, s presence.Store, node string, ttl time.Duration) uint64 {
	t.Helper()
	e, err := s.Heartbeat(ctx(t), node, ttl)
	if err != nil {
		t.Fatalf("Heartbeat(%s): %v", node, err)
	}
	if e == 0 {
		t.Fatalf("Heartbeat(%s) returned epoch 0", node)
	}
	return e
}

func reap(t *testing.T, s presence.Store) []presence.Session {
	t.Helper()
	removed, err := s.ReapDeadNodes(ctx(t))
	if err != nil {
		t.Fatalf("ReapDeadNodes: %v", err)
	}
	return removed
}

// reapUntil reaps, polling, until the reaps have returned n sessions in
// all, and returns them sorted; it fails the test after reapWithin.
func reapUntil(t *testing.T, s presence.Store, n int) []presence.Session {
	t.Helper()
	var removed []presence.Session
	deadline := time.Now().Add(reapWithin)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(removed) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the reaps returned %s, want %d sessions", reapWithin, describe(removed), n)
		}
		<-tick.C
		removed = append(removed, reap(t, s)...)
	}
	return sorted(removed)
}

func sorted(ss []presence.Session) []presence.Session {
	slices.SortFunc(ss, func(a, b presence.Session) int {
		return strings.Compare(a.JID.String()+"#"+a.ID, b.JID.String()+"#"+b.ID)
	})
	return ss
}

func testReapExpired(t *testing.T, s presence.Store) {
	heartbeat(t, s, "node-dead", 20*time.Millisecond)
	heartbeat(t, s, "node-live", time.Minute)
	balcony := sessionOn("juliet@example.com/balcony", "s1", "node-dead")
	garden := sessionOn("juliet@example.com/garden", "s2", "node-live")
	cell := sessionOn("romeo@example.com/cell", "s3", "node-dead")
	for _, sess := range []presence.Session{balcony, garden, cell} {
		bind(t, s, sess)
	}
	setPresence(t, s, "romeo@example.com/cell", "s3", true, 3, "<presence/>")
	cell.Available, cell.Priority, cell.LastPresence = true, 3, []byte("<presence/>")

	// The sessions come back as they were, so that the caller can tell
	// their contacts who went unavailable.
	wantSessions(t, "reaped", reapUntil(t, s, 2), balcony, cell)
	wantSessions(t, "Lookup(juliet@example.com)", lookup(t, s, "juliet@example.com"), garden)
	if got := lookup(t, s, "romeo@example.com"); len(got) != 0 {
		t.Errorf("Lookup(romeo@example.com) = %s, want nothing", describe(got))
	}
	if again := reap(t, s); len(again) != 0 {
		t.Errorf("second reap returned %s, want nothing", describe(again))
	}
}

func testHeartbeatKeepsAlive(t *testing.T, s presence.Store) {
	const ttl = 300 * time.Millisecond
	heartbeat(t, s, "node-a", ttl)
	kept := sessionOn("juliet@example.com/balcony", "s1", "node-a")
	bind(t, s, kept)
	// A canary that stops sending heartbeats shows that reaps did run.
	heartbeat(t, s, "node-canary", 10*time.Millisecond)
	canary := sessionOn("romeo@example.com/cell", "c1", "node-canary")
	bind(t, s, canary)

	var reaped []presence.Session
	tick := time.NewTicker(ttl / 6)
	defer tick.Stop()
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); {
		<-tick.C
		heartbeat(t, s, "node-a", ttl)
		reaped = append(reaped, reap(t, s)...)
	}
	wantSessions(t, "reaped over four TTLs of heartbeats", reaped, canary)
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com"), kept)
}

func testNoHeartbeatNoReap(t *testing.T, s presence.Store) {
	silent := sessionOn("juliet@example.com/balcony", "s1", "node-silent")
	bind(t, s, silent)
	heartbeat(t, s, "node-canary", time.Millisecond)
	canary := sessionOn("romeo@example.com/cell", "c1", "node-canary")
	bind(t, s, canary)
	wantSessions(t, "reaped", reapUntil(t, s, 1), canary)
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com"), silent)
}

func testReapSparesReplacements(t *testing.T, s presence.Store) {
	heartbeat(t, s, "node-dead", 20*time.Millisecond)
	heartbeat(t, s, "node-live", time.Minute)
	bind(t, s, sessionOn("juliet@example.com/balcony", "s1", "node-dead"))
	gone := sessionOn("juliet@example.com/garden", "s2", "node-dead")
	bind(t, s, gone)
	// Juliet logs in again at the same resource on a live node before the
	// dead one is noticed; the replaced session is the replacer's to
	// announce, not the reaper's.
	next := sessionOn("juliet@example.com/balcony", "s3", "node-live")
	bind(t, s, next)
	wantSessions(t, "reaped", reapUntil(t, s, 1), gone)
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com"), next)
}

func testDropNode(t *testing.T, s presence.Store) {
	heartbeat(t, s, "node-a", time.Minute)
	var want []presence.Session
	for i := range 5 {
		sess := sessionOn(fmt.Sprintf("user%d@example.com/res", i), fmt.Sprintf("a%d", i), "node-a")
		bind(t, s, sess)
		want = append(want, sess)
	}
	other := sessionOn("juliet@example.com/balcony", "b1", "node-b")
	bind(t, s, other)
	// A node's name may prefix another's; only exact names count.
	longer := sessionOn("juliet@example.com/garden", "b2", "node-a2")
	bind(t, s, longer)

	removed, err := s.DropNode(ctx(t), "node-a")
	if err != nil {
		t.Fatalf("DropNode: %v", err)
	}
	wantSessions(t, "dropped", sorted(removed), want...)
	for i := range 5 {
		if got := lookup(t, s, fmt.Sprintf("user%d@example.com", i)); len(got) != 0 {
			t.Errorf("user%d still has %s", i, describe(got))
		}
	}
	wantSessions(t, "Lookup(juliet@example.com)", lookup(t, s, "juliet@example.com"), other, longer)
	if again, err := s.DropNode(ctx(t), "node-a"); err != nil || len(again) != 0 {
		t.Errorf("second DropNode = %s, %v; want nothing", describe(again), err)
	}
	// A dropped node is not reaped again: it was forgotten.
	heartbeat(t, s, "node-canary", time.Millisecond)
	bind(t, s, sessionOn("romeo@example.com/cell", "c1", "node-canary"))
	if got := reapUntil(t, s, 1); len(got) != 1 || got[0].Node != "node-canary" {
		t.Errorf("reaped %s, want only the canary", describe(got))
	}
}

func testEpoch(t *testing.T, s presence.Store) {
	a1 := heartbeat(t, s, "node-a", time.Minute)
	if a2 := heartbeat(t, s, "node-a", time.Minute); a2 != a1 {
		t.Errorf("second heartbeat: epoch %d, want %d as before", a2, a1)
	}
	b1 := heartbeat(t, s, "node-b", time.Millisecond)
	if b1 == a1 {
		t.Errorf("two nodes share epoch %d", a1)
	}
	// Binding and unbinding are the node's own doing: the epoch stays.
	bind(t, s, sessionOn("juliet@example.com/balcony", "s1", "node-a"))
	unbind(t, s, "juliet@example.com/balcony", "s1")
	bind(t, s, sessionOn("juliet@example.com/garden", "s2", "node-a"))
	if a := heartbeat(t, s, "node-a", time.Minute); a != a1 {
		t.Errorf("after Bind and Unbind: epoch %d, want %d", a, a1)
	}
	if _, err := s.DropNode(ctx(t), "node-a"); err != nil {
		t.Fatalf("DropNode: %v", err)
	}
	a3 := heartbeat(t, s, "node-a", time.Minute)
	if a3 == a1 || a3 == b1 {
		t.Errorf("after DropNode: epoch %d, want a new one (had %d and %d)", a3, a1, b1)
	}
	bind(t, s, sessionOn("romeo@example.com/cell", "s3", "node-b"))
	reapUntil(t, s, 1)
	if b2 := heartbeat(t, s, "node-b", time.Minute); b2 == b1 || b2 == a3 {
		t.Errorf("after a reap: epoch %d, want a new one (had %d and %d)", b2, b1, a3)
	}
}

// testNodeBackAfterReap plays a c2s node cut off from the registry longer
// than its TTL: its sessions are reaped, its next heartbeat returns a new
// epoch, and it binds its sessions again. Those must stay.
func testNodeBackAfterReap(t *testing.T, s presence.Store) {
	e1 := heartbeat(t, s, "node-a", 20*time.Millisecond)
	balcony := sessionOn("juliet@example.com/balcony", "s1", "node-a")
	bind(t, s, balcony)
	wantSessions(t, "reaped while cut off", reapUntil(t, s, 1), balcony)

	if e2 := heartbeat(t, s, "node-a", time.Minute); e2 == e1 {
		t.Fatalf("heartbeat after the reap returned the old epoch %d", e1)
	}
	bind(t, s, balcony)
	garden := sessionOn("juliet@example.com/garden", "s2", "node-a")
	bind(t, s, garden)

	heartbeat(t, s, "node-canary", time.Millisecond)
	canary := sessionOn("romeo@example.com/cell", "c1", "node-canary")
	bind(t, s, canary)
	wantSessions(t, "reaped after the node came back", reapUntil(t, s, 1), canary)
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com"), balcony, garden)
}

func testLateBindOfReapedNode(t *testing.T, s presence.Store) {
	heartbeat(t, s, "node-a", time.Millisecond)
	bind(t, s, sessionOn("juliet@example.com/balcony", "s1", "node-a"))
	reapUntil(t, s, 1)

	// A Bind sent before the node died reaches the registry late: nothing
	// would ever reap it if the registry had forgotten the node.
	late := sessionOn("juliet@example.com/garden", "s2", "node-a")
	bind(t, s, late)
	wantSessions(t, "reaped after the late Bind", reapUntil(t, s, 1), late)

	// A node that binds and then sends a heartbeat is alive again.
	again := sessionOn("juliet@example.com/chamber", "s3", "node-a")
	bind(t, s, again)
	heartbeat(t, s, "node-a", time.Minute)
	heartbeat(t, s, "node-canary", time.Millisecond)
	bind(t, s, sessionOn("romeo@example.com/cell", "c1", "node-canary"))
	if got := reapUntil(t, s, 1); len(got) != 1 || got[0].Node != "node-canary" {
		t.Errorf("reaped %s, want only the canary", describe(got))
	}
	wantSessions(t, "Lookup", lookup(t, s, "juliet@example.com"), again)
}

func testConcurrentReapers(t *testing.T, s presence.Store) {
	const (
		nodes    = 4
		perNode  = 25
		reapers  = 6
		total    = nodes * perNode
		liveNode = "node-live"
	)
	heartbeat(t, s, liveNode, time.Minute)
	live := sessionOn("juliet@example.com/balcony", "live", liveNode)
	bind(t, s, live)
	for n := range nodes {
		node := fmt.Sprintf("node-%d", n)
		heartbeat(t, s, node, time.Minute)
		for i := range perNode {
			bind(t, s, sessionOn(fmt.Sprintf("user%d@example.com/n%d", i, n), fmt.Sprintf("%s-%d", node, i), node))
		}
	}
	// Every node but the last dies; the last shuts down cleanly while the
	// reapers run.
	for n := range nodes - 1 {
		heartbeat(t, s, fmt.Sprintf("node-%d", n), time.Millisecond)
	}

	var (
		mu    sync.Mutex
		count = map[string]int{}
		seen  atomic.Int64
		wg    sync.WaitGroup
	)
	record := func(removed []presence.Session) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range removed {
			count[r.ID]++
		}
		seen.Add(int64(len(removed)))
	}
	deadline := time.Now().Add(reapWithin)
	for range reapers {
		wg.Go(func() {
			for seen.Load() < total && time.Now().Before(deadline) {
				removed, err := s.ReapDeadNodes(ctx(t))
				if err != nil {
					t.Errorf("ReapDeadNodes: %v", err)
					return
				}
				record(removed)
			}
		})
	}
	wg.Go(func() {
		removed, err := s.DropNode(ctx(t), fmt.Sprintf("node-%d", nodes-1))
		if err != nil {
			t.Errorf("DropNode: %v", err)
			return
		}
		record(removed)
	})
	wg.Wait()

	for n := range nodes {
		for i := range perNode {
			id := fmt.Sprintf("node-%d-%d", n, i)
			if c := count[id]; c != 1 {
				t.Errorf("session %s returned %d times, want once", id, c)
			}
		}
	}
	if got := seen.Load(); got != total {
		t.Errorf("%d sessions returned in all, want %d", got, total)
	}
	for i := range perNode {
		if got := lookup(t, s, fmt.Sprintf("user%d@example.com", i)); len(got) != 0 {
			t.Errorf("user%d still has %s", i, describe(got))
		}
	}
	wantSessions(t, "the live node's session", lookup(t, s, "juliet@example.com"), live)
}
