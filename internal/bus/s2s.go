package bus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects of the s2s service.
//
// Outbound: a router publishes every stanza for a remote domain, as the
// busv1.Stanza envelope it consumed (from, to, kind, type, id, origin, seq
// and raw unchanged; raw in jabber:client form as connection services
// publish it), to S2SOut(domain of to). The s2s pods subscribe to
// S2SOutAll in the queue group S2SQueue, so each stanza is sent by one pod.
//
// Inbound: s2s publishes every accepted stanza from a remote server exactly
// as c2s does, to RouteFor(bare JID of from), with origin node = the s2s
// node and origin session = the stream's id. Bounces of stanzas s2s could
// not send (remote-server-not-found, remote-server-timeout) take the same
// path, addressed to the original sender: from is the remote address the
// stanza was for.

// In a cluster (docs/design/006-s2s-cluster.md) every s2s pod subscribes
// to S2SOutAll without a queue group, and only the pod holding a pair's
// lease in S2SLeaseBucket sends the stanzas of that (local, remote) pair;
// the others drop them. S2SQueue is for a single s2s process without
// leases.

// S2SQueue is the queue group of the s2s pods on S2SOutAll.
const S2SQueue = "s2s"

// S2SOut is the subject of stanzas for the remote domain, or "" when
// domain cannot be part of a subject (empty, or holding '*', '>' or
// whitespace; the domain's own dots become subject separators).
func (s Subjects) S2SOut(domain string) string {
	if domain == "" || strings.ContainsAny(domain, "*> \t\r\n") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return ""
	}
	return s.Prefix + ".s2s.out." + domain
}

// S2SOutAll matches S2SOut of every domain.
func (s Subjects) S2SOutAll() string { return s.Prefix + ".s2s.out.>" }

// S2SOutDomain returns the remote domain of an S2SOut subject.
func (s Subjects) S2SOutDomain(subject string) (string, bool) {
	d, ok := strings.CutPrefix(subject, s.Prefix+".s2s.out.")
	return d, ok && d != ""
}

// S2SLeaseBucket is the key-value bucket where s2s pods hold the lease of
// each (local domain, remote domain) pair they send for.
func (s Subjects) S2SLeaseBucket() string { return s.token() + "_s2s" }

// S2SLeaseKey is the key of the pair's lease in S2SLeaseBucket; its value
// is the holder's node id. Domains are base64url-encoded, since a key
// allows fewer characters than a domain name.
func (s Subjects) S2SLeaseKey(local, remote string) string {
	enc := base64.RawURLEncoding
	return "out." + enc.EncodeToString([]byte(local)) + "." + enc.EncodeToString([]byte(remote))
}

// EnsureS2SLeaseBucket creates the s2s lease bucket, where an entry lives
// ttl unless its holder renews it.
func (s Subjects) EnsureS2SLeaseBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, o StreamOptions) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      s.S2SLeaseBucket(),
		Description: "Switchboard s2s pods and the domain pairs each sends for",
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

// DeleteS2SState removes the s2s lease bucket of this prefix; a missing
// one is not an error.
func (s Subjects) DeleteS2SState(ctx context.Context, js jetstream.JetStream) error {
	err := js.DeleteKeyValue(ctx, s.S2SLeaseBucket())
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("bus: delete bucket %s: %w", s.S2SLeaseBucket(), err)
	}
	return nil
}
