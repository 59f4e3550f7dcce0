package roster_test

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
)

const (
	juliet = "juliet@example.com"
	romeo  = "romeo@example.net"
)

// imFixture is a roster service with juliet and romeo.
func imFixture(t *testing.T, cfg roster.Config) *fixture {
	t.Helper()
	f := start(t, cfg)
	f.create(t, juliet, "juliet's secret")
	f.create(t, romeo, "romeo's secret")
	return f
}

func (f *fixture) set(t *testing.T, user, contact, name string, groups ...string) *rosterv1.SetItemResponse {
	t.Helper()
	resp, err := f.roster.SetItem(testContext(t), &rosterv1.SetItemRequest{User: user,
		Items: []*rosterv1.RosterItem{{Jid: contact, Name: name, Groups: groups}}})
	if err != nil {
		t.Fatalf("SetItem(%s, %s): %v", user, contact, err)
	}
	return resp
}

func (f *fixture) getRoster(t *testing.T, user, ver string) *rosterv1.GetRosterResponse {
	t.Helper()
	resp, err := f.roster.GetRoster(testContext(t), &rosterv1.GetRosterRequest{User: user, Ver: ver})
	if err != nil {
		t.Fatalf("GetRoster(%s, %q): %v", user, ver, err)
	}
	return resp
}

func (f *fixture) apply(t *testing.T, user, contact string, d rosterv1.Direction, typ string, raw []byte) *rosterv1.ApplySubscriptionResponse {
	t.Helper()
	resp, err := f.roster.ApplySubscription(testContext(t), &rosterv1.ApplySubscriptionRequest{
		User: user, Contact: contact, Direction: d, Type: typ, Raw: raw})
	if err != nil {
		t.Fatalf("ApplySubscription(%s, %s, %v, %s): %v", user, contact, d, typ, err)
	}
	return resp
}

// send is what the router does with a subscription stanza between two
// local users: the sender's side first, then, when it is routed, the
// receiver's side with the same stanza.
func (f *fixture) send(t *testing.T, from, to, typ string, raw []byte) (out, in *rosterv1.ApplySubscriptionResponse) {
	t.Helper()
	out = f.apply(t, from, to, rosterv1.Direction_DIRECTION_OUTBOUND, typ, raw)
	if out.GetForward() {
		in = f.apply(t, to, from, rosterv1.Direction_DIRECTION_INBOUND, typ, raw)
	}
	return out, in
}

func item(t *testing.T, resp *rosterv1.GetRosterResponse, contact string) *rosterv1.RosterItem {
	t.Helper()
	for _, it := range resp.GetItems() {
		if it.GetJid() == contact {
			return it
		}
	}
	return nil
}

// wantCondition checks the gRPC code and the stanza error condition a
// failed call carries for the router.
func wantCondition(t *testing.T, err error, code codes.Code, cond string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Errorf("error %v, want code %v", err, code)
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "xmpp" {
			if info.GetReason() != cond {
				t.Errorf("condition %q, want %q", info.GetReason(), cond)
			}
			return
		}
	}
	t.Errorf("error %v carries no xmpp ErrorInfo, want %q", err, cond)
}

func TestRosterSetPushesItemAndGetReturnsIt_RFC6121_2_3_2(t *testing.T) {
	f := imFixture(t, roster.Config{})
	resp := f.set(t, juliet, "Nurse@Example.COM", "Nurse", "Servants", "Verona")
	p := resp.GetPush()
	if p == nil || p.GetItem().GetJid() != "nurse@example.com" || p.GetItem().GetSubscription() != "none" ||
		!slices.Equal(p.GetItem().GetGroups(), []string{"Servants", "Verona"}) || p.GetVer() == "" {
		t.Fatalf("push %v, want nurse@example.com (normalised), subscription none, both groups, a version", p)
	}
	got := f.getRoster(t, juliet, "")
	if got.GetVer() != p.GetVer() || len(got.GetItems()) != 1 || got.GetItems()[0].GetName() != "Nurse" {
		t.Errorf("roster %v, want the nurse at %s", got, p.GetVer())
	}
	// The same set again changes nothing: no push, same version.
	if again := f.set(t, juliet, "nurse@example.com", "Nurse", "Servants", "Verona"); again.GetPush() != nil {
		t.Errorf("unchanged set pushed %v", again.GetPush())
	}
}

func TestRosterGetWithCurrentVersionIsUnchanged_RFC6121_2_6_3(t *testing.T) {
	f := imFixture(t, roster.Config{})
	empty := f.getRoster(t, juliet, "")
	if empty.GetVer() == "" || len(empty.GetItems()) != 0 {
		t.Fatalf("empty roster %v, want a version and no items", empty)
	}
	if r := f.getRoster(t, juliet, empty.GetVer()); !r.GetUnchanged() || len(r.GetItems()) != 0 {
		t.Errorf("get of an empty roster at its version: %v, want unchanged", r)
	}
	ver := f.set(t, juliet, romeo, "Romeo").GetPush().GetVer()
	if r := f.getRoster(t, juliet, ver); !r.GetUnchanged() || r.GetVer() != ver || len(r.GetItems())+len(r.GetPushes()) != 0 {
		t.Errorf("get at the current version: %v, want unchanged at %s", r, ver)
	}
}

func TestRosterGetWithOlderVersionSendsOnlyTheChanges_RFC6121_2_6_3(t *testing.T) {
	f := imFixture(t, roster.Config{})
	f.set(t, juliet, "nurse@example.com", "Nurse")
	old := f.set(t, juliet, romeo, "Romeo").GetPush().GetVer()
	f.set(t, juliet, "benvolio@example.net", "Benvolio")
	f.set(t, juliet, romeo, "Romeo", "Friends")
	if _, err := f.roster.RemoveItem(testContext(t), &rosterv1.RemoveItemRequest{User: juliet, Jid: "nurse@example.com"}); err != nil {
		t.Fatal(err)
	}
	r := f.getRoster(t, juliet, old)
	if !r.GetIncremental() || r.GetUnchanged() || len(r.GetItems()) != 0 {
		t.Fatalf("get from an older version: %v, want incremental pushes only", r)
	}
	var got []string
	for _, p := range r.GetPushes() {
		got = append(got, p.GetItem().GetJid()+"="+p.GetItem().GetSubscription())
	}
	want := []string{"benvolio@example.net=none", romeo + "=none", "nurse@example.com=remove"}
	if !slices.Equal(got, want) {
		t.Errorf("pushes %v, want %v", got, want)
	}
	if last := r.GetPushes()[len(r.GetPushes())-1].GetVer(); last != r.GetVer() {
		t.Errorf("last push sets %s, the roster is at %s", last, r.GetVer())
	}
}

func TestRosterGetWithUnknownVersionReturnsTheWholeRoster_RFC6121_2_6_3(t *testing.T) {
	f := imFixture(t, roster.Config{})
	f.set(t, juliet, romeo, "Romeo")
	for _, ver := range []string{"bogus", "deadbeef-1", "0", "ffffffff-99"} {
		r := f.getRoster(t, juliet, ver)
		if r.GetIncremental() || r.GetUnchanged() || len(r.GetItems()) != 1 {
			t.Errorf("get with ver %q: %v, want the whole roster", ver, r)
		}
	}
}

func TestRosterSetErrors_RFC6121_2_3_3(t *testing.T) {
	f := imFixture(t, roster.Config{Limits: roster.Limits{NameBytes: 10, GroupBytes: 8}})
	one := func(it *rosterv1.RosterItem) []*rosterv1.RosterItem { return []*rosterv1.RosterItem{it} }
	for _, c := range []struct {
		name string
		req  *rosterv1.SetItemRequest
		code codes.Code
		cond string
	}{
		{"TwoItemsAreBadRequest", &rosterv1.SetItemRequest{User: juliet, Items: []*rosterv1.RosterItem{{Jid: romeo}, {Jid: "nurse@example.com"}}}, codes.InvalidArgument, "bad-request"},
		{"NoItemIsBadRequest", &rosterv1.SetItemRequest{User: juliet}, codes.InvalidArgument, "bad-request"},
		{"DuplicateGroupIsBadRequest", &rosterv1.SetItemRequest{User: juliet, Items: one(&rosterv1.RosterItem{Jid: romeo, Groups: []string{"A", "A"}})}, codes.InvalidArgument, "bad-request"},
		{"EmptyGroupIsNotAcceptable", &rosterv1.SetItemRequest{User: juliet, Items: one(&rosterv1.RosterItem{Jid: romeo, Groups: []string{""}})}, codes.InvalidArgument, "not-acceptable"},
		{"LongGroupIsNotAcceptable", &rosterv1.SetItemRequest{User: juliet, Items: one(&rosterv1.RosterItem{Jid: romeo, Groups: []string{"123456789"}})}, codes.InvalidArgument, "not-acceptable"},
		{"LongNameIsNotAcceptable", &rosterv1.SetItemRequest{User: juliet, Items: one(&rosterv1.RosterItem{Jid: romeo, Name: "Romeo Montague"})}, codes.InvalidArgument, "not-acceptable"},
		{"InvalidJIDIsJIDMalformed", &rosterv1.SetItemRequest{User: juliet, Items: one(&rosterv1.RosterItem{Jid: "romeo@@example.net"})}, codes.InvalidArgument, "jid-malformed"},
		{"AnotherUsersRosterIsForbidden", &rosterv1.SetItemRequest{User: juliet, To: romeo, Items: one(&rosterv1.RosterItem{Jid: "nurse@example.com"})}, codes.PermissionDenied, "forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.roster.SetItem(testContext(t), c.req)
			wantCondition(t, err, c.code, c.cond)
		})
	}
	if r := f.getRoster(t, juliet, ""); len(r.GetItems()) != 0 {
		t.Errorf("refused sets left items: %v", r.GetItems())
	}
	// The user's own bare JID as 'to' is allowed, and so is a get.
	if _, err := f.roster.SetItem(testContext(t), &rosterv1.SetItemRequest{User: juliet, To: juliet, Items: one(&rosterv1.RosterItem{Jid: romeo})}); err != nil {
		t.Errorf("set addressed to the user's own JID: %v", err)
	}
	_, err := f.roster.GetRoster(testContext(t), &rosterv1.GetRosterRequest{User: juliet, To: romeo})
	wantCondition(t, err, codes.PermissionDenied, "forbidden")
}

func TestRosterRemoveOfMissingItemIsItemNotFound_RFC6121_2_5_3(t *testing.T) {
	f := imFixture(t, roster.Config{})
	_, err := f.roster.RemoveItem(testContext(t), &rosterv1.RemoveItemRequest{User: juliet, Jid: romeo})
	wantCondition(t, err, codes.NotFound, "item-not-found")
}

// subscribeRaw is romeo's request with extension children, to check that
// it is stored and handed out byte for byte.
var subscribeRaw = []byte(`<presence from='romeo@example.net' to='juliet@example.com' type='subscribe' id='sub1'><status>Hi, it is Romeo</status><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick><x xmlns='urn:example:custom' k='v'><deep>text</deep></x></presence>`)

func TestSubscriptionHandshakeBetweenLocalUsers_RFC6121_3_1(t *testing.T) {
	f := imFixture(t, roster.Config{})
	out, in := f.send(t, romeo, juliet, "subscribe", subscribeRaw)
	// Romeo's side: ask='subscribe', pushed, routed (3.1.2).
	if !out.GetForward() || out.GetPush() == nil || !out.GetItem().GetAsk() || out.GetItem().GetSubscription() != "none" {
		t.Errorf("romeo's outbound subscribe: %v", out)
	}
	// Juliet's side: delivered, pending, no item and no push (3.1.3).
	if !in.GetForward() || !in.GetPendingIn() || in.GetInRoster() || in.GetPush() != nil || len(in.GetAutoReplies()) != 0 {
		t.Errorf("juliet's inbound subscribe: %v", in)
	}
	pend, err := f.roster.PendingSubscriptions(testContext(t), &rosterv1.PendingSubscriptionsRequest{User: juliet})
	if err != nil || len(pend.GetRequests()) != 1 || !bytes.Equal(pend.GetRequests()[0].GetRaw(), subscribeRaw) {
		t.Fatalf("pending requests %v, %v; want romeo's stanza byte for byte", pend, err)
	}
	// Still there at the next login: nobody answered.
	if again, _ := f.roster.PendingSubscriptions(testContext(t), &rosterv1.PendingSubscriptionsRequest{User: juliet}); len(again.GetRequests()) != 1 {
		t.Errorf("request gone before an answer: %v", again)
	}

	// Juliet approves (3.1.5).
	out, in = f.send(t, juliet, romeo, "subscribed", nil)
	if !out.GetForward() || !out.GetSendPresence() || out.GetPush().GetItem().GetSubscription() != "from" || !out.GetInRoster() {
		t.Errorf("juliet's subscribed: %v", out)
	}
	if !in.GetForward() || in.GetPush().GetItem().GetSubscription() != "to" || in.GetItem().GetAsk() {
		t.Errorf("romeo's inbound subscribed: %v", in)
	}
	if pend, _ := f.roster.PendingSubscriptions(testContext(t), &rosterv1.PendingSubscriptionsRequest{User: juliet}); len(pend.GetRequests()) != 0 {
		t.Errorf("answered request still pending: %v", pend)
	}
	subs, err := f.roster.SubscribersOf(testContext(t), &rosterv1.SubscribersOfRequest{User: juliet})
	if err != nil || !slices.Equal(subs.GetJids(), []string{romeo}) {
		t.Errorf("juliet's subscribers %v, %v; want romeo", subs, err)
	}
	contacts, err := f.roster.ContactsOf(testContext(t), &rosterv1.ContactsOfRequest{User: romeo})
	if err != nil || !slices.Equal(contacts.GetJids(), []string{juliet}) {
		t.Errorf("romeo's contacts %v, %v; want juliet", contacts, err)
	}
	if c, _ := f.roster.ContactsOf(testContext(t), &rosterv1.ContactsOfRequest{User: juliet}); len(c.GetJids()) != 0 {
		t.Errorf("juliet probes %v, want nobody (she has from only)", c.GetJids())
	}

	// A repeated subscribed (a retry after a crash) changes nothing and is
	// not routed again (A.2.1).
	if out, _ := f.send(t, juliet, romeo, "subscribed", nil); out.GetForward() || out.GetPush() != nil {
		t.Errorf("repeated subscribed: %v", out)
	}
}

func TestInboundSubscribeWhenFromAutoReplies_RFC6121_A_3_1(t *testing.T) {
	f := imFixture(t, roster.Config{})
	f.send(t, romeo, juliet, "subscribe", subscribeRaw)
	f.send(t, juliet, romeo, "subscribed", nil)
	// Romeo asks again (his server lost state): juliet's server answers.
	in := f.apply(t, juliet, romeo, rosterv1.Direction_DIRECTION_INBOUND, "subscribe", subscribeRaw)
	if in.GetForward() || len(in.GetAutoReplies()) != 1 || in.GetAutoReplies()[0].GetType() != "subscribed" ||
		in.GetAutoReplies()[0].GetFrom() != juliet || in.GetAutoReplies()[0].GetTo() != romeo {
		t.Fatalf("inbound subscribe with from: %v, want an auto-reply subscribed from juliet to romeo", in)
	}
	var p struct {
		XMLName xml.Name `xml:"presence"`
		From    string   `xml:"from,attr"`
		To      string   `xml:"to,attr"`
		Type    string   `xml:"type,attr"`
	}
	if err := xml.Unmarshal(in.GetAutoReplies()[0].GetRaw(), &p); err != nil || p.Type != "subscribed" || p.From != juliet || p.To != romeo {
		t.Errorf("auto-reply stanza %q: %+v, %v", in.GetAutoReplies()[0].GetRaw(), p, err)
	}
}

func TestPreApprovedSubscribeIsAnsweredByTheServer_RFC6121_3_4(t *testing.T) {
	f := imFixture(t, roster.Config{})
	out, _ := f.send(t, juliet, romeo, "subscribed", nil)
	if out.GetForward() || !out.GetItem().GetApproved() || out.GetPush() == nil {
		t.Fatalf("pre-approval: %v, want approved='true' pushed and nothing routed", out)
	}
	_, in := f.send(t, romeo, juliet, "subscribe", subscribeRaw)
	if in.GetForward() || len(in.GetAutoReplies()) != 1 || in.GetItem().GetSubscription() != "from" ||
		in.GetItem().GetApproved() || !in.GetSendPresence() || in.GetPendingIn() {
		t.Errorf("subscribe after pre-approval: %v, want from, auto-reply, presence, not delivered", in)
	}
}

func TestRosterRemoveCancelsSubscriptionsBothWays_RFC6121_2_5_2(t *testing.T) {
	f := imFixture(t, roster.Config{})
	f.send(t, romeo, juliet, "subscribe", subscribeRaw)
	f.send(t, juliet, romeo, "subscribed", nil)
	f.send(t, juliet, romeo, "subscribe", nil)
	f.send(t, romeo, juliet, "subscribed", nil)
	if it := item(t, f.getRoster(t, juliet, ""), romeo); it.GetSubscription() != "both" {
		t.Fatalf("juliet's item %v, want both", it)
	}
	r, err := f.roster.RemoveItem(testContext(t), &rosterv1.RemoveItemRequest{User: juliet, Jid: romeo})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range r.GetPresences() {
		types = append(types, p.GetType())
		// The router routes them as juliet's outbound stanzas: romeo's
		// side applies them as inbound ones.
		f.apply(t, romeo, juliet, rosterv1.Direction_DIRECTION_INBOUND, p.GetType(), p.GetRaw())
	}
	if !slices.Equal(types, []string{"unsubscribe", "unsubscribed"}) || !r.GetSendUnavailable() ||
		r.GetPush().GetItem().GetSubscription() != "remove" {
		t.Errorf("remove: %v, want unsubscribe and unsubscribed, unavailable, a remove push", r)
	}
	if it := item(t, f.getRoster(t, juliet, ""), romeo); it != nil {
		t.Errorf("juliet still has %v", it)
	}
	if it := item(t, f.getRoster(t, romeo, ""), juliet); it.GetSubscription() != "none" || it.GetAsk() {
		t.Errorf("romeo's item after juliet's remove: %v, want none without ask", it)
	}
}

func TestOfflineMessagesComeBackInOrderWithADelayStamp_XEP0160(t *testing.T) {
	f := imFixture(t, roster.Config{})
	stamp := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var ids []int64
	for i, body := range []string{"one", "two", "three"} {
		resp, err := f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: juliet,
			Raw:         []byte("<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat'><body>" + body + "</body></message>"),
			StampUnixMs: stamp.Add(time.Duration(i) * time.Minute).UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetId())
	}
	got, err := f.roster.FetchOffline(testContext(t), &rosterv1.FetchOfflineRequest{User: juliet})
	if err != nil || len(got.GetMessages()) != 3 {
		t.Fatalf("FetchOffline = %v, %v", got, err)
	}
	for i, m := range got.GetMessages() {
		var msg struct {
			Body  string `xml:"body"`
			Delay struct {
				XMLName xml.Name
				From    string `xml:"from,attr"`
				Stamp   string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
		}
		if err := xml.Unmarshal(m.GetDelayed(), &msg); err != nil {
			t.Fatalf("delayed %q: %v", m.GetDelayed(), err)
		}
		wantStamp := stamp.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z")
		if m.GetId() != ids[i] || msg.Body != []string{"one", "two", "three"}[i] || msg.Delay.From != "example.com" || msg.Delay.Stamp != wantStamp {
			t.Errorf("message %d: id %d body %q delay %+v; want id %d, from example.com at %s", i, m.GetId(), msg.Body, msg.Delay, ids[i], wantStamp)
		}
	}
	del, err := f.roster.DeleteOffline(testContext(t), &rosterv1.DeleteOfflineRequest{User: juliet, UpToId: ids[1]})
	if err != nil || del.GetDeleted() != 2 {
		t.Errorf("DeleteOffline = %v, %v; want 2", del, err)
	}
	if left, _ := f.roster.FetchOffline(testContext(t), &rosterv1.FetchOfflineRequest{User: juliet}); len(left.GetMessages()) != 1 ||
		!strings.Contains(string(left.GetMessages()[0].GetRaw()), "three") {
		t.Errorf("left after delivery of two: %v", left)
	}
}

func TestOfflineQuotaFullIsResourceExhausted_XEP0160(t *testing.T) {
	f := imFixture(t, roster.Config{OfflineMessages: 2})
	for i := range 2 {
		if _, err := f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: juliet, Raw: []byte("<message/>")}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_, err := f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: juliet, Raw: []byte("<message/>")})
	wantCondition(t, err, codes.ResourceExhausted, "service-unavailable")
}

func TestRosterCallsForAMissingAccountAreNotFound(t *testing.T) {
	f := imFixture(t, roster.Config{})
	_, err := f.roster.GetRoster(testContext(t), &rosterv1.GetRosterRequest{User: "nobody@example.com"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetRoster of a missing account = %v, want NotFound", err)
	}
	_, err = f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: "nobody@example.com", Raw: []byte("<message/>")})
	if status.Code(err) != codes.NotFound {
		t.Errorf("StoreOffline for a missing account = %v, want NotFound", err)
	}
}
