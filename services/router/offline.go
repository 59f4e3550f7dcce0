package router

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// Offline messages (XEP-0160, RFC 6121 8.5.2.2.1). Routing is partitioned
// by sender, so the router that stores a message for bob and the router
// that handles bob's initial presence are often two routers working at
// once. Two rules keep a message from waiting in the box while bob is
// available (8.5.2.1.1), and from being delivered twice:
//
//   - The storing router looks the account up again in the registry
//     (never the session cache) after StoreOffline returned. The login
//     side records the presence (SetPresence) before it reads the box, so
//     either that lookup sees the new available resource, and the storing
//     router delivers the box itself, or the store came first and the
//     login reads the message.
//   - Both sides take messages from the box with ClaimOffline: a message
//     is handed to one of them while its claim lives (offlineClaim), and
//     deleted by ID once its deliveries were published and flushed.
//
// A router that dies between its claim and the delete leaves the claimed
// messages in the box; when the claim lapses they are handed out again at
// the account's next flush (a login, or a message stored while a resource
// is available). That is at least once: messages are never lost to a
// crash, and a router that died after publishing but before deleting
// causes one repeat, recognisable by its id and delay stamp.
// docs/design/004-im-routing.md has the argument.

// offlineClaim is how long a claim on offline messages holds. It only has
// to outlast the routing of one batch and its publish and flush
// (batchTime, callTimeout, flushTimeout: seconds); after a crash it is how
// long the claimed messages stay hidden from the next flush.
const offlineClaim = time.Minute

// storeOffline keeps a normal or chat message for an account with no
// resource to take it (RFC 6121 8.5.2.2.1, XEP-0160). A full box is
// answered with <service-unavailable/> (003-im.md). Once stored, the
// account is looked up again: a resource that became available meanwhile
// gets the box from this router (see above).
func (j *job) storeOffline(to jid.JID) {
	_, err := j.r.rosters.StoreOffline(j.callCtx(), &rosterv1.StoreOfflineRequest{User: to.Bare().String(), Raw: j.st.Raw})
	if err != nil {
		if cond, ok := conditionOf(err); ok {
			j.r.log.Info("router: offline message refused", append(j.attrs(), "condition", string(cond))...)
			j.bounce(stanza.ServiceUnavailable)
			return
		}
		j.backendFailed("StoreOffline", err)
		return
	}
	j.outcomes.Add(metrics.Offline)
	j.recheckOffline(to.Bare())
}

// recheckOffline delivers the box of bare, where a message was just
// stored, when the registry now shows a resource that may take a message
// to the bare JID (8.5.2.1.1). The message is already safe in the box, so
// a failure here is only logged: the next login delivers it.
func (j *job) recheckOffline(bare jid.JID) {
	sessions, err := j.freshSessions(bare)
	if err != nil {
		j.r.log.Warn("router: looking up the account again after storing a message failed; it waits for the next login",
			append(j.attrs(), "err", err)...)
		return
	}
	if len(messageTargets(sessions, typeNormal)) == 0 {
		return
	}
	j.r.log.Debug("router: a resource became available while the message was stored; delivering the box", j.attrs()...)
	user := bare.String()
	msgs, ok := j.claimOffline(user)
	if !ok || len(msgs) == 0 {
		return
	}
	var ids []int64
	for _, m := range msgs {
		el, err := decodeElement(m.GetDelayed())
		if err != nil {
			j.r.log.Warn("router: undecodable offline message skipped", append(j.attrs(), "id", m.GetId(), "err", err)...)
			continue
		}
		for _, s := range messageTargets(sessions, messageType(el.Attr("type"))) {
			j.add(s.Node, offlineDelivery(s.SessionId, el.Attr("type"), el.Attr("from"), el.Attr("to"), el.Attr("id"), m.GetDelayed()))
		}
		ids = append(ids, m.GetId())
	}
	j.deleteOfflineAfterPublish(user, ids)
}

// freshSessions asks the registry for the sessions of bare, without
// touching the session cache (its answer may be older than the store)
// and without answering the sender on failure: the message is stored.
// Sessions that failed to take a handed-back stanza count as gone.
func (j *job) freshSessions(bare jid.JID) ([]*presencev1.Session, error) {
	resp, err := j.r.sessions.Lookup(j.callCtx(), &presencev1.LookupRequest{Jid: bare.String()})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(resp.GetSessions(), func(s *presencev1.Session) bool {
		return slices.ContainsFunc(j.exclude, func(o *busv1.Origin) bool { return isSession(s, o) })
	}), nil
}

// flushOffline delivers the account's offline messages, oldest first with
// their delay stamps, to one session: the sender's, at its initial
// presence.
func (j *job) flushOffline(node, session string) {
	user := j.from.Bare().String()
	msgs, ok := j.claimOffline(user)
	if !ok || len(msgs) == 0 {
		return
	}
	var ids []int64
	for _, m := range msgs {
		el, err := decodeElement(m.GetDelayed())
		if err != nil {
			j.r.log.Warn("router: undecodable offline message skipped", append(j.attrs(), "id", m.GetId(), "err", err)...)
			continue
		}
		j.add(node, offlineDelivery(session, el.Attr("type"), el.Attr("from"), el.Attr("to"), el.Attr("id"), m.GetDelayed()))
		ids = append(ids, m.GetId())
	}
	j.deleteOfflineAfterPublish(user, ids)
}

// claimOffline takes user's unclaimed messages from the box.
func (j *job) claimOffline(user string) ([]*rosterv1.OfflineMessage, bool) {
	resp, err := j.r.rosters.ClaimOffline(j.callCtx(), &rosterv1.ClaimOfflineRequest{User: user, LeaseMs: offlineClaim.Milliseconds()})
	if err != nil {
		j.r.log.Error("router: claiming offline messages failed; they wait for the next login", append(j.attrs(), "user", user, "err", err)...)
		return nil, false
	}
	return resp.GetMessages(), true
}

func offlineDelivery(session, typ, from, to, id string, raw []byte) *busv1.Delivery {
	return &busv1.Delivery{
		Session: session, Action: busv1.Action_ACTION_DELIVER,
		Kind: busv1.Kind_KIND_MESSAGE, Type: typ, From: from, To: to, Id: id, Raw: raw,
	}
}

// deleteOfflineAfterPublish deletes the messages ids of user once the
// batch's deliveries were published and flushed (an outbound with a then
// step), before the stanza is acknowledged. A message whose delivery is
// handed back (its node is gone) is routed again and stored again.
func (j *job) deleteOfflineAfterPublish(user string, ids []int64) {
	if len(ids) == 0 {
		return
	}
	r := j.r
	j.out = append(j.out, outbound{then: func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if _, err := r.rosters.DeleteOffline(ctx, &rosterv1.DeleteOfflineRequest{User: user, Ids: ids}); err != nil {
			r.log.Error("router: DeleteOffline failed; the messages will be delivered again once their claim lapses",
				"user", user, "err", err)
		}
	}})
}
