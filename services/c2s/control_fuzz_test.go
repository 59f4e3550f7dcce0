package c2s

import (
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// FuzzControlRequest feeds arbitrary bytes to the control request handler
// of a node without sessions: it must answer every one (an error for what
// is not a valid request) and never panic; a redirect it accepts for a
// drain is one checkRedirect accepts, and a broadcast it accepts was one
// jabber:client message.
func FuzzControlRequest(f *testing.F) {
	seed := func(r *busv1.ControlRequest) []byte {
		b, _ := proto.Marshal(r)
		return b
	}
	f.Add(seed(&busv1.ControlRequest{Op: &busv1.ControlRequest_Kick{Kick: &busv1.Kick{Jid: "a@b/c", Reason: "x"}}}))
	f.Add(seed(&busv1.ControlRequest{Op: &busv1.ControlRequest_Broadcast{Broadcast: &busv1.Broadcast{Domain: "b", Raw: []byte("<message><body>x</body></message>")}}}))
	f.Add(seed(&busv1.ControlRequest{Op: &busv1.ControlRequest_Drain{Drain: &busv1.Drain{Redirect: "[2001:db8::1]:5222", DeadlineMs: 10}}}))
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{
			cfg:      Config{Limits: stream.DefaultLimits(), DrainDeadline: time.Minute, DrainSpread: time.Second},
			log:      slog.New(slog.DiscardHandler),
			conns:    map[*conn]struct{}{},
			sessions: map[string]*conn{},
			drainReq: make(chan DrainOptions, 1),
		}
		resp := s.control(data)
		if resp == nil {
			t.Fatal("no answer")
		}
		var req busv1.ControlRequest
		if proto.Unmarshal(data, &req) != nil && resp.GetError() == "" {
			t.Fatal("an undecodable request was accepted")
		}
		if d := req.GetDrain(); d != nil && resp.GetError() == "" && d.GetRedirect() != "" && d.GetMode() != busv1.Drain_MODE_SYSTEM_SHUTDOWN {
			if err := checkRedirect(d.GetRedirect()); err != nil {
				t.Fatalf("drain to %q accepted: %v", d.GetRedirect(), err)
			}
			if !s.Draining() {
				t.Fatal("an accepted drain did not start")
			}
		}
		if b := req.GetBroadcast(); b != nil && resp.GetError() == "" {
			el, err := parseStanza(b.GetRaw(), s.cfg.Limits)
			if err != nil || el.Local != "message" || el.Space != stream.NSClient {
				t.Fatalf("broadcast of %q accepted", b.GetRaw())
			}
		}
	})
}
