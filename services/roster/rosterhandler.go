package roster

import (
	"context"
	"time"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// rosterHandler serves RosterService: messages to Service calls, results
// to messages, errors to status codes.
type rosterHandler struct {
	rosterv1.UnimplementedRosterServiceServer
	s *Service
}

func itemMsg(it Item) *rosterv1.RosterItem {
	return &rosterv1.RosterItem{
		Jid:          it.Contact,
		Name:         it.Name,
		Groups:       it.Groups,
		Subscription: it.Subscription(),
		Ask:          it.PendingOut,
		Approved:     it.Approved,
	}
}

func pushMsg(p Push) *rosterv1.RosterPush {
	item := itemMsg(p.Item)
	if p.Removed {
		item = &rosterv1.RosterItem{Jid: p.Item.Contact, Subscription: "remove"}
	}
	return &rosterv1.RosterPush{Item: item, Ver: p.Ver}
}

func presenceMsgs(ps []Presence) []*rosterv1.Presence {
	out := make([]*rosterv1.Presence, 0, len(ps))
	for _, p := range ps {
		out = append(out, &rosterv1.Presence{From: p.From, To: p.To, Type: p.Type.String(), Raw: p.Raw()})
	}
	return out
}

func (h rosterHandler) GetRoster(ctx context.Context, req *rosterv1.GetRosterRequest) (*rosterv1.GetRosterResponse, error) {
	r, err := h.s.GetRoster(ctx, req.GetUser(), req.GetTo(), req.GetVer())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.GetRosterResponse{Unchanged: r.Unchanged, Incremental: r.Incremental, Ver: r.Ver}
	resp.Items = make([]*rosterv1.RosterItem, 0, len(r.Items))
	for _, it := range r.Items {
		resp.Items = append(resp.Items, itemMsg(it))
	}
	for _, p := range r.Pushes {
		resp.Pushes = append(resp.Pushes, pushMsg(p))
	}
	return resp, nil
}

func (h rosterHandler) SetItem(ctx context.Context, req *rosterv1.SetItemRequest) (*rosterv1.SetItemResponse, error) {
	items := make([]ItemSet, 0, len(req.GetItems()))
	for _, it := range req.GetItems() {
		items = append(items, ItemSet{Contact: it.GetJid(), Name: it.GetName(), Groups: it.GetGroups()})
	}
	p, ok, err := h.s.SetItem(ctx, req.GetUser(), req.GetTo(), items)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.SetItemResponse{}
	if ok {
		resp.Push = pushMsg(p)
	}
	return resp, nil
}

func (h rosterHandler) RemoveItem(ctx context.Context, req *rosterv1.RemoveItemRequest) (*rosterv1.RemoveItemResponse, error) {
	r, err := h.s.RemoveItem(ctx, req.GetUser(), req.GetTo(), req.GetJid())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.RemoveItemResponse{
		Push:            pushMsg(r.Push),
		Presences:       presenceMsgs(r.Presences),
		SendUnavailable: r.SendUnavailable,
	}, nil
}

func (h rosterHandler) ApplySubscription(ctx context.Context, req *rosterv1.ApplySubscriptionRequest) (*rosterv1.ApplySubscriptionResponse, error) {
	t, ok := ParseSubType(req.GetType())
	if !ok {
		t = 0 // ApplySubscription refuses it with ErrBadSubscription
	}
	r, err := h.s.ApplySubscription(ctx, req.GetUser(), req.GetContact(), Direction(req.GetDirection()), t, req.GetRaw())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.ApplySubscriptionResponse{
		Item:            itemMsg(r.Entry.Item),
		InRoster:        r.Entry.InRoster,
		PendingIn:       r.Entry.PendingIn,
		Forward:         r.Forward,
		AutoReplies:     presenceMsgs(r.AutoReplies),
		SendPresence:    r.SendPresence,
		SendUnavailable: r.SendUnavailable,
	}
	if r.Push != nil {
		resp.Push = pushMsg(*r.Push)
	}
	return resp, nil
}

func (h rosterHandler) PendingSubscriptions(ctx context.Context, req *rosterv1.PendingSubscriptionsRequest) (*rosterv1.PendingSubscriptionsResponse, error) {
	rs, err := h.s.PendingRequests(ctx, req.GetUser())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.PendingSubscriptionsResponse{}
	for _, r := range rs {
		resp.Requests = append(resp.Requests, &rosterv1.PendingSubscription{Contact: r.Contact, Raw: r.Raw})
	}
	return resp, nil
}

func (h rosterHandler) SubscribersOf(ctx context.Context, req *rosterv1.SubscribersOfRequest) (*rosterv1.ContactsResponse, error) {
	jids, err := h.s.SubscribersOf(ctx, req.GetUser())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.ContactsResponse{Jids: jids}, nil
}

func (h rosterHandler) ContactsOf(ctx context.Context, req *rosterv1.ContactsOfRequest) (*rosterv1.ContactsResponse, error) {
	jids, err := h.s.ContactsOf(ctx, req.GetUser())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.ContactsResponse{Jids: jids}, nil
}

func (h rosterHandler) StoreOffline(ctx context.Context, req *rosterv1.StoreOfflineRequest) (*rosterv1.StoreOfflineResponse, error) {
	var stamp time.Time
	if ms := req.GetStampUnixMs(); ms != 0 {
		stamp = time.UnixMilli(ms)
	}
	id, err := h.s.StoreOffline(ctx, req.GetUser(), req.GetRaw(), stamp)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.StoreOfflineResponse{Id: id}, nil
}

func (h rosterHandler) FetchOffline(ctx context.Context, req *rosterv1.FetchOfflineRequest) (*rosterv1.FetchOfflineResponse, error) {
	u, err := parseAccountJID(req.GetUser())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	msgs, err := h.s.FetchOffline(ctx, u.String())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return h.offlineResponse(ctx, u, msgs), nil
}

func (h rosterHandler) ClaimOffline(ctx context.Context, req *rosterv1.ClaimOfflineRequest) (*rosterv1.FetchOfflineResponse, error) {
	u, err := parseAccountJID(req.GetUser())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	msgs, err := h.s.ClaimOffline(ctx, u.String(), time.Duration(req.GetLeaseMs())*time.Millisecond)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return h.offlineResponse(ctx, u, msgs), nil
}

// offlineResponse is msgs as the router delivers them.
func (h rosterHandler) offlineResponse(ctx context.Context, u jid.JID, msgs []OfflineMessage) *rosterv1.FetchOfflineResponse {
	resp := &rosterv1.FetchOfflineResponse{}
	for _, m := range msgs {
		delayed, err := StampDelay(m.Stanza, u.Domainpart(), m.Stamp)
		if err != nil {
			// Stored bytes that do not parse were never a stanza the
			// router accepted; deliver them as they are rather than lose
			// them.
			h.s.log.WarnContext(ctx, "offline message not stamped", "jid", u.String(), "id", m.ID, "err", err)
			delayed = m.Stanza
		}
		resp.Messages = append(resp.Messages, &rosterv1.OfflineMessage{
			Id: m.ID, Raw: m.Stanza, StampUnixMs: m.Stamp.UnixMilli(), Delayed: delayed,
		})
	}
	return resp
}

func (h rosterHandler) DeleteOffline(ctx context.Context, req *rosterv1.DeleteOfflineRequest) (*rosterv1.DeleteOfflineResponse, error) {
	var (
		n   int
		err error
	)
	if ids := req.GetIds(); len(ids) > 0 {
		n, err = h.s.DeleteOfflineIDs(ctx, req.GetUser(), ids)
	} else {
		n, err = h.s.DeleteOffline(ctx, req.GetUser(), req.GetUpToId())
	}
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.DeleteOfflineResponse{Deleted: int32(n)}, nil
}
