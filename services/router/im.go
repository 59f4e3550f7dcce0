package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// This file holds the IM side of the rules (RFC 6121 sections 2 to 4 and
// XEP-0160): rosters, subscriptions, presence to and from contacts and
// offline messages. The roster service keeps the data and the subscription
// state machine; the router parses and writes the XML and sends what the
// service's answers call for. docs/design/004-im-routing.md explains the
// choices.

// rosters is the roster service's RosterService as the router uses it;
// rosterv1.RosterServiceClient satisfies it.
type rosters interface {
	GetRoster(ctx context.Context, in *rosterv1.GetRosterRequest, opts ...grpc.CallOption) (*rosterv1.GetRosterResponse, error)
	SetItem(ctx context.Context, in *rosterv1.SetItemRequest, opts ...grpc.CallOption) (*rosterv1.SetItemResponse, error)
	RemoveItem(ctx context.Context, in *rosterv1.RemoveItemRequest, opts ...grpc.CallOption) (*rosterv1.RemoveItemResponse, error)
	ApplySubscription(ctx context.Context, in *rosterv1.ApplySubscriptionRequest, opts ...grpc.CallOption) (*rosterv1.ApplySubscriptionResponse, error)
	PendingSubscriptions(ctx context.Context, in *rosterv1.PendingSubscriptionsRequest, opts ...grpc.CallOption) (*rosterv1.PendingSubscriptionsResponse, error)
	SubscribersOf(ctx context.Context, in *rosterv1.SubscribersOfRequest, opts ...grpc.CallOption) (*rosterv1.ContactsResponse, error)
	ContactsOf(ctx context.Context, in *rosterv1.ContactsOfRequest, opts ...grpc.CallOption) (*rosterv1.ContactsResponse, error)
	StoreOffline(ctx context.Context, in *rosterv1.StoreOfflineRequest, opts ...grpc.CallOption) (*rosterv1.StoreOfflineResponse, error)
	FetchOffline(ctx context.Context, in *rosterv1.FetchOfflineRequest, opts ...grpc.CallOption) (*rosterv1.FetchOfflineResponse, error)
	DeleteOffline(ctx context.Context, in *rosterv1.DeleteOfflineRequest, opts ...grpc.CallOption) (*rosterv1.DeleteOfflineResponse, error)
	ClaimOffline(ctx context.Context, in *rosterv1.ClaimOfflineRequest, opts ...grpc.CallOption) (*rosterv1.FetchOfflineResponse, error)
}

const (
	nsClient     = "jabber:client"
	nsDiscoItems = "http://jabber.org/protocol/disco#items" // XEP-0030
	nsMsgOffline = "msgoffline"                             // XEP-0160 section 5
)

// Roster management: RFC 6121 section 2.

// roster answers a jabber:iq:roster get or set from a local account.
func (j *job) roster(req, q *dom.Element) {
	if !j.r.local(j.from.Domainpart()) {
		// Only an account's own resources manage its roster (2.1.5).
		j.bounceElement(req, stanza.Forbidden)
		return
	}
	user := j.from.Bare().String()
	self := j.st.Origin
	switch j.st.Type {
	case typeGet:
		// A resource that requests the roster is interested (2.1.6),
		// for every router: the flag is in the registry.
		j.setRosterRequested()
		resp, err := j.r.rosters.GetRoster(j.callCtx(), &rosterv1.GetRosterRequest{
			User: user, To: req.Attr("to"), Ver: q.Attr("ver"),
		})
		if err != nil {
			j.rosterFailed(req, "GetRoster", err)
			return
		}
		res := result(req)
		switch {
		case resp.GetUnchanged():
			// 2.6.3: an empty result.
			j.reply(res)
		case resp.GetIncremental():
			// 2.6.3: an empty result, then the pushes in order, to this
			// resource only.
			j.reply(res)
			for _, p := range resp.GetPushes() {
				j.push(self.Node, self.Session, j.from.String(), p)
			}
		default:
			rq := dom.New(nsRoster, "query")
			if resp.GetVer() != "" {
				rq.SetAttr("ver", resp.GetVer())
			}
			for _, it := range resp.GetItems() {
				rq.Append(itemElement(it))
			}
			j.reply(res.Append(rq))
		}
	case typeSet:
		items := q.Children()
		if len(items) == 1 && items[0].Space == nsRoster && items[0].Attr("subscription") == "remove" {
			j.rosterRemove(req, items[0])
			return
		}
		in := &rosterv1.SetItemRequest{User: user, To: req.Attr("to")}
		for _, it := range items {
			if it.Space != nsRoster || it.Local != "item" {
				continue
			}
			ri := &rosterv1.RosterItem{Jid: it.Attr("jid"), Name: it.Attr("name")}
			for _, g := range it.Children() {
				if g.Space == nsRoster && g.Local == "group" {
					ri.Groups = append(ri.Groups, g.Text())
				}
			}
			in.Items = append(in.Items, ri)
		}
		resp, err := j.r.rosters.SetItem(j.callCtx(), in)
		if err != nil {
			j.rosterFailed(req, "SetItem", err)
			return
		}
		j.reply(result(req))
		if p := resp.GetPush(); p != nil {
			j.pushAll(j.from.Bare(), p)
		}
	}
}

// rosterRemove answers a roster set with subscription='remove' (2.5):
// result, push, then the unsubscribe/unsubscribed the service hands back,
// routed as the user's outbound stanzas.
func (j *job) rosterRemove(req, item *dom.Element) {
	user := j.from.Bare()
	resp, err := j.r.rosters.RemoveItem(j.callCtx(), &rosterv1.RemoveItemRequest{
		User: user.String(), To: req.Attr("to"), Jid: item.Attr("jid"),
	})
	if err != nil {
		j.rosterFailed(req, "RemoveItem", err)
		return
	}
	j.reply(result(req))
	if p := resp.GetPush(); p != nil {
		j.pushAll(user, p)
	}
	contact, err := jid.Parse(item.Attr("jid"))
	if err != nil {
		return
	}
	contact = contact.Bare()
	if resp.GetSendUnavailable() {
		j.sendUnavailableOf(user, contact)
	}
	for _, p := range resp.GetPresences() {
		el, err := decodeElement(p.GetRaw())
		if err != nil {
			j.r.log.Warn("router: undecodable presence from RemoveItem", append(j.attrs(), "err", err)...)
			continue
		}
		j.forwardSubscription(user, contact, p.GetType(), el, 1)
	}
}

// rosterFailed answers a failed roster call: the service's stanza
// condition when it gave one, <internal-server-error/> otherwise.
func (j *job) rosterFailed(req *dom.Element, call string, err error) {
	if cond, ok := conditionOf(err); ok {
		j.bounceElement(req, cond)
		return
	}
	j.backendFailed(call, err)
}

// conditionOf reads the stanza error condition a roster service error
// carries (its google.rpc.ErrorInfo of domain "xmpp").
func conditionOf(err error) (stanza.Condition, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return "", false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "xmpp" {
			if c := stanza.Condition(info.GetReason()); c.Known() {
				return c, true
			}
		}
	}
	switch st.Code() {
	case codes.ResourceExhausted:
		return stanza.ServiceUnavailable, true
	case codes.NotFound:
		return stanza.ItemNotFound, true
	}
	return "", false
}

// itemElement is a roster item as RFC 6121 section 2.1.2 writes it.
func itemElement(it *rosterv1.RosterItem) *dom.Element {
	el := dom.New(nsRoster, "item", "jid", it.GetJid())
	if it.GetName() != "" {
		el.SetAttr("name", it.GetName())
	}
	if s := it.GetSubscription(); s != "" {
		el.SetAttr("subscription", s)
	}
	if it.GetAsk() {
		el.SetAttr("ask", "subscribe")
	}
	if it.GetApproved() {
		el.SetAttr("approved", "true")
	}
	for _, g := range it.GetGroups() {
		el.Append(dom.New(nsRoster, "group").AppendText(g))
	}
	return el
}

// pushAll sends a roster push to every interested resource of the local
// account user (2.1.6): the sessions that requested the roster (a flag in
// the registry, so a push made by another router, such as one caused by an
// inbound subscription routed on the sender's partition, finds them), and
// every available session, since a client may have its roster from an
// earlier session or version.
func (j *job) pushAll(user jid.JID, p *rosterv1.RosterPush) {
	sessions, ok := j.lookup(user)
	if !ok {
		return
	}
	for _, s := range sessions {
		if s.Available || s.RosterRequested {
			j.push(s.Node, s.SessionId, s.Jid, p)
		}
	}
}

// push sends one roster push (2.1.6) to a session.
func (j *job) push(node, session, to string, p *rosterv1.RosterPush) {
	q := dom.New(nsRoster, "query")
	if p.GetVer() != "" {
		q.SetAttr("ver", p.GetVer())
	}
	q.Append(itemElement(p.GetItem()))
	id := "push-" + randomID()
	el := dom.New(nsClient, "iq", "type", typeSet, "id", id, "to", to).Append(q)
	j.add(node, &busv1.Delivery{
		Session: session,
		Action:  busv1.Action_ACTION_DELIVER,
		Kind:    busv1.Kind_KIND_IQ,
		Type:    typeSet,
		To:      to,
		Id:      id,
		Raw:     el.Marshal(),
	})
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Subscriptions: RFC 6121 section 3 and appendix A, applied one side at a
// time as 003-im.md describes.

// maxSubscriptionDepth bounds the chain of stanzas one stanza may cause
// (an approval answered automatically, a removal's two stanzas).
const maxSubscriptionDepth = 3

// subscription routes presence of a subscription type addressed to to.
func (j *job) subscription(to jid.JID) {
	el, err := decodeElement(j.st.Raw)
	if err != nil {
		j.r.log.Warn("router: undecodable subscription presence dropped", append(j.attrs(), "err", err)...)
		return
	}
	contact := to.Bare()
	if j.r.local(j.from.Domainpart()) {
		if contact.Localpart() == "" && j.r.local(contact.Domainpart()) {
			j.drop("subscription presence to the server")
			return
		}
		j.outboundSubscription(j.from.Bare(), contact, j.st.Type, el, 0, false)
		return
	}
	// From a remote server, through s2s: the remote side was applied
	// there; only ours is left.
	if !j.r.local(contact.Domainpart()) || contact.Localpart() == "" {
		j.drop("remote subscription presence not for a local account")
		return
	}
	j.inboundSubscription(contact, j.from.Bare(), j.st.Type, el, 0)
}

// outboundSubscription applies a subscription stanza sent by the local
// account user to contact (3.1.2, 3.2.2, 3.3.2, 3.4, A.2). always routes it
// even when the user's state did not change: the server's automatic
// subscribed (3.1.3) answers a contact that asked, whatever the state here.
func (j *job) outboundSubscription(user, contact jid.JID, typ string, el *dom.Element, depth int, always bool) {
	el.SetAttr("from", user.String())
	el.SetAttr("to", contact.String())
	resp, err := j.r.rosters.ApplySubscription(j.callCtx(), &rosterv1.ApplySubscriptionRequest{
		User: user.String(), Contact: contact.String(),
		Direction: rosterv1.Direction_DIRECTION_OUTBOUND, Type: typ, Raw: el.Marshal(),
	})
	if err != nil {
		j.r.log.Error("router: ApplySubscription failed", append(j.attrs(), "user", user.String(), "err", err)...)
		return
	}
	// RFC 6121 3.1.5 and 3.2.2: the roster push, then the stanza routed to
	// the contact, then the presence (or unavailable) that follows it.
	j.rosterPushOf(user, resp)
	if resp.GetForward() || always {
		j.forwardSubscription(user, contact, typ, el, depth)
	}
	j.presenceEffects(user, contact, resp)
}

// forwardSubscription carries an outbound subscription stanza of user to
// contact: applied as inbound on a local contact's side, handed to s2s for
// a remote one.
func (j *job) forwardSubscription(user, contact jid.JID, typ string, el *dom.Element, depth int) {
	el.SetAttr("from", user.String())
	el.SetAttr("to", contact.String())
	if !j.r.local(contact.Domainpart()) {
		j.toRemote(contact.Domainpart(), j.serverStanza(busv1.Kind_KIND_PRESENCE, el), false)
		return
	}
	j.inboundSubscription(contact, user, typ, el, depth)
}

// inboundSubscription applies a subscription stanza from contact to the
// local account user (3.1.3, 3.1.5, 3.2.3, 3.3.3, A.3).
func (j *job) inboundSubscription(user, contact jid.JID, typ string, el *dom.Element, depth int) {
	exists, ok := j.accountExists(user)
	if !ok {
		return
	}
	if !exists {
		// 3.1.3: a request for an account that does not exist is
		// answered with unsubscribed; other types are ignored.
		if typ == "subscribe" && depth < maxSubscriptionDepth {
			reply := dom.New(nsClient, "presence", "type", "unsubscribed")
			j.forwardSubscription(user, contact, "unsubscribed", reply, depth+1)
		}
		return
	}
	resp, err := j.r.rosters.ApplySubscription(j.callCtx(), &rosterv1.ApplySubscriptionRequest{
		User: user.String(), Contact: contact.String(),
		Direction: rosterv1.Direction_DIRECTION_INBOUND, Type: typ, Raw: el.Marshal(),
	})
	if err != nil {
		j.r.log.Error("router: ApplySubscription failed", append(j.attrs(), "user", user.String(), "err", err)...)
		return
	}
	j.rosterPushOf(user, resp)
	if resp.GetForward() {
		j.presenceToAvailable(user, contact.String(), typ, el)
	}
	j.presenceEffects(user, contact, resp)
	if depth >= maxSubscriptionDepth {
		return
	}
	for _, a := range resp.GetAutoReplies() {
		rel, err := decodeElement(a.GetRaw())
		if err != nil {
			j.r.log.Warn("router: undecodable automatic reply", append(j.attrs(), "err", err)...)
			continue
		}
		j.outboundSubscription(user, contact, a.GetType(), rel, depth+1, true)
	}
}

// rosterPushOf sends the roster push a subscription change of user's item
// calls for.
func (j *job) rosterPushOf(user jid.JID, resp *rosterv1.ApplySubscriptionResponse) {
	if p := resp.GetPush(); p != nil {
		j.pushAll(user, p)
	}
}

// presenceEffects sends user's presence, or unavailable presence, to a
// contact that gained or lost 'from'; it follows the subscription stanza.
func (j *job) presenceEffects(user, contact jid.JID, resp *rosterv1.ApplySubscriptionResponse) {
	if resp.GetSendPresence() {
		j.sendPresenceOf(user, contact)
	}
	if resp.GetSendUnavailable() {
		j.sendUnavailableOf(user, contact)
	}
}

// sendPresenceOf sends the last presence of each available resource of the
// local account user to contact (3.1.5, 4.3.2).
func (j *job) sendPresenceOf(user, contact jid.JID) {
	sessions, ok := j.lookupFresh(user)
	if !ok {
		return
	}
	for _, s := range sessions {
		if !s.Available || len(s.LastPresence) == 0 {
			continue
		}
		el, err := decodeElement(s.LastPresence)
		if err != nil {
			continue
		}
		el.SetAttr("from", s.Jid)
		el.SetAttr("to", contact.String())
		j.presenceTo(contact, s.Jid, "", el)
	}
}

// sendUnavailableOf sends unavailable presence from each available resource
// of user to contact (3.2.2, 3.3.3, 2.5.2).
func (j *job) sendUnavailableOf(user, contact jid.JID) {
	sessions, ok := j.lookup(user)
	if !ok {
		return
	}
	for _, s := range sessions {
		if s.Available {
			el := dom.New(nsClient, "presence", "from", s.Jid, "to", contact.String(), "type", typeUnavailable)
			j.presenceTo(contact, s.Jid, typeUnavailable, el)
		}
	}
}

// presenceTo sends presence el from from to the address to: a remote one
// through s2s; a local bare JID to each available resource; a local full
// JID to that resource if it is available.
func (j *job) presenceTo(to jid.JID, from, typ string, el *dom.Element) {
	if !j.r.local(to.Domainpart()) {
		j.toRemote(to.Domainpart(), j.serverStanza(busv1.Kind_KIND_PRESENCE, el), false)
		return
	}
	if to.Localpart() == "" {
		return
	}
	if to.IsBare() {
		j.presenceToAvailable(to, from, typ, el)
		return
	}
	s, ok := j.lookupFull(to)
	if !ok || s == nil || !s.Available {
		return
	}
	j.deliverElement(s, busv1.Kind_KIND_PRESENCE, typ, from, el)
}

// presenceToAvailable delivers el to every available resource of the local
// account user.
func (j *job) presenceToAvailable(user jid.JID, from, typ string, el *dom.Element) {
	sessions, ok := j.lookup(user)
	if !ok {
		return
	}
	raw := el.Marshal()
	for _, s := range sessions {
		if s.Available {
			j.add(s.Node, &busv1.Delivery{
				Session: s.SessionId, Action: busv1.Action_ACTION_DELIVER,
				Kind: busv1.Kind_KIND_PRESENCE, Type: typ, From: from, To: el.Attr("to"),
				Id: el.Attr("id"), Raw: raw,
			})
		}
	}
}

// deliverElement delivers el, a stanza the server made or rewrote, to s.
func (j *job) deliverElement(s *presencev1.Session, kind busv1.Kind, typ, from string, el *dom.Element) {
	j.outcomes.Add(metrics.Delivered)
	j.add(s.Node, &busv1.Delivery{
		Session: s.SessionId, Action: busv1.Action_ACTION_DELIVER,
		Kind: kind, Type: typ, From: from, To: el.Attr("to"), Id: el.Attr("id"), Raw: el.Marshal(),
	})
}

// serverStanza is el as an envelope for s2s, stamped with this stanza's
// origin and seq.
func (j *job) serverStanza(kind busv1.Kind, el *dom.Element) *busv1.Stanza {
	return &busv1.Stanza{
		From: el.Attr("from"), To: el.Attr("to"), Kind: kind, Type: el.Attr("type"), Id: el.Attr("id"),
		Origin: j.st.Origin, Seq: j.st.Seq, Raw: el.Marshal(),
	}
}

// Presence to and from contacts: RFC 6121 section 4.

// contactsBroadcast sends a local sender's broadcast presence (available or
// unavailable) to the subscribers of its account (4.2.2, 4.4.2, 4.5.2) and
// returns them as bare JID strings.
func (j *job) contactsBroadcast(typ string) map[string]bool {
	resp, err := j.r.rosters.SubscribersOf(j.callCtx(), &rosterv1.SubscribersOfRequest{User: j.from.Bare().String()})
	if err != nil {
		j.backendFailed("SubscribersOf", err)
		return nil
	}
	el, err := decodeElement(j.st.Raw)
	if err != nil {
		return nil
	}
	el.SetAttr("from", j.from.String())
	subs := make(map[string]bool, len(resp.GetJids()))
	for _, s := range resp.GetJids() {
		to, err := jid.Parse(s)
		if err != nil {
			continue
		}
		subs[to.Bare().String()] = true
		el.SetAttr("to", to.String())
		j.presenceTo(to, j.from.String(), typ, el)
	}
	return subs
}

// probeContacts answers, for a new available resource, the probes its
// initial presence implies (4.2.2, 4.3.2): local contacts (subscription to
// or both) from the registry, each available resource's last presence or,
// with none, unavailable from the bare JID; remote contacts get a probe
// through s2s.
func (j *job) probeContacts() {
	user := j.from.Bare()
	resp, err := j.r.rosters.ContactsOf(j.callCtx(), &rosterv1.ContactsOfRequest{User: user.String()})
	if err != nil {
		j.backendFailed("ContactsOf", err)
		return
	}
	self := j.st.Origin
	for _, c := range resp.GetJids() {
		contact, err := jid.Parse(c)
		if err != nil {
			continue
		}
		contact = contact.Bare()
		if !j.r.local(contact.Domainpart()) {
			probe := dom.New(nsClient, "presence", "from", user.String(), "to", contact.String(), "type", typeProbe)
			j.toRemote(contact.Domainpart(), j.serverStanza(busv1.Kind_KIND_PRESENCE, probe), false)
			continue
		}
		sessions, ok := j.lookupFresh(contact)
		if !ok {
			return
		}
		n := 0
		for _, s := range sessions {
			if !s.Available || len(s.LastPresence) == 0 {
				continue
			}
			el, err := decodeElement(s.LastPresence)
			if err != nil {
				continue
			}
			el.SetAttr("from", s.Jid)
			el.SetAttr("to", j.from.String())
			j.add(self.Node, &busv1.Delivery{
				Session: self.Session, Action: busv1.Action_ACTION_DELIVER,
				Kind: busv1.Kind_KIND_PRESENCE, From: s.Jid, To: j.from.String(), Raw: el.Marshal(),
			})
			n++
		}
		if n == 0 {
			el := dom.New(nsClient, "presence", "from", contact.String(), "to", j.from.String(), "type", typeUnavailable)
			j.add(self.Node, &busv1.Delivery{
				Session: self.Session, Action: busv1.Action_ACTION_DELIVER,
				Kind: busv1.Kind_KIND_PRESENCE, Type: typeUnavailable, From: contact.String(), To: j.from.String(), Raw: el.Marshal(),
			})
		}
	}
}

// probe answers a probe from another server or a local client (4.3.2):
// the prober gets the last presence of each available resource of the
// local account it probes if it is a subscriber (or the account itself);
// otherwise nothing, which tells a stranger nothing.
func (j *job) probe(to jid.JID) {
	if !j.r.local(to.Domainpart()) || to.Localpart() == "" {
		if !j.r.local(to.Domainpart()) && j.r.local(j.from.Domainpart()) {
			j.toRemote(to.Domainpart(), j.st, false)
		}
		return
	}
	user := to.Bare()
	prober := j.from.Bare()
	if prober != user {
		resp, err := j.r.rosters.SubscribersOf(j.callCtx(), &rosterv1.SubscribersOfRequest{User: user.String()})
		if err != nil {
			j.backendFailed("SubscribersOf", err)
			return
		}
		if !slices.Contains(resp.GetJids(), prober.String()) {
			j.drop("probe from a non-subscriber")
			return
		}
	}
	sessions, ok := j.lookupFresh(user)
	if !ok {
		return
	}
	n := 0
	for _, s := range sessions {
		if !s.Available || len(s.LastPresence) == 0 {
			continue
		}
		el, err := decodeElement(s.LastPresence)
		if err != nil {
			continue
		}
		el.SetAttr("from", s.Jid)
		el.SetAttr("to", j.from.String())
		j.replyPresence(el)
		n++
	}
	if n == 0 {
		j.replyPresence(dom.New(nsClient, "presence", "from", user.String(), "to", j.from.String(), "type", typeUnavailable))
	}
}

// replyPresence sends presence el made by the server back to the sender.
func (j *job) replyPresence(el *dom.Element) {
	if !j.r.local(j.from.Domainpart()) {
		j.toRemote(j.from.Domainpart(), j.serverStanza(busv1.Kind_KIND_PRESENCE, el), false)
		return
	}
	o := j.st.Origin
	j.add(o.Node, &busv1.Delivery{
		Session: o.Session, Action: busv1.Action_ACTION_DELIVER,
		Kind: busv1.Kind_KIND_PRESENCE, Type: el.Attr("type"), From: el.Attr("from"), To: el.Attr("to"), Raw: el.Marshal(),
	})
}

// directedPresence notes (available) or forgets (unavailable) the target of
// a local session's directed presence (4.6) in the registry, so that the
// session's unavailable presence reaches it too, whichever router routes
// it.
func (j *job) directedPresence(to jid.JID) {
	if !j.r.local(j.from.Domainpart()) || to.Bare() == j.from.Bare() {
		return
	}
	switch j.st.Type {
	case "", typeUnavailable:
	default:
		return
	}
	_, err := j.r.sessions.UpdateDirected(j.callCtx(), &presencev1.UpdateDirectedRequest{
		Jid: j.from.String(), SessionId: j.st.Origin.GetSession(), Target: to.String(), Remove: j.st.Type == typeUnavailable,
	})
	if err != nil {
		// Presence is never answered with an error; the target may miss
		// the unavailable presence at logout.
		j.r.log.Warn("router: recording directed presence failed", append(j.attrs(), "to", to.String(), "err", err)...)
	}
}

// setRosterRequested marks the sending session as interested in roster
// pushes (2.1.6).
func (j *job) setRosterRequested() {
	_, err := j.r.sessions.SetRosterRequested(j.callCtx(), &presencev1.SetRosterRequestedRequest{
		Jid: j.from.String(), SessionId: j.st.Origin.GetSession(),
	})
	if err != nil {
		// The roster is answered all the same; until the session is
		// available it may miss pushes made meanwhile.
		j.r.log.Warn("router: recording a roster request failed", append(j.attrs(), "err", err)...)
	}
}

// takeDirected returns the targets of the sending session's directed
// presence and forgets them, as its unavailable presence is routed.
func (j *job) takeDirected() []string {
	resp, err := j.r.sessions.TakeDirected(j.callCtx(), &presencev1.TakeDirectedRequest{
		Jid: j.from.String(), SessionId: j.st.Origin.GetSession(),
	})
	if err != nil {
		j.r.log.Warn("router: reading directed-presence targets failed", append(j.attrs(), "err", err)...)
		return nil
	}
	return resp.GetTargets()
}

// loginDeliveries sends a new available resource the subscription
// requests waiting for the account (3.1.3) and its offline messages
// (XEP-0160), oldest first with their delay stamps.
func (j *job) loginDeliveries() {
	user := j.from.Bare().String()
	self := j.st.Origin
	pending, err := j.r.rosters.PendingSubscriptions(j.callCtx(), &rosterv1.PendingSubscriptionsRequest{User: user})
	if err != nil {
		j.backendFailed("PendingSubscriptions", err)
	} else {
		for _, p := range pending.GetRequests() {
			j.add(self.Node, &busv1.Delivery{
				Session: self.Session, Action: busv1.Action_ACTION_DELIVER,
				Kind: busv1.Kind_KIND_PRESENCE, Type: "subscribe", From: p.GetContact(), To: user, Raw: p.GetRaw(),
			})
		}
	}
	// XEP-0160: the messages stored for the account, to this resource
	// (offline.go).
	j.flushOffline(self.GetNode(), self.GetSession())
}

// Disco (XEP-0030).

// accountFeatures is what an account's bare JID answers for itself.
var accountFeatures = []string{nsDiscoInfo, nsDiscoItems, nsPing}

// accountInfo is the disco#info payload answered for an account's bare
// JID: a registered account (XEP-0030 section 3.1, registrar category
// account).
func accountInfo() *dom.Element {
	q := dom.New(nsDiscoInfo, "query")
	q.Append(dom.New(nsDiscoInfo, "identity", "category", "account", "type", "registered"))
	for _, f := range accountFeatures {
		q.Append(dom.New(nsDiscoInfo, "feature", "var", f))
	}
	return q
}

// removedSeq is the seq of the unavailable presence the router publishes
// for a session the registry removed: above any seq the session used.
const removedSeq = 1 << 62

// removedPresence is the unavailable presence published on behalf of s, a
// session that ended without saying so.
func removedPresence(s *presencev1.Session) *busv1.Stanza {
	el := dom.New(nsClient, "presence", "from", s.Jid, "type", typeUnavailable)
	return &busv1.Stanza{
		From: s.Jid, Kind: busv1.Kind_KIND_PRESENCE, Type: typeUnavailable,
		Origin: &busv1.Origin{Node: s.Node, Session: s.SessionId}, Seq: removedSeq, Raw: el.Marshal(),
	}
}

// sessionsRemoved handles a SessionsRemoved event of the presence service:
// sessions that ended without an unavailable presence (their node's
// heartbeat expired, or it was dropped). For each one that was available,
// the unavailable presence the client never sent is published on the route
// stream, on the session's partition, where it is routed as any other
// (RFC 6121 section 4.5.2: subscribers, other resources, directed-presence
// targets). The message id makes a repeated event harmless.
func (r *Router) sessionsRemoved(js jetstream.JetStream, data []byte) {
	ev := new(presencev1.SessionsRemoved)
	if err := proto.Unmarshal(data, ev); err != nil {
		r.log.Warn("router: undecodable SessionsRemoved event", "err", err)
		return
	}
	for _, s := range ev.GetSessions() {
		if !s.GetAvailable() {
			continue
		}
		st := removedPresence(s)
		b, err := proto.Marshal(st)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		id := bus.StanzaMsgID(s.Node, s.SessionId, removedSeq) + "/removed"
		_, err = js.PublishMsg(ctx, &nats.Msg{Subject: r.subjects.RouteFor(bareOf(s.Jid)), Data: b}, jetstream.WithMsgID(id))
		cancel()
		if err != nil {
			r.log.Error("router: publishing a removed session's unavailable presence failed", "jid", s.Jid, "err", err)
		}
	}
}
