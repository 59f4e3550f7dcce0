// Package presence is the presence service. It owns the session registry:
// which full JIDs are bound, on which c2s node and under which session id,
// and each session's availability, priority and last presence stanza. c2s
// binds and unbinds sessions; the router looks them up to deliver stanzas.
package presence

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// Service is the presence service. It is safe for concurrent use.
type Service struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Service{store: cfg.Store, log: cfg.Logger, now: time.Now}, nil
}

// Register registers SessionRegistry on srv.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	presencev1.RegisterSessionRegistryServer(srv, registryHandler{s: s})
}
