package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/services/router/admin"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// The admin API of the one-process binary, called over its TLS port with
// the token it made, against the real roster, presence, router and c2s
// of the App, and observed from real clients.

type adminEnv struct {
	app    *App
	conn   *grpc.ClientConn
	api    adminv1.AdminServiceClient
	token  string
	ctx    context.Context // carries the token
	c2s    string
	domain string
}

func startAdminApp(t *testing.T, opts ...func(*Config)) *adminEnv {
	t.Helper()
	cfg := testConfig(t)
	cfg.AdminListen = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	a := startApp(t, cfg)
	tokFile := filepath.Join(cfg.DataDir, admin.TokenFileName)
	fi, err := os.Stat(tokFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(l, "#") {
			token = f[1]
		}
	}
	if token == "" {
		t.Fatalf("no token in %s", tokFile)
	}
	pem, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminCertBase+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("admin certificate does not parse")
	}
	conn, err := grpc.NewClient(a.AdminAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &adminEnv{
		app: a, conn: conn, api: adminv1.NewAdminServiceClient(conn), token: token,
		ctx:    metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token),
		c2s:    a.C2SAddr().String(),
		domain: "localhost",
	}
}

func (e *adminEnv) create(t *testing.T, user, password string) {
	t.Helper()
	if _, err := e.api.CreateAccount(e.ctx, &adminv1.CreateAccountRequest{Jid: user, Password: password}); err != nil {
		t.Fatalf("CreateAccount %s: %v", user, err)
	}
}

// recorder is a logged-in client that keeps every message it receives.
type recorder struct {
	*client.Client
	mu   sync.Mutex
	msgs []*dom.Element
}

func (r *recorder) handle(_ *client.Client, el *dom.Element) bool {
	if el.Local != "message" {
		return false
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, el)
	r.mu.Unlock()
	return true
}

// waitMessage waits up to 10s for a message match accepts.
func (r *recorder) waitMessage(t *testing.T, what string, match func(*dom.Element) bool) *dom.Element {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		for _, m := range r.msgs {
			if match(m) {
				r.mu.Unlock()
				return m
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no such message after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *adminEnv) login(t *testing.T, user, password, resource string, online bool) *recorder {
	t.Helper()
	r := &recorder{}
	c, err := client.Dial(e.ctx, client.Config{
		JID: jid.MustParse(user), Password: password, Resource: resource,
		Addr: e.c2s, InsecureSkipVerify: true, Handler: r.handle,
	})
	if err != nil {
		t.Fatalf("log in %s/%s: %v", user, resource, err)
	}
	r.Client = c
	t.Cleanup(func() { c.Close(context.Background()) })
	if online {
		if _, err := c.Online(e.ctx, client.Presence{}); err != nil {
			t.Fatalf("%s online: %v", user, err)
		}
	}
	return r
}

// streamError waits for the client's session to end and returns the
// stream error the server closed it with.
func streamError(t *testing.T, c *client.Client) *stream.Error {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session still open 10s later")
	}
	var se *stream.Error
	if !errors.As(c.Err(), &se) {
		t.Fatalf("session ended with %v, want a stream error", c.Err())
	}
	return se
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func TestAdminAPIRefusesCallsWithoutTheToken(t *testing.T) {
	e := startAdminApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.api.ListAccounts(ctx, &adminv1.ListAccountsRequest{})
	wantCode(t, "no token", err, codes.Unauthenticated)
	wrong := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.Repeat("x", len(e.token)))
	_, err = e.api.CreateAccount(wrong, &adminv1.CreateAccountRequest{Jid: "mallory@localhost", Password: "pw"})
	wantCode(t, "wrong token", err, codes.Unauthenticated)
	basic := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+e.token)
	_, err = e.api.ClusterStatus(basic, &adminv1.ClusterStatusRequest{})
	wantCode(t, "token under another scheme", err, codes.Unauthenticated)
	if _, err := e.api.ListSessions(e.ctx, &adminv1.ListSessionsRequest{Jid: "mallory@localhost"}); err != nil {
		t.Errorf("with the token: %v", err)
	}

	// Health is open; reflection needs the token.
	h, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: admin.ServiceName})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v %v, want SERVING", h, err)
	}
	list := func(ctx context.Context) ([]string, error) {
		s, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A stream the server refused ends the Send with io.EOF; its
		// status comes with Recv.
		if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && err != io.EOF {
			return nil, err
		}
		r, err := s.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, sv := range r.GetListServicesResponse().GetService() {
			names = append(names, sv.Name)
		}
		return names, nil
	}
	_, err = list(ctx)
	wantCode(t, "reflection without a token", err, codes.Unauthenticated)
	names, err := list(e.ctx)
	if err != nil || !strings.Contains(strings.Join(names, " "), admin.ServiceName) {
		t.Errorf("reflection with the token: %v %v, want %s listed", names, err, admin.ServiceName)
	}
}

func TestAdminAccounts(t *testing.T) {
	e := startAdminApp(t)
	for _, u := range []string{"carol@localhost", "alice@localhost", "bob@localhost"} {
		e.create(t, u, "secret-"+u)
	}
	_, err := e.api.CreateAccount(e.ctx, &adminv1.CreateAccountRequest{Jid: "alice@localhost", Password: "x"})
	wantCode(t, "existing account", err, codes.AlreadyExists)
	for _, bad := range []string{"", "alice", "alice@localhost/phone", "a@b@c", "alice@example.org"} {
		_, err := e.api.CreateAccount(e.ctx, &adminv1.CreateAccountRequest{Jid: bad, Password: "x"})
		wantCode(t, "CreateAccount "+bad, err, codes.InvalidArgument)
		if err != nil && !strings.Contains(status.Convert(err).Message(), "jid") {
			t.Errorf("error %q does not name the field", status.Convert(err).Message())
		}
	}
	_, err = e.api.CreateAccount(e.ctx, &adminv1.CreateAccountRequest{Jid: "dave@localhost"})
	wantCode(t, "no password", err, codes.InvalidArgument)

	// Paging: two, then one, in JID order.
	p1, err := e.api.ListAccounts(e.ctx, &adminv1.ListAccountsRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Accounts) != 2 || p1.Accounts[0].Jid != "alice@localhost" || p1.Accounts[1].Jid != "bob@localhost" || p1.NextPageToken == "" {
		t.Fatalf("first page %v", p1)
	}
	p2, err := e.api.ListAccounts(e.ctx, &adminv1.ListAccountsRequest{PageSize: 2, PageToken: p1.NextPageToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Accounts) != 1 || p2.Accounts[0].Jid != "carol@localhost" || p2.NextPageToken != "" {
		t.Fatalf("second page %v", p2)
	}
	if p2.Accounts[0].CreatedUnixMs == 0 {
		t.Errorf("no creation time: %v", p2.Accounts[0])
	}
	_, err = e.api.ListAccounts(e.ctx, &adminv1.ListAccountsRequest{PageSize: 1001})
	wantCode(t, "page size 1001", err, codes.InvalidArgument)

	// A new password works at once; the old one does not.
	if _, err := e.api.ChangePassword(e.ctx, &adminv1.ChangePasswordRequest{Jid: "bob@localhost", Password: "new-bob"}); err != nil {
		t.Fatal(err)
	}
	e.login(t, "bob@localhost", "new-bob", "desk", false)
	if _, err := client.Dial(e.ctx, client.Config{JID: jid.MustParse("bob@localhost"), Password: "secret-bob@localhost", Addr: e.c2s, InsecureSkipVerify: true}); err == nil {
		t.Error("the old password still logs in")
	}
	_, err = e.api.ChangePassword(e.ctx, &adminv1.ChangePasswordRequest{Jid: "nobody@localhost", Password: "x"})
	wantCode(t, "ChangePassword of a missing account", err, codes.NotFound)
}

func TestAdminMessages(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	e.create(t, "bob@localhost", "bob-pw")
	alice := e.login(t, "alice@localhost", "alice-pw", "phone", true)

	body := `maintenance at 10:00 <b>&amp; "soon"</b> ]]>`
	r, err := e.api.SendMessage(e.ctx, &adminv1.SendMessageRequest{To: "alice@localhost", Type: adminv1.MessageType_MESSAGE_TYPE_CHAT, Subject: "Notice", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	m := alice.waitMessage(t, "SendMessage to alice", func(m *dom.Element) bool { return m.Attr("id") == r.Id })
	if m.Attr("from") != "localhost" || m.Attr("type") != "chat" || m.ChildText(stream.NSClient, "body") != body || m.ChildText(stream.NSClient, "subject") != "Notice" {
		t.Errorf("got %s", m)
	}

	// bob is offline: a normal message is stored and delivered at login,
	// as RFC 6121 and XEP-0160 have it for any sender.
	r2, err := e.api.SendMessage(e.ctx, &adminv1.SendMessageRequest{To: "bob@localhost", Body: "while you were out"})
	if err != nil {
		t.Fatal(err)
	}
	// The message is routed after SendMessage returns: wait until the
	// router stored it, seen as bob getting it at his next login.
	deadline := time.Now().Add(10 * time.Second)
	for {
		bob := e.login(t, "bob@localhost", "bob-pw", "desk", true)
		found := false
		wait := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(wait) && !found {
			bob.mu.Lock()
			for _, m := range bob.msgs {
				if m.Attr("id") == r2.Id && m.Child("urn:xmpp:delay", "delay") != nil {
					found = true
				}
			}
			bob.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		bob.Close(e.ctx)
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob never got the offline message with a delay stamp")
		}
	}

	for _, bad := range []*adminv1.SendMessageRequest{
		{To: "", Body: "x"},
		{To: "alice@localhost", Body: ""},
		{To: "alice@localhost", Body: "x", From: "example.org"},
		{To: "alice@localhost", Body: "x", From: "bob@localhost"},
		{To: "alice@localhost", Body: "x", Type: 9},
	} {
		_, err := e.api.SendMessage(e.ctx, bad)
		wantCode(t, "SendMessage "+bad.String(), err, codes.InvalidArgument)
	}
}

func TestAdminRoster(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	alice := e.login(t, "alice@localhost", "alice-pw", "phone", true) // requested the roster: interested

	if _, err := e.api.AddRosterItem(e.ctx, &adminv1.AddRosterItemRequest{User: "alice@localhost", Item: &adminv1.RosterItem{
		Jid: "bob@localhost", Name: "Bob <B>", Groups: []string{"Friends", "Work"},
	}}); err != nil {
		t.Fatal(err)
	}
	push, err := alice.NextRosterPush(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if push.Item.JID.String() != "bob@localhost" || push.Item.Name != "Bob <B>" || len(push.Item.Groups) != 2 {
		t.Errorf("push %+v", push)
	}
	g, err := e.api.GetRoster(e.ctx, &adminv1.GetRosterRequest{User: "alice@localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Items) != 1 || g.Items[0].Jid != "bob@localhost" || g.Items[0].Subscription != "none" || g.Items[0].Name != "Bob <B>" {
		t.Errorf("GetRoster %v", g)
	}
	if _, err := e.api.RemoveRosterItem(e.ctx, &adminv1.RemoveRosterItemRequest{User: "alice@localhost", Jid: "bob@localhost"}); err != nil {
		t.Fatal(err)
	}
	push, err = alice.NextRosterPush(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if push.Item.JID.String() != "bob@localhost" || push.Item.Subscription != client.SubscriptionRemove {
		t.Errorf("removal push %+v", push)
	}
	_, err = e.api.RemoveRosterItem(e.ctx, &adminv1.RemoveRosterItemRequest{User: "alice@localhost", Jid: "bob@localhost"})
	wantCode(t, "remove a missing item", err, codes.NotFound)
	_, err = e.api.AddRosterItem(e.ctx, &adminv1.AddRosterItemRequest{User: "alice@localhost", Item: &adminv1.RosterItem{Jid: "@@"}})
	wantCode(t, "add a malformed JID", err, codes.InvalidArgument)
	_, err = e.api.GetRoster(e.ctx, &adminv1.GetRosterRequest{User: "alice@example.org"})
	wantCode(t, "roster of a foreign account", err, codes.InvalidArgument)
}

func TestAdminClusterStatusAndDrainOfAnUnknownNode(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	e.login(t, "alice@localhost", "alice-pw", "phone", true)
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := e.api.ClusterStatus(e.ctx, &adminv1.ClusterStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Nodes) == 1 && s.Nodes[0].Ready && s.Nodes[0].Connections == 1 {
			n := s.Nodes[0]
			if n.Service != "switchboard" || n.Node != "test-node" || n.Version == "" || n.StartedUnixMs == 0 || n.LastSeenUnixMs < n.StartedUnixMs {
				t.Errorf("node %v", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status %v, want the one node ready with 1 connection", s.Nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := e.api.DrainNode(e.ctx, &adminv1.DrainNodeRequest{Node: "c2s-9"})
	wantCode(t, "drain an unknown node", err, codes.NotFound)
	_, err = e.api.DrainNode(e.ctx, &adminv1.DrainNodeRequest{Node: "test-node", Mode: adminv1.DrainMode_DRAIN_MODE_SEE_OTHER_HOST})
	wantCode(t, "see-other-host without redirect", err, codes.InvalidArgument)
}
func TestAdminDisableAndDeleteCloseSessions(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	e.create(t, "bob@localhost", "bob-pw")
	phone := e.login(t, "alice@localhost", "alice-pw", "phone", true)
	desk := e.login(t, "alice@localhost", "alice-pw", "desk", false)

	r, err := e.api.SetAccountDisabled(e.ctx, &adminv1.SetAccountDisabledRequest{Jid: "alice@localhost", Disabled: true, Reason: "abuse report 42"})
	if err != nil {
		t.Fatal(err)
	}
	if r.SessionsClosed != 2 {
		t.Errorf("sessions closed %d, want 2", r.SessionsClosed)
	}
	for _, c := range []*recorder{phone, desk} {
		se := streamError(t, c.Client)
		if se.Condition != stream.PolicyViolation || se.Text != "abuse report 42" {
			t.Errorf("stream error %v, want policy-violation with the reason", se)
		}
	}
	if _, err := client.Dial(e.ctx, client.Config{JID: jid.MustParse("alice@localhost"), Password: "alice-pw", Addr: e.c2s, InsecureSkipVerify: true}); err == nil {
		t.Error("a disabled account logged in")
	}
	l, err := e.api.ListAccounts(e.ctx, &adminv1.ListAccountsRequest{})
	if err != nil || len(l.Accounts) != 2 || !l.Accounts[0].Disabled || l.Accounts[1].Disabled {
		t.Errorf("ListAccounts %v %v, want alice disabled and bob not", l, err)
	}
	if _, err := e.api.SetAccountDisabled(e.ctx, &adminv1.SetAccountDisabledRequest{Jid: "alice@localhost"}); err != nil {
		t.Fatal(err)
	}
	again := e.login(t, "alice@localhost", "alice-pw", "phone", false)

	d, err := e.api.DeleteAccount(e.ctx, &adminv1.DeleteAccountRequest{Jid: "alice@localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if d.SessionsClosed != 1 {
		t.Errorf("DeleteAccount closed %d sessions, want 1", d.SessionsClosed)
	}
	if se := streamError(t, again.Client); se.Condition != stream.PolicyViolation {
		t.Errorf("stream error %v, want policy-violation", se)
	}
	_, err = e.api.DeleteAccount(e.ctx, &adminv1.DeleteAccountRequest{Jid: "alice@localhost"})
	wantCode(t, "second delete", err, codes.NotFound)
	_, err = e.api.SetAccountDisabled(e.ctx, &adminv1.SetAccountDisabledRequest{Jid: "alice@localhost", Disabled: true})
	wantCode(t, "disable a deleted account", err, codes.NotFound)
}

func TestAdminSessions(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	phone := e.login(t, "alice@localhost", "alice-pw", "phone", true)
	e.login(t, "alice@localhost", "alice-pw", "desk", false)

	// The phone's presence is routed after Online returns: wait until
	// the registry has it.
	var l *adminv1.ListSessionsResponse
	got := map[string]*adminv1.Session{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		l, err = e.api.ListSessions(e.ctx, &adminv1.ListSessionsRequest{Jid: "alice@localhost"})
		if err != nil {
			t.Fatal(err)
		}
		clear(got)
		for _, s := range l.Sessions {
			got[s.Jid] = s
		}
		if p := got["alice@localhost/phone"]; p != nil && p.Available || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 || got["alice@localhost/phone"] == nil || got["alice@localhost/desk"] == nil {
		t.Fatalf("sessions %v, want phone and desk", l.Sessions)
	}
	if p := got["alice@localhost/phone"]; !p.Available || p.Node != "test-node" || p.SessionId == "" || p.BoundUnixMs == 0 {
		t.Errorf("phone session %v", p)
	}
	if got["alice@localhost/desk"].Available {
		t.Errorf("desk sent no presence but is available")
	}
	one, err := e.api.ListSessions(e.ctx, &adminv1.ListSessionsRequest{Jid: "alice@localhost/desk"})
	if err != nil || len(one.Sessions) != 1 || one.Sessions[0].Jid != "alice@localhost/desk" {
		t.Errorf("ListSessions of a full JID: %v %v", one, err)
	}
	_, err = e.api.ListSessions(e.ctx, &adminv1.ListSessionsRequest{Jid: "not a jid@"})
	wantCode(t, "ListSessions of a bad JID", err, codes.InvalidArgument)

	c, err := e.api.CountSessions(e.ctx, &adminv1.CountSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 2 || len(c.Nodes) != 1 || c.Nodes[0].Node != "test-node" || c.Nodes[0].Sessions != 2 {
		t.Errorf("CountSessions %v, want 2 on test-node", c)
	}

	if _, err := e.api.KickSession(e.ctx, &adminv1.KickSessionRequest{Jid: "alice@localhost/phone", Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	se := streamError(t, phone.Client)
	if se.Condition != stream.PolicyViolation || se.Text != "maintenance" {
		t.Errorf("kicked with %v, want policy-violation 'maintenance'", se)
	}
	_, err = e.api.KickSession(e.ctx, &adminv1.KickSessionRequest{Jid: "alice@localhost/phone"})
	wantCode(t, "kick a closed session", err, codes.NotFound)
	_, err = e.api.KickSession(e.ctx, &adminv1.KickSessionRequest{Jid: "alice@localhost"})
	wantCode(t, "kick a bare JID", err, codes.InvalidArgument)
}

func TestAdminBroadcast(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	e.create(t, "bob@localhost", "bob-pw")
	alice := e.login(t, "alice@localhost", "alice-pw", "phone", true)
	bob := e.login(t, "bob@localhost", "bob-pw", "desk", false)

	r, err := e.api.Broadcast(e.ctx, &adminv1.BroadcastRequest{Type: adminv1.MessageType_MESSAGE_TYPE_HEADLINE, Body: "server restarts at noon"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Delivered != 2 || len(r.FailedNodes) != 0 {
		t.Errorf("Broadcast %v, want 2 delivered", r)
	}
	for _, c := range []*recorder{alice, bob} {
		m := c.waitMessage(t, "broadcast to "+c.JID().String(), func(m *dom.Element) bool {
			return m.ChildText(stream.NSClient, "body") == "server restarts at noon"
		})
		if m.Attr("from") != "localhost" || m.Attr("to") != c.JID().String() || m.Attr("type") != "headline" {
			t.Errorf("%s got %s", c.JID(), m)
		}
	}
	r, err = e.api.Broadcast(e.ctx, &adminv1.BroadcastRequest{Body: "available only", AvailableOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Delivered != 1 {
		t.Errorf("available-only broadcast delivered %d, want 1 (bob sent no presence)", r.Delivered)
	}
	alice.waitMessage(t, "available-only broadcast", func(m *dom.Element) bool {
		return m.ChildText(stream.NSClient, "body") == "available only"
	})
	_, err = e.api.Broadcast(e.ctx, &adminv1.BroadcastRequest{Domain: "example.org", Body: "x"})
	wantCode(t, "broadcast to a foreign domain", err, codes.InvalidArgument)
}

// A c2s node in the node bucket that does not answer (it died a moment
// ago) is listed in failed_nodes; the others still get the broadcast. A
// drain of it is UNAVAILABLE.
func TestAdminBroadcastReportsNodesThatDoNotAnswer(t *testing.T) {
	e := startAdminApp(t, func(c *Config) { c.NATSListen = "127.0.0.1:0" })
	e.create(t, "alice@localhost", "alice-pw")
	alice := e.login(t, "alice@localhost", "alice-pw", "phone", true)

	nc, err := nats.Connect(e.app.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := nodes.EnsureBucket(e.ctx, js, bus.New(bus.DefaultPrefix, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	ghost, _ := proto.Marshal(&busv1.NodeStatus{Service: "c2s", Node: "c2s-ghost", Ready: true})
	if _, err := kv.Put(e.ctx, bus.NodeKey("c2s", "c2s-ghost"), ghost); err != nil {
		t.Fatal(err)
	}

	r, err := e.api.Broadcast(e.ctx, &adminv1.BroadcastRequest{Body: "still here"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Delivered != 1 || len(r.FailedNodes) != 1 || r.FailedNodes[0] != "c2s-ghost" {
		t.Errorf("Broadcast %v, want 1 delivered and c2s-ghost failed", r)
	}
	alice.waitMessage(t, "broadcast beside a dead node", func(m *dom.Element) bool {
		return m.ChildText(stream.NSClient, "body") == "still here"
	})
	_, err = e.api.DrainNode(e.ctx, &adminv1.DrainNodeRequest{Node: "c2s-ghost"})
	wantCode(t, "drain of a node that does not answer", err, codes.Unavailable)
}

func TestAdminDrainNodeRedirectsItsClients(t *testing.T) {
	e := startAdminApp(t)
	e.create(t, "alice@localhost", "alice-pw")
	alice := e.login(t, "alice@localhost", "alice-pw", "phone", true)
	r, err := e.api.DrainNode(e.ctx, &adminv1.DrainNodeRequest{
		Node: "test-node", Mode: adminv1.DrainMode_DRAIN_MODE_SEE_OTHER_HOST, Redirect: "other.example.net:5222", DeadlineSeconds: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sessions != 1 {
		t.Errorf("DrainNode: %d sessions at the start, want 1", r.Sessions)
	}
	se := streamError(t, alice.Client)
	if se.Condition != stream.SeeOtherHost || se.Host != "other.example.net:5222" {
		t.Errorf("drained with %v (host %q), want see-other-host other.example.net:5222", se, se.Host)
	}
	// A drained node ends: Run returns, which startApp's cleanup checks.
	select {
	case <-e.app.done:
	case <-time.After(15 * time.Second):
		t.Error("the drained node still runs 15s later")
	}
}
