package admin

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

// ClusterStatus lists the node bucket, plus the roster service as its
// gRPC health reports it when Config.RosterHealth is set.
func (s *Server) ClusterStatus(ctx context.Context, _ *adminv1.ClusterStatusRequest) (*adminv1.ClusterStatusResponse, error) {
	list, err := nodes.List(ctx, s.js, s.cfg.Subjects)
	if err != nil {
		return nil, unavailable("node bucket", err)
	}
	out := &adminv1.ClusterStatusResponse{}
	for _, n := range list {
		out.Nodes = append(out.Nodes, &adminv1.Node{
			Service: n.Service, Node: n.Node, Version: n.Version,
			StartedUnixMs: n.StartedUnixMs, LastSeenUnixMs: n.UpdatedUnixMs,
			Connections: n.Connections, Ready: n.Ready, Draining: n.Draining, Detail: n.Detail,
		})
	}
	if s.cfg.RosterHealth != nil {
		out.Nodes = append(out.Nodes, s.rosterNode(ctx))
		slices.SortStableFunc(out.Nodes, func(a, b *adminv1.Node) int {
			if a.Service != b.Service {
				if a.Service < b.Service {
					return -1
				}
				return 1
			}
			if a.Node < b.Node {
				return -1
			}
			if a.Node > b.Node {
				return 1
			}
			return 0
		})
	}
	return out, nil
}

// rosterNode is the roster service as its health check answers, asked
// through the address the router uses (a Kubernetes Service in front of
// its pods).
func (s *Server) rosterNode(ctx context.Context) *adminv1.Node {
	n := &adminv1.Node{Service: "roster", Node: s.cfg.RosterAddr, LastSeenUnixMs: time.Now().UnixMilli()}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := s.cfg.RosterHealth.Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case err != nil:
		n.Detail = "health check: " + status.Convert(err).Message()
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		n.Detail = "health: " + resp.GetStatus().String()
	default:
		n.Ready = true
	}
	return n
}

// DrainNode asks one c2s node to drain.
func (s *Server) DrainNode(ctx context.Context, in *adminv1.DrainNodeRequest) (*adminv1.DrainNodeResponse, error) {
	if in.GetNode() == "" {
		return nil, invalid("node", "empty")
	}
	var mode busv1.Drain_Mode
	switch in.GetMode() {
	case adminv1.DrainMode_DRAIN_MODE_UNSPECIFIED:
		mode = busv1.Drain_MODE_UNSPECIFIED
	case adminv1.DrainMode_DRAIN_MODE_SEE_OTHER_HOST:
		mode = busv1.Drain_MODE_SEE_OTHER_HOST
		if in.GetRedirect() == "" {
			return nil, invalid("redirect", "empty with mode see-other-host")
		}
	case adminv1.DrainMode_DRAIN_MODE_SYSTEM_SHUTDOWN:
		mode = busv1.Drain_MODE_SYSTEM_SHUTDOWN
	default:
		return nil, invalid("mode", "unknown drain mode %d", in.GetMode())
	}
	if r := in.GetRedirect(); r != "" {
		if err := checkRedirect(r); err != nil {
			return nil, invalid("redirect", "%q: %v", r, err)
		}
	}
	if in.GetDeadlineSeconds() < 0 {
		return nil, invalid("deadline_seconds", "negative")
	}
	targets, err := s.connectionNodes(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(targets, func(n *busv1.NodeStatus) bool { return n.Node == in.GetNode() }) {
		return nil, status.Errorf(codes.NotFound, "no c2s node %q in the cluster", in.GetNode())
	}
	resp, err := s.control(ctx, in.GetNode(), &busv1.ControlRequest{Op: &busv1.ControlRequest_Drain{Drain: &busv1.Drain{
		Mode: mode, Redirect: in.GetRedirect(), DeadlineMs: in.GetDeadlineSeconds() * 1000,
	}}})
	if err != nil {
		return nil, controlStatus(err)
	}
	return &adminv1.DrainNodeResponse{Sessions: resp.GetAffected()}, nil
}

// checkRedirect accepts host or host:port, as <see-other-host/> carries
// (RFC 6120 section 4.9.3.19).
func checkRedirect(r string) error {
	host := r
	if h, p, err := net.SplitHostPort(r); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return errBadPort
		}
		host = h
	}
	if host == "" || len(host) > 253 {
		return errBadHost
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return errBadHost
		}
	}
	return nil
}

var (
	errBadPort = errors.New("bad port")
	errBadHost = errors.New("bad host")
)

func sortStrings(s []string) { slices.Sort(s) }
