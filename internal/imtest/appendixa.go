package imtest

import (
	"fmt"
	"slices"
	"testing"
)

// The subscription state table of RFC 6121 Appendix A: every start state
// of one user's relation to another (none, to, from, both, with pending
// out and pending in), reached with real stanzas, times each of the four
// subscription stanzas sent in each direction.

// SubState is one side's view in Appendix A.
type SubState struct {
	To, From, PendingOut, PendingIn bool
}

// Mirror is the other side's view of the same relation.
func (s SubState) Mirror() SubState { return SubState{s.From, s.To, s.PendingIn, s.PendingOut} }

// Item is the roster item the state shows (RFC 6121 2.1.2.5) as
// "subscription[+ask]": pending in is not part of the item.
func (s SubState) Item() string {
	sub := map[[2]bool]string{{false, false}: "none", {true, false}: "to", {false, true}: "from", {true, true}: "both"}[[2]bool{s.To, s.From}]
	if s.PendingOut {
		sub += "+ask"
	}
	return sub
}

// Outbound applies a stanza sent by the side whose state s is, as
// Appendix A.2 (and 3.x) define the changes of the sender's state.
func (s SubState) Outbound(typ string) SubState {
	switch typ {
	case "subscribe":
		if !s.To {
			s.PendingOut = true
		}
	case "unsubscribe":
		s.To, s.PendingOut = false, false
	case "subscribed":
		if s.PendingIn {
			s.From, s.PendingIn = true, false
		}
	case "unsubscribed":
		s.From, s.PendingIn = false, false
	}
	return s
}

// Step is one subscription stanza of a set-up, by alice or by bob.
type Step struct {
	ByAlice bool
	Type    string
}

// StartState is an Appendix A state and the stanzas that reach it from
// none.
type StartState struct {
	Name  string
	Steps []Step
}

// StartStates are the nine states of Appendix A.
var StartStates = []StartState{
	{"None", nil},
	{"None+PendingOut", []Step{{true, "subscribe"}}},
	{"None+PendingIn", []Step{{false, "subscribe"}}},
	{"None+PendingOut+PendingIn", []Step{{true, "subscribe"}, {false, "subscribe"}}},
	{"To", []Step{{true, "subscribe"}, {false, "subscribed"}}},
	{"To+PendingIn", []Step{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}}},
	{"From", []Step{{false, "subscribe"}, {true, "subscribed"}}},
	{"From+PendingOut", []Step{{false, "subscribe"}, {true, "subscribed"}, {true, "subscribe"}}},
	{"Both", []Step{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}, {true, "subscribed"}}},
}

// SubscriptionTypes are the four subscription stanzas.
var SubscriptionTypes = []string{"subscribe", "subscribed", "unsubscribe", "unsubscribed"}

// Cell is one cell of the table: a start state, then one stanza sent by
// alice (outbound) or to her (inbound).
type Cell struct {
	Start   StartState
	ByAlice bool
	Type    string
}

// Name is the subtest name: start state, direction and stanza.
func (c Cell) Name() string {
	dir := "outbound"
	if !c.ByAlice {
		dir = "inbound"
	}
	return c.Start.Name + "/" + dir + "-" + c.Type
}

// Cells is the whole table: 9 states x 2 directions x 4 stanzas.
func Cells() []Cell {
	var cells []Cell
	for _, st := range StartStates {
		for _, byAlice := range []bool{true, false} {
			for _, typ := range SubscriptionTypes {
				cells = append(cells, Cell{st, byAlice, typ})
			}
		}
	}
	return cells
}

// RunAppendixA runs every cell with its own two users, alice logged in on
// the first node and bob on the last, both having fetched the roster and
// sent initial presence. Each cell checks both rosters' subscription and
// ask, and every stanza each side received (a ping round trip proves
// nothing else came).
func RunAppendixA(t *testing.T, e *Env) {
	cells := Cells()
	names := make([]string, len(cells))
	for i, c := range cells {
		names[i] = c.Name()
	}
	e.run(t, names, func(t *testing.T, i int) {
		aliceName, bobName := fmt.Sprintf("%sa%d", e.Prefix, i), fmt.Sprintf("%sb%d", e.Prefix, i)
		e.CreateAccounts(t, aliceName, bobName)
		alice := e.Login(t, aliceName, "r", 0)
		bob := e.Login(t, bobName, "r", len(e.Addrs)-1)
		runCell(t, cells[i], alice, bob)
	})
}

func runCell(t *testing.T, cell Cell, alice, bob *Conn) {
	for _, c := range []*Conn{alice, bob} {
		c.Roster()
		c.Send("<presence/>")
		c.Sync()
	}
	var state SubState // alice's
	// Whether each side has an item: made by sending a subscribe, an
	// approval or a pre-approval (3.1.2, 3.1.5, 3.4), kept until a roster
	// remove.
	var aliceIn, bobIn bool
	apply := func(byAlice bool, typ string) {
		if typ == "subscribe" || typ == "subscribed" {
			if byAlice {
				aliceIn = true
			} else {
				bobIn = true
			}
		}
		if byAlice {
			state = state.Outbound(typ)
		} else {
			state = state.Mirror().Outbound(typ).Mirror()
		}
	}
	pair := func(byAlice bool) (from, to *Conn) {
		if byAlice {
			return alice, bob
		}
		return bob, alice
	}
	for _, p := range cell.Start.Steps {
		from, to := pair(p.ByAlice)
		from.Send("<presence to='" + to.Bare(to.Local) + "' type='" + p.Type + "'/>")
		from.Sync()
		to.Sync()
		apply(p.ByAlice, p.Type)
	}
	if got, want := alice.State(bob.Local), itemOrNone(state, aliceIn); got != want {
		t.Fatalf("set-up: alice's item %s, want %s", got, want)
	}
	before := state
	alice.Sync()
	bob.Sync()

	sender, receiver := pair(cell.ByAlice)
	sender.Send("<presence to='" + receiver.Bare(receiver.Local) + "' type='" + cell.Type + "'/>")
	gotSender := Summary(sender.Sync())
	gotReceiver := Summary(receiver.Sync())
	apply(cell.ByAlice, cell.Type)
	if got, want := alice.State(bob.Local), itemOrNone(state, aliceIn); got != want {
		t.Errorf("alice's item %s, want %s", got, want)
	}
	if got, want := bob.State(alice.Local), itemOrNone(state.Mirror(), bobIn); got != want {
		t.Errorf("bob's item %s, want %s", got, want)
	}
	// What each side must have received, from the sender's and receiver's
	// states before and after.
	sb, sa, rb, ra := before, state, before.Mirror(), state.Mirror()
	if !cell.ByAlice {
		sb, sa, rb, ra = rb, ra, sb, sa
	}
	wantS, wantR := ExpectedDeliveries(cell.Type, sender.Local, receiver.Local, sb, sa, rb, ra)
	if !slices.Equal(gotSender, wantS) {
		t.Errorf("sender got %v, want %v", gotSender, wantS)
	}
	if !slices.Equal(gotReceiver, wantR) {
		t.Errorf("receiver got %v, want %v", gotReceiver, wantR)
	}
}

// itemOrNone is the item the roster shows, "-" when the side has none (a
// pending request alone puts nothing in the roster, 3.1.3).
func itemOrNone(s SubState, in bool) string {
	if !in {
		return "-"
	}
	return s.Item()
}

// ExpectedDeliveries is what the sender and the receiver of a subscription
// stanza see (both available), from each side's state before and after:
//   - the receiver gets the stanza when its state changed, and a subscribe
//     also when nothing changed but it had no subscription from the sender
//     yet and a request was not already pending (3.1.3); a subscribe from a
//     contact that already has 'from' is answered by the server with
//     subscribed (3.1.3), which changes nothing on the sender's side, who
//     already has 'to', and is therefore not delivered to it (A.3.2);
//   - a side that gained 'from' sends its presence to the other; one that
//     lost it sends unavailable (3.1.5, 3.2.2, 3.3.3), after the
//     subscription stanza that caused it.
func ExpectedDeliveries(typ, sender, receiver string, sb, sa, rb, ra SubState) (toSender, toReceiver []string) {
	delivered := sa != sb || ra != rb
	if typ == "subscribe" {
		delivered = !rb.From && !rb.PendingIn
	}
	if delivered {
		toReceiver = append(toReceiver, typ+"<"+sender+">")
	}
	if !sb.From && sa.From {
		toReceiver = append(toReceiver, "available<"+sender+">")
	}
	if sb.From && !sa.From {
		toReceiver = append(toReceiver, "unavailable<"+sender+">")
	}
	if !rb.From && ra.From {
		toSender = append(toSender, "available<"+receiver+">")
	}
	if rb.From && !ra.From {
		toSender = append(toSender, "unavailable<"+receiver+">")
	}
	return toSender, toReceiver
}
