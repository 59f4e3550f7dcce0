package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// nextMessage waits for the next message c receives.
func nextMessage(t testing.TB, c *client.Client) client.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	m, err := c.NextMessage(ctx)
	if err != nil {
		t.Fatalf("%s: waiting for a message: %v", c.JID(), err)
	}
	return m
}

// nextPresence waits for the next presence c receives.
func nextPresence(t testing.TB, c *client.Client) client.Presence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	p, err := c.NextPresence(ctx)
	if err != nil {
		t.Fatalf("%s: waiting for a presence: %v", c.JID(), err)
	}
	return p
}

// send sends m from c.
func send(t testing.TB, c *client.Client, m client.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.SendMessage(ctx, m); err != nil {
		t.Fatalf("%s: sending %+v: %v", c.JID(), m, err)
	}
}

// available sends initial presence with priority prio from c and checks
// the echo the server sends back to c itself (RFC 6121 section 4.2.2).
func available(t testing.TB, c *client.Client, prio int8) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.SendPresence(ctx, client.Presence{Priority: prio}); err != nil {
		t.Fatalf("%s: initial presence: %v", c.JID(), err)
	}
	p := nextPresence(t, c)
	if p.From != c.JID() || p.Type != client.PresenceAvailable || p.Priority != prio {
		t.Fatalf("%s: first presence received is %+v, want the echo of its own initial presence (from itself, available, priority %d)", c.JID(), p, prio)
	}
}

// checkMessage compares the fields a test cares about.
func checkMessage(t testing.TB, who string, got, want client.Message) {
	t.Helper()
	if got.From != want.From || got.To != want.To || got.Type != want.Type || got.Body != want.Body ||
		got.Thread != want.Thread || got.ID != want.ID {
		t.Fatalf("%s received\n  id=%q from=%s to=%s type=%s body=%q thread=%q\nwant\n  id=%q from=%s to=%s type=%s body=%q thread=%q",
			who, got.ID, got.From, got.To, got.Type, got.Body, got.Thread,
			want.ID, want.From, want.To, want.Type, want.Body, want.Thread)
	}
}

// exchange proves that a and b both still send and receive: a message each
// way between their full JIDs.
func exchange(t testing.TB, a, b *client.Client, tag string) {
	t.Helper()
	for _, p := range [][2]*client.Client{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		m := client.Message{ID: tag + "-" + from.JID().Localpart(), To: to.JID(), Type: client.MessageChat, Body: tag + " from " + from.JID().String()}
		send(t, from, m)
		m.From = from.JID()
		checkMessage(t, to.JID().String(), nextMessage(t, to), m)
	}
}

// TestChatBothWaysOverSTARTTLSWithSCRAMSHA256_RFC6121_5 logs two accounts in
// with the project's Go client (STARTTLS, SCRAM-SHA-256 with the server's
// certificate verified) and has them chat both ways: to the bare JID and to
// the full JID, with a thread, the from stamped by the server (RFC 6120
// section 8.1.2.1) and id, type, body and thread carried unchanged (RFC 6121
// section 5.2).
func TestChatBothWaysOverSTARTTLSWithSCRAMSHA256_RFC6121_5(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	alice := s.dial(t, "alice", "laptop")
	bob := s.dial(t, "bob", "desk")

	for _, c := range []*client.Client{alice, bob} {
		if got := c.Mechanism(); got != sasl.ScramSHA256 {
			t.Errorf("%s authenticated with %q, want %s", c.JID(), got, sasl.ScramSHA256)
		}
		if _, ok := c.TLS(); !ok {
			t.Errorf("%s: the session is not encrypted", c.JID())
		}
		// The server's own account of the login.
		r := s.logs.wait(t, ioTimeout, "authenticated "+c.JID().Localpart(), msgIs("authenticated", "user", c.JID().Localpart()))
		if m, ok := r.Attrs["mechanism"]; ok && m != sasl.ScramSHA256 {
			t.Errorf("server logged mechanism %q for %s, want %s", m, c.JID(), sasl.ScramSHA256)
		}
	}
	if alice.JID() != full("alice", "laptop") || bob.JID() != full("bob", "desk") {
		t.Fatalf("bound %s and %s, want the resources asked for", alice.JID(), bob.JID())
	}
	// A message to a bare JID goes to an available resource (RFC 6121
	// section 8.5.2.1.1): both send initial presence first.
	available(t, alice, 0)
	available(t, bob, 0)

	toBob := client.Message{ID: "a1", To: bare("bob"), Type: client.MessageChat, Body: "Hi Bob, lunch at noon? <&> ünïcödé", Thread: "lunch-1"}
	send(t, alice, toBob)
	toBob.From = alice.JID()
	checkMessage(t, "bob", nextMessage(t, bob), toBob)

	toAlice := client.Message{ID: "b1", To: alice.JID(), Type: client.MessageChat, Body: "Noon works.", Thread: "lunch-1"}
	send(t, bob, toAlice)
	toAlice.From = bob.JID()
	checkMessage(t, "alice", nextMessage(t, alice), toAlice)

	// Several in a row keep their order (RFC 6120 section 10.1).
	const n = 20
	for i := range n {
		send(t, alice, client.Message{ID: "seq" + string(rune('a'+i)), To: bob.JID(), Type: client.MessageChat, Body: "line"})
	}
	for i := range n {
		if m := nextMessage(t, bob); m.ID != "seq"+string(rune('a'+i)) {
			t.Fatalf("message %d arrived with id %q, want %q: order lost", i, m.ID, "seq"+string(rune('a'+i)))
		}
	}
}

// TestMessagesAmongSeveralResources_RFC6121_8_5_2_and_8_5_3 gives one
// account two resources with different priorities: a chat message to the
// bare JID goes only to the highest non-negative priority (section
// 8.5.2.1.1), a headline to every non-negative one, and a message to a full
// JID only to that resource (section 8.5.3.1). A resource also writes as
// itself: the from is its own full JID.
func TestMessagesAmongSeveralResources_RFC6121_8_5_2_and_8_5_3(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	bob := s.dial(t, "bob", "desk")
	laptop := s.dial(t, "alice", "laptop")
	available(t, laptop, 5)
	phone := s.dial(t, "alice", "phone")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := phone.SendPresence(ctx, client.Presence{Priority: 1}); err != nil {
		t.Fatal(err)
	}
	// Echo to itself and to the laptop, and the laptop's presence to the
	// phone (checked in detail by the presence test).
	nextPresence(t, phone)
	nextPresence(t, phone)
	nextPresence(t, laptop)

	chat := client.Message{ID: "c1", To: bare("alice"), Type: client.MessageChat, Body: "to the best resource"}
	send(t, bob, chat)
	chat.From = bob.JID()
	checkMessage(t, "alice/laptop (priority 5)", nextMessage(t, laptop), chat)

	// The phone has a lower priority: the headline below is the first
	// message it sees. Per-sender order (RFC 6120 section 10.1) makes that
	// a proof that the chat message did not reach it.
	hl := client.Message{ID: "h1", To: bare("alice"), Type: client.MessageHeadline, Body: "to every resource"}
	send(t, bob, hl)
	hl.From = bob.JID()
	checkMessage(t, "alice/laptop", nextMessage(t, laptop), hl)
	checkMessage(t, "alice/phone (priority 1)", nextMessage(t, phone), hl)

	direct := client.Message{ID: "d1", To: phone.JID(), Type: client.MessageChat, Body: "only for the phone"}
	send(t, bob, direct)
	direct.From = bob.JID()
	checkMessage(t, "alice/phone", nextMessage(t, phone), direct)
	hl2 := client.Message{ID: "h2", To: bare("alice"), Type: client.MessageHeadline, Body: "marker"}
	send(t, bob, hl2)
	hl2.From = bob.JID()
	checkMessage(t, "alice/laptop (must not have seen the phone's message)", nextMessage(t, laptop), hl2)
	checkMessage(t, "alice/phone", nextMessage(t, phone), hl2)

	// Each resource writes as itself.
	for _, c := range []*client.Client{laptop, phone} {
		m := client.Message{ID: "r-" + c.JID().Resourcepart(), To: bob.JID(), Type: client.MessageChat, Body: "from " + c.JID().Resourcepart()}
		send(t, c, m)
		m.From = c.JID()
		checkMessage(t, "bob", nextMessage(t, bob), m)
	}
}

// TestPresenceEchoAndUnavailableAmongOwnResources_RFC6121_4_2_2_and_4_5_2
// checks the presence an account's own resources see: initial presence is
// echoed to the sender and to the other available resources, the new
// resource gets their current presence (section 4.2.2, an account being
// subscribed to itself), and a resource that logs out is announced
// unavailable to the others (section 4.5.2), also when it just drops the
// connection.
func TestPresenceEchoAndUnavailableAmongOwnResources_RFC6121_4_2_2_and_4_5_2(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice")
	laptop := s.dial(t, "alice", "laptop")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := laptop.SendPresence(ctx, client.Presence{Priority: 5, Show: client.ShowDND, Status: "in a meeting"}); err != nil {
		t.Fatal(err)
	}
	if p := nextPresence(t, laptop); p.From != laptop.JID() || p.Type != client.PresenceAvailable || p.Show != client.ShowDND || p.Status != "in a meeting" || p.Priority != 5 {
		t.Fatalf("laptop's echo: %+v", p)
	}

	phone := s.dial(t, "alice", "phone")
	if err := phone.SendPresence(ctx, client.Presence{Priority: 1, Status: "on the go"}); err != nil {
		t.Fatal(err)
	}
	// The phone sees its own presence and the laptop's current one, in
	// either order.
	seen := map[jid.JID]client.Presence{}
	for range 2 {
		p := nextPresence(t, phone)
		if _, dup := seen[p.From]; dup {
			t.Fatalf("phone received a second presence from %s: %+v", p.From, p)
		}
		seen[p.From] = p
	}
	if p, ok := seen[phone.JID()]; !ok || p.Type != client.PresenceAvailable || p.Status != "on the go" || p.Priority != 1 {
		t.Errorf("phone's own echo: %+v (present %v)", p, ok)
	}
	if p, ok := seen[laptop.JID()]; !ok || p.Type != client.PresenceAvailable || p.Show != client.ShowDND || p.Status != "in a meeting" {
		t.Errorf("laptop's presence as the phone sees it: %+v (present %v)", p, ok)
	}
	if p := nextPresence(t, laptop); p.From != phone.JID() || p.Type != client.PresenceAvailable || p.Status != "on the go" {
		t.Fatalf("laptop received %+v, want the phone's initial presence", p)
	}

	// A presence update is broadcast too (section 4.4.2).
	if err := laptop.SendPresence(ctx, client.Presence{Priority: 5, Show: client.ShowAway}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{laptop, phone} {
		if p := nextPresence(t, c); p.From != laptop.JID() || p.Show != client.ShowAway {
			t.Fatalf("%s received %+v, want the laptop's update to away", c.JID(), p)
		}
	}

	// The phone logs out cleanly: the laptop learns it is unavailable.
	if err := phone.Close(ctx); err != nil {
		t.Fatalf("phone Close: %v", err)
	}
	if p := nextPresence(t, laptop); p.From != phone.JID() || p.Type != client.PresenceUnavailable {
		t.Fatalf("laptop received %+v, want unavailable from %s", p, phone.JID())
	}

	// A tablet vanishes without closing its stream: the same.
	tablet := s.rawLogin(t, "alice", "tablet")
	tablet.send("<presence/>")
	if p := nextPresence(t, laptop); p.From != full("alice", "tablet") || p.Type != client.PresenceAvailable {
		t.Fatalf("laptop received %+v, want the tablet's initial presence", p)
	}
	tablet.tcp.Close()
	if p := nextPresence(t, laptop); p.From != full("alice", "tablet") || p.Type != client.PresenceUnavailable {
		t.Fatalf("laptop received %+v, want unavailable from the tablet after its connection dropped", p)
	}
}

// TestBindConflictClosesOldSession_RFC6120_7_7_2_2 binds a resource that is
// already bound: the server keeps the new session and ends the old one with
// the <conflict/> stream error; the new one receives what is sent to the
// full JID.
func TestBindConflictClosesOldSession_RFC6120_7_7_2_2(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob")
	bob := s.dial(t, "bob", "desk")
	old := s.dial(t, "alice", "laptop")
	exchange(t, old, bob, "before")

	fresh := s.dial(t, "alice", "laptop")
	if fresh.JID() != old.JID() {
		t.Fatalf("second session bound %s, want %s", fresh.JID(), old.JID())
	}
	select {
	case <-old.Done():
	case <-time.After(ioTimeout):
		t.Fatal("the old session is still open after the same resource was bound again")
	}
	if err := old.Err(); !errors.Is(err, stream.Conflict) {
		t.Fatalf("old session ended with %v, want the <conflict/> stream error", err)
	}
	s.logs.wait(t, ioTimeout, "stream error conflict", msgIs("stream error", "condition", "conflict"))
	exchange(t, fresh, bob, "after")
}
