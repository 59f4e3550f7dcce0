package presence

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// Service is the presence service. It is safe for concurrent use.
type Service struct {
	store        Store
	log          *slog.Logger
	now          func() time.Time
	events       Publisher
	subjects     bus.Subjects
	reapInterval time.Duration
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		cfg.Store = measuredStore{cfg.Store, cfg.Metrics.Store}
	}
	return &Service{
		store:        cfg.Store,
		log:          cfg.Logger,
		now:          time.Now,
		events:       cfg.Events,
		subjects:     cfg.Subjects,
		reapInterval: cfg.ReapInterval,
	}, nil
}

// Register registers SessionRegistry on srv.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	presencev1.RegisterSessionRegistryServer(srv, registryHandler{s: s})
}
