package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/router/admin"
)

// Settings of the admin API.
const (
	SettingAdminListen    = "AdminListen"
	SettingAdminTokenFile = "AdminTokenFile"
	SettingAdminCertFile  = "AdminCertFile"
	SettingAdminKeyFile   = "AdminKeyFile"
)

// DefaultAdminListen is where the command serves the admin API.
const DefaultAdminListen = "127.0.0.1:9600"

// AdminCertBase names the admin port's self-signed certificate in the
// data directory (.crt and .key), for xmppctl --ca-file.
const AdminCertBase = "admin-selfsigned"

// adminAPI is the admin API of an App and its node status.
type adminAPI struct {
	nc     *nats.Conn
	srv    *admin.Server
	grpc   *grpc.Server
	health *health.Server
	ln     net.Listener
	status *nodes.Reporter
	certs  *certs.Store // the admin port's certificate files, reloaded; nil for none
}

func (c *Config) normalizeAdmin() error {
	if c.AdminListen == "off" {
		c.AdminListen = ""
	}
	if c.AdminListen != "" {
		if err := CheckListenAddr(c.AdminListen); err != nil {
			return &SettingError{SettingAdminListen, c.AdminListen, err}
		}
	}
	if (c.AdminCertFile == "") != (c.AdminKeyFile == "") {
		if c.AdminCertFile == "" {
			return &SettingError{SettingAdminCertFile, "", errors.New("a key file is set without a certificate file")}
		}
		return &SettingError{SettingAdminKeyFile, "", errors.New("a certificate file is set without a key file")}
	}
	return nil
}

// buildAdmin makes the node status and, when AdminListen is set, the
// admin API with its token file (made in the data directory when none is
// configured) and certificate (self-signed in the data directory when
// none is configured).
func (a *App) buildAdmin(subjects bus.Subjects) (*adminAPI, error) {
	cfg := a.cfg
	nc, err := a.nats.Connect(nats.Name("switchboard-admin-" + cfg.NodeID))
	if err != nil {
		return nil, fmt.Errorf("NATS connection for the admin API: %w", err)
	}
	a.onClose("admin NATS connection", drainer(nc))
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ad := &adminAPI{nc: nc}
	ad.status, err = nodes.New(nodes.Config{
		JS: js, Subjects: subjects, Service: "switchboard", Node: cfg.NodeID,
		Connections: func() int { return a.c2s.SessionCount() },
		Draining:    func() bool { return a.c2s.Draining() },
		Ready: func() error {
			if !a.ready.Load() {
				return errors.New("not ready")
			}
			return nil
		},
		Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	if cfg.AdminListen == "" {
		return ad, nil
	}
	file, created, err := admin.EnsureTokenFile(cfg.AdminTokenFile, cfg.DataDir)
	if err != nil {
		return nil, &SettingError{SettingAdminTokenFile, cfg.AdminTokenFile, err}
	}
	if created {
		a.log.Info("admin API token made; give xmppctl --token-file", "path", file)
	}
	tokens, err := admin.LoadTokens(file, a.log)
	if err != nil {
		return nil, &SettingError{SettingAdminTokenFile, file, err}
	}
	certFile, keyFile := cfg.AdminCertFile, cfg.AdminKeyFile
	if certFile == "" {
		if _, err := certs.LoadOrCreate(cfg.DataDir, AdminCertBase, []string{"localhost", "127.0.0.1", "::1"}, false); err != nil {
			return nil, fmt.Errorf("admin certificate: %w", err)
		}
		certFile = filepath.Join(cfg.DataDir, AdminCertBase+".crt")
		keyFile = filepath.Join(cfg.DataDir, AdminCertBase+".key")
	}
	tlsConf, certStore, err := admin.ServerTLS(certFile, keyFile, nil, a.log)
	if err != nil {
		return nil, &SettingError{SettingAdminCertFile, certFile, err}
	}
	ad.certs = certStore
	ad.srv, err = admin.New(admin.Config{
		Domains:  cfg.Domains,
		Node:     cfg.NodeID,
		NATS:     nc,
		Subjects: subjects,
		Accounts: rosterv1.NewAccountServiceClient(a.conn),
		Rosters:  rosterv1.NewRosterServiceClient(a.conn),
		Sessions: presencev1.NewSessionRegistryClient(a.conn),
		Tokens:   tokens,
		Logger:   a.log.With("service", "admin"),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, &SettingError{SettingAdminListen, cfg.AdminListen, err}
	}
	ad.ln = ln
	ad.health = health.NewServer()
	ad.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	ad.health.SetServingStatus(admin.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	ad.grpc = ad.srv.GRPCServer(tlsConf, ad.health)
	a.onClose("admin API", func(ctx context.Context) error {
		ad.health.Shutdown()
		ad.srv.Stop()
		done := make(chan struct{})
		go func() { ad.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			ad.grpc.Stop()
			<-done
		}
		ad.ln.Close()
		return nil
	})
	a.log.Info("admin API listening", "addr", ln.Addr().String(), "token_file", file, "cert_file", certFile)
	return ad, nil
}

// run starts the node status and the admin API; the returned function
// stops the node status (deleting this node's entry).
func (ad *adminAPI) run(serve func(string, func() error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ad.status.Run(ctx); close(done) }()
	watched := make(chan struct{})
	go func() {
		if ad.certs != nil {
			ad.certs.Watch(ctx)
		}
		close(watched)
	}()
	if ad.srv != nil {
		if err := ad.srv.Start(); err != nil {
			serve("admin API", func() error { return err })
		} else {
			serve("admin API", func() error { return ad.grpc.Serve(ad.ln) })
			ad.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			ad.health.SetServingStatus(admin.ServiceName, healthpb.HealthCheckResponse_SERVING)
		}
	}
	return func() { cancel(); <-done; <-watched }
}

// AdminAddr is the address of the admin API, or nil.
func (a *App) AdminAddr() net.Addr {
	if a.admin == nil || a.admin.ln == nil {
		return nil
	}
	return a.admin.ln.Addr()
}
