package admin

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

func (s *Server) ListSessions(ctx context.Context, in *adminv1.ListSessionsRequest) (*adminv1.ListSessionsResponse, error) {
	j, err := parseJID("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if j.Localpart() == "" {
		return nil, invalid("jid", "%q has no localpart", in.GetJid())
	}
	resp, err := s.cfg.Sessions.Lookup(ctx, &presencev1.LookupRequest{Jid: j.String()})
	if err != nil {
		return nil, backend("presence service", err)
	}
	out := &adminv1.ListSessionsResponse{}
	for _, se := range resp.GetSessions() {
		out.Sessions = append(out.Sessions, &adminv1.Session{
			Jid: se.GetJid(), Node: se.GetNode(), SessionId: se.GetSessionId(),
			Available: se.GetAvailable(), Priority: se.GetPriority(), BoundUnixMs: se.GetBoundUnixMs(),
		})
	}
	return out, nil
}

func (s *Server) CountSessions(ctx context.Context, _ *adminv1.CountSessionsRequest) (*adminv1.CountSessionsResponse, error) {
	resp, err := s.cfg.Sessions.CountByNode(ctx, &presencev1.CountByNodeRequest{})
	if err != nil {
		return nil, backend("presence service", err)
	}
	out := &adminv1.CountSessionsResponse{}
	for _, n := range resp.GetNodes() {
		out.Nodes = append(out.Nodes, &adminv1.NodeSessions{Node: n.GetNode(), Sessions: n.GetSessions()})
		out.Total += n.GetSessions()
	}
	return out, nil
}

// KickSession closes one session: the registry says which node holds it,
// and that node closes it.
func (s *Server) KickSession(ctx context.Context, in *adminv1.KickSessionRequest) (*adminv1.KickSessionResponse, error) {
	j, err := parseJID("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if j.Localpart() == "" || j.IsBare() {
		return nil, invalid("jid", "%q is not a full JID (localpart@domain/resource)", in.GetJid())
	}
	resp, err := s.cfg.Sessions.Lookup(ctx, &presencev1.LookupRequest{Jid: j.String()})
	if err != nil {
		return nil, backend("presence service", err)
	}
	var se *presencev1.Session
	for _, x := range resp.GetSessions() {
		if x.GetJid() == j.String() {
			se = x
		}
	}
	if se == nil {
		return nil, status.Errorf(codes.NotFound, "no session of %s", j)
	}
	reason := in.GetReason()
	if reason == "" {
		reason = "closed by an administrator"
	}
	cr, err := s.control(ctx, se.GetNode(), &busv1.ControlRequest{Op: &busv1.ControlRequest_Kick{Kick: &busv1.Kick{Jid: j.String(), Reason: reason}}})
	if err != nil {
		return nil, controlStatus(err)
	}
	if cr.GetAffected() == 0 {
		return nil, status.Errorf(codes.NotFound, "no session of %s on node %s", j, se.GetNode())
	}
	return &adminv1.KickSessionResponse{}, nil
}
