package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/router/admin"
)

// adminSettings are the admin API's: on when a token file is given.
type adminSettings struct {
	listen    string
	tokenFile string
	certFile  string
	keyFile   string
}

func declareAdmin(set *config.Set, a *adminSettings) {
	set.String(&a.listen, "admin-listen", ":9600", "listen address of the admin API (gRPC over TLS); served when --admin-token-file is set")
	set.String(&a.tokenFile, "admin-token-file", "", "file of the admin API's bearer tokens, one per line (optionally 'name token'); empty: no admin API")
	set.String(&a.certFile, "admin-cert-file", "", "PEM certificate of the admin port; empty: a self-signed one made at start")
	set.String(&a.keyFile, "admin-key-file", "", "PEM private key of --admin-cert-file")
}

// startNodeStatus keeps this router's status in the node bucket.
func startNodeStatus(p *health.Process, nc *nats.Conn, subjects bus.Subjects, node string, probe *health.Probe, log *slog.Logger) error {
	rep, err := nodes.New(nodes.Config{NATS: nc, Subjects: subjects, Service: "router", Node: node, Ready: probe.Ready, Logger: log})
	if err != nil {
		return err
	}
	p.Go("node status", rep.Run)
	return nil
}

// startAdmin serves the admin API on its own port when a token file is
// set.
func startAdmin(set *config.Set, s *settings, p *health.Process, probe *health.Probe, nc *nats.Conn, subjects bus.Subjects,
	rosterConn, rosterIntConn, presenceConn grpc.ClientConnInterface, log *slog.Logger) error {
	a := s.admin
	if a.tokenFile == "" {
		log.Info("admin API off: no --admin-token-file")
		return nil
	}
	tokens, err := admin.LoadTokens(a.tokenFile, log)
	if err != nil {
		return set.Wrap("admin-token-file", err)
	}
	tlsConf, certStore, err := admin.ServerTLS(a.certFile, a.keyFile, append([]string{"localhost"}, s.domains...), log)
	if err != nil {
		return set.Wrap("admin-cert-file", err)
	}
	if certStore != nil {
		p.Go("admin certificate", func(ctx context.Context) error { certStore.Watch(ctx); return nil })
	}
	srv, err := admin.New(admin.Config{
		Domains:      s.domains,
		Node:         s.node,
		NATS:         nc,
		Subjects:     subjects,
		Accounts:     rosterv1.NewAccountServiceClient(rosterConn),
		Rosters:      rosterv1.NewRosterServiceClient(rosterIntConn),
		Sessions:     presencev1.NewSessionRegistryClient(presenceConn),
		Tokens:       tokens,
		RosterHealth: healthpb.NewHealthClient(rosterConn),
		RosterAddr:   s.rosterAddr,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.listen)
	if err != nil {
		srv.Stop()
		return set.Wrap("admin-listen", err)
	}
	g := srv.GRPCServer(tlsConf, probe.NewGRPC(admin.ServiceName))
	p.GRPC("admin", g, ln)
	p.OnStop("admin answers", func(context.Context) error { srv.Stop(); return nil })
	if a.certFile == "" {
		log.Warn("admin API uses a self-signed certificate made at start: set --admin-cert-file, or run xmppctl with --insecure-skip-verify")
	}
	log.Info("admin API", "addr", ln.Addr().String(), "token_file", a.tokenFile, "cert_file", a.certFile)
	return nil
}
