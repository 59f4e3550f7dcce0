package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

const nsRoster = "jabber:iq:roster"

// Subscription is the subscription state of a roster item (RFC 6121
// section 2.1.2.5).
type Subscription string

// Subscription states; SubscriptionRemove appears only in roster sets and
// pushes.
const (
	SubscriptionNone   Subscription = "none"
	SubscriptionTo     Subscription = "to"
	SubscriptionFrom   Subscription = "from"
	SubscriptionBoth   Subscription = "both"
	SubscriptionRemove Subscription = "remove"
)

// RosterItem is one contact (RFC 6121 section 2.1.2).
type RosterItem struct {
	JID          jid.JID
	Name         string
	Subscription Subscription // SubscriptionNone when absent
	Ask          bool         // ask='subscribe': our request is pending
	Approved     bool         // pre-approved subscription (section 3.4)
	Groups       []string
}

// Roster is the result of a roster get.
type Roster struct {
	Ver   string // roster version (section 2.6), "" when not versioned
	Items []RosterItem
}

// RosterPush is a change the server pushed (section 2.1.6).
type RosterPush struct {
	Ver  string
	Item RosterItem
}

// Roster fetches the roster (RFC 6121 section 2.1.3). A server without
// roster support answers with a stanza error, returned as *stanza.Error.
func (c *Client) Roster(ctx context.Context) (Roster, error) {
	iq := dom.New(stream.NSClient, "iq", "type", "get").Append(dom.New(nsRoster, "query"))
	res, err := c.IQ(ctx, iq)
	if err != nil {
		return Roster{}, err
	}
	q := res.Child(nsRoster, "query")
	if q == nil {
		// Section 2.1.3: an empty result means the roster has not changed
		// since the version asked for; we ask for none, so it is empty.
		return Roster{}, nil
	}
	r := Roster{Ver: q.Attr("ver")}
	for _, it := range q.Children() {
		if it.Space != nsRoster || it.Local != "item" {
			continue
		}
		item, err := parseRosterItem(it)
		if err != nil {
			c.log.Warn("xmpp client: roster item with a bad JID skipped", "jid", it.Attr("jid"), "err", err)
			continue
		}
		r.Items = append(r.Items, item)
	}
	return r, nil
}

// SetRosterItem adds or updates a contact (section 2.3). Only the JID, the
// name and the groups are sent: the subscription fields belong to the
// server.
func (c *Client) SetRosterItem(ctx context.Context, item RosterItem) error {
	if item.JID.IsZero() {
		return errors.New("client: roster item without a JID")
	}
	it := dom.New(nsRoster, "item", "jid", item.JID.String())
	if item.Name != "" {
		it.SetAttr("name", item.Name)
	}
	for _, g := range item.Groups {
		it.Append(dom.New(nsRoster, "group").AppendText(g))
	}
	return c.rosterSet(ctx, it)
}

// RemoveRosterItem removes a contact (section 2.5); the server also
// cancels the subscriptions both ways.
func (c *Client) RemoveRosterItem(ctx context.Context, contact jid.JID) error {
	return c.rosterSet(ctx, dom.New(nsRoster, "item", "jid", contact.String(), "subscription", string(SubscriptionRemove)))
}

func (c *Client) rosterSet(ctx context.Context, item *dom.Element) error {
	iq := dom.New(stream.NSClient, "iq", "type", "set").Append(dom.New(nsRoster, "query").Append(item))
	_, err := c.IQ(ctx, iq)
	return err
}

// NextRosterPush returns the next roster push, waiting like NextMessage.
// Pushes are acknowledged as they arrive, whether or not anyone reads them.
func (c *Client) NextRosterPush(ctx context.Context) (RosterPush, error) {
	return c.pushes.next(ctx, c.done, c.endErr)
}

// rosterPush answers and queues a roster push (section 2.1.6). A push that
// does not come from the account itself (no 'from', or our bare JID) may be
// an attempt to plant contacts, so it is refused and not queued.
func (c *Client) rosterPush(iq, query *dom.Element) {
	from, err := parseAddr(iq.Attr("from"))
	if err != nil || !(from.IsZero() || from == c.jid.Bare()) {
		c.log.Warn("xmpp client: roster push from another entity refused", "from", iq.Attr("from"))
		c.replyError(iq, &stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		return
	}
	items := query.Children()
	if len(items) != 1 || items[0].Space != nsRoster || items[0].Local != "item" {
		c.log.Warn("xmpp client: roster push without exactly one item", "items", len(items))
		c.replyError(iq, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		return
	}
	item, err := parseRosterItem(items[0])
	if err != nil {
		c.log.Warn("xmpp client: roster push with a bad JID", "jid", items[0].Attr("jid"), "err", err)
		c.replyError(iq, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		return
	}
	c.reply(iqReply(iq))
	if c.pushes.push(RosterPush{Ver: query.Attr("ver"), Item: item}) {
		c.log.Warn("xmpp client: roster push queue full, oldest push dropped", "limit", c.cfg.QueueLimit)
	}
}

func parseRosterItem(it *dom.Element) (RosterItem, error) {
	j, err := jid.Parse(it.Attr("jid"))
	if err != nil {
		return RosterItem{}, fmt.Errorf("%w: roster item jid: %w", ErrBadReply, err)
	}
	item := RosterItem{
		JID:          j,
		Name:         it.Attr("name"),
		Subscription: Subscription(it.Attr("subscription")),
		Ask:          it.Attr("ask") == "subscribe",
		Approved:     it.Attr("approved") == "true" || it.Attr("approved") == "1",
	}
	if item.Subscription == "" {
		item.Subscription = SubscriptionNone
	}
	for _, g := range it.Children() {
		if g.Space == nsRoster && g.Local == "group" {
			item.Groups = append(item.Groups, g.Text())
		}
	}
	return item, nil
}

// Subscribe asks contact for a subscription to its presence (RFC 6121
// section 3.1.1). The request goes to the bare JID.
func (c *Client) Subscribe(ctx context.Context, contact jid.JID) error {
	return c.SendPresence(ctx, Presence{To: contact.Bare(), Type: PresenceSubscribe})
}

// Unsubscribe cancels our subscription to contact's presence (section 3.3).
func (c *Client) Unsubscribe(ctx context.Context, contact jid.JID) error {
	return c.SendPresence(ctx, Presence{To: contact.Bare(), Type: PresenceUnsubscribe})
}

// ApproveSubscription lets contact see our presence: it answers a
// subscription request, or pre-approves one (sections 3.1.4 and 3.4).
func (c *Client) ApproveSubscription(ctx context.Context, contact jid.JID) error {
	return c.SendPresence(ctx, Presence{To: contact.Bare(), Type: PresenceSubscribed})
}

// DenySubscription refuses a subscription request from contact, or cancels
// one already granted (sections 3.1.4 and 3.2).
func (c *Client) DenySubscription(ctx context.Context, contact jid.JID) error {
	return c.SendPresence(ctx, Presence{To: contact.Bare(), Type: PresenceUnsubscribed})
}

// Online fetches the roster, then sends initial presence p, in the order
// RFC 6121 section 4.2.1 recommends so that the presence of contacts that
// follows is not missed. p is usually Presence{} (available); its To and
// Type are ignored. When the roster fetch fails, no presence is sent and
// the error is returned (a *stanza.Error when the server answered).
func (c *Client) Online(ctx context.Context, p Presence) (Roster, error) {
	r, err := c.Roster(ctx)
	if err != nil {
		return Roster{}, fmt.Errorf("client: roster before initial presence: %w", err)
	}
	p.To, p.Type = jid.JID{}, PresenceAvailable
	if err := c.SendPresence(ctx, p); err != nil {
		return r, err
	}
	return r, nil
}
