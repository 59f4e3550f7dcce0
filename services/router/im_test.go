package router

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// fakeRoster is a scripted stand-in for the roster service: each answer is
// set by the test, each request recorded. The real state machine is tested
// in services/roster and end to end in cmd/switchboard/e2e.
type fakeRoster struct {
	mu          sync.Mutex
	errs        map[string]error // by method name
	get         *rosterv1.GetRosterResponse
	gets        []*rosterv1.GetRosterRequest
	set         *rosterv1.SetItemResponse
	sets        []*rosterv1.SetItemRequest
	remove      *rosterv1.RemoveItemResponse
	apply       func(*rosterv1.ApplySubscriptionRequest) *rosterv1.ApplySubscriptionResponse
	applied     []*rosterv1.ApplySubscriptionRequest
	subscribers map[string][]string
	contacts    map[string][]string
	pending     map[string][]*rosterv1.PendingSubscription
	offline     map[string][]*rosterv1.OfflineMessage
	stored      []*rosterv1.StoreOfflineRequest
	deleted     chan *rosterv1.DeleteOfflineRequest
	claimed     map[int64]bool // offline message IDs under a claim (offline_test.go)
	lastID      int64
}

func newFakeRoster() *fakeRoster {
	return &fakeRoster{
		errs: map[string]error{}, subscribers: map[string][]string{}, contacts: map[string][]string{},
		pending: map[string][]*rosterv1.PendingSubscription{}, offline: map[string][]*rosterv1.OfflineMessage{},
		deleted: make(chan *rosterv1.DeleteOfflineRequest, 16),
	}
}

func (f *fakeRoster) GetRoster(_ context.Context, in *rosterv1.GetRosterRequest, _ ...grpc.CallOption) (*rosterv1.GetRosterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, proto.Clone(in).(*rosterv1.GetRosterRequest))
	if err := f.errs["GetRoster"]; err != nil {
		return nil, err
	}
	if f.get == nil {
		return &rosterv1.GetRosterResponse{Ver: "0"}, nil
	}
	return f.get, nil
}

func (f *fakeRoster) SetItem(_ context.Context, in *rosterv1.SetItemRequest, _ ...grpc.CallOption) (*rosterv1.SetItemResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, proto.Clone(in).(*rosterv1.SetItemRequest))
	if err := f.errs["SetItem"]; err != nil {
		return nil, err
	}
	if f.set == nil {
		return &rosterv1.SetItemResponse{}, nil
	}
	return f.set, nil
}

func (f *fakeRoster) RemoveItem(_ context.Context, in *rosterv1.RemoveItemRequest, _ ...grpc.CallOption) (*rosterv1.RemoveItemResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["RemoveItem"]; err != nil {
		return nil, err
	}
	if f.remove == nil {
		return &rosterv1.RemoveItemResponse{}, nil
	}
	return f.remove, nil
}

func (f *fakeRoster) ApplySubscription(_ context.Context, in *rosterv1.ApplySubscriptionRequest, _ ...grpc.CallOption) (*rosterv1.ApplySubscriptionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, proto.Clone(in).(*rosterv1.ApplySubscriptionRequest))
	if f.apply == nil {
		return &rosterv1.ApplySubscriptionResponse{}, nil
	}
	return f.apply(in), nil
}

func (f *fakeRoster) PendingSubscriptions(_ context.Context, in *rosterv1.PendingSubscriptionsRequest, _ ...grpc.CallOption) (*rosterv1.PendingSubscriptionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rosterv1.PendingSubscriptionsResponse{Requests: f.pending[in.User]}, nil
}

func (f *fakeRoster) SubscribersOf(_ context.Context, in *rosterv1.SubscribersOfRequest, _ ...grpc.CallOption) (*rosterv1.ContactsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rosterv1.ContactsResponse{Jids: f.subscribers[in.User]}, nil
}

func (f *fakeRoster) ContactsOf(_ context.Context, in *rosterv1.ContactsOfRequest, _ ...grpc.CallOption) (*rosterv1.ContactsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rosterv1.ContactsResponse{Jids: f.contacts[in.User]}, nil
}

func (f *fakeRoster) StoreOffline(_ context.Context, in *rosterv1.StoreOfflineRequest, _ ...grpc.CallOption) (*rosterv1.StoreOfflineResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["StoreOffline"]; err != nil {
		return nil, err
	}
	f.stored = append(f.stored, proto.Clone(in).(*rosterv1.StoreOfflineRequest))
	return &rosterv1.StoreOfflineResponse{Id: f.keepOffline(in)}, nil
}

func (f *fakeRoster) FetchOffline(_ context.Context, in *rosterv1.FetchOfflineRequest, _ ...grpc.CallOption) (*rosterv1.FetchOfflineResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rosterv1.FetchOfflineResponse{Messages: f.offline[in.User]}, nil
}

func (f *fakeRoster) DeleteOffline(_ context.Context, in *rosterv1.DeleteOfflineRequest, _ ...grpc.CallOption) (*rosterv1.DeleteOfflineResponse, error) {
	f.deleted <- proto.Clone(in).(*rosterv1.DeleteOfflineRequest)
	return &rosterv1.DeleteOfflineResponse{Deleted: f.dropOffline(in)}, nil
}

// xmppError is a roster service error carrying a stanza condition, as the
// service returns them.
func xmppError(code codes.Code, cond stanza.Condition) error {
	st, err := status.New(code, string(cond)).WithDetails(&errdetails.ErrorInfo{Domain: "xmpp", Reason: string(cond)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func decoded(t *testing.T, g got) *dom.Element {
	t.Helper()
	el, err := decodeElement(g.d.Raw)
	if err != nil {
		t.Fatalf("undecodable delivery %s: %v", g.d.Raw, err)
	}
	return el
}

// pushesIn returns the roster pushes among gs, by session.
func pushesIn(t *testing.T, gs []got) map[string]*dom.Element {
	t.Helper()
	out := map[string]*dom.Element{}
	for _, g := range gs {
		el := decoded(t, g)
		if el.Local == "iq" && el.Attr("type") == "set" && el.Child(nsRoster, "query") != nil {
			out[g.d.Session] = el
		}
	}
	return out
}

func rosterQuery(ver string, items ...*dom.Element) *dom.Element {
	q := dom.New(nsRoster, "query")
	if ver != "-" {
		q.SetAttr("ver", ver)
	}
	return q.Append(items...)
}

// resultIn checks that gs holds exactly one IQ result, with id, to c.
func resultIn(t *testing.T, gs []got, c client, id string) *dom.Element {
	t.Helper()
	var found []got
	for _, g := range gs {
		if g.d.Type == "result" {
			found = append(found, g)
		}
	}
	return wantResult(t, found, c, id)
}

// RFC 6121 section 2.2 and 2.6: roster get.

func TestRosterGetReturnsItemsAndVersion_RFC6121_2_2_and_2_6_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)
	h.ros.get = &rosterv1.GetRosterResponse{Ver: "e-3", Items: []*rosterv1.RosterItem{
		{Jid: "bob@example.com", Name: "Bob", Groups: []string{"Friends", "Work"}, Subscription: "both"},
		{Jid: "carol@example.net", Subscription: "none", Ask: true},
	}}
	h.send(alicePhone, iq("", "", "get", "r1", rosterQuery("")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "r1")
	q := el.Child(nsRoster, "query")
	if q == nil || q.Attr("ver") != "e-3" {
		t.Fatalf("result %s: want a query with ver e-3", el.Marshal())
	}
	items := q.Children()
	if len(items) != 2 || items[0].Attr("jid") != "bob@example.com" || items[0].Attr("name") != "Bob" ||
		items[0].Attr("subscription") != "both" || len(items[0].Children()) != 2 || items[0].Children()[1].Text() != "Work" ||
		items[1].Attr("ask") != "subscribe" || items[1].Attr("subscription") != "none" {
		t.Errorf("items = %s", q.Marshal())
	}
	if gets := h.ros.gets; len(gets) != 1 || gets[0].User != "alice@example.com" || gets[0].Ver != "" {
		t.Errorf("GetRoster calls = %v", gets)
	}
}

func TestRosterGetUnchangedIsEmptyResult_RFC6121_2_6_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)
	h.ros.get = &rosterv1.GetRosterResponse{Unchanged: true, Ver: "e-3"}
	h.send(alicePhone, iq("", "", "get", "r1", rosterQuery("e-3")))
	gs := h.collect(alicePhone)
	el := wantResult(t, gs, alicePhone, "r1")
	if el.ChildCount() != 0 || len(gs) != 1 {
		t.Errorf("want one empty result, got:%s", describe(gs))
	}
	if h.ros.gets[0].Ver != "e-3" {
		t.Errorf("ver passed = %q, want e-3", h.ros.gets[0].Ver)
	}
}

func TestRosterGetIncrementalSendsPushesInOrder_RFC6121_2_6_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)
	h.bind(aliceLaptop, true, 0)
	h.ros.get = &rosterv1.GetRosterResponse{Incremental: true, Ver: "e-5", Pushes: []*rosterv1.RosterPush{
		{Item: &rosterv1.RosterItem{Jid: "a@example.com", Subscription: "to"}, Ver: "e-4"},
		{Item: &rosterv1.RosterItem{Jid: "b@example.com", Subscription: "remove"}, Ver: "e-5"},
	}}
	h.send(alicePhone, iq("", "", "get", "r1", rosterQuery("e-3")))
	gs := h.collect(alicePhone)
	if len(gs) != 3 {
		t.Fatalf("want a result and two pushes, got:%s", describe(gs))
	}
	if el := decoded(t, gs[0]); el.Attr("type") != "result" || el.ChildCount() != 0 {
		t.Errorf("first delivery %s, want an empty result", el.Marshal())
	}
	for i, want := range []string{"e-4", "e-5"} {
		g := gs[i+1]
		q := decoded(t, g).Child(nsRoster, "query")
		if g.d.Session != alicePhone.session || q == nil || q.Attr("ver") != want {
			t.Errorf("push %d = %s to %s, want ver %s to the requesting session only", i, g.d.Raw, g.d.Session, want)
		}
	}
}

// RFC 6121 section 2.3 to 2.5: roster set and remove.

func TestRosterSetPushedToInterestedResources_RFC6121_2_1_6_and_2_3_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)                                  // will request the roster: interested
	h.bind(aliceLaptop, true, 0)                                  // available: counted as interested
	h.reg.add("alice@example.com/tv", "n2", "a-tv", false, 0, "") // neither
	h.send(alicePhone, iq("", "", "get", "r0", rosterQuery("")))
	h.collect(alicePhone)
	h.ros.set = &rosterv1.SetItemResponse{Push: &rosterv1.RosterPush{
		Item: &rosterv1.RosterItem{Jid: "bob@example.com", Name: "B", Groups: []string{"G"}, Subscription: "none"}, Ver: "e-1"}}
	set := rosterQuery("-", dom.New(nsRoster, "item", "jid", "bob@example.com", "name", "B").Append(dom.New(nsRoster, "group").AppendText("G")))
	h.send(alicePhone, iq("", "", "set", "s1", set))
	gs := h.collect(alicePhone)
	resultIn(t, gs, alicePhone, "s1")
	pushes := pushesIn(t, gs)
	if len(pushes) != 2 || pushes[alicePhone.session] == nil || pushes[aliceLaptop.session] == nil {
		t.Fatalf("pushes to %v, want phone and laptop:%s", pushes, describe(gs))
	}
	item := pushes[aliceLaptop.session].Child(nsRoster, "query").Child(nsRoster, "item")
	if item.Attr("jid") != "bob@example.com" || item.Attr("name") != "B" || item.ChildText(nsRoster, "group") != "G" {
		t.Errorf("push item = %s", item.Marshal())
	}
	if pushes[alicePhone.session].Attr("to") != alicePhone.jid || pushes[alicePhone.session].Attr("id") == "" {
		t.Errorf("push %s: want to the full JID and an id", pushes[alicePhone.session].Marshal())
	}
	if s := h.ros.sets; len(s) != 1 || len(s[0].Items) != 1 || s[0].Items[0].Groups[0] != "G" {
		t.Errorf("SetItem calls = %v", s)
	}
}

func TestRosterSetErrorsCarryTheServiceCondition_RFC6121_2_3_3(t *testing.T) {
	for _, c := range []struct {
		code codes.Code
		cond stanza.Condition
		typ  string
	}{
		{codes.InvalidArgument, stanza.BadRequest, "modify"},
		{codes.InvalidArgument, stanza.NotAcceptable, "modify"},
		{codes.PermissionDenied, stanza.Forbidden, "auth"},
	} {
		h := newHarness(t)
		h.ros.errs["SetItem"] = xmppError(c.code, c.cond)
		st := h.send(alicePhone, iq("", "", "set", "s1", rosterQuery("-", dom.New(nsRoster, "item", "jid", "bob@example.com"))))
		el := wantError(t, h.collect(alicePhone), alicePhone, st, c.cond)
		if e := el.Child(nsClient, "error"); e == nil || e.Attr("type") != c.typ {
			t.Errorf("%s: error %s, want type %s", c.cond, el.Marshal(), c.typ)
		}
	}
}

func TestRosterRemoveRoutesUnsubscribeAndUnsubscribed_RFC6121_2_5_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.ros.remove = &rosterv1.RemoveItemResponse{
		Push: &rosterv1.RosterPush{Item: &rosterv1.RosterItem{Jid: "bob@example.com", Subscription: "remove"}, Ver: "e-2"},
		Presences: []*rosterv1.Presence{
			{From: "alice@example.com", To: "bob@example.com", Type: "unsubscribe", Raw: []byte("<presence xmlns='jabber:client' from='alice@example.com' to='bob@example.com' type='unsubscribe'/>")},
			{From: "alice@example.com", To: "bob@example.com", Type: "unsubscribed", Raw: []byte("<presence xmlns='jabber:client' from='alice@example.com' to='bob@example.com' type='unsubscribed'/>")},
		},
	}
	h.ros.apply = func(in *rosterv1.ApplySubscriptionRequest) *rosterv1.ApplySubscriptionResponse {
		return &rosterv1.ApplySubscriptionResponse{Forward: true}
	}
	h.send(alicePhone, iq("", "", "set", "rm", rosterQuery("-", dom.New(nsRoster, "item", "jid", "bob@example.com", "subscription", "remove"))))
	gs := h.collect(alicePhone)
	resultIn(t, gs, alicePhone, "rm")
	var toBob []string
	for _, g := range gs {
		if g.d.Session == bobDesk.session {
			toBob = append(toBob, decoded(t, g).Attr("type"))
		}
	}
	if strings.Join(toBob, ",") != "unsubscribe,unsubscribed" {
		t.Errorf("bob got %v, want unsubscribe then unsubscribed:%s", toBob, describe(gs))
	}
	var dirs []string
	for _, a := range h.ros.applied {
		dirs = append(dirs, a.User+">"+a.Direction.String()+">"+a.Type)
	}
	want := "bob@example.com>DIRECTION_INBOUND>unsubscribe,bob@example.com>DIRECTION_INBOUND>unsubscribed"
	if strings.Join(dirs, ",") != want {
		t.Errorf("ApplySubscription calls %v, want %s", dirs, want)
	}
}

// RFC 6121 section 3: subscriptions, both users local.

func TestSubscribeAppliedOnBothSidesAndDelivered_RFC6121_3_1_2_and_3_1_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.bind(bobPhone, true, -1)
	h.ros.apply = func(in *rosterv1.ApplySubscriptionRequest) *rosterv1.ApplySubscriptionResponse {
		push := &rosterv1.RosterPush{Item: &rosterv1.RosterItem{Jid: in.Contact, Subscription: "none", Ask: in.Direction == rosterv1.Direction_DIRECTION_OUTBOUND}, Ver: "v"}
		if in.Direction == rosterv1.Direction_DIRECTION_INBOUND {
			push = nil // a request alone is no roster change (3.1.3)
		}
		return &rosterv1.ApplySubscriptionResponse{Forward: true, Push: push}
	}
	h.send(alicePhone, pres("bob@example.com/desk", "subscribe", "s1", dom.New("urn:example:ext", "note").AppendText("hi")))
	gs := h.collect(alicePhone)
	if p := pushesIn(t, gs); len(p) != 1 || p[alicePhone.session] == nil {
		t.Errorf("pushes %v, want one to alice's phone", p)
	}
	var bob []*dom.Element
	for _, g := range gs {
		if g.d.Session == bobDesk.session || g.d.Session == bobPhone.session {
			bob = append(bob, decoded(t, g))
		}
	}
	if len(bob) != 2 {
		t.Fatalf("bob's available resources got %d stanzas, want 2 (every available resource):%s", len(bob), describe(gs))
	}
	for _, el := range bob {
		if el.Attr("type") != "subscribe" || el.Attr("from") != "alice@example.com" || el.Attr("to") != "bob@example.com" ||
			el.Child("urn:example:ext", "note") == nil {
			t.Errorf("bob got %s, want the subscribe from alice's bare JID, to bob's bare JID, extension kept", el.Marshal())
		}
	}
	a := h.ros.applied
	if len(a) != 2 || a[0].User != "alice@example.com" || a[0].Contact != "bob@example.com" || a[0].Direction != rosterv1.Direction_DIRECTION_OUTBOUND ||
		a[1].User != "bob@example.com" || a[1].Contact != "alice@example.com" || a[1].Direction != rosterv1.Direction_DIRECTION_INBOUND {
		t.Errorf("ApplySubscription calls = %v", a)
	}
}

func TestAutoReplyAndPresenceAfterApproval_RFC6121_3_1_3_and_3_1_5(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "<presence xmlns='jabber:client' from='bob@example.com/desk'><show>dnd</show></presence>")
	// Bob pre-approved alice: her subscribe is answered by the server.
	h.ros.apply = func(in *rosterv1.ApplySubscriptionRequest) *rosterv1.ApplySubscriptionResponse {
		switch {
		case in.Type == "subscribe" && in.Direction == rosterv1.Direction_DIRECTION_OUTBOUND:
			return &rosterv1.ApplySubscriptionResponse{Forward: true}
		case in.Type == "subscribe":
			return &rosterv1.ApplySubscriptionResponse{AutoReplies: []*rosterv1.Presence{{Type: "subscribed",
				Raw: []byte("<presence xmlns='jabber:client' from='bob@example.com' to='alice@example.com' type='subscribed'/>")}}}
		case in.Type == "subscribed" && in.Direction == rosterv1.Direction_DIRECTION_OUTBOUND:
			return &rosterv1.ApplySubscriptionResponse{Forward: true, SendPresence: true}
		default: // inbound subscribed at alice
			return &rosterv1.ApplySubscriptionResponse{Forward: true,
				Push: &rosterv1.RosterPush{Item: &rosterv1.RosterItem{Jid: "bob@example.com", Subscription: "to"}, Ver: "v2"}}
		}
	}
	h.send(alicePhone, pres("bob@example.com", "subscribe", "s1"))
	gs := h.collect(alicePhone)
	var kinds []string
	for _, g := range gs {
		if g.d.Session != alicePhone.session {
			t.Errorf("bob got %s: a pre-approved request is not shown to him", g.d.Raw)
			continue
		}
		el := decoded(t, g)
		kinds = append(kinds, el.Local+":"+el.Attr("type")+":"+el.Attr("from"))
	}
	// RFC 6121 3.1.5: the subscribed reaches alice (after her roster
	// push), and bob's presence follows it.
	want := "iq:set:,presence:subscribed:bob@example.com,presence::bob@example.com/desk"
	if strings.Join(kinds, ",") != want {
		t.Errorf("alice got %v, want %s", kinds, want)
	}
}

func TestSubscribeToUnknownAccountAnsweredUnsubscribed_RFC6121_3_1_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.ros.apply = func(in *rosterv1.ApplySubscriptionRequest) *rosterv1.ApplySubscriptionResponse {
		return &rosterv1.ApplySubscriptionResponse{Forward: true}
	}
	h.send(alicePhone, pres("nobody@example.com", "subscribe", "s1"))
	gs := h.collect(alicePhone)
	if len(gs) != 1 || decoded(t, gs[0]).Attr("type") != "unsubscribed" || decoded(t, gs[0]).Attr("from") != "nobody@example.com" {
		t.Errorf("want unsubscribed from nobody@example.com, got:%s", describe(gs))
	}
}

// RFC 6121 section 4: presence to contacts.

func TestInitialPresenceBroadcastProbesPendingAndOffline_RFC6121_4_2_2_and_XEP0160(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)
	h.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "<presence xmlns='jabber:client' from='bob@example.com/desk'/>")
	h.ros.subscribers["alice@example.com"] = []string{"bob@example.com", "carol@example.com"}
	h.ros.contacts["alice@example.com"] = []string{"bob@example.com", "dave@example.com"}
	h.ros.pending["alice@example.com"] = []*rosterv1.PendingSubscription{{Contact: "erin@example.com",
		Raw: []byte("<presence xmlns='jabber:client' from='erin@example.com' to='alice@example.com' type='subscribe'/>")}}
	h.ros.offline["alice@example.com"] = []*rosterv1.OfflineMessage{
		{Id: 7, Delayed: []byte("<message xmlns='jabber:client' from='bob@example.com/desk' to='alice@example.com' type='chat'><body>1</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-01-01T00:00:00.000Z'/></message>")},
		{Id: 9, Delayed: []byte("<message xmlns='jabber:client' from='bob@example.com/desk' to='alice@example.com' type='chat'><body>2</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-01-01T00:00:01.000Z'/></message>")},
	}
	h.send(alicePhone, pres("", "", "p1"))
	gs := h.collect(alicePhone)
	var toBob, toPhone []string
	for _, g := range gs {
		el := decoded(t, g)
		desc := el.Local + ":" + el.Attr("type") + ":" + el.Attr("from")
		if el.Local == "message" {
			desc += ":" + el.ChildText(nsClient, "body")
		}
		switch g.d.Session {
		case bobDesk.session:
			toBob = append(toBob, desc)
		case alicePhone.session:
			toPhone = append(toPhone, desc)
		}
	}
	if strings.Join(toBob, ",") != "presence::alice@example.com/phone" {
		t.Errorf("bob got %v, want alice's presence (4.2.2)", toBob)
	}
	want := "presence::alice@example.com/phone," + // echo
		"presence::bob@example.com/desk," + // probe answer: bob's last presence
		"presence:unavailable:dave@example.com," + // probe answer: none available
		"presence:subscribe:erin@example.com," + // pending request (3.1.3)
		"message:chat:bob@example.com/desk:1,message:chat:bob@example.com/desk:2" // offline, in order
	if strings.Join(toPhone, ",") != want {
		t.Errorf("phone got\n  %v\nwant\n  %s", toPhone, want)
	}
	select {
	case d := <-h.ros.deleted:
		if d.User != "alice@example.com" || !slices.Equal(d.Ids, []int64{7, 9}) {
			t.Errorf("DeleteOffline(%v), want alice's 7 and 9", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("offline messages never deleted after delivery")
	}
	// An update is broadcast again but neither probes nor redelivers.
	h.send(alicePhone, pres("", "", "p2", dom.New(nsClient, "show").AppendText("away")))
	gs = h.collect(alicePhone)
	if len(gs) != 2 {
		t.Errorf("presence update: want echo and bob, got:%s", describe(gs))
	}
}

func TestUnavailableToSubscribersAndDirectedTargets_RFC6121_4_5_2_and_4_6_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(bobDesk, true, 0)
	h.reg.add("carol@example.com/x", "n3", "c-x", true, 0, "")
	h.acc.exists["carol@example.com"] = true
	h.ros.subscribers["alice@example.com"] = []string{"bob@example.com"}
	h.send(alicePhone, pres("carol@example.com/x", "", "d1")) // directed presence
	h.send(alicePhone, pres("", "unavailable", "u1"))
	gs := h.collect(alicePhone)
	var got []string
	for _, g := range gs {
		got = append(got, g.d.Session+":"+decoded(t, g).Attr("type"))
	}
	want := "c-x:,b-desk:unavailable,c-x:unavailable"
	if strings.Join(got, ",") != want {
		t.Errorf("deliveries %v, want %s", got, want)
	}
}

func TestProbeAnsweredOnlyForSubscribers_RFC6121_4_3_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.reg.add(bobDesk.jid, bobDesk.node, bobDesk.session, true, 0, "<presence xmlns='jabber:client' from='bob@example.com/desk'/>")
	h.send(alicePhone, pres("bob@example.com", "probe", "pr1"))
	if gs := h.collect(alicePhone); len(gs) != 0 {
		t.Errorf("probe from a non-subscriber answered:%s", describe(gs))
	}
	h.ros.subscribers["bob@example.com"] = []string{"alice@example.com"}
	h.send(alicePhone, pres("bob@example.com", "probe", "pr2"))
	gs := h.collect(alicePhone)
	if len(gs) != 1 || decoded(t, gs[0]).Attr("from") != bobDesk.jid {
		t.Errorf("probe from a subscriber: want bob's last presence, got:%s", describe(gs))
	}
}

func TestRemovedSessionsUnavailableToSubscribers_RFC6121_4_5_2(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 0)
	h.ros.subscribers["alice@example.com"] = []string{"bob@example.com"}
	ev := &presencev1.SessionsRemoved{Reason: presencev1.SessionsRemoved_REASON_NODE_EXPIRED, Sessions: []*presencev1.Session{
		{Jid: alicePhone.jid, Node: alicePhone.node, SessionId: alicePhone.session, Available: true},
		{Jid: aliceLaptop.jid, Node: aliceLaptop.node, SessionId: aliceLaptop.session, Available: false},
	}}
	b, _ := proto.Marshal(ev)
	if err := h.nc.Publish(h.subjects.SessionsRemoved(), b); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case g := <-h.in:
			if g.d.Session != bobDesk.session {
				continue
			}
			el := decoded(t, g)
			if el.Attr("type") != "unavailable" || el.Attr("from") != alicePhone.jid {
				t.Fatalf("bob got %s, want unavailable from alice's phone", g.d.Raw)
			}
			return
		case <-deadline:
			t.Fatal("no unavailable presence for a removed session")
		}
	}
}

// XEP-0160 and RFC 6121 section 8.5.2.2.1: offline storage.

func TestMessageWithoutResourceStoredOffline_XEP0160(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	st := h.send(alicePhone, msg("bob@example.com", "chat", "m1", "later"))
	if gs := h.collect(alicePhone); len(gs) != 0 {
		t.Errorf("stored message answered:%s", describe(gs))
	}
	if len(h.ros.stored) != 1 || h.ros.stored[0].User != "bob@example.com" || string(h.ros.stored[0].Raw) != string(st.Raw) {
		t.Errorf("StoreOffline calls %v", h.ros.stored)
	}
}

func TestOfflineQuotaFullServiceUnavailable_XEP0160(t *testing.T) {
	h := newHarness(t)
	h.ros.errs["StoreOffline"] = xmppError(codes.ResourceExhausted, stanza.ServiceUnavailable)
	st := h.send(alicePhone, msg("bob@example.com", "normal", "m1", "later"))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

// XEP-0030: disco.

func TestDiscoItemsEmptyAndAccountInfo_XEP0030(t *testing.T) {
	h := newHarness(t)
	for _, to := range []string{domain, "bob@example.com"} {
		h.send(alicePhone, iq("", to, "get", "i-"+to, dom.New(nsDiscoItems, "query")))
		el := wantResult(t, h.collect(alicePhone), alicePhone, "i-"+to)
		if q := el.Child(nsDiscoItems, "query"); q == nil || q.ChildCount() != 0 {
			t.Errorf("disco#items of %s = %s, want an empty query", to, el.Marshal())
		}
	}
	h.send(alicePhone, iq("", "bob@example.com", "get", "a1", dom.New(nsDiscoInfo, "query")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "a1")
	q := el.Child(nsDiscoInfo, "query")
	if q == nil || q.Child(nsDiscoInfo, "identity").Attr("category") != "account" {
		t.Fatalf("account disco#info = %s", el.Marshal())
	}
	var feats []string
	for _, f := range q.Children() {
		if f.Local == "feature" {
			feats = append(feats, f.Attr("var"))
		}
	}
	if strings.Join(feats, " ") != strings.Join(accountFeatures, " ") {
		t.Errorf("features %v", feats)
	}
}
