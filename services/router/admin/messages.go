package admin

import (
	"context"
	"sync"

	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

const nsClient = "jabber:client"

func messageType(t adminv1.MessageType) string {
	switch t {
	case adminv1.MessageType_MESSAGE_TYPE_CHAT:
		return "chat"
	case adminv1.MessageType_MESSAGE_TYPE_HEADLINE:
		return "headline"
	case adminv1.MessageType_MESSAGE_TYPE_NORMAL:
		return "normal"
	}
	return ""
}

// message builds the <message/>; the text is escaped by dom, and what XML
// cannot carry becomes U+FFFD.
func message(id, from, to, typ, subject, body string) *dom.Element {
	m := dom.New(nsClient, "message", "id", id, "from", from)
	if to != "" {
		m.SetAttr("to", to)
	}
	if typ != "" {
		m.SetAttr("type", typ)
	}
	if subject != "" {
		m.Append(dom.New(nsClient, "subject").AppendText(subject))
	}
	if body != "" {
		m.Append(dom.New(nsClient, "body").AppendText(body))
	}
	return m
}

// SendMessage publishes the message on the route stream like a stanza
// from a session, so that the router applies the delivery rules to it
// (RFC 6121 section 8.5: most available resource, offline storage for a
// normal or chat message to an account without one, s2s for a remote
// address). It returns once the stream has stored it.
func (s *Server) SendMessage(ctx context.Context, in *adminv1.SendMessageRequest) (*adminv1.SendMessageResponse, error) {
	to, err := parseJID("to", in.GetTo())
	if err != nil {
		return nil, err
	}
	if _, ok := adminv1.MessageType_name[int32(in.GetType())]; !ok {
		return nil, invalid("type", "unknown message type %d", in.GetType())
	}
	if in.GetBody() == "" && in.GetSubject() == "" {
		return nil, invalid("body", "empty (and no subject)")
	}
	var from jid.JID
	switch {
	case in.GetFrom() != "":
		from, err = parseJID("from", in.GetFrom())
		if err != nil {
			return nil, err
		}
		if !s.served(from.Domainpart()) {
			return nil, invalid("from", "domain %q is not served here", from.Domainpart())
		}
		if from.Localpart() != "" && from.IsBare() {
			// The router takes stanzas of an account from a session's
			// full JID only.
			return nil, invalid("from", "%q: give a served domain or a full JID (localpart@domain/resource)", in.GetFrom())
		}
	case s.served(to.Domainpart()):
		from = to.Domain()
	default:
		from = jid.MustParse(s.domains[0])
	}
	id := newID()
	typ := messageType(in.GetType())
	el := message(id, from.String(), to.String(), typ, in.GetSubject(), in.GetBody())
	st := &busv1.Stanza{
		From: from.String(),
		To:   to.String(),
		Kind: busv1.Kind_KIND_MESSAGE,
		Type: typ,
		Id:   id,
		Raw:  el.Marshal(),
	}
	if err := s.publish(ctx, st); err != nil {
		return nil, err
	}
	return &adminv1.SendMessageResponse{Id: id}, nil
}

// connectionNodes returns the processes that hold client sessions and
// answer control requests: c2s nodes, and the one-process binary.
func (s *Server) connectionNodes(ctx context.Context) ([]*busv1.NodeStatus, error) {
	all, err := nodes.List(ctx, s.js, s.cfg.Subjects)
	if err != nil {
		return nil, unavailable("node bucket", err)
	}
	var out []*busv1.NodeStatus
	for _, n := range all {
		if n.Service == "c2s" || n.Service == "switchboard" {
			out = append(out, n)
		}
	}
	return out, nil
}

// Broadcast hands the message to every c2s node, which gives it to each
// of its sessions in the domain.
func (s *Server) Broadcast(ctx context.Context, in *adminv1.BroadcastRequest) (*adminv1.BroadcastResponse, error) {
	domain := s.domains[0]
	if in.GetDomain() != "" {
		d, err := parseJID("domain", in.GetDomain())
		if err != nil {
			return nil, err
		}
		if d.Localpart() != "" || !d.IsBare() {
			return nil, invalid("domain", "%q is not a domain", in.GetDomain())
		}
		if !s.served(d.Domainpart()) {
			return nil, invalid("domain", "%q is not served here", in.GetDomain())
		}
		domain = d.Domainpart()
	}
	if _, ok := adminv1.MessageType_name[int32(in.GetType())]; !ok {
		return nil, invalid("type", "unknown message type %d", in.GetType())
	}
	if in.GetBody() == "" && in.GetSubject() == "" {
		return nil, invalid("body", "empty (and no subject)")
	}
	targets, err := s.connectionNodes(ctx)
	if err != nil {
		return nil, err
	}
	el := message(newID(), domain, "", messageType(in.GetType()), in.GetSubject(), in.GetBody())
	req := &busv1.ControlRequest{Op: &busv1.ControlRequest_Broadcast{Broadcast: &busv1.Broadcast{
		Domain: domain, Raw: el.Marshal(), AvailableOnly: in.GetAvailableOnly(),
	}}}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = &adminv1.BroadcastResponse{}
	)
	for _, n := range targets {
		wg.Go(func() {
			resp, err := s.control(ctx, n.Node, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("admin: broadcast not taken by a node", "node", n.Node, "err", err)
				out.FailedNodes = append(out.FailedNodes, n.Node)
				return
			}
			out.Delivered += resp.GetAffected()
		})
	}
	wg.Wait()
	sortStrings(out.FailedNodes)
	return out, nil
}
