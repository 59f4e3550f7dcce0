package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// TestClusterSurvivesBackendOutagesAndANodeCrash runs one cluster whose
// Postgres, Redis and NATS are reached through proxies the test owns, and
// cuts each in turn (the shared servers never stop); then it kills a c2s
// process. The subtests run in order on the same cluster and users.
func TestClusterSurvivesBackendOutagesAndANodeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole cluster")
	}
	pg := newProxy(t, "127.0.0.1:5432")
	rd := newProxy(t, "127.0.0.1:6379")
	ns := newProxy(t, "127.0.0.1:4222")
	c := startClusterEnv(t,
		"POSTGRES_DSN=postgres://postgres@"+pg.Addr()+"/test?sslmode=disable",
		"REDIS_ADDR="+rd.Addr(),
		"NATS_URL=nats://"+ns.Addr(),
	)
	c.addUser(t, "alice@localhost", "alice-secret")
	c.addUser(t, "bob@localhost", "bob-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	alice := loginInbox(t, ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-secret", "desk")
	bob := loginInbox(t, ctx, c.env["C2S2_LISTEN"], "bob@localhost", "bob-secret", "phone")
	pids := map[string]int{}
	for _, n := range []string{"roster", "presence", "router-1", "router-2", "c2s-1", "c2s-2"} {
		pids[n] = c.pid(t, n)
	}
	// notRestarted checks that the services recovered by themselves.
	notRestarted := func(t *testing.T, names ...string) {
		t.Helper()
		for _, n := range names {
			if p := c.pid(t, n); p != pids[n] || !alive(p) {
				t.Fatalf("%s is not the process that was started (pid %d, now %d, alive %v)", n, pids[n], p, alive(p))
			}
		}
	}
	var seq int
	// chat sends one message each way and reports whether both arrived
	// within d. Messages of earlier, failed tries are told apart by their
	// numbered body.
	chat := func(d time.Duration) bool {
		seq++
		ab, ba := fmt.Sprintf("alice to bob %d", seq), fmt.Sprintf("bob to alice %d", seq)
		if alice.SendMessage(ctx, client.Message{To: bob.JID(), Type: client.MessageChat, Body: ab}) != nil ||
			bob.SendMessage(ctx, client.Message{To: alice.JID(), Type: client.MessageChat, Body: ba}) != nil {
			return false
		}
		return poll(d, func() bool {
			_, got1 := bob.find(func(m client.Message) bool { return m.Body == ab && m.From.String() == alice.JID().String() })
			_, got2 := alice.find(func(m client.Message) bool { return m.Body == ba && m.From.String() == bob.JID().String() })
			return got1 && got2
		})
	}
	mustChat := func(t *testing.T, what string) {
		t.Helper()
		for range 3 {
			if !chat(10 * time.Second) {
				t.Fatalf("%s: a message each way did not arrive within 10 s", what)
			}
		}
	}
	// recovers waits up to d for chat to work again, then checks it
	// keeps working.
	recovers := func(t *testing.T, what string, d time.Duration) {
		t.Helper()
		start := time.Now()
		if !poll(d, func() bool { return chat(2 * time.Second) }) {
			t.Fatalf("%s: chat did not work again within %v", what, d)
		}
		t.Logf("%s: chat works again %v after the restore", what, time.Since(start).Round(time.Millisecond))
		mustChat(t, what)
	}
	mustChat(t, "before any outage")

	t.Run("PostgresUnreachableFailsLoginsTemporarilyWhileOpenSessionsChat", func(t *testing.T) {
		pg.Cut()
		_, err := dialInbox(ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-secret", "second")
		var f *sasl.Failure
		if !errors.As(err, &f) || f.Condition != sasl.TemporaryAuthFailure {
			pg.Restore()
			t.Fatalf("log in while Postgres is unreachable: %v, want <temporary-auth-failure/>", err)
		}
		mustChat(t, "while Postgres is unreachable")
		pg.Restore()
		start := time.Now()
		var second *inbox
		if !poll(20*time.Second, func() bool {
			second, err = dialInbox(ctx, c.env["C2S1_LISTEN"], "alice@localhost", "alice-secret", "second")
			return err == nil
		}) {
			t.Fatalf("log in after Postgres is back: %v", err)
		}
		second.Close(ctx)
		t.Logf("a login works %v after Postgres is reachable again", time.Since(start).Round(time.Millisecond))
		notRestarted(t, "roster")
	})

	t.Run("RedisRestartIsSurvivedWithoutRestartingServices", func(t *testing.T) {
		rd.Cut()
		// The presence service noticed: it tried to connect again.
		if !poll(15*time.Second, func() bool { return rd.Refused() > 0 }) {
			rd.Restore()
			t.Fatal("nothing tried to reach Redis within 15 s of the cut")
		}
		rd.Restore()
		recovers(t, "Redis", 30*time.Second)
		notRestarted(t, "presence", "router-1", "router-2", "c2s-1", "c2s-2")
	})

	t.Run("NATSRestartIsSurvivedWithoutRestartingServices", func(t *testing.T) {
		ns.Cut()
		// The processes with a NATS connection (presence, two routers,
		// two c2s) lost it and tried to reconnect: at least 5 attempts
		// were refused.
		if !poll(15*time.Second, func() bool { return ns.Refused() >= 5 }) {
			ns.Restore()
			t.Fatalf("%d reconnection attempts to NATS within 15 s of the cut, want 5 or more", ns.Refused())
		}
		ns.Restore()
		recovers(t, "NATS", 30*time.Second)
		notRestarted(t, "presence", "router-1", "router-2", "c2s-1", "c2s-2")
	})

	cc, err := grpcx.NewClient(c.env["PRESENCE_GRPC"], c.tls())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reg := presencev1.NewSessionRegistryClient(cc)
	sessionsOf := func(user string) (int, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		r, err := reg.Lookup(cctx, &presencev1.LookupRequest{Jid: user})
		return len(r.GetSessions()), err
	}

	t.Run("LiveNodeBindsItsSessionsAgainWhenTheRegistryDroppedThem", func(t *testing.T) {
		// What the reaper does to a node whose heartbeats were late.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		// At least alice's session; a client of an earlier subtest may
		// still be on its way out of the registry.
		if r, err := reg.DropNode(cctx, &presencev1.DropNodeRequest{Node: "c2s-1"}); err != nil || r.Removed < 1 {
			t.Fatalf("DropNode(c2s-1) = %v, %v; want alice's session removed", r, err)
		}
		dropped := time.Now()
		var n int
		if !poll(10*time.Second, func() bool { n, err = sessionsOf("alice@localhost"); return err == nil && n == 1 }) {
			t.Fatalf("alice has %d sessions (%v) 10 s after her node's were dropped, want 1 again", n, err)
		}
		t.Logf("c2s-1 bound alice's session again %v after the drop", time.Since(dropped).Round(time.Millisecond))
		mustChat(t, "after the re-bind")
		notRestarted(t, "c2s-1")
	})

	t.Run("KilledC2SNodeLeavesRegistryAndItsUsersGetNoSessionRules", func(t *testing.T) {
		sessions := func() (int, error) { return sessionsOf("bob@localhost") }
		if n, err := sessions(); err != nil || n != 1 {
			t.Fatalf("bob's sessions before the kill: %d, %v; want 1", n, err)
		}
		c.kill(t, "c2s-2")
		killed := time.Now()
		var n int
		if !poll(10*time.Second, func() bool { n, err = sessions(); return err == nil && n == 0 }) {
			t.Fatalf("bob still has %d sessions (%v) 10 s after c2s-2 was killed", n, err)
		}
		t.Logf("bob's session left the registry %v after the kill", time.Since(killed).Round(time.Millisecond))

		// RFC 6121 section 8.5.3.2.1: a chat message to a full JID with
		// no such session is handled as one to the bare JID, which has no
		// available resource (8.5.2.2.1): the server MUST either store it
		// offline or answer <service-unavailable/>. Either is accepted,
		// never both, never neither.
		body := "are you there?"
		if err := alice.SendMessage(ctx, client.Message{To: bob.JID(), Type: client.MessageChat, Body: body, ID: "gone1"}); err != nil {
			t.Fatal(err)
		}
		bounced := func() (client.Message, bool) {
			return alice.find(func(m client.Message) bool { return m.Type == client.MessageError })
		}
		poll(3*time.Second, func() bool { _, ok := bounced(); return ok })
		// Bob comes back on the other node with available presence, which
		// is when stored messages are delivered (RFC 6121 section 8.5.2.2.1
		// leaves the how to XEP-0160).
		again := loginInbox(t, ctx, c.env["C2S1_LISTEN"], "bob@localhost", "bob-secret", "laptop")
		if err := again.SendPresence(ctx, client.Presence{}); err != nil {
			t.Fatal(err)
		}
		stored := func() bool {
			_, ok := again.find(func(m client.Message) bool { return m.Body == body && m.From.String() == alice.JID().String() })
			return ok
		}
		poll(5*time.Second, func() bool { _, ok := bounced(); return stored() || ok })
		bounce, isBounce := bounced()
		switch {
		case isBounce && stored():
			t.Fatalf("the message was both answered with an error (%v) and delivered later", bounce.Error)
		case isBounce:
			if bounce.Error == nil || bounce.Error.Condition != stanza.ServiceUnavailable || bounce.From.String() != bob.JID().String() {
				t.Fatalf("got an error %v from %s, want <service-unavailable/> from %s", bounce.Error, bounce.From, bob.JID())
			}
			t.Log("the sender got <service-unavailable/>")
		case stored():
			t.Log("the message was stored offline and delivered when bob came back")
		default:
			t.Fatal("the message to a user whose only session died was neither answered with <service-unavailable/> nor delivered when he came back")
		}
	})
}
