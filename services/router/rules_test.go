package router

import (
	"slices"
	"strings"
	"testing"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// RFC 6120 section 8.1.1.1: a to that cannot be prepared.

func TestMalformedToGetsJIDMalformed_RFC6120_8_1_1_1(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	for _, to := range []string{"bob@example.com/", "@example.com", "bob@exa mple.com", "a@b@c<d>"} {
		st := h.send(alicePhone, msg(to, "chat", "m1", "hi"))
		wantError(t, h.collect(alicePhone), alicePhone, st, stanza.JIDMalformed)
	}
}

func TestMalformedToOnErrorStanzaNotAnswered_RFC6120_8_3_1(t *testing.T) {
	h := newHarness(t)
	h.send(alicePhone, msg("@example.com", "error", "m1", ""))
	h.send(alicePhone, iq("", "bob@@example.com", "error", "i1", nil))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6120 section 10.3: no to.

func TestMessageWithoutToGoesToSendersBareJID_RFC6120_10_3_1(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 1)
	h.bind(aliceLaptop, true, 5)
	st := h.send(alicePhone, msg("", "chat", "m1", "note to self"))
	h.wantSessions(h.collect(alicePhone), st, aliceLaptop)
}

func TestPingWithoutToAnsweredForAccount_RFC6120_10_3_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.send(alicePhone, iq("", "", "get", "p1", dom.New(nsPing, "ping")))
	gs := h.collect(alicePhone)
	el := wantResult(t, gs, alicePhone, "p1")
	if el.Attr("from") != "" {
		t.Errorf("result to a request without to has from %q, want none", el.Attr("from"))
	}
}

func TestUnknownIQWithoutToServiceUnavailable_RFC6120_10_3_3(t *testing.T) {
	h := newHarness(t)
	st := h.send(alicePhone, iq("", "", "set", "v1", dom.New("vcard-temp", "vCard")))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

func TestIQRequestWithoutPayloadBadRequest_RFC6120_8_2_3(t *testing.T) {
	h := newHarness(t)
	st := h.send(alicePhone, iq("", "", "get", "e1", nil))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.BadRequest)
	two := iq("", domain, "get", "e2", dom.New(nsPing, "ping"))
	two.Append(dom.New(nsPing, "ping"))
	st = h.send(alicePhone, two)
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.BadRequest)
}

// RFC 6120 section 10.3.2 and RFC 6121 section 4: broadcast presence.

func TestInitialPresenceEchoedToAvailableResources_RFC6121_4_2_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0) // just bound, no presence yet
	h.reg.add(aliceLaptop.jid, aliceLaptop.node, aliceLaptop.session, true, 3, "<presence xmlns='jabber:client' from='alice@example.com/laptop'/>")
	h.reg.add("alice@example.com/tv", "n2", "a-tv", false, 0, "") // connected, not available
	h.bind(bobDesk, true, 0)                                      // another account
	st := h.send(alicePhone, pres("", "", "p1", priorityEl("7")))
	gs := h.collect(alicePhone)

	sets := h.reg.setCalls()
	if len(sets) != 1 || !sets[0].Available || sets[0].Priority != 7 || sets[0].Jid != alicePhone.jid ||
		sets[0].SessionId != alicePhone.session || string(sets[0].Presence) != string(st.Raw) {
		t.Fatalf("SetPresence calls = %v, want one available, priority 7, for %s", sets, alicePhone.jid)
	}
	var echoes, others []got
	for _, g := range gs {
		if g.d.From == alicePhone.jid {
			echoes = append(echoes, g)
		} else {
			others = append(others, g)
		}
	}
	h.wantSessions(echoes, st, alicePhone, aliceLaptop)
	// The new resource learns the presence of the other available one.
	if len(others) != 1 || others[0].d.Session != alicePhone.session || others[0].d.From != aliceLaptop.jid ||
		!strings.Contains(string(others[0].d.Raw), "alice@example.com/laptop") {
		t.Errorf("want the laptop's last presence sent to the phone, got:%s", describe(others))
	}

	// A later update is echoed again but does not resend the others.
	st = h.send(alicePhone, pres("", "", "p2", dom.New(nsClient, "show").AppendText("away")))
	h.wantSessions(h.collect(alicePhone), st, alicePhone, aliceLaptop)
	if sets := h.reg.setCalls(); sets[len(sets)-1].Priority != 0 {
		t.Errorf("presence without <priority/> recorded priority %d, want 0", sets[len(sets)-1].Priority)
	}
}

func TestPresencePriorityClamped_RFC6121_4_7_2_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, false, 0)
	for _, c := range []struct {
		value string
		want  int32
	}{{"200", 127}, {"-300", -128}, {" -5 ", -5}, {"99999999999999999999", 127}, {"high", 0}} {
		h.send(alicePhone, pres("", "", "p", priorityEl(c.value)))
		h.collect(alicePhone)
		sets := h.reg.setCalls()
		if got := sets[len(sets)-1].Priority; got != c.want {
			t.Errorf("priority %q recorded as %d, want %d", c.value, got, c.want)
		}
	}
}

func TestUnavailablePresenceToOtherResources_RFC6121_4_5_2(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.bind(aliceLaptop, true, -1)
	h.reg.add("alice@example.com/tv", "n2", "a-tv", false, 0, "")
	h.bind(bobDesk, true, 0)
	st := h.send(alicePhone, pres("", "unavailable", "u1"))
	h.wantSessions(h.collect(alicePhone), st, aliceLaptop)
	sets := h.reg.setCalls()
	if len(sets) != 1 || sets[0].Available || sets[0].SessionId != alicePhone.session {
		t.Errorf("SetPresence calls = %v, want one unavailable for the phone", sets)
	}
}

// c2s publishes the final unavailable presence of a closing stream and
// unbinds the session at once, so the router often finds it gone.
func TestUnavailableAfterUnbindStillBroadcast_RFC6121_4_5_2(t *testing.T) {
	h := newHarness(t)
	h.bind(aliceLaptop, true, 0)
	// alicePhone is no longer in the registry.
	st := h.send(alicePhone, pres("", "unavailable", ""))
	h.wantSessions(h.collect(alicePhone), st, aliceLaptop)
}

func TestPresenceOfSessionNoLongerBoundNotBroadcast_RFC6121_4_2_2(t *testing.T) {
	h := newHarness(t)
	h.bind(aliceLaptop, true, 0)
	// alicePhone is not in the registry: it was unbound meanwhile.
	h.send(alicePhone, pres("", "", "p1"))
	wantNothing(t, h.collect(alicePhone))
}

func TestSubscriptionPresenceWithoutToDropped_RFC6121_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.send(alicePhone, pres("", "subscribe", "s1"))
	wantNothing(t, h.collect(alicePhone))
	if n := len(h.reg.setCalls()); n != 0 {
		t.Errorf("subscribe without to changed availability (%d SetPresence calls)", n)
	}
}

// RFC 6120 section 10.4: remote domains.

func TestRemoteDomainRemoteServerNotFound_RFC6120_10_4_3(t *testing.T) {
	h := newHarness(t)
	for _, el := range []*dom.Element{
		msg("carol@remote.example", "chat", "m1", "hi"),
		iq("", "remote.example", "get", "i1", dom.New(nsPing, "ping")),
		pres("carol@remote.example/x", "", "p1"),
	} {
		st := h.send(alicePhone, el)
		// The error is sent once the router learns that no s2s pod
		// took the stanza, after the batch's deliveries: it may come
		// after the barrier's result, so it is awaited by id.
		wantError(t, h.awaitReply(alicePhone, st.Id), alicePhone, st, stanza.RemoteServerNotFound)
	}
	// Responses and errors are not answered.
	h.send(alicePhone, msg("carol@remote.example", "error", "m2", ""))
	h.send(alicePhone, iq("", "carol@remote.example/x", "result", "i2", nil))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6120 section 10.5.1: the server itself.

func TestPingToServer_RFC6120_10_5_1(t *testing.T) {
	h := newHarness(t)
	h.send(alicePhone, iq("", domain, "get", "s1", dom.New(nsPing, "ping")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "s1")
	if el.Attr("from") != domain || el.ChildCount() != 0 {
		t.Errorf("ping result = %s, want an empty result from %s", el.Marshal(), domain)
	}
}

func TestServerDiscoInfo_RFC6120_10_5_1(t *testing.T) {
	h := newHarness(t)
	h.send(alicePhone, iq("", domain, "get", "d1", dom.New(nsDiscoInfo, "query")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "d1")
	q := el.Child(nsDiscoInfo, "query")
	if q == nil {
		t.Fatalf("no disco#info query in %s", el.Marshal())
	}
	var identities, features []string
	for _, c := range q.Children() {
		switch c.Local {
		case "identity":
			identities = append(identities, c.Attr("category")+"/"+c.Attr("type"))
		case "feature":
			features = append(features, c.Attr("var"))
		}
	}
	slices.Sort(features)
	if !slices.Equal(identities, []string{"server/im"}) {
		t.Errorf("identities = %v, want [server/im]", identities)
	}
	// XEP-0160 section 5: msgoffline while offline storage is on.
	if want := []string{nsDiscoInfo, nsDiscoItems, nsMsgOffline, nsPing}; !slices.Equal(features, want) {
		t.Errorf("features = %v, want exactly %v", features, want)
	}

	st := h.send(alicePhone, iq("", domain, "get", "d2", dom.New(nsDiscoInfo, "query", "node", "x")))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ItemNotFound)
}

func TestUnknownIQToServerServiceUnavailable_RFC6120_10_5_1(t *testing.T) {
	h := newHarness(t)
	for _, el := range []*dom.Element{
		iq("", domain, "get", "x1", dom.New("jabber:iq:version", "query")),
		iq("", domain, "set", "x2", dom.New(nsPing, "ping")),
		iq("", domain+"/admin", "get", "x3", dom.New(nsPing, "ping")),
	} {
		st := h.send(alicePhone, el)
		el := wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
		if el.FirstChild() == nil || el.FirstChild().Local == "error" {
			t.Errorf("error reply lost the original payload: %s", el.Marshal())
		}
	}
}

func TestResponsesMessagesPresenceToServerDropped_RFC6120_10_5_1(t *testing.T) {
	h := newHarness(t)
	h.send(alicePhone, iq("", domain, "result", "r1", nil))
	h.send(alicePhone, iq("", domain, "error", "r2", nil))
	h.send(alicePhone, msg(domain, "chat", "m1", "hello server"))
	h.send(alicePhone, msg(domain, "error", "m2", ""))
	h.send(alicePhone, pres(domain, "", "p1"))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6121 section 8.5.1: no such user.

func TestNoSuchUser_RFC6121_8_5_1(t *testing.T) {
	for _, to := range []string{"nobody@example.com", "nobody@example.com/res"} {
		t.Run(to, func(t *testing.T) {
			h := newHarness(t)
			for _, el := range []*dom.Element{
				iq("", to, "get", "i1", dom.New(nsPing, "ping")),
				msg(to, "normal", "m1", "hi"),
				msg(to, "chat", "m2", "hi"),
				msg(to, "groupchat", "m3", "hi"),
			} {
				st := h.send(alicePhone, el)
				wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
			}
			h.send(alicePhone, msg(to, "headline", "m4", "news"))
			h.send(alicePhone, msg(to, "error", "m5", ""))
			h.send(alicePhone, iq("", to, "result", "i2", nil))
			h.send(alicePhone, pres(to, "", "p1"))
			h.send(alicePhone, pres(to, "unavailable", "p2"))
			h.send(alicePhone, pres(to, "subscribe", "p3"))
			wantNothing(t, h.collect(alicePhone))
		})
	}
}

// RFC 6121 section 8.5.2.1.1: messages to a bare JID with available
// resources.

func TestMessageToBareJIDHighestPriority_RFC6121_8_5_2_1_1(t *testing.T) {
	for _, typ := range []string{"", "normal", "chat", "unknown-type"} {
		h := newHarness(t)
		h.bind(bobDesk, true, 3)
		h.bind(bobPhone, true, 1)
		h.bind(bobTablet, false, 9) // connected but not available
		st := h.send(alicePhone, msg("bob@example.com", typ, "m1", "hi"))
		h.wantSessions(h.collect(alicePhone), st, bobDesk)
	}
}

func TestMessageToBareJIDEqualPriorities_RFC6121_8_5_2_1_1(t *testing.T) {
	for _, typ := range []string{"normal", "chat"} {
		h := newHarness(t)
		h.bind(bobDesk, true, 2)
		h.bind(bobPhone, true, 2)
		h.bind(bobTablet, true, 0)
		st := h.send(alicePhone, msg("bob@example.com", typ, "m1", "hi"))
		h.wantSessions(h.collect(alicePhone), st, bobDesk, bobPhone)
	}
}

func TestMessageToBareJIDNegativePriority_RFC6121_8_5_2_1_1(t *testing.T) {
	for _, typ := range []string{"normal", "chat", "headline"} {
		h := newHarness(t)
		h.bind(bobDesk, true, 0)
		h.bind(bobPhone, true, -1)
		st := h.send(alicePhone, msg("bob@example.com", typ, "m1", "hi"))
		h.wantSessions(h.collect(alicePhone), st, bobDesk)
	}
	// Only negative priorities: as if no resource were available
	// (section 8.5.2.2.1): normal and chat are stored offline, headline
	// is dropped.
	for _, typ := range []string{"normal", "chat"} {
		h := newHarness(t)
		h.bind(bobDesk, true, -1)
		h.bind(bobPhone, true, -5)
		h.send(alicePhone, msg("bob@example.com", typ, "m1", "hi"))
		wantNothing(t, h.collect(alicePhone))
		if len(h.ros.stored) != 1 {
			t.Errorf("%s: %d messages stored offline, want 1", typ, len(h.ros.stored))
		}
	}
	h := newHarness(t)
	h.bind(bobDesk, true, -1)
	h.send(alicePhone, msg("bob@example.com", "headline", "m1", "news"))
	wantNothing(t, h.collect(alicePhone))
}

func TestHeadlineToBareJIDAllNonNegative_RFC6121_8_5_2_1_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	h.bind(bobPhone, true, 0)
	h.bind(bobTablet, true, -1)
	st := h.send(alicePhone, msg("bob@example.com", "headline", "m1", "news"))
	h.wantSessions(h.collect(alicePhone), st, bobDesk, bobPhone)
}

func TestGroupchatToBareJIDServiceUnavailable_RFC6121_8_5_2_1_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	st := h.send(alicePhone, msg("bob@example.com", "groupchat", "m1", "hi all"))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

func TestErrorMessageToBareJIDDropped_RFC6121_8_5_2_1_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	h.send(alicePhone, msg("bob@example.com", "error", "m1", ""))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6121 section 8.5.2.2.1: messages to a bare JID without available
// resources.

func TestMessageToBareJIDNoResources_RFC6121_8_5_2_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, false, 5) // connected only
	for _, typ := range []string{"normal", "chat"} {
		h.send(alicePhone, msg("bob@example.com", typ, "m-"+typ, "hi"))
		wantNothing(t, h.collect(alicePhone)) // stored offline (XEP-0160)
	}
	if len(h.ros.stored) != 2 {
		t.Errorf("%d messages stored offline, want 2", len(h.ros.stored))
	}
	st := h.send(alicePhone, msg("bob@example.com", "groupchat", "m-gc", "hi"))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
	h.send(alicePhone, msg("bob@example.com", "headline", "m4", "news"))
	h.send(alicePhone, msg("bob@example.com", "error", "m5", ""))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6121 section 8.5.2.1.2 and 8.5.2.2.2: presence to a bare JID.

func TestPresenceToBareJIDAllAvailableResources_RFC6121_8_5_2_1_2(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	h.bind(bobPhone, true, -3)
	h.bind(bobTablet, false, 0)
	for _, typ := range []string{"", "unavailable"} {
		st := h.send(alicePhone, pres("bob@example.com", typ, "p1"))
		h.wantSessions(h.collect(alicePhone), st, bobDesk, bobPhone)
	}
	// Subscription handling and probes come with the IM issue.
	for _, typ := range []string{"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"} {
		h.send(alicePhone, pres("bob@example.com", typ, "p2"))
	}
	wantNothing(t, h.collect(alicePhone))
}

func TestPresenceToBareJIDNoResourcesIgnored_RFC6121_8_5_2_2_2(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, false, 0)
	h.send(alicePhone, pres("bob@example.com", "", "p1"))
	h.send(alicePhone, pres("bob@example.com", "unavailable", "p2"))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6121 section 8.5.2.1.3 and 8.5.2.2.3: IQs to a bare JID.

func TestIQToBareJIDAnsweredByServer_RFC6121_8_5_2_1_3(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 5)
	h.send(alicePhone, iq("", "bob@example.com", "get", "p1", dom.New(nsPing, "ping")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "p1")
	if el.Attr("from") != "bob@example.com" {
		t.Errorf("ping result from %q, want bob@example.com", el.Attr("from"))
	}
	st := h.send(alicePhone, iq("", "bob@example.com", "get", "v1", dom.New("vcard-temp", "vCard")))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
	h.send(alicePhone, iq("", "bob@example.com", "result", "r1", nil))
	wantNothing(t, h.collect(alicePhone))
}

func TestIQToBareJIDNoResourcesAnsweredByServer_RFC6121_8_5_2_2_3(t *testing.T) {
	h := newHarness(t)
	h.send(alicePhone, iq("", "bob@example.com", "get", "p1", dom.New(nsPing, "ping")))
	wantResult(t, h.collect(alicePhone), alicePhone, "p1")
	st := h.send(alicePhone, iq("", "bob@example.com", "set", "x", dom.New("urn:example", "x")))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
}

func TestRosterToOwnBareJIDAnsweredByServer_RFC6121_8_5_2_1_3(t *testing.T) {
	h := newHarness(t)
	h.bind(alicePhone, true, 0)
	h.send(alicePhone, iq("", "alice@example.com", "get", "r1", dom.New(nsRoster, "query")))
	el := wantResult(t, h.collect(alicePhone), alicePhone, "r1")
	if el.Child(nsRoster, "query") == nil || h.ros.gets[0].To != "alice@example.com" {
		t.Errorf("roster result %s, GetRoster %v: want the roster, asked with to", el.Marshal(), h.ros.gets)
	}
}

// RFC 6121 section 8.5.3.1: a full JID with a matching resource.

func TestFullJIDDelivered_RFC6121_8_5_3_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, -1)
	h.bind(bobPhone, false, 0) // connected, not yet available: still gets it
	for _, c := range []client{bobDesk, bobPhone} {
		for _, el := range []*dom.Element{
			msg(c.jid, "chat", "m1", "hi"),
			msg(c.jid, "groupchat", "m2", "hi"),
			msg(c.jid, "error", "m3", ""),
			iq("", c.jid, "get", "i1", dom.New("jabber:iq:version", "query")),
			iq("", c.jid, "result", "i2", nil),
			pres(c.jid, "", "p1"),
			pres(c.jid, "unavailable", "p2"),
		} {
			st := h.send(alicePhone, el)
			h.wantSessions(h.collect(alicePhone), st, c)
		}
	}
	// Subscriptions go to section 3 (the scripted roster forwards
	// nothing) and probes to 4.3 (alice is no subscriber): nothing.
	h.send(alicePhone, pres(bobDesk.jid, "subscribe", "s1"))
	h.send(alicePhone, pres(bobDesk.jid, "probe", "s2"))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6121 section 8.5.3.2: a full JID without a matching resource.

func TestChatToMissingResourceFallsBackToBareJID_RFC6121_8_5_3_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 1)
	h.bind(bobPhone, true, 4)
	h.bind(bobTablet, true, -1)
	st := h.send(alicePhone, msg("bob@example.com/gone", "chat", "m1", "hi"))
	h.wantSessions(h.collect(alicePhone), st, bobPhone)

	// With no non-negative resource it is stored offline, as for the
	// bare JID.
	h = newHarness(t)
	h.bind(bobTablet, true, -1)
	h.send(alicePhone, msg("bob@example.com/gone", "chat", "m1", "hi"))
	wantNothing(t, h.collect(alicePhone))
	if len(h.ros.stored) != 1 {
		t.Errorf("%d messages stored offline, want 1", len(h.ros.stored))
	}
}

func TestOtherMessagesToMissingResource_RFC6121_8_5_3_2_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 1)
	for _, typ := range []string{"normal", "groupchat"} {
		st := h.send(alicePhone, msg("bob@example.com/gone", typ, "m-"+typ, "hi"))
		wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
	}
	h.send(alicePhone, msg("bob@example.com/gone", "headline", "m3", "news"))
	h.send(alicePhone, msg("bob@example.com/gone", "error", "m4", ""))
	wantNothing(t, h.collect(alicePhone))
}

func TestPresenceToMissingResourceIgnored_RFC6121_8_5_3_2_2(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 1)
	h.send(alicePhone, pres("bob@example.com/gone", "", "p1"))
	h.send(alicePhone, pres("bob@example.com/gone", "unavailable", "p2"))
	wantNothing(t, h.collect(alicePhone))
}

func TestIQToMissingResource_RFC6121_8_5_3_2_3(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 1)
	st := h.send(alicePhone, iq("", "bob@example.com/gone", "get", "i1", dom.New(nsPing, "ping")))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.ServiceUnavailable)
	h.send(alicePhone, iq("", "bob@example.com/gone", "result", "i2", nil))
	h.send(alicePhone, iq("", "bob@example.com/gone", "error", "i3", nil))
	wantNothing(t, h.collect(alicePhone))
}

// Addresses are compared in their prepared form (RFC 7622).

func TestAddressesPreparedBeforeRouting_RFC6120_10_5(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 0)
	st := h.send(alicePhone, msg("BOB@Example.COM/desk", "chat", "m1", "hi"))
	h.wantSessions(h.collect(alicePhone), st, bobDesk)
}

// A failing backend: the sender is told, nothing is lost silently.

func TestBackendFailureInternalServerError_RFC6120_8_3_3_6(t *testing.T) {
	h := newHarness(t)
	h.reg.mu.Lock()
	h.reg.lookupErr = errBackend
	h.reg.mu.Unlock()
	st := h.send(alicePhone, msg("bob@example.com/desk", "chat", "m1", "hi"))
	wantError(t, h.collect(alicePhone), alicePhone, st, stanza.InternalServerError)
	h.send(alicePhone, pres("bob@example.com", "", "p1"))
	wantNothing(t, h.collect(alicePhone))
}

// RFC 6120 section 10.1: in-order processing.

func TestPerSenderOrderKept_RFC6120_10_1(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 0)
	h.bind(bobPhone, true, 0)
	const n = 300
	// Two senders on (most likely) different partitions, interleaved.
	for i := range n {
		h.send(alicePhone, msg(bobDesk.jid, "chat", "a"+itoa(i), "x"))
		h.send(bobPhone, msg(bobDesk.jid, "chat", "b"+itoa(i), "x"))
	}
	gs := h.collect(alicePhone)
	gs = append(gs, h.collect(bobPhone)...)
	next := map[byte]int{'a': 0, 'b': 0}
	for _, g := range gs {
		if g.d.Session != bobDesk.session {
			continue
		}
		k := g.d.Id[0]
		if g.d.Id[1:] != itoa(next[k]) {
			t.Fatalf("sender %c: got %s, want %c%d", k, g.d.Id, k, next[k])
		}
		next[k]++
	}
	if next['a'] != n || next['b'] != n {
		t.Fatalf("delivered %d and %d of %d messages", next['a'], next['b'], n)
	}
}

// Envelopes that cannot be routed are dropped without crashing the router.

func TestBadEnvelopesDropped(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 0)
	good := h.send(alicePhone, msg(bobDesk.jid, "chat", "m1", "hi"))
	bad := []*busv1.Stanza{
		{From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Raw: good.Raw},                                     // no origin
		{From: alicePhone.jid, To: bobDesk.jid, Kind: busv1.Kind_KIND_UNSPECIFIED, Origin: good.Origin, Raw: good.Raw},            // no kind
		{From: "alice@example.com", To: bobDesk.jid, Kind: busv1.Kind_KIND_MESSAGE, Origin: good.Origin, Raw: good.Raw},           // bare from
		{From: alicePhone.jid, To: "example.com", Kind: busv1.Kind_KIND_IQ, Type: "get", Origin: good.Origin, Raw: []byte("<iq")}, // bad XML
	}
	for _, st := range bad {
		h.publish(st)
	}
	if err := h.nc.Publish(h.subjects.RouteFor("alice@example.com"), []byte("not protobuf \xff\xff")); err != nil {
		t.Fatal(err)
	}
	h.wantSessions(h.collect(alicePhone), good, bobDesk)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

// wantResult checks that gs is exactly one IQ result with id to c.
func wantResult(t *testing.T, gs []got, c client, id string) *dom.Element {
	t.Helper()
	if len(gs) != 1 {
		t.Fatalf("got %d deliveries, want one result to %s:%s", len(gs), c.jid, describe(gs))
	}
	g := gs[0]
	if g.d.Session != c.session || !strings.HasSuffix(g.subject, ".node."+c.node) {
		t.Errorf("result went to %s session %s, want %s", g.subject, g.d.Session, c.jid)
	}
	el, err := decodeElement(g.d.Raw)
	if err != nil {
		t.Fatalf("result does not parse: %v: %s", err, g.d.Raw)
	}
	if el.Local != "iq" || el.Space != nsClient || el.Attr("type") != "result" || el.Attr("id") != id || el.Attr("to") != c.jid {
		t.Errorf("got %s, want an iq result id=%s to=%s", g.d.Raw, id, c.jid)
	}
	return el
}
