package router

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// This file holds the routing rules: RFC 6120 section 10 (server rules for
// processing XML stanzas) and RFC 6121 section 8 (the IM refinements for
// local users). Every decision is made from the envelope fields; the raw XML
// is parsed only where the server itself answers (replies to IQs it handles,
// error replies built from the original) or must look inside (the priority
// of broadcast presence).

// Stanza types used in decisions (RFC 6121 sections 4.7.1 and 5.2.2, RFC 6120
// section 8.2.3).
const (
	typeError       = "error"
	typeNormal      = "normal"
	typeChat        = "chat"
	typeGroupchat   = "groupchat"
	typeHeadline    = "headline"
	typeGet         = "get"
	typeSet         = "set"
	typeResult      = "result"
	typeUnavailable = "unavailable"
	typeProbe       = "probe"
)

// outbound is one delivery to publish.
type outbound struct {
	subject string
	node    string
	d       *busv1.Delivery
	// remote, when set, is a stanza for another domain handed to the s2s
	// service on subject (d is nil); fallback is the error to send to its
	// sender if no s2s pod listens, or nil.
	remote   *busv1.Stanza
	fallback *outbound
	// then, when set, is work to do once the batch's deliveries were
	// published (nothing is published for it).
	then func()
}

// job is the routing of one stanza.
type job struct {
	ctx  context.Context
	r    *Router
	st   *busv1.Stanza
	from jid.JID // sender, full JID
	out  []outbound
	// exclude lists the sessions that could not take this stanza before;
	// set when routing a handed-back stanza, whose deliveries are late.
	exclude []*busv1.Origin
	late    bool

	// outcomes is what happened to the stanza, for the metrics.
	outcomes metrics.Outcomes

	// calls carries the deadline shared by every backend call made for
	// this stanza; made on the first call.
	calls  context.Context
	cancel context.CancelFunc
}

// callCtx returns the context for a backend call: all calls for one stanza
// together take at most callTimeout, so a stuck backend holds a partition
// for a bounded time.
func (j *job) callCtx() context.Context {
	if j.calls == nil {
		j.calls, j.cancel = context.WithTimeout(j.ctx, callTimeout)
	}
	return j.calls
}

// route applies the rules to st and returns out with the deliveries it
// produced appended.
func (r *Router) route(ctx context.Context, st *busv1.Stanza, out []outbound) []outbound {
	j := job{ctx: ctx, r: r, st: st, out: out}
	defer func() {
		if j.cancel != nil {
			j.cancel()
		}
		r.metrics.Routed(int32(st.Kind), j.outcomes.Main())
	}()
	if st.GetOrigin().GetNode() == "" || st.GetOrigin().GetSession() == "" {
		r.log.Warn("router: envelope without origin dropped", j.attrs()...)
		return out
	}
	switch st.Kind {
	case busv1.Kind_KIND_MESSAGE, busv1.Kind_KIND_PRESENCE, busv1.Kind_KIND_IQ:
	default:
		r.log.Warn("router: envelope of unknown kind dropped", j.attrs()...)
		return out
	}
	if u := st.Undeliverable; u != nil && !worthRerouting(st) {
		// RFC 6121 section 8.5.3.2: presence (8.5.3.2.2), IQ responses
		// (8.5.3.2.3) and errors for a session that went away are
		// silently ignored. These include the server's own replies.
		j.drop("undeliverable stanza ignored by the no-session rules")
		return out
	}
	// The connection service stamped from with the session's full JID
	// (RFC 6120 section 8.1.2.1); parsing it again only gives its parts.
	// A stanza from a remote server (through s2s) may come from a bare JID
	// or a domain; s2s has checked it belongs to the peer's authenticated
	// domain (RFC 6120 section 13.7.2.1).
	// A message may also come from our domain itself: the admin API sends
	// those (services/router/admin); no session can, since c2s stamps
	// every stanza with the session's full JID.
	from, err := jid.Parse(st.From)
	serverMessage := st.Kind == busv1.Kind_KIND_MESSAGE && from.Localpart() == "" && from.IsBare()
	if err != nil || (r.local(from.Domainpart()) && (from.Localpart() == "" || from.IsBare()) && !serverMessage) {
		r.log.Warn("router: envelope with a bad from dropped", append(j.attrs(), "err", err)...)
		return out
	}
	j.from = from

	if st.Undeliverable != nil {
		j.undeliverable()
		return j.out
	}
	if st.To == "" {
		j.noTo()
		return j.out
	}
	// RFC 6120 section 8.1.1.1 (and 10.2): an address that cannot be
	// prepared is answered with <jid-malformed/>.
	to, err := jid.Parse(st.To)
	if err != nil {
		r.log.Info("router: malformed to address", append(j.attrs(), "err", err)...)
		j.bounceMalformed()
		return j.out
	}
	j.routeTo(to)
	return j.out
}

// noTo handles a stanza without a to address: RFC 6120 section 10.3.
func (j *job) noTo() {
	switch j.st.Kind {
	case busv1.Kind_KIND_MESSAGE:
		// RFC 6120 section 10.3.1: as if addressed to the sender's bare JID.
		j.routeTo(j.from.Bare())
	case busv1.Kind_KIND_PRESENCE:
		// RFC 6120 section 10.3.2: broadcast presence (RFC 6121 section 4).
		j.broadcastPresence()
	case busv1.Kind_KIND_IQ:
		// RFC 6120 section 10.3.3: the server answers on behalf of the
		// sender's account.
		j.serveAccount()
	}
}

// routeTo handles a stanza for a prepared address (RFC 6120 sections 10.4
// and 10.5).
func (j *job) routeTo(to jid.JID) {
	if j.st.Kind == busv1.Kind_KIND_PRESENCE {
		switch j.st.Type {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			// RFC 6121 section 3, for any address.
			j.subscription(to)
			return
		case typeProbe:
			// RFC 6121 section 4.3.
			j.probe(to)
			return
		case "", typeUnavailable:
			// RFC 6121 section 4.6: directed presence.
			j.directedPresence(to)
		}
	}
	switch {
	case !j.r.local(to.Domainpart()):
		// RFC 6120 section 10.4: a remote domain, reached through the s2s
		// service, which bounces what it cannot deliver (10.4.3).
		j.toRemote(to.Domainpart(), j.st, true)
	case to.Localpart() == "":
		// RFC 6120 sections 10.5.1 and 10.5.2: the server itself.
		j.toServer(to)
	default:
		// RFC 6120 sections 10.5.3 and 10.5.4, refined by RFC 6121
		// section 8.5: an account of ours.
		j.toLocalUser(to)
	}
}

// toLocalUser applies RFC 6121 section 8.5 to a bare or full JID of our
// domain.
func (j *job) toLocalUser(to jid.JID) {
	if !to.IsBare() {
		// RFC 6121 section 8.5.3.1: a resource that exactly matches gets
		// the stanza. A bound session implies the account, so section
		// 8.5.1 needs no separate check here. This is the common path of
		// chat and IQ traffic: one lookup, one delivery.
		s, ok := j.lookupFull(to)
		if !ok {
			return
		}
		if s != nil {
			j.toResource(s)
			return
		}
	}
	// RFC 6121 section 8.5.1: no such user.
	exists, ok := j.accountExists(to.Bare())
	if !ok {
		return
	}
	if !exists {
		j.noSuchUser()
		return
	}
	if to.IsBare() {
		j.toBareJID(to)
	} else {
		j.toMissingResource(to)
	}
}

// toResource delivers to the session bound to the full JID in to (RFC 6121
// section 8.5.3.1), connected or available.
//
// Subscription presence and probes never get here: routeTo sends them to
// sections 3 and 4.3 as 8.5.3.1 says.
func (j *job) toResource(s *presencev1.Session) {
	j.deliver(s)
}

// noSuchUser applies RFC 6121 section 8.5.1, for an address whose account
// does not exist.
//
// For messages the section lets the server either ignore the stanza or
// answer <service-unavailable/>. We answer exactly as for an existing
// account without available resources (section 8.5.2.2.1): the error for
// normal, chat and groupchat, silence for headline and error. The sender
// then cannot tell a missing account from an offline one by the answer, the
// directory harvesting concern of RFC 6120 section 13.11.
func (j *job) noSuchUser() {
	switch j.st.Kind {
	case busv1.Kind_KIND_MESSAGE:
		switch messageType(j.st.Type) {
		case typeError, typeHeadline:
			j.drop("message to an unknown account")
		default:
			j.bounce(stanza.ServiceUnavailable)
		}
	case busv1.Kind_KIND_IQ:
		// The section requires <service-unavailable/> for IQs.
		if isRequest(j.st.Type) {
			j.bounce(stanza.ServiceUnavailable)
		} else {
			j.drop("IQ response to an unknown account")
		}
	case busv1.Kind_KIND_PRESENCE:
		// Silently ignored, as the section says. (Subscription
		// requests never get here: routeTo sends them to section 3,
		// which answers "unsubscribed" for an unknown account.)
		j.drop("presence to an unknown account")
	}
}

// toBareJID applies RFC 6121 section 8.5.2 to the bare JID of an existing
// account.
func (j *job) toBareJID(to jid.JID) {
	switch j.st.Kind {
	case busv1.Kind_KIND_MESSAGE:
		j.messageToBare(to, messageType(j.st.Type))
	case busv1.Kind_KIND_IQ:
		// RFC 6121 sections 8.5.2.1.3 and 8.5.2.2.3: the server answers
		// on behalf of the account and never hands the IQ to a resource,
		// whether resources are available or not.
		j.serveAccount()
	case busv1.Kind_KIND_PRESENCE:
		j.presenceToBare(to)
	}
}

// messageToBare applies RFC 6121 sections 8.5.2.1.1 (available resources)
// and 8.5.2.2.1 (none) to a message for a bare JID. typ is the message type
// as messageType gives it.
//
// "Most available" (section 8.5.2.1.1) is read as: the available resources
// with the highest non-negative priority; when several share it, all of them
// get the message. This answers both the normal rule and option (a) of the
// chat rule; option (b) of the chat rule (all non-negative resources that
// opted in) needs an opt-in protocol we do not have. Resources with a
// negative priority never get a message sent to the bare JID.
func (j *job) messageToBare(to jid.JID, typ string) {
	switch typ {
	case typeError:
		// Section 8.5.2.1.1 and 8.5.2.2.1: silently ignored.
		j.drop("error message to a bare JID")
		return
	case typeGroupchat:
		// Never delivered to a bare JID; the error SHOULD be
		// <service-unavailable/> (sections 8.5.2.1.1 and 8.5.2.2.1).
		j.bounce(stanza.ServiceUnavailable)
		return
	}
	sessions, cached, ok := j.lookupCached(to)
	if !ok {
		return
	}
	n := j.messageToResources(sessions, typ)
	if n == 0 && cached {
		// Before storing or dropping the message on the cache's word
		// that no resource may take it, ask the registry.
		if sessions, ok = j.lookupFresh(to); !ok {
			return
		}
		n = j.messageToResources(sessions, typ)
	}
	if n > 0 {
		return
	}
	// Section 8.5.2.2.1 (and 8.5.2.1.1 for the case of only negative
	// priorities, which it sends there): no resource may take it.
	if typ == typeHeadline {
		j.drop("headline for an account without non-negative resources")
		return
	}
	// normal and chat: the RFC lets the server store the message offline
	// or answer <service-unavailable/>; we store it (XEP-0160) while the
	// account's box has room.
	j.storeOffline(to)
}

// messageToResources delivers a message of type typ (headline, normal or
// chat) for a bare JID to those of the account's sessions that section
// 8.5.2.1.1 picks, and returns how many it delivered to.
func (j *job) messageToResources(sessions []*presencev1.Session, typ string) int {
	targets := messageTargets(sessions, typ)
	for _, s := range targets {
		j.deliver(s)
	}
	return len(targets)
}

// messageTargets returns the sessions that section 8.5.2.1.1 picks for a
// message of type typ (headline, normal or chat) to the bare JID.
func messageTargets(sessions []*presencev1.Session, typ string) []*presencev1.Session {
	var out []*presencev1.Session
	if typ == typeHeadline {
		// Every available resource with a non-negative priority.
		for _, s := range sessions {
			if s.Available && s.Priority >= 0 {
				out = append(out, s)
			}
		}
		return out
	}
	// normal and chat: the highest non-negative priority.
	best := int32(-1)
	for _, s := range sessions {
		if s.Available && s.Priority > best {
			best = s.Priority
		}
	}
	if best >= 0 {
		for _, s := range sessions {
			if s.Available && s.Priority == best {
				out = append(out, s)
			}
		}
	}
	return out
}

// presenceToBare applies RFC 6121 sections 8.5.2.1.2 and 8.5.2.2.2 to
// directed presence for the bare JID of an existing account.
func (j *job) presenceToBare(to jid.JID) {
	sessions, ok := j.lookup(to)
	if !ok {
		return
	}
	// Available and unavailable presence (and presence errors, which the
	// section does not mention and we treat alike) go to every available
	// resource, whatever its priority; with none, they are ignored and
	// not stored.
	for _, s := range sessions {
		if s.Available {
			j.deliver(s)
		}
	}
}

// toMissingResource applies RFC 6121 section 8.5.3.2 to a full JID of an
// existing account that no session is bound to.
func (j *job) toMissingResource(to jid.JID) {
	switch j.st.Kind {
	case busv1.Kind_KIND_MESSAGE:
		// Section 8.5.3.2.1.
		switch typ := messageType(j.st.Type); typ {
		case typeChat:
			// A chat message falls back to the account's resources,
			// by the same priority rules as for the bare JID.
			j.messageToBare(to.Bare(), typeChat)
		case typeError:
			j.drop("error message to a missing resource")
		case typeHeadline:
			// The section allows ignoring it or an error; a headline
			// is not worth an error (as in section 8.5.2.2.1).
			j.drop("headline to a missing resource")
		default:
			// normal and groupchat: not delivered to other resources;
			// the sender gets the error the section recommends.
			j.bounce(stanza.ServiceUnavailable)
		}
	case busv1.Kind_KIND_IQ:
		// Section 8.5.3.2.3: <service-unavailable/>; responses to a
		// resource that has gone are dropped.
		if isRequest(j.st.Type) {
			j.bounce(stanza.ServiceUnavailable)
		} else {
			j.drop("IQ response to a missing resource")
		}
	case busv1.Kind_KIND_PRESENCE:
		// Section 8.5.3.2.2: silently ignored (subscription types went
		// to section 3 in routeTo).
		j.drop("presence to a missing resource")
	}
}

// broadcastPresence handles presence without to (RFC 6120 section 10.3.2,
// RFC 6121 section 4).
func (j *job) broadcastPresence() {
	switch j.st.Type {
	case "":
		j.availablePresence()
	case typeUnavailable:
		j.unavailablePresence()
	default:
		// Subscription types, probes and errors mean nothing without an
		// addressee.
		j.r.log.Info("router: presence of this type needs a to address; dropped", j.attrs()...)
	}
}

// availablePresence records the sender's availability and echoes it to the
// account's available resources, the sender's included, since an account is
// implicitly subscribed to its own presence (RFC 6121 section 4.2.2 for
// initial presence, 4.4.2 for later updates).
//
// On initial presence (the session was not available before) the new
// resource also receives the last presence of the account's other available
// resources, which is what the server answers on the account's behalf to
// the probe that initial presence implies (RFC 6121 sections 4.2.2 and
// 4.3.2) for the self-subscription.
//
// The subscribers get it too (RFC 6121 sections 4.2.2 and 4.4.2); on
// initial presence the contacts are probed and the pending requests and
// offline messages delivered (im.go).
func (j *job) availablePresence() {
	el, err := decodeElement(j.st.Raw)
	if err != nil {
		j.r.log.Warn("router: undecodable presence dropped", append(j.attrs(), "err", err)...)
		return
	}
	prio, err := priority(el)
	if err != nil {
		// RFC 6121 section 4.7.2.3: an integer from -128 to 127. A
		// value outside that range is clamped; anything else counts as
		// the default, 0.
		j.r.log.Info("router: bad presence priority, using 0", append(j.attrs(), "err", err)...)
	}
	bare := j.from.Bare()
	before, ok := j.lookupFresh(bare)
	if !ok {
		return
	}
	if found, ok := j.setPresence(true, prio); !ok {
		return
	} else if !found {
		// The session ended between sending and routing.
		j.drop("available presence from a session no longer bound")
		return
	}
	self := j.st.Origin
	wasAvailable := false
	for _, s := range before {
		if isSession(s, self) {
			wasAvailable = s.Available
			continue
		}
		if s.Available {
			j.deliver(s)
		}
	}
	j.deliverTo(self.Node, self.Session)
	j.contactsBroadcast("")
	if wasAvailable {
		return
	}
	defer func() {
		j.probeContacts()
		j.loginDeliveries()
	}()
	for _, s := range before {
		if !isSession(s, self) && s.Available && len(s.LastPresence) > 0 {
			j.add(self.Node, &busv1.Delivery{
				Session: self.Session,
				Action:  busv1.Action_ACTION_DELIVER,
				Kind:    busv1.Kind_KIND_PRESENCE,
				From:    s.Jid,
				Raw:     s.LastPresence,
			})
		}
	}
}

// unavailablePresence records that the sender is no longer available and
// tells the account's other available resources (RFC 6121 section 4.5.2).
// The subscribers and the session's directed-presence targets are told
// too (4.5.2, 4.6.3).
//
// The session may already be unbound: c2s publishes the final unavailable
// presence of a closing stream and then unbinds at once. The registry then
// has nothing to record, but the other resources must still be told.
func (j *job) unavailablePresence() {
	if found, ok := j.setPresence(false, 0); !ok {
		return
	} else if !found {
		j.r.log.Debug("router: unavailable presence from a session already unbound", j.attrs()...)
	}
	sessions, ok := j.lookupFresh(j.from.Bare())
	if !ok {
		return
	}
	for _, s := range sessions {
		if s.Available && !isSession(s, j.st.Origin) {
			j.deliver(s)
		}
	}
	// RFC 6121 section 4.5.2: the subscribers, and the entities that got
	// directed presence from this session (4.6.3) and not the broadcast.
	subs := j.contactsBroadcast(typeUnavailable)
	for _, t := range j.takeDirected() {
		to, err := jid.Parse(t)
		if err != nil || subs[to.Bare().String()] {
			continue
		}
		el := dom.New(nsClient, "presence", "from", j.from.String(), "to", t, "type", typeUnavailable)
		j.presenceTo(to, j.from.String(), typeUnavailable, el)
	}
}

// setPresence records the sender session's availability. found reports
// whether the registry still had the session; ok is false when the call
// failed (and was answered).
func (j *job) setPresence(available bool, prio int32) (found, ok bool) {
	resp, err := j.r.sessions.SetPresence(j.callCtx(), &presencev1.SetPresenceRequest{
		Jid:       j.from.String(),
		SessionId: j.st.Origin.Session,
		Available: available,
		Priority:  prio,
		Presence:  j.st.Raw,
	})
	// Whatever the answer, this router forgets the account now; the
	// presence service's event tells the others.
	j.r.cache.invalidate(j.from.Bare().String())
	if err != nil {
		j.backendFailed("SetPresence", err)
		return false, false
	}
	return resp.GetFound(), true
}

func isSession(s *presencev1.Session, o *busv1.Origin) bool {
	return s.SessionId == o.Session && s.Node == o.Node
}

// lookupFull returns the session bound to the full JID to, or nil. ok is
// false when the lookup failed (and was answered).
//
// With the session cache on, the account's sessions come from the cache
// when it has them. A session found there is used as is: a delivery to a
// session that has since gone comes back undeliverable and is routed
// again with a fresh lookup. A resource missing from the cache is asked of
// the registry before the caller bounces the stanza or sends it elsewhere.
func (j *job) lookupFull(to jid.JID) (s *presencev1.Session, ok bool) {
	want := to.String()
	if j.r.cache == nil {
		sessions, ok := j.ask(want, false)
		if !ok {
			return nil, false
		}
		return findJID(sessions, want), true
	}
	sessions, cached, ok := j.lookupCached(to.Bare())
	if !ok {
		return nil, false
	}
	if s := findJID(sessions, want); s != nil || !cached {
		return s, true
	}
	if sessions, ok = j.lookupFresh(to.Bare()); !ok {
		return nil, false
	}
	return findJID(sessions, want), true
}

func findJID(sessions []*presencev1.Session, full string) *presencev1.Session {
	for _, s := range sessions {
		if s.Jid == full {
			return s
		}
	}
	return nil
}

// lookup returns the sessions of the bare JID bare, from the session cache
// when it has them; for deliveries, where a stale answer costs at most a
// hand-back or a presence a new session misses by a few milliseconds.
// The result is shared with the cache: it must not be modified.
func (j *job) lookup(bare jid.JID) ([]*presencev1.Session, bool) {
	sessions, _, ok := j.lookupCached(bare)
	return sessions, ok
}

// lookupCached is lookup that also reports whether the answer came from
// the cache. A stanza handed back never uses the cache: it came back
// because some answer was stale.
func (j *job) lookupCached(bare jid.JID) (sessions []*presencev1.Session, cached, ok bool) {
	key := bare.String()
	if len(j.exclude) == 0 {
		if sessions, ok := j.r.cache.get(key); ok {
			return sessions, true, true
		}
	}
	sessions, ok = j.ask(key, true)
	return sessions, false, ok
}

// lookupFresh returns the sessions of the bare JID bare as the registry
// has them now (and refreshes the cache with them): for decisions that
// read a session's last presence, or that the sender's own change must
// see.
func (j *job) lookupFresh(bare jid.JID) ([]*presencev1.Session, bool) {
	return j.ask(bare.String(), true)
}

// ask calls the registry's Lookup for addr, a bare JID (bare set: the
// answer fills the cache, unless an event for addr came meanwhile) or a
// full one. The sessions that failed to take a handed-back stanza are
// left out of the result, not of the cache.
func (j *job) ask(addr string, bare bool) ([]*presencev1.Session, bool) {
	var t fillToken
	if bare {
		t = j.r.cache.begin(addr)
	}
	resp, err := j.r.sessions.Lookup(j.callCtx(), &presencev1.LookupRequest{Jid: addr})
	if err != nil {
		j.r.cache.end(t, nil, false)
		j.backendFailed("Lookup", err)
		return nil, false
	}
	sessions := resp.GetSessions()
	j.r.cache.end(t, sessions, true)
	if len(j.exclude) > 0 {
		// Sessions that failed to take this stanza may still be in the
		// registry for a moment (a session that just ended, a node not
		// yet reaped): they count as gone.
		sessions = slices.DeleteFunc(slices.Clone(sessions), func(s *presencev1.Session) bool {
			return slices.ContainsFunc(j.exclude, func(o *busv1.Origin) bool { return isSession(s, o) })
		})
	}
	return sessions, true
}

// accountExists asks the roster service whether the account bare exists.
// The sender's own account exists without asking.
func (j *job) accountExists(bare jid.JID) (exists, ok bool) {
	if bare == j.from.Bare() {
		return true, true
	}
	resp, err := j.r.accounts.AccountExists(j.callCtx(), &rosterv1.AccountExistsRequest{Jid: bare.String()})
	if err != nil {
		j.backendFailed("AccountExists", err)
		return false, false
	}
	return resp.GetExists(), true
}

// backendFailed logs a failed call and tells the sender, where the stanza
// may be answered, with <internal-server-error/>; presence is not answered.
func (j *job) backendFailed(call string, err error) {
	j.r.log.Error("router: backend call failed", append(j.attrs(), "call", call, "err", err)...)
	if j.st.Kind != busv1.Kind_KIND_PRESENCE {
		j.bounce(stanza.InternalServerError)
	}
}

// deliver forwards the stanza, unchanged, to session s.
func (j *job) deliver(s *presencev1.Session) { j.deliverTo(s.Node, s.SessionId) }

func (j *job) deliverTo(node, session string) {
	j.outcomes.Add(metrics.Delivered)
	st := j.st
	j.add(node, &busv1.Delivery{
		Session: session,
		Action:  busv1.Action_ACTION_DELIVER,
		Kind:    st.Kind,
		Type:    st.Type,
		From:    st.From,
		To:      st.To,
		Id:      st.Id,
		Raw:     st.Raw,
	})
}

// add queues delivery d to node, stamped with what the receiving node needs
// to drop a duplicate: the stanza's origin and seq, and the index of this
// delivery among those of the stanza to the same session.
func (j *job) add(node string, d *busv1.Delivery) {
	for i := range j.out {
		if o := &j.out[i]; o.remote == nil && o.d != nil && o.node == node && o.d.Session == d.Session {
			d.Part++
		}
	}
	d.Origin = j.st.Origin
	d.Seq = j.st.Seq
	d.Traceparent = j.r.tracer.Traceparent(j.ctx)
	d.Late = j.late
	d.Failed = j.exclude
	j.out = append(j.out, outbound{subject: j.r.subjects.Node(node), node: node, d: d})
}

// toRemote hands st, a stanza for domain, to the s2s service with the
// envelope unchanged (s2s turns raw into jabber:server form). When st may be
// answered, the <remote-server-not-found/> error (RFC 6120 section 10.4.3)
// is prepared too: it is sent if no s2s pod listens.
func (j *job) toRemote(domain string, st *busv1.Stanza, answerable bool) {
	subj := j.r.subjects.S2SOut(domain)
	if subj == "" {
		j.r.log.Info("router: remote domain cannot be reached through s2s", append(j.attrs(), "domain", domain)...)
		if answerable {
			j.bounce(stanza.RemoteServerNotFound)
		}
		return
	}
	j.outcomes.Add(metrics.Remote)
	o := outbound{subject: subj, remote: st}
	if answerable {
		n := len(j.out)
		j.bounce(stanza.RemoteServerNotFound)
		if len(j.out) > n {
			fb := j.out[n]
			o.fallback = &fb
			j.out = j.out[:n]
		}
	}
	j.out = append(j.out, o)
}

// undeliverable applies the no-session rules to a stanza handed back by
// the node that could not deliver it (the session ended, its queue was
// full, or its node is gone): it is routed again as if the failed
// sessions did not exist. For a full JID that is RFC 6121 section 8.5.3.2
// (a chat message falls back to the account's other resources, an IQ
// request gets <service-unavailable/>, the rest is ignored or bounced as
// the section says); for a bare JID, section 8.5.2 among the remaining
// resources. Its deliveries are late: they may reach a session after newer
// stanzas of the same sender.
func (j *job) undeliverable() {
	j.exclude = j.st.Undeliverable.Failed
	j.late = true
	if j.st.To == "" {
		// A message without to went to the sender's bare JID (RFC 6120
		// section 10.3.1); worthRerouting let nothing else through.
		j.routeTo(j.from.Bare())
		return
	}
	to, err := jid.Parse(j.st.To)
	if err != nil {
		j.drop("undeliverable stanza with a bad to")
		return
	}
	j.routeTo(to)
}

// worthRerouting reports whether a handed-back stanza may still reach
// someone or get an answer: messages that are not errors, and IQ
// requests.
func worthRerouting(st *busv1.Stanza) bool {
	switch st.Kind {
	case busv1.Kind_KIND_MESSAGE:
		return st.Type != typeError
	case busv1.Kind_KIND_IQ:
		return isRequest(st.Type) && st.To != ""
	}
	return false
}

// drop logs a stanza the rules say to ignore.
func (j *job) drop(why string) {
	if j.r.log.Enabled(j.ctx, slog.LevelDebug) {
		j.r.log.Debug("router: dropped: "+why, j.attrs()...)
	}
}

// attrs describes the stanza for logs.
func (j *job) attrs() []any {
	st := j.st
	return []any{
		"kind", strings.ToLower(strings.TrimPrefix(st.Kind.String(), "KIND_")),
		"type", st.Type, "id", st.Id, "from", st.From, "to", st.To,
		"origin_node", st.GetOrigin().GetNode(), "origin_session", st.GetOrigin().GetSession(),
		"seq", st.Seq,
	}
}

// messageType returns the type a message is handled as: RFC 6121 section
// 5.2.2 treats a missing or unknown type as normal.
func messageType(t string) string {
	switch t {
	case typeChat, typeGroupchat, typeHeadline, typeError:
		return t
	}
	return typeNormal
}

// isRequest reports whether an IQ type is a request, which must be answered
// (RFC 6120 section 8.2.3). Anything but result and error counts as one, so
// that a bad type still gets an error.
func isRequest(t string) bool { return t != typeResult && t != typeError }
