package c2s

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// control sends a control request to the node as the admin service does
// and returns the answer.
func (e *env) control(req *busv1.ControlRequest) *busv1.ControlResponse {
	e.t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := e.spy.Request(e.cfg.Subjects.Control(testNode), b, ioTimeout)
	if err != nil {
		e.t.Fatalf("control request: %v", err)
	}
	var resp busv1.ControlResponse
	if err := proto.Unmarshal(m.Data, &resp); err != nil {
		e.t.Fatal(err)
	}
	return &resp
}

func kick(j, reason string) *busv1.ControlRequest {
	return &busv1.ControlRequest{Op: &busv1.ControlRequest_Kick{Kick: &busv1.Kick{Jid: j, Reason: reason}}}
}

func TestKickClosesTheSessionWithPolicyViolationAndTheReason_RFC6120_4_9_3_15(t *testing.T) {
	e := newEnv(t, nil)
	desk := e.dial()
	desk.login("alice", "desk")
	phone := e.dial()
	phone.login("alice", "phone")
	bob := e.dial()
	bob.login("bob", "b")

	if r := e.control(kick("alice@example.test/desk", "spam reported")); r.GetError() != "" || r.GetAffected() != 1 {
		t.Fatalf("kick of a full JID: %v", r)
	}
	if serr := desk.expectStreamError(stream.PolicyViolation); serr.Text != "spam reported" {
		t.Fatalf("text %q, want the reason", serr.Text)
	}
	// The account's other session and other accounts are untouched.
	phone.probe("p1")
	bob.probe("b1")
	waitFor(t, "the registry to forget the kicked session", func() bool { return e.lookup("alice@example.test/desk") == nil })

	// A bare JID names every session of the account; an absent one none.
	desk2 := e.dial()
	desk2.login("alice", "desk2")
	if r := e.control(kick("alice@example.test", "")); r.GetError() != "" || r.GetAffected() != 2 {
		t.Fatalf("kick of a bare JID: %v", r)
	}
	for _, c := range []*client{phone, desk2} {
		if serr := c.expectStreamError(stream.PolicyViolation); serr.Text != defaultKickText {
			t.Fatalf("text %q, want %q", serr.Text, defaultKickText)
		}
	}
	bob.probe("b2")
	if r := e.control(kick("carol@example.test", "x")); r.GetError() != "" || r.GetAffected() != 0 {
		t.Fatalf("kick of nobody: %v", r)
	}
	if r := e.control(kick("example.test", "x")); !strings.Contains(r.GetError(), "not a user") {
		t.Fatalf("kick of a domain: %v", r)
	}
	if r := e.control(&busv1.ControlRequest{}); r.GetError() == "" {
		t.Fatalf("empty request: %v", r)
	}
}

func TestKickLosesNoDelivery(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	c := e.dial()
	c.login("alice", "desk")
	id := c.sessionID()
	e.deliver(id, "<message xmlns='jabber:client' from='bob@example.test/b' to='alice@example.test/desk' id='q1'><body>before</body></message>")
	if r := e.control(kick("alice@example.test/desk", "bye")); r.GetAffected() != 1 {
		t.Fatalf("kick: %v", r)
	}
	// The delivery was queued before the kick and is written before the
	// error, or it came after and went back to the routers.
	el := c.next()
	if el.Attr("id") == "q1" {
		c.expectStreamError(stream.PolicyViolation)
		return
	}
	if serr := stream.ParseError(el); serr == nil || serr.Condition != stream.PolicyViolation {
		t.Fatalf("got %s", el)
	}
	st := recv(t, routed)
	if !strings.Contains(string(st.GetRaw()), "id='q1'") || st.GetUndeliverable() == nil {
		t.Fatalf("routed %v, want q1 handed back", st)
	}
}

func broadcast(domain, raw string, availableOnly bool) *busv1.ControlRequest {
	return &busv1.ControlRequest{Op: &busv1.ControlRequest_Broadcast{Broadcast: &busv1.Broadcast{Domain: domain, Raw: []byte(raw), AvailableOnly: availableOnly}}}
}

func TestBroadcastReachesTheSessionsOfTheDomain(t *testing.T) {
	e := newEnv(t, nil)
	routed := e.routed()
	alice := e.dial()
	alice.login("alice", "desk")
	alice.send("<presence/>")
	recv(t, routed)
	bob := e.dial()
	bob.login("bob", "b") // bound, never available
	waitFor(t, "alice to be available", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		for _, c := range e.srv.sessions {
			if c.available.Load() {
				return true
			}
		}
		return false
	})

	msg := "<message type='headline' id='motd'><body>maintenance at noon</body></message>"
	if r := e.control(broadcast("example.test", msg, true)); r.GetError() != "" || r.GetAffected() != 1 {
		t.Fatalf("broadcast to the available: %v", r)
	}
	alice.expect("<message xmlns='jabber:client' type='headline' id='motd' from='example.test' to='alice@example.test/desk'><body>maintenance at noon</body></message>")
	bob.probe("b1") // nothing came before the probe's answer

	if r := e.control(broadcast("example.test", msg, false)); r.GetError() != "" || r.GetAffected() != 2 {
		t.Fatalf("broadcast to every session: %v", r)
	}
	for _, c := range []*client{alice, bob} {
		el := c.next()
		if el.Local != "message" || el.Attr("to") != c.jid || el.ChildText("jabber:client", "body") != "maintenance at noon" {
			t.Fatalf("%s got %s", c.jid, el)
		}
	}
	if r := e.control(broadcast("other.test", msg, false)); r.GetError() != "" || r.GetAffected() != 0 {
		t.Fatalf("broadcast to another domain: %v", r)
	}
	for _, bad := range []string{
		"<message to='bob@example.test'/>",
		"<presence/>",
		"<message>",
		"<message/><message/>",
	} {
		if r := e.control(broadcast("example.test", bad, false)); r.GetError() == "" {
			t.Errorf("broadcast of %q accepted: %v", bad, r)
		}
	}
	alice.probe("a2")
	bob.probe("b2")
}

func drain(mode busv1.Drain_Mode, redirect string, deadline time.Duration) *busv1.ControlRequest {
	return &busv1.ControlRequest{Op: &busv1.ControlRequest_Drain{Drain: &busv1.Drain{Mode: mode, Redirect: redirect, DeadlineMs: deadline.Milliseconds()}}}
}

func TestDrainSendsClientsToAnotherHostAndRunReturns_RFC6120_4_9_3_19(t *testing.T) {
	const spread = 30 * time.Second // 300ms between closes
	e := newEnv(t, func(c *Config) { c.DrainSpread = spread })
	routed := e.routed()
	clients := []*client{e.dial(), e.dial(), e.dial()}
	for i, c := range clients {
		c.login([]string{"alice", "bob", "alice"}[i], []string{"a", "b", "c"}[i])
	}
	if r := e.control(drain(busv1.Drain_MODE_SEE_OTHER_HOST, "", 0)); !strings.Contains(r.GetError(), "redirect") {
		t.Fatalf("see-other-host without a host: %v", r)
	}
	if r := e.control(drain(busv1.Drain_MODE_UNSPECIFIED, "bad host<", 0)); r.GetError() == "" {
		t.Fatalf("bad redirect accepted: %v", r)
	}
	if e.srv.Draining() {
		t.Fatal("draining after refused requests")
	}

	asked := time.Now()
	if r := e.control(drain(busv1.Drain_MODE_UNSPECIFIED, "c2s-2.example.test:5222", time.Minute)); r.GetError() != "" || r.GetAffected() != 3 {
		t.Fatalf("drain: %v", r)
	}
	if !e.srv.Draining() {
		t.Fatal("Draining is false")
	}
	// A second request changes nothing and still answers.
	if r := e.control(drain(busv1.Drain_MODE_SYSTEM_SHUTDOWN, "", 0)); r.GetError() != "" {
		t.Fatalf("second drain: %v", r)
	}
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", e.srv.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	var last time.Time
	for i, c := range clients {
		el := c.next()
		serr := stream.ParseError(el)
		if serr == nil || serr.Condition != stream.SeeOtherHost || serr.Host != "c2s-2.example.test:5222" {
			t.Fatalf("client %d got %s, want see-other-host", i, el)
		}
		last = time.Now()
		// Written before the client saw the error: still routed (RFC
		// 6120 section 4.4), then the closing handshake.
		c.send("<message to='carol@example.test' id='late" + c.jid + "'><body>x</body></message>")
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := c.r.Next(); !errors.Is(err, stream.ErrClosed) {
			t.Fatalf("want </stream:stream>, got %v", err)
		}
		c.send("</stream:stream>")
		c.expectEOF()
	}
	// The closes were spread: the third came no sooner than two gaps
	// after the request.
	if got, gap := last.Sub(asked), spread/drainSlots; got < 2*gap {
		t.Errorf("the last session was closed %v after the request; the gap is %v", got, gap)
	}
	late := map[string]bool{}
	for len(late) < 3 {
		st := recv(t, routed)
		if strings.HasPrefix(st.GetId(), "late") {
			late[st.GetId()] = true
		}
	}
	select {
	case <-e.ran:
	case <-time.After(ioTimeout):
		t.Fatal("Run did not return after the drain")
	}
}

func TestDrainDeadlineClosesWhatIsLeft(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CloseTimeout = 500 * time.Millisecond })
	silent := e.dial()
	silent.login("alice", "a")
	n, err := e.srv.Drain(DrainOptions{Deadline: 200 * time.Millisecond})
	if err != nil || n != 1 {
		t.Fatalf("Drain: %d, %v", n, err)
	}
	el := silent.next()
	if serr := stream.ParseError(el); serr == nil || serr.Condition != stream.SystemShutdown {
		t.Fatalf("got %s, want system-shutdown", el)
	}
	// The client never answers: Run still returns.
	select {
	case <-e.ran:
	case <-time.After(ioTimeout):
		t.Fatal("Run did not return after the drain deadline")
	}
}

func TestCheckRedirect(t *testing.T) {
	for _, ok := range []string{"c2s-2.example.net", "c2s-2:5222", "192.0.2.1", "192.0.2.1:5222", "[2001:db8::1]", "[2001:db8::1]:5222"} {
		if err := checkRedirect(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "host:0", "host:99999", "host:x", "[192.0.2.1]", "<x>", "a/b", strings.Repeat("a", 301)} {
		if err := checkRedirect(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
