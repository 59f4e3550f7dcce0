package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
)

// TestClusterDeliversEveryMessageOnceInOrderWhenARouterIsKilled sends
// 10,000 numbered messages from a user on c2s-1 to a user on c2s-2 through
// two routers, then 10,000 more while the router holding the sender's
// partition is killed with SIGKILL halfway: the receiver gets each once,
// in order (RFC 6120 section 10.1, design note 002). Up to window messages
// are in flight when the router dies.
func TestClusterDeliversEveryMessageOnceInOrderWhenARouterIsKilled(t *testing.T) {
	// The sender sends as fast as its window allows, far above the
	// per-session stanza and byte limits meant for people: they are off.
	c := startClusterEnv(t, "SWITCHBOARD_C2S_STANZA_RATE=0", "SWITCHBOARD_C2S_BYTE_RATE=0")
	c.addUser(t, "alice@localhost", "alice-secret")
	c.addUser(t, "bob@localhost", "bob-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	alice := loginInbox(t, ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-secret", "order")
	bob := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "bob@localhost", "bob-secret", "order")

	const n, window = 10000, 200
	// round sends n numbered messages and a closing one; at half it calls
	// midway. It returns how long the receiver took from the first send to
	// the closing message, and the longest gap between two arrivals.
	round := func(name string, midway func()) {
		t.Helper()
		base := bob.count()
		start := time.Now()
		for i := range n {
			if i == n/2 && midway != nil {
				midway()
				t.Logf("%s: %d messages sent and not yet received right after it", name, i-(bob.count()-base))
			}
			// At most window messages in flight, as a client with flow
			// control sends them: a sender that outruns its receiver
			// for long fills the receiver's outbound queue, and c2s
			// closes a session whose queue is full (backpressure).
			if i-(bob.count()-base) >= window && !poll(30*time.Second, func() bool { return i-(bob.count()-base) < window }) {
				t.Fatalf("%s: bob got %d of the first %d messages within 30 s", name, bob.count()-base, i)
			}
			if err := alice.SendMessage(ctx, client.Message{To: bob.JID(), Type: client.MessageChat, Body: name + " " + strconv.Itoa(i)}); err != nil {
				t.Fatalf("%s: send %d: %v", name, i, err)
			}
		}
		end := name + " end"
		if err := alice.SendMessage(ctx, client.Message{To: bob.JID(), Type: client.MessageChat, Body: end}); err != nil {
			t.Fatalf("%s: send end: %v", name, err)
		}
		if !poll(90*time.Second, func() bool {
			_, ok := bob.find(func(m client.Message) bool { return m.Body == end })
			return ok
		}) {
			t.Fatalf("%s: bob got %d of %d messages in 90 s, not the closing one", name, bob.count()-base, n+1)
		}
		elapsed := time.Since(start)
		got := bob.snapshot()[base:]
		want := 0
		for j, m := range got {
			if m.Body == end {
				if want != n || j != len(got)-1 {
					t.Fatalf("%s: closing message at position %d after %d numbered ones, want it last after %d", name, j, want, n)
				}
				break
			}
			if m.Type != client.MessageChat || m.From.String() != alice.JID().String() {
				t.Fatalf("%s: message %d is %q type %s from %s", name, j, m.Body, m.Type, m.From)
			}
			num, err := strconv.Atoi(strings.TrimPrefix(m.Body, name+" "))
			if err != nil || num != want {
				t.Fatalf("%s: message %d is %q, want %q (lost, duplicated or out of order)", name, j, m.Body, fmt.Sprintf("%s %d", name, want))
			}
			want++
		}
		if errs := alice.snapshot(); len(errs) > 0 {
			t.Fatalf("%s: the sender got %d messages, first %q type %s error %v", name, len(errs), errs[0].Body, errs[0].Type, errs[0].Error)
		}
		t.Logf("%s: %d messages in order in %v (%.0f msg/s)", name, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	}

	round("steady", nil)

	var killed, instance string
	round("failover", func() {
		killed, instance = c.routerHolding(t, "alice@localhost")
		c.kill(t, killed)
	})
	// The partition moved: the test did kill the router consuming it.
	if node, inst := c.routerHolding(t, "alice@localhost"); inst == instance {
		t.Fatalf("the lease of alice's partition is still held by the killed %s", node)
	} else {
		t.Logf("alice's partition moved from %s to %s", killed, node)
	}
}
