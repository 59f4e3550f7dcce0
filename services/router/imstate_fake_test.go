package router

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// The fake registry's IMState calls, as the presence service defines
// them: the roster-requested flag of a bound session, and the
// directed-presence targets of a bound session, taken once.

type directedKey struct{ full, session string }

func (f *fakeRegistry) SetRosterRequested(_ context.Context, in *presencev1.SetRosterRequestedRequest, _ ...grpc.CallOption) (*presencev1.SetRosterRequestedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.Jid == in.Jid && s.SessionId == in.SessionId {
			s.RosterRequested = true
			return &presencev1.SetRosterRequestedResponse{Found: true}, nil
		}
	}
	return &presencev1.SetRosterRequestedResponse{}, nil
}

func (f *fakeRegistry) UpdateDirected(_ context.Context, in *presencev1.UpdateDirectedRequest, _ ...grpc.CallOption) (*presencev1.UpdateDirectedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.ContainsFunc(f.sessions, func(s *presencev1.Session) bool { return s.Jid == in.Jid && s.SessionId == in.SessionId }) {
		return &presencev1.UpdateDirectedResponse{}, nil
	}
	if f.directed == nil {
		f.directed = map[directedKey]map[string]bool{}
	}
	k := directedKey{in.Jid, in.SessionId}
	if f.directed[k] == nil {
		f.directed[k] = map[string]bool{}
	}
	if in.Remove {
		delete(f.directed[k], in.Target)
	} else {
		f.directed[k][in.Target] = true
	}
	return &presencev1.UpdateDirectedResponse{Found: true}, nil
}

func (f *fakeRegistry) TakeDirected(_ context.Context, in *presencev1.TakeDirectedRequest, _ ...grpc.CallOption) (*presencev1.TakeDirectedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := directedKey{in.Jid, in.SessionId}
	resp := &presencev1.TakeDirectedResponse{}
	for t := range f.directed[k] {
		resp.Targets = append(resp.Targets, t)
	}
	delete(f.directed, k)
	slices.Sort(resp.Targets)
	return resp, nil
}
