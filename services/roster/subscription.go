package roster

import "fmt"

// State is the subscription state of one roster entry, seen from the entry's
// owner (the user) towards one contact: the nine states of RFC 6121
// Appendix A.1 are the combinations of To, From, PendingOut and PendingIn
// that the appendix names, and Approved is the pre-approval of section 3.4.
type State struct {
	// To: the user receives the contact's presence.
	To bool
	// From: the contact receives the user's presence.
	From bool
	// PendingOut: the user asked for the contact's presence and has no
	// answer yet (ask='subscribe' in the roster item).
	PendingOut bool
	// PendingIn: the contact asked for the user's presence and the user has
	// not answered. The request itself is kept by the store.
	PendingIn bool
	// Approved: the user pre-approved a request from the contact (RFC 6121
	// section 3.4); the next inbound subscribe is answered by the server.
	Approved bool
}

// Subscription is the value of the roster item's 'subscription' attribute.
func (s State) Subscription() string {
	switch {
	case s.To && s.From:
		return "both"
	case s.To:
		return "to"
	case s.From:
		return "from"
	default:
		return "none"
	}
}

// String names the state as RFC 6121 Appendix A.1 does, with "+ Approved"
// for a pre-approval.
func (s State) String() string {
	var name string
	switch {
	case s.To && s.From:
		name = "Both"
	case s.To && s.PendingIn:
		name = "To + Pending In"
	case s.To:
		name = "To"
	case s.From && s.PendingOut:
		name = "From + Pending Out"
	case s.From:
		name = "From"
	case s.PendingOut && s.PendingIn:
		name = "None + Pending Out+In"
	case s.PendingOut:
		name = "None + Pending Out"
	case s.PendingIn:
		name = "None + Pending In"
	default:
		name = "None"
	}
	if s.Approved {
		name += " + Approved"
	}
	return name
}

// visible reports whether a roster item shows the difference between s and
// t: the subscription, ask and approved attributes. PendingIn is not part
// of a roster item (RFC 6121 section 2.1.2), so it needs no push.
func (s State) visible(t State) bool {
	return s.To != t.To || s.From != t.From || s.PendingOut != t.PendingOut || s.Approved != t.Approved
}

// Direction tells whether a subscription stanza was sent by the user
// (outbound, processed by the user's server) or arrived for the user
// (inbound, processed by the user's server on the contact's behalf).
type Direction uint8

const (
	Outbound Direction = iota + 1
	Inbound
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// SubType is a subscription-related presence type (RFC 6121 section 3).
type SubType uint8

const (
	Subscribe SubType = iota + 1
	Subscribed
	Unsubscribe
	Unsubscribed
)

func (t SubType) String() string {
	switch t {
	case Subscribe:
		return "subscribe"
	case Subscribed:
		return "subscribed"
	case Unsubscribe:
		return "unsubscribe"
	case Unsubscribed:
		return "unsubscribed"
	}
	return fmt.Sprintf("SubType(%d)", uint8(t))
}

// ParseSubType parses a presence 'type' attribute value.
func ParseSubType(s string) (SubType, bool) {
	switch s {
	case "subscribe":
		return Subscribe, true
	case "subscribed":
		return Subscribed, true
	case "unsubscribe":
		return Unsubscribe, true
	case "unsubscribed":
		return Unsubscribed, true
	}
	return 0, false
}

// Outcome is what the server does with one subscription stanza.
type Outcome struct {
	// State is the entry's new state.
	State State
	// Forward: outbound, route the stanza to the contact (stamped with the
	// user's bare JID); inbound, deliver it to the user's available
	// resources (or keep it for later, for a subscribe).
	Forward bool
	// Push: the roster item changed in a way the user's interested
	// resources must be told about (a roster push).
	Push bool
	// AutoReply is a presence type the server sends to the contact on the
	// user's behalf, or 0. Only "subscribed" occurs: an inbound subscribe
	// from a contact who already has From, or who was pre-approved. The
	// server never approves anything else.
	AutoReply SubType
	// SendPresence: the contact just got From, so the user's server sends
	// the user's current presence (each available resource) to the contact
	// (RFC 6121 section 3.1.5 and 3.4).
	SendPresence bool
	// SendUnavailable: the contact just lost From, so the user's server
	// sends unavailable presence from each available resource to the
	// contact (RFC 6121 sections 3.2.2 and 3.3.3).
	SendUnavailable bool
}

// Apply returns what happens when a subscription stanza of type t passes
// in direction d while the user's entry for the contact is in state s. It
// is pure: the tables of RFC 6121 Appendix A (A.2.1, A.2.2 for outbound
// subscribed and unsubscribed, A.3.1 to A.3.4 for inbound stanzas), the
// always-routed outbound subscribe and unsubscribe of section A.2 and
// sections 3.1.2 and 3.3.2, and pre-approval (section 3.4).
func Apply(s State, d Direction, t SubType) (Outcome, error) {
	n := s
	o := Outcome{}
	switch {
	case d == Outbound && t == Subscribe:
		// Routed without exception, so that a user can resynchronise a
		// subscription the two servers disagree about (RFC 6121 A.2).
		o.Forward = true
		if !s.To {
			n.PendingOut = true
		}
	case d == Outbound && t == Unsubscribe:
		o.Forward = true
		n.To, n.PendingOut = false, false
	case d == Outbound && t == Subscribed: // A.2.1
		switch {
		case s.From:
			// Nothing to approve: no route, no change.
		case s.PendingIn:
			n.From, n.PendingIn, n.Approved = true, false, false
			o.Forward, o.SendPresence = true, true
		default:
			// No request to answer: a pre-approval (section 3.4), kept
			// and not routed.
			n.Approved = true
		}
	case d == Outbound && t == Unsubscribed: // A.2.2
		switch {
		case s.From || s.PendingIn:
			o.SendUnavailable = s.From
			n.From, n.PendingIn, n.Approved = false, false, false
			o.Forward = true
		default:
			// Nothing to cancel but perhaps a pre-approval, which the
			// contact never heard of: not routed.
			n.Approved = false
		}
	case d == Inbound && t == Subscribe: // A.3.1
		switch {
		case s.From:
			o.AutoReply = Subscribed
			n.Approved = false
		case s.Approved:
			n.From, n.Approved, n.PendingIn = true, false, false
			o.AutoReply, o.SendPresence = Subscribed, true
		case s.PendingIn:
			// Already waiting for the user's answer: not delivered twice.
		default:
			n.PendingIn = true
			o.Forward = true
		}
	case d == Inbound && t == Unsubscribe: // A.3.2
		if s.From || s.PendingIn {
			o.SendUnavailable = s.From
			n.From, n.PendingIn = false, false
			o.Forward = true
		}
	case d == Inbound && t == Subscribed: // A.3.3
		if s.PendingOut && !s.To {
			n.To, n.PendingOut = true, false
			o.Forward = true
		}
	case d == Inbound && t == Unsubscribed: // A.3.4
		if s.To || s.PendingOut {
			n.To, n.PendingOut = false, false
			o.Forward = true
		}
	default:
		return Outcome{}, fmt.Errorf("%w: %v %v", ErrBadSubscription, d, t)
	}
	o.State = n
	o.Push = s.visible(n)
	return o, nil
}
