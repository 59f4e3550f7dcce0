package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DuplicateWindow is how long the route stream remembers message ids: a
// publish retried within it is stored once.
const DuplicateWindow = 2 * time.Minute

// DefaultMaxBacklog bounds the bytes of stanzas stored and not yet routed:
// some 500,000 stanzas of ordinary size, minutes of a busy cluster's
// traffic with every router down. Once it is reached new stanzas are
// refused (their senders get an error) rather than old ones dropped.
// JetStream reserves it on the server's disk, so it is kept modest for the
// one-process mode.
const DefaultMaxBacklog = 256 << 20

// StreamOptions tune the route stream for a deployment.
type StreamOptions struct {
	// Memory keeps the stream in memory instead of files: faster, but an
	// accepted stanza is lost if the NATS server itself restarts.
	Memory bool
	// Replicas is the number of copies in a NATS cluster; 0 means 1.
	Replicas int
	// MaxBacklog bounds the stream in bytes; 0 means DefaultMaxBacklog.
	MaxBacklog int64
}

// EnsureRouteStream creates the route stream, or updates it to the
// current settings. Connection services and routers all call it at start,
// so whichever comes first makes it.
//
// The stream has work-queue retention: a stanza is stored until a router
// acknowledged it, and the server allows one consumer per partition, which
// backs up the routers' leases.
func (s Subjects) EnsureRouteStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	cfg := jetstream.StreamConfig{
		Name:        s.RouteStream(),
		Description: "Switchboard stanzas waiting for a router, one subject per partition",
		Subjects:    []string{s.RouteAll()},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cmp.Or(o.MaxBacklog, DefaultMaxBacklog),
		Duplicates:  DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    max(o.Replicas, 1),
	}
	if o.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	// Most starts find the stream as it should be: it is then left alone,
	// as updating a stream that routers consume from has no use.
	st, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another service made it meanwhile
		}
	case err == nil:
		have := st.CachedInfo().Config
		// The storage type of a stream cannot change; one made with the
		// other setting keeps it.
		cfg.Storage = have.Storage
		if !sameStream(have, cfg) {
			_, err = js.UpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
	}
	return nil
}

// sameStream compares the settings EnsureRouteStream sets.
func sameStream(a, b jetstream.StreamConfig) bool {
	return slices.Equal(a.Subjects, b.Subjects) && a.Retention == b.Retention && a.Discard == b.Discard &&
		a.MaxBytes == b.MaxBytes && a.Duplicates == b.Duplicates && a.Storage == b.Storage &&
		a.Replicas == b.Replicas && a.Description == b.Description
}

// EnsureLeaseBucket creates the routers' lease bucket, where every entry
// lives ttl unless renewed.
func (s Subjects) EnsureLeaseBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, o StreamOptions) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      s.LeaseBucket(),
		Description: "Switchboard routers and the partition each consumes",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(o.Replicas, 1),
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// DeleteState removes everything this prefix keeps on NATS: the route
// stream, the routers' lease bucket, the s2s lease bucket and the node
// bucket. Tests that
// share a NATS server call it when they finish; an operator retiring a
// deployment can too. Missing ones are not an error.
func (s Subjects) DeleteState(ctx context.Context, js jetstream.JetStream) error {
	var errs []error
	if err := js.DeleteStream(ctx, s.RouteStream()); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		errs = append(errs, fmt.Errorf("bus: delete stream %s: %w", s.RouteStream(), err))
	}
	if err := js.DeleteKeyValue(ctx, s.LeaseBucket()); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		errs = append(errs, fmt.Errorf("bus: delete bucket %s: %w", s.LeaseBucket(), err))
	}
	if err := s.DeleteS2SState(ctx, js); err != nil {
		errs = append(errs, err)
	}
	if err := js.DeleteKeyValue(ctx, s.NodeBucket()); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		errs = append(errs, fmt.Errorf("bus: delete bucket %s: %w", s.NodeBucket(), err))
	}
	return errors.Join(errs...)
}
