package presence

import (
	"context"
	"fmt"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// The SessionRegistry calls of IMState: interested resources (RFC 6121
// 2.1.6) and directed presence (4.6).

// sessionOf checks the full JID and session id of an IMState request.
func sessionOf(call, full, id string) (jid.JID, error) {
	j, err := parseJID(full, true)
	if err != nil {
		return jid.JID{}, err
	}
	if id == "" {
		return jid.JID{}, fmt.Errorf("%w: %s needs a session id", ErrInvalidSession, call)
	}
	return j, nil
}

func (h registryHandler) SetRosterRequested(ctx context.Context, req *presencev1.SetRosterRequestedRequest) (*presencev1.SetRosterRequestedResponse, error) {
	full, err := sessionOf("SetRosterRequested", req.GetJid(), req.GetSessionId())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	found, err := h.s.store.SetRosterRequested(ctx, full, req.GetSessionId())
	if found || err != nil {
		// Routers that cached the account's sessions must see the flag.
		h.s.changed(ctx, full.Bare().String())
	}
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.SetRosterRequestedResponse{Found: found}, nil
}

func (h registryHandler) UpdateDirected(ctx context.Context, req *presencev1.UpdateDirectedRequest) (*presencev1.UpdateDirectedResponse, error) {
	full, err := sessionOf("UpdateDirected", req.GetJid(), req.GetSessionId())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	target, err := jid.Parse(req.GetTarget())
	if err != nil {
		return nil, h.s.status(ctx, fmt.Errorf("%w: target: %w", ErrInvalidJID, err))
	}
	found, err := h.s.store.UpdateDirected(ctx, full, req.GetSessionId(), target.String(), req.GetRemove())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.UpdateDirectedResponse{Found: found}, nil
}

func (h registryHandler) TakeDirected(ctx context.Context, req *presencev1.TakeDirectedRequest) (*presencev1.TakeDirectedResponse, error) {
	full, err := sessionOf("TakeDirected", req.GetJid(), req.GetSessionId())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	targets, err := h.s.store.TakeDirected(ctx, full, req.GetSessionId())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.TakeDirectedResponse{Targets: targets}, nil
}
