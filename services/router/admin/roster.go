package admin

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

const nsRoster = "jabber:iq:roster"

// adminResource is the resource of the user's full JID that roster
// changes made here are sent from; no session is bound to it, and the
// router's answer goes to the admin origin, not to a resource.
const adminResource = "switchboard-admin"

func (s *Server) GetRoster(ctx context.Context, in *adminv1.GetRosterRequest) (*adminv1.GetRosterResponse, error) {
	user, err := s.account("user", in.GetUser())
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.Rosters.GetRoster(ctx, &rosterv1.GetRosterRequest{User: user.String()})
	if err != nil {
		return nil, backend("roster service", err)
	}
	out := &adminv1.GetRosterResponse{Ver: resp.GetVer()}
	for _, it := range resp.GetItems() {
		out.Items = append(out.Items, &adminv1.RosterItem{
			Jid: it.GetJid(), Name: it.GetName(), Groups: it.GetGroups(),
			Subscription: it.GetSubscription(), Ask: it.GetAsk(), Approved: it.GetApproved(),
		})
	}
	return out, nil
}

// AddRosterItem is a roster set (RFC 6121 section 2.3) made on the user's
// behalf: routed like the user's own, so that the router that owns the
// user's partition stores it and pushes it to the interested resources.
func (s *Server) AddRosterItem(ctx context.Context, in *adminv1.AddRosterItemRequest) (*adminv1.AddRosterItemResponse, error) {
	user, err := s.account("user", in.GetUser())
	if err != nil {
		return nil, err
	}
	it := in.GetItem()
	contact, err := parseJID("item.jid", it.GetJid())
	if err != nil {
		return nil, err
	}
	item := dom.New(nsRoster, "item", "jid", contact.String())
	if it.GetName() != "" {
		item.SetAttr("name", it.GetName())
	}
	for _, g := range it.GetGroups() {
		if g == "" {
			return nil, invalid("item.groups", "empty group name")
		}
		item.Append(dom.New(nsRoster, "group").AppendText(g))
	}
	if err := s.rosterSet(ctx, user, item); err != nil {
		return nil, err
	}
	return &adminv1.AddRosterItemResponse{}, nil
}

// RemoveRosterItem is a roster set with subscription='remove' (RFC 6121
// section 2.5), routed like AddRosterItem: the router also sends the
// unsubscribe and unsubscribed the removal calls for.
func (s *Server) RemoveRosterItem(ctx context.Context, in *adminv1.RemoveRosterItemRequest) (*adminv1.RemoveRosterItemResponse, error) {
	user, err := s.account("user", in.GetUser())
	if err != nil {
		return nil, err
	}
	contact, err := parseJID("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	item := dom.New(nsRoster, "item", "jid", contact.String(), "subscription", "remove")
	if err := s.rosterSet(ctx, user, item); err != nil {
		return nil, err
	}
	return &adminv1.RemoveRosterItemResponse{}, nil
}

// rosterSet publishes <iq type='set'><query><item/></query></iq> from the
// user and waits for the router's result or error.
func (s *Server) rosterSet(ctx context.Context, user jid.JID, item *dom.Element) error {
	from, err := user.WithResource(adminResource)
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	id := newID()
	iq := dom.New(nsClient, "iq", "type", "set", "id", id, "from", from.String()).
		Append(dom.New(nsRoster, "query").Append(item))
	answer, done := s.await(id)
	defer done()
	if err := s.publish(ctx, &busv1.Stanza{
		From: from.String(),
		Kind: busv1.Kind_KIND_IQ,
		Type: "set",
		Id:   id,
		Raw:  iq.Marshal(),
	}); err != nil {
		return err
	}
	t := time.NewTimer(s.cfg.ReplyTimeout)
	defer t.Stop()
	select {
	case d := <-answer:
		if d.Type == "result" {
			return nil
		}
		return stanzaStatus(errorCondition(d.Raw))
	case <-t.C:
		return status.Errorf(codes.Unavailable, "no router answered within %s; the change may still be applied when one takes the user's partition", s.cfg.ReplyTimeout)
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}
