package presence

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// registryHandler serves SessionRegistry: it validates requests, calls the
// store, and turns errors into status codes.
type registryHandler struct {
	presencev1.UnimplementedSessionRegistryServer
	s *Service
}

func (h registryHandler) Bind(ctx context.Context, req *presencev1.BindRequest) (*presencev1.BindResponse, error) {
	full, err := parseJID(req.GetJid(), true)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	if !validName(req.GetNode()) || !validName(req.GetSessionId()) {
		return nil, h.s.status(ctx, fmt.Errorf("%w: Bind needs a node and a session id, each of 1 to %d bytes without control characters", ErrInvalidSession, maxNameLen))
	}
	p := req.GetPriority()
	if p < math.MinInt8 || p > math.MaxInt8 {
		return nil, h.s.status(ctx, fmt.Errorf("%w: %d", ErrInvalidPriority, p))
	}
	replaced, err := h.s.store.Bind(ctx, Session{
		JID:   full,
		Node:  req.GetNode(),
		ID:    req.GetSessionId(),
		Bound: h.s.now(),
		// Set when a node binds its sessions again (Rebind).
		Available:       req.GetAvailable(),
		Priority:        int(p),
		LastPresence:    req.GetLastPresence(),
		RosterRequested: req.GetRosterRequested(),
	})
	h.s.changed(ctx, full.Bare().String())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &presencev1.BindResponse{}
	for _, old := range replaced {
		h.s.log.InfoContext(ctx, "session replaced", "jid", full.String(),
			"old_node", old.Node, "old_session", old.ID, "node", req.GetNode(), "session", req.GetSessionId())
		resp.Replaced = append(resp.Replaced, toProto(old))
	}
	return resp, nil
}

func (h registryHandler) Unbind(ctx context.Context, req *presencev1.UnbindRequest) (*presencev1.UnbindResponse, error) {
	full, err := parseJID(req.GetJid(), true)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	if req.GetSessionId() == "" {
		return nil, h.s.status(ctx, fmt.Errorf("%w: Unbind needs a session id", ErrInvalidSession))
	}
	removed, err := h.s.store.Unbind(ctx, full, req.GetSessionId())
	if removed || err != nil {
		h.s.changed(ctx, full.Bare().String())
	}
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.UnbindResponse{Removed: removed}, nil
}

func (h registryHandler) SetPresence(ctx context.Context, req *presencev1.SetPresenceRequest) (*presencev1.SetPresenceResponse, error) {
	full, err := parseJID(req.GetJid(), true)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	if req.GetSessionId() == "" {
		return nil, h.s.status(ctx, fmt.Errorf("%w: SetPresence needs a session id", ErrInvalidSession))
	}
	p := req.GetPriority()
	if p < math.MinInt8 || p > math.MaxInt8 {
		return nil, h.s.status(ctx, fmt.Errorf("%w: %d", ErrInvalidPriority, p))
	}
	found, err := h.s.store.SetPresence(ctx, full, req.GetSessionId(), req.GetAvailable(), int(p), req.GetPresence())
	if found || err != nil {
		h.s.changed(ctx, full.Bare().String())
	}
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.SetPresenceResponse{Found: found}, nil
}

func (h registryHandler) Lookup(ctx context.Context, req *presencev1.LookupRequest) (*presencev1.LookupResponse, error) {
	j, err := parseJID(req.GetJid(), false)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	sessions, err := h.s.store.Lookup(ctx, j)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &presencev1.LookupResponse{}
	for _, s := range sessions {
		resp.Sessions = append(resp.Sessions, toProto(s))
	}
	return resp, nil
}

func (h registryHandler) Heartbeat(ctx context.Context, req *presencev1.HeartbeatRequest) (*presencev1.HeartbeatResponse, error) {
	if !validName(req.GetNode()) {
		return nil, h.s.status(ctx, fmt.Errorf("%w: Heartbeat needs a node name of 1 to %d bytes without control characters", ErrInvalidSession, maxNameLen))
	}
	ttl := time.Duration(req.GetTtlMs()) * time.Millisecond
	if req.GetTtlMs() <= 0 || ttl > MaxHeartbeatTTL {
		return nil, h.s.status(ctx, fmt.Errorf("%w: %d ms, want 1 to %d", ErrInvalidTTL, req.GetTtlMs(), MaxHeartbeatTTL.Milliseconds()))
	}
	epoch, err := h.s.store.Heartbeat(ctx, req.GetNode(), ttl)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.HeartbeatResponse{Epoch: epoch}, nil
}

func (h registryHandler) DropNode(ctx context.Context, req *presencev1.DropNodeRequest) (*presencev1.DropNodeResponse, error) {
	if !validName(req.GetNode()) {
		return nil, h.s.status(ctx, fmt.Errorf("%w: DropNode needs a node name of 1 to %d bytes without control characters", ErrInvalidSession, maxNameLen))
	}
	removed, err := h.s.store.DropNode(ctx, req.GetNode())
	// Sessions removed before a failure are gone all the same: announce
	// them. A retried DropNode removes the rest.
	h.s.announce(context.WithoutCancel(ctx), presencev1.SessionsRemoved_REASON_NODE_DROPPED, removed)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &presencev1.DropNodeResponse{Removed: int32(min(len(removed), math.MaxInt32))}, nil
}

func (h registryHandler) CountByNode(ctx context.Context, _ *presencev1.CountByNodeRequest) (*presencev1.CountByNodeResponse, error) {
	counts, err := h.s.store.CountByNode(ctx)
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &presencev1.CountByNodeResponse{}
	for _, node := range slices.Sorted(maps.Keys(counts)) {
		resp.Nodes = append(resp.Nodes, &presencev1.NodeCount{
			Node:     node,
			Sessions: int32(min(counts[node], math.MaxInt32)),
		})
	}
	return resp, nil
}

// MaxHeartbeatTTL is the longest TTL a heartbeat may ask for. A node
// silent longer than this is dead by any measure.
const MaxHeartbeatTTL = time.Hour

// maxNameLen bounds node names and session ids.
const maxNameLen = 255

// validName reports whether v can be a node name or a session id:
// non-empty, short, and free of control characters (NUL above all, which
// the Redis store uses as a separator).
func validName(v string) bool {
	if v == "" || len(v) > maxNameLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// parseJID normalises an account address: a localpart is required (a domain
// has no sessions), and a resourcepart too when full is set.
func parseJID(addr string, full bool) (jid.JID, error) {
	j, err := jid.Parse(addr)
	switch {
	case err != nil:
		return jid.JID{}, fmt.Errorf("%w: %w", ErrInvalidJID, err)
	case j.Localpart() == "":
		return jid.JID{}, fmt.Errorf("%w: %q has no localpart", ErrInvalidJID, addr)
	case full && j.IsBare():
		return jid.JID{}, fmt.Errorf("%w: %q is not a full JID", ErrInvalidJID, addr)
	}
	return j, nil
}

func toProto(s Session) *presencev1.Session {
	return &presencev1.Session{
		Jid:          s.JID.String(),
		Node:         s.Node,
		SessionId:    s.ID,
		Available:    s.Available,
		Priority:     int32(s.Priority),
		LastPresence: s.LastPresence,
		BoundUnixMs:  s.Bound.UnixMilli(),

		RosterRequested: s.RosterRequested,
	}
}

// status turns an error into a gRPC status: request errors name the
// problem; anything else is store trouble, logged here and reported as
// Unavailable, since a client can only retry.
func (s *Service) status(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrInvalidJID), errors.Is(err, ErrInvalidSession), errors.Is(err, ErrInvalidPriority), errors.Is(err, ErrInvalidTTL):
		return status.Error(codes.InvalidArgument, err.Error())
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	default:
		s.log.ErrorContext(ctx, "presence store failed", "err", err)
		return status.Error(codes.Unavailable, "presence: store unavailable")
	}
}
