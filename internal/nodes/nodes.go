// Package nodes keeps the cluster's list of processes: every process with
// a NATS connection writes its NodeStatus (proto/bus/v1) into the node
// bucket (bus.Subjects.NodeBucket) under bus.NodeKey(service, node), and
// renews it every few seconds. The bucket's entries expire TTL after the
// last write, so a process that died without a word leaves the list on
// its own; a clean stop deletes its key at once. The admin API's
// ClusterStatus reads the bucket.
//
// The bucket is kept in memory on the NATS server, with one value per key:
// the statuses are rewritten every Interval, so what a NATS restart loses
// comes back within seconds, and file storage would only add disk writes.
package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

const (
	// TTL is how long a status stays in the bucket without being
	// renewed: three missed renewals.
	TTL = 15 * time.Second
	// Interval is how often a process renews its status.
	Interval = 5 * time.Second
	// startingInterval is the renewal period while the process is not
	// ready yet, so that readiness shows within a second or so.
	startingInterval = time.Second
)

// version is the release the binary was built as; the build sets it with
// -ldflags "-X github.com/switchboard-xmpp/switchboard/internal/nodes.version=v1.2.3".
var version string

// Version returns the version a process reports: the one set at link
// time, else what the Go build info knows (the main module's version and
// the VCS revision, "+dirty" when the tree had changes), else "devel".
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "-" + rev + dirty
	}
	return v
}

// EnsureBucket creates the node bucket, or returns it when it exists.
// replicas is the number of copies in a NATS cluster (0 means 1).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, s bus.Subjects, replicas int) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      s.NodeBucket(),
		Description: "Switchboard processes and their status, renewed every few seconds",
		TTL:         TTL,
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(replicas, 1),
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("nodes: key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Config describes the process whose status a Reporter keeps.
type Config struct {
	// JS is the process's JetStream context; when nil, one is made on
	// NATS. One of the two is required.
	JS   jetstream.JetStream
	NATS *nats.Conn
	// Subjects names the bucket; required.
	Subjects bus.Subjects
	// Service is c2s, router, presence, s2s or switchboard (the
	// one-process binary); Node is the process's node id. Both required.
	Service, Node string
	// Version defaults to Version().
	Version string
	// Replicas is the bucket's copies in a NATS cluster; 0 means 1.
	Replicas int
	// Connections counts client or server streams; nil reports 0.
	Connections func() int
	// Ready reports readiness as the health probe does (nil: ready);
	// its error is the status's detail.
	Ready func() error
	// Draining reports whether the process is draining; nil: never.
	Draining func() bool
	// Interval overrides the renewal period (tests); 0 means Interval.
	Interval time.Duration
	// Logger receives failures to write; nil means slog.Default().
	Logger *slog.Logger
}

// Reporter keeps one process's status in the node bucket.
type Reporter struct {
	cfg     Config
	key     string
	started time.Time
	log     *slog.Logger
}

// New checks cfg and returns a Reporter; nothing is written until Run.
func New(cfg Config) (*Reporter, error) {
	if cfg.JS == nil && cfg.NATS != nil {
		js, err := jetstream.New(cfg.NATS)
		if err != nil {
			return nil, fmt.Errorf("nodes: %w", err)
		}
		cfg.JS = js
	}
	switch {
	case cfg.JS == nil:
		return nil, errors.New("nodes: JS and NATS are nil")
	case cfg.Subjects.Prefix == "":
		return nil, errors.New("nodes: Subjects.Prefix is empty")
	case cfg.Service == "" || strings.ContainsAny(cfg.Service, ".*> "):
		return nil, fmt.Errorf("nodes: bad service name %q", cfg.Service)
	case cfg.Node == "" || strings.ContainsAny(cfg.Node, ".*> "):
		return nil, fmt.Errorf("nodes: bad node name %q", cfg.Node)
	}
	if cfg.Version == "" {
		cfg.Version = Version()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = Interval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reporter{cfg: cfg, key: bus.NodeKey(cfg.Service, cfg.Node), started: time.Now(), log: log}, nil
}

// Status is what the Reporter writes now.
func (r *Reporter) Status() *busv1.NodeStatus {
	c := r.cfg
	st := &busv1.NodeStatus{
		Service:       c.Service,
		Node:          c.Node,
		Version:       c.Version,
		StartedUnixMs: r.started.UnixMilli(),
		UpdatedUnixMs: time.Now().UnixMilli(),
		Ready:         true,
	}
	if c.Connections != nil {
		st.Connections = int32(c.Connections())
	}
	if c.Ready != nil {
		if err := c.Ready(); err != nil {
			st.Ready, st.Detail = false, err.Error()
		}
	}
	if c.Draining != nil {
		st.Draining = c.Draining()
	}
	return st
}

// Run writes the status at once and then every Interval (every second
// while not ready) until ctx ends, then deletes the key. A failed write is
// logged and retried at the next tick: the status is an aid to operators,
// never a reason to stop the process. Run returns nil.
func (r *Reporter) Run(ctx context.Context) error {
	var kv jetstream.KeyValue
	warned := false
	for {
		ready := false
		if kv == nil {
			var err error
			kv, err = r.bucket(ctx)
			if err != nil && !warned && ctx.Err() == nil {
				r.log.Warn("node status: cannot open the node bucket; retrying", "err", err)
				warned = true
			}
		}
		if kv != nil {
			st := r.Status()
			ready = st.Ready
			if err := r.put(ctx, kv, st); err != nil {
				if !warned && ctx.Err() == nil {
					r.log.Warn("node status: write failed; retrying", "key", r.key, "err", err)
					warned = true
				}
			} else {
				warned = false
			}
		}
		wait := r.cfg.Interval
		if !ready {
			wait = min(wait, startingInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if kv != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				if err := kv.Delete(dctx, r.key); err != nil {
					r.log.Debug("node status: delete at stop failed; the entry expires on its own", "err", err)
				}
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

func (r *Reporter) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return EnsureBucket(cctx, r.cfg.JS, r.cfg.Subjects, r.cfg.Replicas)
}

func (r *Reporter) put(ctx context.Context, kv jetstream.KeyValue, st *busv1.NodeStatus) error {
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = kv.Put(cctx, r.key, b)
	return err
}

// List returns every status in the bucket, ordered by service and then
// node. A missing bucket is an empty list: nothing has reported yet.
func List(ctx context.Context, js jetstream.JetStream, s bus.Subjects) ([]*busv1.NodeStatus, error) {
	kv, err := js.KeyValue(ctx, s.NodeBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: bucket %s: %w", s.NodeBucket(), err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes: list keys: %w", err)
	}
	var out []*busv1.NodeStatus
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted or expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("nodes: get %s: %w", k, err)
		}
		st := new(busv1.NodeStatus)
		if err := proto.Unmarshal(e.Value(), st); err != nil {
			continue // not ours to judge; an operator sees it in the bucket
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *busv1.NodeStatus) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out, nil
}
