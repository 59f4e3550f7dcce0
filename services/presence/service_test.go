package presence_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/memstore"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start runs a presence service over store on a real gRPC server reached
// in process; a nil store is a fresh memstore.
func start(t *testing.T, store presence.Store) presencev1.SessionRegistryClient {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	svc, err := presence.New(presence.Config{Store: store})
	if err != nil {
		t.Fatalf("presence.New: %v", err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return presencev1.NewSessionRegistryClient(cc)
}

func bind(t *testing.T, c presencev1.SessionRegistryClient, full, node, id string) []*presencev1.Session {
	t.Helper()
	resp, err := c.Bind(testContext(t), &presencev1.BindRequest{Jid: full, Node: node, SessionId: id})
	if err != nil {
		t.Fatalf("Bind(%s, %s): %v", full, id, err)
	}
	return resp.Replaced
}

func lookup(t *testing.T, c presencev1.SessionRegistryClient, addr string) []*presencev1.Session {
	t.Helper()
	resp, err := c.Lookup(testContext(t), &presencev1.LookupRequest{Jid: addr})
	if err != nil {
		t.Fatalf("Lookup(%s): %v", addr, err)
	}
	return resp.Sessions
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v, want code %v", what, err, want)
	}
}

func ids(ss []*presencev1.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Jid+"#"+s.SessionId)
	}
	return out
}

func TestBoundSessionIsFoundUnavailableWithItsNodeAndBindTime(t *testing.T) {
	c := start(t, nil)
	before := time.Now().UnixMilli()
	if replaced := bind(t, c, "juliet@example.com/balcony", "node-a", "s1"); len(replaced) != 0 {
		t.Fatalf("first Bind replaced %v", ids(replaced))
	}
	after := time.Now().UnixMilli()
	for _, addr := range []string{"juliet@example.com/balcony", "juliet@example.com"} {
		got := lookup(t, c, addr)
		if len(got) != 1 {
			t.Fatalf("Lookup(%s) = %v, want one session", addr, ids(got))
		}
		s := got[0]
		if s.Jid != "juliet@example.com/balcony" || s.Node != "node-a" || s.SessionId != "s1" ||
			s.Available || s.Priority != 0 || s.LastPresence != nil {
			t.Errorf("Lookup(%s) = %v, want a fresh unavailable session on node-a", addr, s)
		}
		if s.BoundUnixMs < before || s.BoundUnixMs > after {
			t.Errorf("bound at %d, want within [%d, %d]", s.BoundUnixMs, before, after)
		}
	}
}

func TestJIDsAreNormalisedAndResourcesStayCaseSensitive_RFC7622(t *testing.T) {
	c := start(t, nil)
	bind(t, c, "Juliet@Example.COM/Balcony", "node-a", "s1")
	if got := lookup(t, c, "JULIET@example.com"); len(got) != 1 || got[0].Jid != "juliet@example.com/Balcony" {
		t.Errorf("Lookup by bare JID in another case = %v, want juliet@example.com/Balcony", ids(got))
	}
	if got := lookup(t, c, "juliet@example.com/balcony"); len(got) != 0 {
		t.Errorf("Lookup with a differently cased resource = %v, want nothing", ids(got))
	}
}

func TestBindingABoundFullJIDReturnsTheReplacedSession_RFC6120_7_7_2_2(t *testing.T) {
	c := start(t, nil)
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	replaced := bind(t, c, "juliet@example.com/balcony", "node-b", "s2")
	if len(replaced) != 1 || replaced[0].Node != "node-a" || replaced[0].SessionId != "s1" {
		t.Fatalf("replaced = %v, want s1 on node-a", replaced)
	}
	got := lookup(t, c, "juliet@example.com")
	if len(got) != 1 || got[0].SessionId != "s2" || got[0].Node != "node-b" {
		t.Errorf("Lookup after replace = %v, want only s2 on node-b", ids(got))
	}
}

func TestReplacedSessionCannotUnbindOrUpdateItsSuccessor(t *testing.T) {
	c := start(t, nil)
	ctx := testContext(t)
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	bind(t, c, "juliet@example.com/balcony", "node-b", "s2")
	sp, err := c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "s1", Available: true})
	if err != nil || sp.Found {
		t.Errorf("SetPresence by the replaced session = %v, %v; want not found", sp, err)
	}
	ub, err := c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony", SessionId: "s1"})
	if err != nil || ub.Removed {
		t.Errorf("Unbind by the replaced session = %v, %v; want not removed", ub, err)
	}
	if got := lookup(t, c, "juliet@example.com/balcony"); len(got) != 1 || got[0].SessionId != "s2" || got[0].Available {
		t.Errorf("successor after the stale calls: %v, want s2 untouched", got)
	}
	ub, err = c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony", SessionId: "s2"})
	if err != nil || !ub.Removed {
		t.Fatalf("Unbind by the bound session = %v, %v; want removed", ub, err)
	}
	if got := lookup(t, c, "juliet@example.com"); len(got) != 0 {
		t.Errorf("Lookup after Unbind = %v, want nothing", ids(got))
	}
}

func TestSetPresenceRecordsAvailabilityPriorityAndStanza(t *testing.T) {
	c := start(t, nil)
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	bind(t, c, "juliet@example.com/garden", "node-a", "s2")
	raw := []byte("<presence from='juliet@example.com/balcony'><priority>-5</priority></presence>")
	resp, err := c.SetPresence(testContext(t), &presencev1.SetPresenceRequest{
		Jid: "juliet@example.com/balcony", SessionId: "s1", Available: true, Priority: -5, Presence: raw,
	})
	if err != nil || !resp.Found {
		t.Fatalf("SetPresence = %v, %v; want found", resp, err)
	}
	got := lookup(t, c, "juliet@example.com")
	if len(got) != 2 {
		t.Fatalf("Lookup = %v, want two sessions", ids(got))
	}
	if s := got[0]; !s.Available || s.Priority != -5 || string(s.LastPresence) != string(raw) {
		t.Errorf("balcony = %v, want available at -5 with its stanza", s)
	}
	if s := got[1]; s.Available || s.LastPresence != nil {
		t.Errorf("garden = %v, want untouched", s)
	}
}

func TestPriorityOutsideTheSignedByteIsInvalidArgument_RFC6121_4_7_2_3(t *testing.T) {
	c := start(t, nil)
	bind(t, c, "juliet@example.com/balcony", "node-a", "s1")
	for _, p := range []int32{math.MinInt8, math.MaxInt8} {
		resp, err := c.SetPresence(testContext(t), &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "s1", Priority: p})
		if err != nil || !resp.Found {
			t.Errorf("SetPresence with priority %d = %v, %v; want accepted", p, resp, err)
		}
	}
	for _, p := range []int32{math.MinInt8 - 1, math.MaxInt8 + 1} {
		_, err := c.SetPresence(testContext(t), &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "s1", Priority: p})
		wantCode(t, "SetPresence with priority out of range", err, codes.InvalidArgument)
	}
}

func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	c := start(t, nil)
	ctx := testContext(t)
	check := func(what string, err error) {
		t.Helper()
		wantCode(t, what, err, codes.InvalidArgument)
	}
	// Bind, Unbind and SetPresence need a full JID with a localpart.
	for _, addr := range []string{"", "juliet@example.com", "example.com/balcony", "juliet@/balcony", "juliet@example.com/"} {
		_, err := c.Bind(ctx, &presencev1.BindRequest{Jid: addr, Node: "n", SessionId: "s"})
		check("Bind("+addr+")", err)
		_, err = c.Unbind(ctx, &presencev1.UnbindRequest{Jid: addr, SessionId: "s"})
		check("Unbind("+addr+")", err)
		_, err = c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: addr, SessionId: "s"})
		check("SetPresence("+addr+")", err)
	}
	// Lookup takes bare or full, but an account's.
	for _, addr := range []string{"", "example.com", "@example.com", "juliet@example.com/"} {
		_, err := c.Lookup(ctx, &presencev1.LookupRequest{Jid: addr})
		check("Lookup("+addr+")", err)
	}
	_, err := c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/balcony", SessionId: "s"})
	check("Bind without node", err)
	_, err = c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/balcony", Node: "n"})
	check("Bind without session id", err)
	_, err = c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony"})
	check("Unbind without session id", err)
	_, err = c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony"})
	check("SetPresence without session id", err)

	if got := lookup(t, c, "juliet@example.com"); len(got) != 0 {
		t.Errorf("malformed requests bound %v", ids(got))
	}
}

// brokenStore fails every call, as a store whose backend is down.
type brokenStore struct{}

var errDown = errors.New("backend down")

func (brokenStore) Bind(context.Context, presence.Session) ([]presence.Session, error) {
	return nil, errDown
}
func (brokenStore) Unbind(context.Context, jid.JID, string) (bool, error) { return false, errDown }
func (brokenStore) SetPresence(context.Context, jid.JID, string, bool, int, []byte) (bool, error) {
	return false, errDown
}
func (brokenStore) Lookup(context.Context, jid.JID) ([]presence.Session, error) { return nil, errDown }
func (brokenStore) Heartbeat(context.Context, string, time.Duration) (uint64, error) {
	return 0, errDown
}
func (brokenStore) ReapDeadNodes(context.Context) ([]presence.Session, error) { return nil, errDown }
func (brokenStore) DropNode(context.Context, string) ([]presence.Session, error) {
	return nil, errDown
}
func (brokenStore) CountByNode(context.Context) (map[string]int, error) { return nil, errDown }

func TestStoreTroubleIsUnavailable(t *testing.T) {
	c := start(t, brokenStore{})
	ctx := testContext(t)
	_, err := c.Bind(ctx, &presencev1.BindRequest{Jid: "juliet@example.com/balcony", Node: "n", SessionId: "s"})
	wantCode(t, "Bind", err, codes.Unavailable)
	_, err = c.Unbind(ctx, &presencev1.UnbindRequest{Jid: "juliet@example.com/balcony", SessionId: "s"})
	wantCode(t, "Unbind", err, codes.Unavailable)
	_, err = c.SetPresence(ctx, &presencev1.SetPresenceRequest{Jid: "juliet@example.com/balcony", SessionId: "s"})
	wantCode(t, "SetPresence", err, codes.Unavailable)
	_, err = c.Lookup(ctx, &presencev1.LookupRequest{Jid: "juliet@example.com"})
	wantCode(t, "Lookup", err, codes.Unavailable)
	_, err = c.Heartbeat(ctx, &presencev1.HeartbeatRequest{Node: "n", TtlMs: 5000})
	wantCode(t, "Heartbeat", err, codes.Unavailable)
	_, err = c.DropNode(ctx, &presencev1.DropNodeRequest{Node: "n"})
	wantCode(t, "DropNode", err, codes.Unavailable)
	_, err = c.CountByNode(ctx, &presencev1.CountByNodeRequest{})
	wantCode(t, "CountByNode", err, codes.Unavailable)
}

func TestNewRequiresAStore(t *testing.T) {
	if _, err := presence.New(presence.Config{}); err == nil {
		t.Fatal("New without a store succeeded, want an error")
	}
}

func TestCountByNodeListsNodesInOrderWithTheirSessions(t *testing.T) {
	c := start(t, nil)
	ctx := testContext(t)
	resp, err := c.CountByNode(ctx, &presencev1.CountByNodeRequest{})
	if err != nil || len(resp.Nodes) != 0 {
		t.Fatalf("CountByNode of an empty registry = %v, %v; want no nodes", resp, err)
	}
	for i, b := range []struct{ jid, node string }{
		{"juliet@example.com/balcony", "c2s-2"}, {"romeo@example.com/street", "c2s-10"},
		{"juliet@example.com/garden", "c2s-2"}, {"nurse@example.com/kitchen", "c2s-1"},
	} {
		if _, err := c.Bind(ctx, &presencev1.BindRequest{Jid: b.jid, Node: b.node, SessionId: fmt.Sprint("s", i)}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = c.CountByNode(ctx, &presencev1.CountByNodeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range resp.Nodes {
		got = append(got, fmt.Sprintf("%s=%d", n.Node, n.Sessions))
	}
	if want := []string{"c2s-1=1", "c2s-10=1", "c2s-2=2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CountByNode = %v, want %v", got, want)
	}
}
