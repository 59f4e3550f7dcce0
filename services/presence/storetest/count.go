package storetest

import (
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// wantCounts fails unless CountByNode reports exactly want.
func wantCounts(t *testing.T, what string, s presence.Store, want map[string]int) {
	t.Helper()
	got, err := s.CountByNode(ctx(t))
	if err != nil {
		t.Fatalf("%s: CountByNode: %v", what, err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: CountByNode = %v, want %v", what, got, want)
	}
}

func testCountByNode(t *testing.T, s presence.Store) {
	wantCounts(t, "empty store", s, nil)
	bind(t, s, sessionOn("juliet@example.com/balcony", "j1", "node-a"))
	bind(t, s, sessionOn("juliet@example.com/garden", "j2", "node-a"))
	bind(t, s, sessionOn("romeo@example.com/street", "r1", "node-a"))
	bind(t, s, sessionOn("romeo@example.com/church", "r2", "node-b"))
	wantCounts(t, "after four binds", s, map[string]int{"node-a": 3, "node-b": 1})

	// The same session bound again counts once.
	bind(t, s, sessionOn("juliet@example.com/balcony", "j1", "node-a"))
	wantCounts(t, "after a repeated bind", s, map[string]int{"node-a": 3, "node-b": 1})

	// A replacement moves the full JID to the new session's node.
	bind(t, s, sessionOn("juliet@example.com/balcony", "j3", "node-b"))
	wantCounts(t, "after a replacement", s, map[string]int{"node-a": 2, "node-b": 2})

	// A failed unbind (another session's id) changes nothing.
	unbind(t, s, "juliet@example.com/balcony", "j1")
	wantCounts(t, "after a stale unbind", s, map[string]int{"node-a": 2, "node-b": 2})

	unbind(t, s, "romeo@example.com/church", "r2")
	unbind(t, s, "juliet@example.com/balcony", "j3")
	// A node without sessions is not listed.
	wantCounts(t, "after node-b's unbinds", s, map[string]int{"node-a": 2})
	unbind(t, s, "juliet@example.com/garden", "j2")
	unbind(t, s, "romeo@example.com/street", "r1")
	wantCounts(t, "after every unbind", s, nil)

	// And a node whose last session was replaced by another node's.
	bind(t, s, sessionOn("juliet@example.com/balcony", "j4", "node-c"))
	bind(t, s, sessionOn("juliet@example.com/balcony", "j5", "node-d"))
	wantCounts(t, "after node-c's last session was replaced", s, map[string]int{"node-d": 1})
}

func testCountByNodeAfterReapAndDrop(t *testing.T, s presence.Store) {
	heartbeat(t, s, "node-live", time.Minute)
	heartbeat(t, s, "node-dying", time.Minute)
	bind(t, s, sessionOn("juliet@example.com/balcony", "j1", "node-live"))
	bind(t, s, sessionOn("romeo@example.com/street", "r1", "node-dying"))
	bind(t, s, sessionOn("romeo@example.com/church", "r2", "node-dying"))
	bind(t, s, sessionOn("nurse@example.com/kitchen", "n1", "node-leaving"))
	wantCounts(t, "before", s, map[string]int{"node-live": 1, "node-dying": 2, "node-leaving": 1})

	heartbeat(t, s, "node-dying", time.Millisecond)
	reapUntil(t, s, 2)
	wantCounts(t, "after the reap", s, map[string]int{"node-live": 1, "node-leaving": 1})

	if _, err := s.DropNode(ctx(t), "node-leaving"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after the drop", s, map[string]int{"node-live": 1})

	// A late bind from the reaped node counts until it is reaped again.
	bind(t, s, sessionOn("romeo@example.com/street", "r3", "node-dying"))
	wantCounts(t, "after a late bind", s, map[string]int{"node-live": 1, "node-dying": 1})
	reapUntil(t, s, 1)
	wantCounts(t, "after the second reap", s, map[string]int{"node-live": 1})
}

func testCountByNodeConcurrent(t *testing.T, s presence.Store) {
	const (
		nodes   = 3
		workers = 12
		rounds  = 20
	)
	// Each worker binds, sometimes unbinds, and sometimes steals another
	// worker's full JID from another node; counts must match what stays.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				node := fmt.Sprintf("node-%d", (w+r)%nodes)
				full := jid.MustParse(fmt.Sprintf("user%d@example.com/res%d", (w+r)%workers, r%3))
				id := fmt.Sprintf("w%d-r%d", w, r)
				if _, err := s.Bind(ctx(t), presence.Session{JID: full, Node: node, ID: id}); err != nil {
					t.Errorf("Bind: %v", err)
					return
				}
				if r%4 == 0 {
					if _, err := s.Unbind(ctx(t), full, id); err != nil {
						t.Errorf("Unbind: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	want := map[string]int{}
	for u := range workers {
		for _, sess := range lookup(t, s, fmt.Sprintf("user%d@example.com", u)) {
			want[sess.Node]++
		}
	}
	wantCounts(t, "after the work", s, want)
	for n := range nodes {
		if _, err := s.DropNode(ctx(t), fmt.Sprintf("node-%d", n)); err != nil {
			t.Fatal(err)
		}
	}
	wantCounts(t, "after dropping every node", s, nil)
}
