package roster

import (
	"strings"
	"testing"
)

// The nine states of RFC 6121 Appendix A.1.
var (
	none            = State{}
	nonePendingOut  = State{PendingOut: true}
	nonePendingIn   = State{PendingIn: true}
	nonePendingBoth = State{PendingOut: true, PendingIn: true}
	to              = State{To: true}
	toPendingIn     = State{To: true, PendingIn: true}
	from            = State{From: true}
	fromPendingOut  = State{From: true, PendingOut: true}
	both            = State{To: true, From: true}
)

// cell is one row of an Appendix A table: the existing state, whether the
// stanza is routed (outbound) or delivered (inbound), and the new state.
type cell struct {
	state   State
	forward bool
	next    State
	reply   SubType // auto-reply to the contact, 0 for none
}

// cellName turns "None + Pending Out+In" into "None_Pending_Out+In" for a
// subtest name.
func cellName(s State) string {
	return strings.ReplaceAll(strings.ReplaceAll(s.String(), " + ", "_"), " ", "_")
}

func runTable(t *testing.T, d Direction, typ SubType, cells []cell) {
	t.Helper()
	if len(cells) != 9 {
		t.Fatalf("table has %d rows, Appendix A has 9 states", len(cells))
	}
	for _, c := range cells {
		t.Run(cellName(c.state), func(t *testing.T) {
			o, err := Apply(c.state, d, typ)
			if err != nil {
				t.Fatal(err)
			}
			if o.State != c.next {
				t.Errorf("%v %v in %q: new state %q, want %q", d, typ, c.state, o.State, c.next)
			}
			if o.Forward != c.forward {
				t.Errorf("%v %v in %q: forward %v, want %v", d, typ, c.state, o.Forward, c.forward)
			}
			if o.AutoReply != c.reply {
				t.Errorf("%v %v in %q: auto-reply %v, want %v", d, typ, c.state, o.AutoReply, c.reply)
			}
			// A roster push exactly when subscription or ask changed.
			wantPush := c.state.Subscription() != c.next.Subscription() || c.state.PendingOut != c.next.PendingOut
			if o.Push != wantPush {
				t.Errorf("%v %v in %q: push %v, want %v", d, typ, c.state, o.Push, wantPush)
			}
			// Presence follows the From bit: gained, the user's presence
			// goes to the contact; lost, unavailable does.
			if o.SendPresence != (!c.state.From && c.next.From) {
				t.Errorf("%v %v in %q: SendPresence %v", d, typ, c.state, o.SendPresence)
			}
			if o.SendUnavailable != (c.state.From && !c.next.From) {
				t.Errorf("%v %v in %q: SendUnavailable %v", d, typ, c.state, o.SendUnavailable)
			}
		})
	}
}

// RFC 6121 A.2: the user's server routes every outbound subscribe, whatever
// the state, and records the pending request where there is none yet
// (section 3.1.2).
func TestOutboundSubscribeAlwaysRouted_RFC6121_A_2(t *testing.T) {
	runTable(t, Outbound, Subscribe, []cell{
		{none, true, nonePendingOut, 0},
		{nonePendingOut, true, nonePendingOut, 0},
		{nonePendingIn, true, nonePendingBoth, 0},
		{nonePendingBoth, true, nonePendingBoth, 0},
		{to, true, to, 0},
		{toPendingIn, true, toPendingIn, 0},
		{from, true, fromPendingOut, 0},
		{fromPendingOut, true, fromPendingOut, 0},
		{both, true, both, 0},
	})
}

// RFC 6121 A.2 and section 3.3.2: every outbound unsubscribe is routed;
// it ends the user's subscription to the contact and a pending request.
func TestOutboundUnsubscribeAlwaysRouted_RFC6121_A_2(t *testing.T) {
	runTable(t, Outbound, Unsubscribe, []cell{
		{none, true, none, 0},
		{nonePendingOut, true, none, 0},
		{nonePendingIn, true, nonePendingIn, 0},
		{nonePendingBoth, true, nonePendingIn, 0},
		{to, true, none, 0},
		{toPendingIn, true, nonePendingIn, 0},
		{from, true, from, 0},
		{fromPendingOut, true, from, 0},
		{both, true, from, 0},
	})
}

// RFC 6121 A.2.1: an outbound subscribed is routed only when it answers a
// pending request. (Where no request is pending, section 3.4 makes it a
// pre-approval: see TestOutboundSubscribedWithoutRequestPreApproves.)
func TestOutboundSubscribedRoutedOnlyForPendingIn_RFC6121_A_2_1(t *testing.T) {
	runTable(t, Outbound, Subscribed, []cell{
		{nonePendingIn, true, from, 0},
		{nonePendingBoth, true, fromPendingOut, 0},
		{toPendingIn, true, both, 0},
		{from, false, from, 0},
		{fromPendingOut, false, fromPendingOut, 0},
		{both, false, both, 0},
		// The three states without a request: no route, the subscription
		// does not change (the pre-approval is recorded, see below).
		{State{Approved: true}, false, State{Approved: true}, 0},
		{State{PendingOut: true, Approved: true}, false, State{PendingOut: true, Approved: true}, 0},
		{State{To: true, Approved: true}, false, State{To: true, Approved: true}, 0},
	})
}

// RFC 6121 A.2.2: an outbound unsubscribed is routed only when it denies a
// request or cancels the contact's subscription.
func TestOutboundUnsubscribedRoutedOnlyWhenItChangesState_RFC6121_A_2_2(t *testing.T) {
	runTable(t, Outbound, Unsubscribed, []cell{
		{none, false, none, 0},
		{nonePendingOut, false, nonePendingOut, 0},
		{nonePendingIn, true, none, 0},
		{nonePendingBoth, true, nonePendingOut, 0},
		{to, false, to, 0},
		{toPendingIn, true, to, 0},
		{from, true, none, 0},
		{fromPendingOut, true, nonePendingOut, 0},
		{both, true, to, 0},
	})
}

// RFC 6121 A.3.1: an inbound subscribe is delivered when it is new; from a
// contact who already has From, the server answers subscribed itself and
// the user is not asked again.
func TestInboundSubscribe_RFC6121_A_3_1(t *testing.T) {
	runTable(t, Inbound, Subscribe, []cell{
		{none, true, nonePendingIn, 0},
		{nonePendingOut, true, nonePendingBoth, 0},
		{nonePendingIn, false, nonePendingIn, 0},
		{nonePendingBoth, false, nonePendingBoth, 0},
		{to, true, toPendingIn, 0},
		{toPendingIn, false, toPendingIn, 0},
		{from, false, from, Subscribed},
		{fromPendingOut, false, fromPendingOut, Subscribed},
		{both, false, both, Subscribed},
	})
}

// RFC 6121 A.3.2: an inbound unsubscribe is delivered when it cancels a
// pending request or the contact's subscription to the user.
func TestInboundUnsubscribe_RFC6121_A_3_2(t *testing.T) {
	runTable(t, Inbound, Unsubscribe, []cell{
		{none, false, none, 0},
		{nonePendingOut, false, nonePendingOut, 0},
		{nonePendingIn, true, none, 0},
		{nonePendingBoth, true, nonePendingOut, 0},
		{to, false, to, 0},
		{toPendingIn, true, to, 0},
		{from, true, none, 0},
		{fromPendingOut, true, nonePendingOut, 0},
		{both, true, to, 0},
	})
}

// RFC 6121 A.3.3: an inbound subscribed is delivered only when it answers
// the user's pending request.
func TestInboundSubscribed_RFC6121_A_3_3(t *testing.T) {
	runTable(t, Inbound, Subscribed, []cell{
		{none, false, none, 0},
		{nonePendingOut, true, to, 0},
		{nonePendingIn, false, nonePendingIn, 0},
		{nonePendingBoth, true, toPendingIn, 0},
		{to, false, to, 0},
		{toPendingIn, false, toPendingIn, 0},
		{from, false, from, 0},
		{fromPendingOut, true, both, 0},
		{both, false, both, 0},
	})
}

// RFC 6121 A.3.4: an inbound unsubscribed is delivered when it denies the
// user's request or ends the user's subscription.
func TestInboundUnsubscribed_RFC6121_A_3_4(t *testing.T) {
	runTable(t, Inbound, Unsubscribed, []cell{
		{none, false, none, 0},
		{nonePendingOut, true, none, 0},
		{nonePendingIn, false, nonePendingIn, 0},
		{nonePendingBoth, true, nonePendingIn, 0},
		{to, true, none, 0},
		{toPendingIn, true, nonePendingIn, 0},
		{from, false, from, 0},
		{fromPendingOut, true, from, 0},
		{both, true, from, 0},
	})
}

// RFC 6121 3.4.2: a subscribed with no request to answer is not routed;
// the server notes the pre-approval and pushes the item (approved='true').
func TestOutboundSubscribedWithoutRequestPreApproves_RFC6121_3_4_2(t *testing.T) {
	for _, s := range []State{none, nonePendingOut, to} {
		o, err := Apply(s, Outbound, Subscribed)
		if err != nil {
			t.Fatal(err)
		}
		want := s
		want.Approved = true
		if o.State != want || o.Forward || !o.Push || o.AutoReply != 0 {
			t.Errorf("subscribed in %q = %+v, want state %q, not routed, pushed", s, o, want)
		}
	}
}

// RFC 6121 3.4 with 3.1.3: a subscribe from a pre-approved contact is
// answered by the server, not shown to the user, and the pre-approval is
// used up; the contact gets From and the user's presence.
func TestInboundSubscribePreApprovedAutoReplies_RFC6121_3_4(t *testing.T) {
	for _, c := range []struct{ in, want State }{
		{State{Approved: true}, from},
		{State{PendingOut: true, Approved: true}, fromPendingOut},
		{State{To: true, Approved: true}, both},
	} {
		o, err := Apply(c.in, Inbound, Subscribe)
		if err != nil {
			t.Fatal(err)
		}
		if o.State != c.want || o.Forward || !o.Push || o.AutoReply != Subscribed || !o.SendPresence {
			t.Errorf("subscribe in %q = %+v, want %q, auto-reply subscribed, push, presence, not delivered", c.in, o, c.want)
		}
	}
}

// RFC 6121 3.1.3: the server never approves on the user's behalf: without
// From or a pre-approval, no state and no event yields an auto-reply.
func TestServerNeverApprovesWithoutFromOrPreApproval_RFC6121_3_1_3(t *testing.T) {
	for _, s := range []State{none, nonePendingOut, nonePendingIn, nonePendingBoth, to, toPendingIn} {
		for _, d := range []Direction{Outbound, Inbound} {
			for _, typ := range []SubType{Subscribe, Subscribed, Unsubscribe, Unsubscribed} {
				o, err := Apply(s, d, typ)
				if err != nil {
					t.Fatal(err)
				}
				if o.AutoReply != 0 {
					t.Errorf("%v %v in %q auto-replies %v", d, typ, s, o.AutoReply)
				}
				if d == Inbound && !s.From && o.State.From {
					t.Errorf("%v %v in %q grants From without the user", d, typ, s)
				}
			}
		}
	}
}

// RFC 6121 3.4: a pre-approval is withdrawn with unsubscribed; the contact
// never heard of it, so nothing is routed.
func TestOutboundUnsubscribedCancelsPreApproval_RFC6121_3_4(t *testing.T) {
	o, err := Apply(State{Approved: true}, Outbound, Unsubscribed)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != none || o.Forward || !o.Push {
		t.Errorf("unsubscribed when pre-approved = %+v, want None, not routed, pushed", o)
	}
}

func TestUnknownEventIsAnError(t *testing.T) {
	if _, err := Apply(none, Direction(9), Subscribe); err == nil {
		t.Error("Apply with an unknown direction succeeded")
	}
	if _, err := Apply(none, Inbound, SubType(0)); err == nil {
		t.Error("Apply with an unknown type succeeded")
	}
}
