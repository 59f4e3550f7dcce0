package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// errNoAnswer is a node that did not answer a control request: nobody
// subscribes to its control subject, or it did not answer in time.
var errNoAnswer = errors.New("the node did not answer")

// control sends req to the c2s node and returns its answer. A node that
// answered with an error gives a FAILED_PRECONDITION status with it; one
// that did not answer gives an error wrapping errNoAnswer.
func (s *Server) control(ctx context.Context, node string, req *busv1.ControlRequest) (*busv1.ControlResponse, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ControlTimeout)
	defer cancel()
	m, err := s.cfg.NATS.RequestWithContext(ctx, s.cfg.Subjects.Control(node), b)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("node %s: %w (%v)", node, errNoAnswer, err)
		}
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	resp := new(busv1.ControlResponse)
	if err := proto.Unmarshal(m.Data, resp); err != nil {
		return nil, fmt.Errorf("node %s: undecodable answer: %w", node, err)
	}
	if resp.Error != "" {
		return resp, status.Errorf(codes.FailedPrecondition, "node %s: %s", node, resp.Error)
	}
	return resp, nil
}

// controlStatus is the caller's error for a failed control request.
func controlStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unavailable, err.Error())
}

// kickSessions closes the given sessions with reason: one Kick per node
// for the JID jid (bare: all its sessions there). It returns how many
// were closed; nodes that fail are logged and make the error.
func (s *Server) kickSessions(ctx context.Context, target string, sessions []*presencev1.Session, reason string) (int32, error) {
	var nodes []string
	for _, se := range sessions {
		if !slices.Contains(nodes, se.Node) {
			nodes = append(nodes, se.Node)
		}
	}
	var (
		mu     sync.Mutex
		total  int32
		errs   []error
		wg     sync.WaitGroup
		kickRq = &busv1.ControlRequest{Op: &busv1.ControlRequest_Kick{Kick: &busv1.Kick{Jid: target, Reason: reason}}}
	)
	for _, n := range nodes {
		wg.Go(func() {
			resp, err := s.control(ctx, n, kickRq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("admin: kick failed", "node", n, "jid", target, "err", err)
				errs = append(errs, err)
				return
			}
			total += resp.Affected
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return total, controlStatus(errs[0])
	}
	return total, nil
}
