package imtest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Service discovery (XEP-0030): every feature the server domain or an
// account advertises in disco#info is exercised by a check here, and a
// feature with no check fails the test, so that nothing is advertised that
// is not tested.

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
)

// discoCheck exercises one feature of the entity to, asked by c; other is
// an account with no session, for features about offline delivery.
type discoCheck func(t *testing.T, e *Env, c *Conn, to, other string)

var discoChecks = map[string]discoCheck{
	nsDiscoInfo: func(t *testing.T, e *Env, c *Conn, to, _ string) {
		res, _ := c.IQ("get", to, "<query xmlns='"+nsDiscoInfo+"'/>")
		if q := res.Child(nsDiscoInfo, "query"); res.Attr("type") != "result" || q.Child(nsDiscoInfo, "identity") == nil {
			t.Errorf("disco#info of %s: %s, want a result with an identity", to, res)
		}
	},
	nsDiscoItems: func(t *testing.T, e *Env, c *Conn, to, _ string) {
		res, _ := c.IQ("get", to, "<query xmlns='"+nsDiscoItems+"'/>")
		if res.Attr("type") != "result" || res.Child(nsDiscoItems, "query") == nil {
			t.Errorf("disco#items of %s: %s, want a result", to, res)
		}
	},
	// XEP-0199: the server answers for itself and for an account's bare
	// JID (RFC 6121 8.5.2.1.3).
	NSPing: func(t *testing.T, e *Env, c *Conn, to, _ string) {
		res, _ := c.IQ("get", to, "<ping xmlns='"+NSPing+"'/>")
		if res.Attr("type") != "result" || res.Attr("from") != to {
			t.Errorf("ping to %s: %s, want a result from it", to, res)
		}
	},
	// XEP-0160: a message to an account with no available resource is
	// delivered after its next initial presence, with a delay stamp.
	"msgoffline": func(t *testing.T, e *Env, c *Conn, _, other string) {
		body := fmt.Sprintf("offline %d", time.Now().UnixNano())
		c.Send("<message to='" + c.Bare(other) + "' type='chat'><body>" + body + "</body></message>")
		if got := Summary(c.Sync()); len(got) != 0 {
			t.Errorf("sender of a message to an offline account got %v", got)
		}
		o := e.Login(t, other, "late", len(e.Addrs)-1)
		o.Send("<presence/>")
		for _, n := range o.Sync() {
			if n.Is(NSClient, "message") && n.Child(NSClient, "body").Text == body {
				if n.Child("urn:xmpp:delay", "delay") == nil {
					t.Errorf("offline message without a delay stamp: %s", n)
				}
				return
			}
		}
		t.Errorf("the message to %s was not delivered at its next login", other)
	},
}

// RunDiscoFeatures asks the server domain and an account for disco#info
// and runs the check of every feature each advertises.
func RunDiscoFeatures(t *testing.T, e *Env) {
	asker, account, other := e.Prefix+"dx", e.Prefix+"dy", e.Prefix+"dz"
	e.CreateAccounts(t, asker, account, other)
	c := e.Login(t, asker, "r", 0)
	for _, to := range []string{e.Domain, c.Bare(account)} {
		res, _ := c.IQ("get", to, "<query xmlns='"+nsDiscoInfo+"'/>")
		q := res.Child(nsDiscoInfo, "query")
		if res.Attr("type") != "result" || q == nil {
			t.Fatalf("disco#info of %s: %s", to, res)
		}
		var features []string
		for i := range q.Nodes {
			if f := &q.Nodes[i]; f.Is(nsDiscoInfo, "feature") {
				features = append(features, f.Attr("var"))
			}
		}
		if !slices.Contains(features, nsDiscoInfo) {
			t.Errorf("%s does not advertise disco#info itself (XEP-0030 3.1): %v", to, features)
		}
		for _, f := range features {
			check := discoChecks[f]
			if check == nil {
				t.Errorf("%s advertises %q, which no check exercises", to, f)
				continue
			}
			t.Run(to+" "+f, func(t *testing.T) { check(t, e, c, to, other) })
		}
	}
}
