package c2s

import (
	"sync"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

const nsRoster = "jabber:iq:roster"

// rebindState is what the registry knew of a session beyond its address,
// kept by the session so that Rebind can restore it when the registry
// removed the session (a new epoch): availability, priority and last
// presence (RFC 6121 4.2, 4.4, for probes and bare-JID routing) and
// whether it requested its roster (2.1.6). The reader writes it; Rebind
// reads it from another goroutine.
type rebindState struct {
	mu              sync.Mutex
	available       bool
	priority        int32
	last            []byte
	rosterRequested bool
}

// noteSent records what a stanza the session published tells the
// registry: a presence broadcast sets availability, priority and last
// presence, as the router records them; a roster get makes the session
// interested in pushes.
func (c *conn) noteSent(el *dom.Element, to jid.JID) {
	switch {
	case el.Local == stanza.Presence && to.IsZero() && (el.Attr("type") == "" || el.Attr("type") == "unavailable"):
		available := el.Attr("type") == ""
		var prio int32
		var last []byte
		if available {
			prio, _ = stanza.Priority(el) // the router answers a bad one
			last = el.Marshal()
		}
		c.rb.mu.Lock()
		c.rb.available, c.rb.priority, c.rb.last = available, prio, last
		c.rb.mu.Unlock()
	case el.Local == stanza.IQ && el.Attr("type") == "get" && el.Child(nsRoster, "query") != nil &&
		(to.IsZero() || to == c.jid.Bare()):
		c.rb.mu.Lock()
		c.rb.rosterRequested = true
		c.rb.mu.Unlock()
	}
}

// bindRequest is the Bind that registers the session, with what it had
// when it is bound again.
func (c *conn) bindRequest(node string) *presencev1.BindRequest {
	c.rb.mu.Lock()
	defer c.rb.mu.Unlock()
	return &presencev1.BindRequest{
		Jid: c.jid.String(), Node: node, SessionId: c.sessionID,
		Available: c.rb.available, Priority: c.rb.priority, LastPresence: c.rb.last,
		RosterRequested: c.rb.rosterRequested,
	}
}
