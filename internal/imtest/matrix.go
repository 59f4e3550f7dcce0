package imtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The delivery matrix of RFC 6121 section 8.5: stanzas of every kind sent
// to a local account's bare JID, to the full JID of each of its resources
// and to a full JID with no session, for accounts whose resources have the
// priorities of each case, and to an account that does not exist (8.5.1).

// MatrixCase is one account set-up: the priority of each of its available
// resources, or no account at all.
type MatrixCase struct {
	Name       string
	Priorities []int
	NoAccount  bool
}

// MatrixCases are the set-ups the matrix runs.
var MatrixCases = []MatrixCase{
	{Name: "[1,1,-1,1]", Priorities: []int{1, 1, -1, 1}},
	{Name: "[0]", Priorities: []int{0}},
	{Name: "[-1]", Priorities: []int{-1}},
	{Name: "[5,3]", Priorities: []int{5, 3}},
	{Name: "[-1,-5]", Priorities: []int{-1, -5}},
	{Name: "[0,0,2]", Priorities: []int{0, 0, 2}},
	{Name: "[]", Priorities: nil},
	{Name: "no-such-account", NoAccount: true},
}

// Kinds are the stanzas sent to each address: the five message types,
// directed available and unavailable presence, and IQ gets (a ping and a
// payload no one serves).
var Kinds = []string{"normal", "chat", "headline", "groupchat", "error", "available", "unavailable", "iq-ping", "iq-other"}

// stanza is the stanza of kind sent to to; label names it in the
// expectations (message body, IQ id).
func stanzaFor(kind, to, label string) string {
	switch kind {
	case "available":
		return "<presence to='" + to + "'/>"
	case "unavailable":
		return "<presence to='" + to + "' type='unavailable'/>"
	case "iq-ping":
		return "<iq type='get' id='" + label + "' to='" + to + "'><ping xmlns='" + NSPing + "'/></iq>"
	case "iq-other":
		return "<iq type='get' id='" + label + "' to='" + to + "'><query xmlns='urn:example:matrix'/></iq>"
	case "error":
		return "<message to='" + to + "' type='error'><body>" + label + "</body><error type='cancel'>" +
			"<item-not-found xmlns='" + NSStanzas + "'/></error></message>"
	}
	return "<message to='" + to + "' type='" + kind + "'><body>" + label + "</body></message>"
}

// Expected is what a stanza of kind to a target causes: which resources
// (indexes into the priorities) get it, what the sender gets back, and
// whether it is stored offline. target is "bare", "full:<k>" or
// "full:missing"; the sender is not subscribed to the account.
func Expected(c MatrixCase, target, kind, sender, label string) (resources []int, toSender []string, stored bool) {
	unavailable := "service-unavailable"
	isMessage := !strings.HasPrefix(kind, "iq-") && kind != "available" && kind != "unavailable"
	if c.NoAccount { // 8.5.1
		switch kind {
		case "normal", "chat", "groupchat":
			toSender = []string{"message-error:" + unavailable}
		case "iq-ping", "iq-other":
			toSender = []string{"iq-error:" + label + ":" + unavailable}
		}
		return nil, toSender, false
	}
	prios := c.Priorities
	best := -1
	for _, p := range prios {
		best = max(best, p)
	}
	all := func(keep func(p int) bool) []int {
		var ks []int
		for k, p := range prios {
			if keep(p) {
				ks = append(ks, k)
			}
		}
		return ks
	}
	// bareMessage is 8.5.2.1.1 and 8.5.2.2.1.
	bareMessage := func() ([]int, []string, bool) {
		switch kind {
		case "normal", "chat":
			if best < 0 {
				return nil, nil, true
			}
			return all(func(p int) bool { return p == best }), nil, false
		case "headline":
			return all(func(p int) bool { return p >= 0 }), nil, false
		case "groupchat":
			return nil, []string{"message-error:" + unavailable}, false
		}
		return nil, nil, false // error: dropped
	}
	switch {
	case target == "bare" && isMessage:
		return bareMessage()
	case target == "bare" && (kind == "available" || kind == "unavailable"):
		// 8.5.2.1.2: every available resource; 8.5.2.2.2: none, ignored.
		return all(func(int) bool { return true }), nil, false
	case target == "bare" && kind == "iq-ping":
		// 8.5.2.1.3 and 8.5.2.2.3: the server answers for the account.
		return nil, []string{"iq-result:" + label}, false
	case target == "bare":
		return nil, []string{"iq-error:" + label + ":" + unavailable}, false
	case target != "full:missing":
		// 8.5.3.1: the resource gets everything.
		var k int
		fmt.Sscanf(target, "full:%d", &k)
		return []int{k}, nil, false
	case kind == "chat":
		// 8.5.3.2.1: as if sent to the bare JID.
		return bareMessage()
	case kind == "normal" || kind == "groupchat":
		return nil, []string{"message-error:" + unavailable}, false
	case kind == "iq-ping" || kind == "iq-other":
		// 8.5.3.2.3.
		return nil, []string{"iq-error:" + label + ":" + unavailable}, false
	}
	// headline, error, presence to a missing resource: dropped
	// (8.5.3.2.1, 8.5.3.2.2).
	return nil, nil, false
}

// received is how a resource's Summary shows a stanza of kind.
func received(kind, sender, label string) string {
	switch kind {
	case "available", "unavailable":
		return kind + "<" + sender + ">"
	case "iq-ping", "iq-other":
		return "iq-get:" + label
	case "error":
		return "message-error:item-not-found"
	}
	return "message:" + label
}

// RunDeliveryMatrix runs each MatrixCase with its own sender and account:
// the sender logs in on the first node, the account's resources on the
// nodes in turn from the last one, each sending initial presence with its
// priority. For each address every kind is sent, then the sender and each
// resource prove with a ping round trip that they got exactly what the
// RFC says. Messages stored offline are checked at a later login, in
// order and with a delay stamp.
func RunDeliveryMatrix(t *testing.T, e *Env) {
	names := make([]string, len(MatrixCases))
	for i, c := range MatrixCases {
		names[i] = c.Name
	}
	e.run(t, names, func(t *testing.T, i int) {
		c := MatrixCases[i]
		senderName, ownerName := fmt.Sprintf("%ss%d", e.Prefix, i), fmt.Sprintf("%so%d", e.Prefix, i)
		if c.NoAccount {
			e.CreateAccounts(t, senderName)
		} else {
			e.CreateAccounts(t, senderName, ownerName)
		}
		sender := e.Login(t, senderName, "r", 0)
		var res []*Conn
		for k, p := range c.Priorities {
			r := e.Login(t, ownerName, fmt.Sprintf("r%d", k), len(e.Addrs)-1+k)
			r.Send(fmt.Sprintf("<presence><priority>%d</priority></presence>", p))
			r.Sync() // its presence is routed: the others got it before the next Sync
			res = append(res, r)
		}
		for _, r := range res {
			r.Sync()
		}
		targets := []string{"bare"}
		for k := range c.Priorities {
			targets = append(targets, fmt.Sprintf("full:%d", k))
		}
		targets = append(targets, "full:missing")
		var stored []string
		for _, target := range targets {
			to := sender.Bare(ownerName)
			switch {
			case target == "full:missing":
				to += "/missing"
			case target != "bare":
				to += "/r" + strings.TrimPrefix(target, "full:")
			}
			var wantSender []string
			wantRes := make([][]string, len(res))
			for _, kind := range Kinds {
				label := target + "-" + kind
				sender.Send(stanzaFor(kind, to, label))
				ks, back, st := Expected(c, target, kind, senderName, label)
				wantSender = append(wantSender, back...)
				for _, k := range ks {
					wantRes[k] = append(wantRes[k], received(kind, senderName, label))
				}
				if st {
					stored = append(stored, label)
				}
			}
			if got := Summary(sender.Sync()); !slices.Equal(got, wantSender) {
				t.Errorf("to %s: sender got %v, want %v", target, got, wantSender)
			}
			for k, r := range res {
				if got := Summary(r.Sync()); !slices.Equal(got, wantRes[k]) {
					t.Errorf("to %s: resource %d (priority %d) got %v, want %v", target, k, c.Priorities[k], got, wantRes[k])
				}
			}
		}
		if len(stored) == 0 {
			return
		}
		// XEP-0160: delivered after the next initial presence, in order,
		// with a delay stamp.
		late := e.Login(t, ownerName, "late", len(e.Addrs)-1)
		late.Send("<presence/>")
		var bodies []string
		for _, n := range late.Sync() {
			if !n.Is(NSClient, "message") {
				continue
			}
			bodies = append(bodies, n.Child(NSClient, "body").Text)
			if d := n.Child("urn:xmpp:delay", "delay"); d == nil || d.Attr("from") != e.Domain {
				t.Errorf("offline message without a delay stamp from %s: %s", e.Domain, n)
			}
		}
		if !slices.Equal(bodies, stored) {
			t.Errorf("offline delivery %v, want %v", bodies, stored)
		}
	})
}
