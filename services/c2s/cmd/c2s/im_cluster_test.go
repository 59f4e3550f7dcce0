package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// IM across nodes (issue 4, "Multi-node"): the subscription and presence
// scenarios of cmd/switchboard/e2e/im_test.go with the two users on
// different c2s nodes of one cluster, alice on c2s-1, bob and carol on
// c2s-2. Every wait is a read of the client's queue with a deadline.

const imWait = 10 * time.Second

// imDial logs user/resource in at addr with a plain client, whose queues
// of messages, presences and roster pushes the test reads.
func imDial(t *testing.T, addr, user, resource string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		JID:                jid.MustParse(user),
		Password:           strings.SplitN(user, "@", 2)[0] + "-secret",
		Resource:           resource,
		Addr:               addr,
		InsecureSkipVerify: true, // the c2s nodes' self-signed certificate
	})
	if err != nil {
		t.Fatalf("log in %s/%s at %s: %v", user, resource, addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// online fetches the roster and sends initial presence (RFC 6121 4.2.1).
func online(t *testing.T, c *client.Client) client.Roster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	r, err := c.Online(ctx, client.Presence{})
	if err != nil {
		t.Fatalf("%s online: %v", c.JID(), err)
	}
	return r
}

// waitFor reads next until an item satisfies match, within imWait; the
// items skipped are reported if none does.
func waitFor[T any](t *testing.T, who *client.Client, what string, next func(context.Context) (T, error), match func(T) bool) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	var skipped []string
	for {
		v, err := next(ctx)
		if err != nil {
			t.Fatalf("%s waiting for %s: %v (skipped meanwhile: %v)", who.JID(), what, err, skipped)
		}
		if match(v) {
			return v
		}
		skipped = append(skipped, fmt.Sprintf("%+v", v))
	}
}

func waitPresence(t *testing.T, c *client.Client, what string, match func(client.Presence) bool) client.Presence {
	t.Helper()
	return waitFor(t, c, what, c.NextPresence, match)
}

// waitPresences waits for one presence matching each of want, in any
// order (the router may send a contact's presence before or after the
// subscription stanza that caused it).
func waitPresences(t *testing.T, c *client.Client, want map[string]func(client.Presence) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	var skipped []string
	for len(want) > 0 {
		p, err := c.NextPresence(ctx)
		if err != nil {
			missing := make([]string, 0, len(want))
			for w := range want {
				missing = append(missing, w)
			}
			t.Fatalf("%s waiting for %v: %v (skipped meanwhile: %v)", c.JID(), missing, err, skipped)
		}
		hit := false
		for w, match := range want {
			if match(p) {
				delete(want, w)
				hit = true
				break
			}
		}
		if !hit {
			skipped = append(skipped, fmt.Sprintf("%+v", p))
		}
	}
}

func waitPush(t *testing.T, c *client.Client, what string, match func(client.RosterPush) bool) client.RosterPush {
	t.Helper()
	return waitFor(t, c, what, c.NextRosterPush, match)
}

func presenceFrom(from *client.Client, typ client.PresenceType, full bool) func(client.Presence) bool {
	want := from.JID().Bare().String()
	if full {
		want = from.JID().String()
	}
	return func(p client.Presence) bool { return p.Type == typ && p.From.String() == want }
}

func pushOf(contact *client.Client, sub client.Subscription, ask bool) func(client.RosterPush) bool {
	return func(p client.RosterPush) bool {
		return p.Item.JID.String() == contact.JID().Bare().String() && p.Item.Subscription == sub && p.Item.Ask == ask
	}
}

// itemOf returns c's roster item for contact, or fails.
func itemOf(t *testing.T, c, contact *client.Client) client.RosterItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	r, err := c.Roster(ctx)
	if err != nil {
		t.Fatalf("%s roster get: %v", c.JID(), err)
	}
	for _, it := range r.Items {
		if it.JID.String() == contact.JID().Bare().String() {
			return it
		}
	}
	t.Fatalf("%s's roster %+v has no item for %s", c.JID(), r.Items, contact.JID().Bare())
	return client.RosterItem{}
}

func send(t *testing.T, c *client.Client, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s %s: %v", c.JID(), what, err)
	}
}

func logout(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), imWait)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Logf("%s close: %v", c.JID(), err)
	}
}

// TestClusterIMAcrossNodes_RFC6121 starts one cluster and runs the IM
// scenarios in order on the same users.
func TestClusterIMAcrossNodes_RFC6121(t *testing.T) {
	c := startCluster(t)
	// The RFC 6121 tables, each cell with its own users.
	clusterIMTables(t, c)
	for _, u := range []string{"alice", "bob", "carol"} {
		c.addUser(t, u+"@localhost", u+"-secret")
	}
	node1, node2 := c.env["C2S1_LISTEN"], c.env["C2S2_LISTEN"]
	alice := imDial(t, node1, "alice@localhost", "desk")
	bob := imDial(t, node2, "bob@localhost", "phone")
	online(t, alice)
	online(t, bob)

	t.Run("RosterSetGetAndPush_2", func(t *testing.T) {
		send(t, alice, "roster set", func(ctx context.Context) error {
			return alice.SetRosterItem(ctx, client.RosterItem{JID: bob.JID().Bare(), Name: "Bob", Groups: []string{"Friends", "Work"}})
		})
		p := waitPush(t, alice, "the push of the new item", pushOf(bob, client.SubscriptionNone, false))
		if p.Item.Name != "Bob" || !slices.Equal(sorted(p.Item.Groups), []string{"Friends", "Work"}) {
			t.Errorf("push %+v: want name Bob, groups Friends and Work", p.Item)
		}
		it := itemOf(t, alice, bob)
		if it.Name != "Bob" || !slices.Equal(sorted(it.Groups), []string{"Friends", "Work"}) || it.Subscription != client.SubscriptionNone || it.Ask {
			t.Errorf("roster item %+v: want Bob in Friends and Work, subscription none, no ask", it)
		}
	})

	t.Run("MutualSubscriptionHandshakeEndsInBoth_3_1", func(t *testing.T) {
		// alice asks, bob (on the other node) approves.
		send(t, alice, "subscribe", func(ctx context.Context) error { return alice.Subscribe(ctx, bob.JID()) })
		waitPush(t, alice, "the push with ask=subscribe", pushOf(bob, client.SubscriptionNone, true))
		waitPresence(t, bob, "alice's subscribe", presenceFrom(alice, client.PresenceSubscribe, false))
		send(t, bob, "subscribed", func(ctx context.Context) error { return bob.ApproveSubscription(ctx, alice.JID()) })
		waitPush(t, bob, "the push of subscription from", pushOf(alice, client.SubscriptionFrom, false))
		waitPush(t, alice, "the push of subscription to", pushOf(bob, client.SubscriptionTo, false))
		// Section 3.1.5: with subscribed, bob's server sends his presence.
		waitPresences(t, alice, map[string]func(client.Presence) bool{
			"bob's subscribed":                  presenceFrom(bob, client.PresenceSubscribed, false),
			"bob's presence after the approval": presenceFrom(bob, client.PresenceAvailable, true),
		})

		// bob asks back, alice approves.
		send(t, bob, "subscribe", func(ctx context.Context) error { return bob.Subscribe(ctx, alice.JID()) })
		waitPush(t, bob, "the push of from with ask=subscribe", pushOf(alice, client.SubscriptionFrom, true))
		waitPresence(t, alice, "bob's subscribe", presenceFrom(bob, client.PresenceSubscribe, false))
		send(t, alice, "subscribed", func(ctx context.Context) error { return alice.ApproveSubscription(ctx, bob.JID()) })
		waitPush(t, alice, "the push of subscription both", pushOf(bob, client.SubscriptionBoth, false))
		waitPush(t, bob, "the push of subscription both", pushOf(alice, client.SubscriptionBoth, false))
		waitPresences(t, bob, map[string]func(client.Presence) bool{
			"alice's subscribed":                  presenceFrom(alice, client.PresenceSubscribed, false),
			"alice's presence after the approval": presenceFrom(alice, client.PresenceAvailable, true),
		})

		for _, side := range [][2]*client.Client{{alice, bob}, {bob, alice}} {
			if it := itemOf(t, side[0], side[1]); it.Subscription != client.SubscriptionBoth || it.Ask {
				t.Errorf("%s's item for %s: %+v, want subscription both, no ask", side[0].JID(), side[1].JID().Bare(), it)
			}
		}
	})
	if t.Failed() {
		return // the presence scenarios need the subscriptions
	}

	t.Run("UnavailableAtLogoutInitialPresenceAndProbeAcrossNodes_4", func(t *testing.T) {
		// 4.5.2: bob logs out, alice on the other node sees him leave.
		logout(t, bob)
		waitPresence(t, alice, "bob's unavailable at logout", presenceFrom(bob, client.PresenceUnavailable, true))

		// 4.2.2 and 4.2.3: bob logs in again after alice is online; his
		// initial presence reaches alice, and his server's probe is
		// answered with alice's presence.
		bob = imDial(t, node2, "bob@localhost", "laptop")
		online(t, bob)
		waitPresence(t, alice, "bob's initial presence", presenceFrom(bob, client.PresenceAvailable, true))
		waitPresence(t, bob, "alice's presence answering the probe", presenceFrom(alice, client.PresenceAvailable, true))

		// An update (4.4) crosses too.
		send(t, alice, "presence update", func(ctx context.Context) error {
			return alice.SendPresence(ctx, client.Presence{Show: client.ShowAway, Status: "lunch"})
		})
		up := waitPresence(t, bob, "alice's update", func(p client.Presence) bool {
			return presenceFrom(alice, client.PresenceAvailable, true)(p) && p.Show == client.ShowAway
		})
		if up.Status != "lunch" {
			t.Errorf("alice's update %+v: want status lunch", up)
		}
	})

	t.Run("OfflineMessageDeliveredWithDelayOnTheOtherNode_XEP0160", func(t *testing.T) {
		logout(t, bob)
		waitPresence(t, alice, "bob's unavailable at logout", presenceFrom(bob, client.PresenceUnavailable, true))
		start := time.Now().UTC().Add(-time.Second)
		const body = "while you were away"
		send(t, alice, "message", func(ctx context.Context) error {
			return alice.SendMessage(ctx, client.Message{To: bob.JID().Bare(), Type: client.MessageChat, Body: body, ID: "off1"})
		})
		// alice's stanzas are routed in order: once her ping is answered
		// the message was stored. Without this wait bob's next login could
		// come first and get it live, without a delay stamp.
		send(t, alice, "ping", func(ctx context.Context) error { return alice.Ping(ctx, alice.JID().Domain()) })
		// No resource can take it: it is stored, and bob's next login on
		// c2s-2 gets it after his initial presence.
		bob = imDial(t, node2, "bob@localhost", "tablet")
		online(t, bob)
		m := waitFor(t, bob, "the offline message", bob.NextMessage, func(m client.Message) bool { return m.Body == body })
		if m.From.String() != alice.JID().String() || m.Type != client.MessageChat {
			t.Errorf("offline message from %s type %s, want from %s, chat", m.From, m.Type, alice.JID())
		}
		var stamp string
		for _, x := range m.Extra {
			if x.Space == "urn:xmpp:delay" && x.Local == "delay" {
				stamp = x.Attr("stamp")
				if f := x.Attr("from"); f != "localhost" {
					t.Errorf("delay from %q, want localhost", f)
				}
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || ts.Before(start) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("delay stamp %q (%v): want a time during the test", stamp, err)
		}
	})

	t.Run("PreApprovedSubscriptionIsApprovedWithoutTheContact_3_4", func(t *testing.T) {
		carol := imDial(t, node2, "carol@localhost", "desk")
		online(t, carol)
		send(t, alice, "pre-approval", func(ctx context.Context) error { return alice.ApproveSubscription(ctx, carol.JID()) })
		p := waitPush(t, alice, "the push of the pre-approved item", pushOf(carol, client.SubscriptionNone, false))
		if !p.Item.Approved {
			t.Errorf("push %+v: want approved", p.Item)
		}
		// carol subscribes; alice's client does not answer.
		send(t, carol, "subscribe", func(ctx context.Context) error { return carol.Subscribe(ctx, alice.JID()) })
		waitPush(t, carol, "the push of subscription to", pushOf(alice, client.SubscriptionTo, false))
		waitPresences(t, carol, map[string]func(client.Presence) bool{
			"alice's subscribed":       presenceFrom(alice, client.PresenceSubscribed, false),
			"alice's presence (3.1.5)": presenceFrom(alice, client.PresenceAvailable, true),
		})
		waitPush(t, alice, "the push of subscription from", pushOf(carol, client.SubscriptionFrom, false))
		// 3.4: the request is not delivered to alice. carol's stanzas are
		// routed in order, so a directed presence she sends after it
		// arrives after anything the request caused for alice.
		send(t, carol, "directed presence", func(ctx context.Context) error {
			return carol.SendPresence(ctx, client.Presence{To: alice.JID(), Status: "marker"})
		})
		var before []client.Presence
		waitPresence(t, alice, "carol's directed presence", func(p client.Presence) bool {
			if p.Status == "marker" && p.From.String() == carol.JID().String() {
				return true
			}
			before = append(before, p)
			return false
		})
		for _, p := range before {
			if p.Type == client.PresenceSubscribe && p.From.Bare().String() == carol.JID().Bare().String() {
				t.Errorf("alice got carol's pre-approved request %+v", p)
			}
		}
		if it := itemOf(t, alice, carol); it.Subscription != client.SubscriptionFrom || it.Ask || it.Approved {
			t.Errorf("alice's item for carol %+v: want from, no ask, no longer approved", it)
		}
		if it := itemOf(t, carol, alice); it.Subscription != client.SubscriptionTo || it.Ask {
			t.Errorf("carol's item for alice %+v: want to, no ask", it)
		}
	})

	// The RFC 6121 state every router must share (im_routers_cluster_test.go);
	// the last subtest kills a router.
	env := c.imEnv(t)
	t.Run("InterestedResourceGetsPushMadeByTheOtherRouter_2_1_6", func(t *testing.T) { interestedAcrossRouters(t, c, env) })
	t.Run("DirectedPresenceTargetToldAfterTheRouterCrashed_4_6_3", func(t *testing.T) { directedAfterRouterCrash(t, c, env) })
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
