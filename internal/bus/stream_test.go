package bus

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
)

// JetStream stream, consumer and bucket names allow only these characters;
// key-value keys also allow '.' between tokens.
var (
	jsName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	kvKey  = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

func TestJetStreamNamesValidForAnyPrefix(t *testing.T) {
	for _, prefix := range []string{"sb", "t1", "tenant.a", "a b*>/\\", "x-y_z"} {
		s := New(prefix, 4)
		for _, name := range []string{s.RouteStream(), s.LeaseBucket(), s.RouteConsumer(3)} {
			if !jsName.MatchString(name) {
				t.Errorf("prefix %q: name %q is not a valid JetStream name", prefix, name)
			}
		}
		for _, key := range []string{s.LeaseKey(0), s.MemberKey("router-1")} {
			if !kvKey.MatchString(key) {
				t.Errorf("prefix %q: key %q is not a valid key", prefix, key)
			}
		}
	}
}

// Distinct stanzas and hand-backs must never share a message id, or the
// stream would drop one as a duplicate.
func TestMessageIDsDistinct(t *testing.T) {
	ids := map[string]bool{}
	for _, id := range []string{
		StanzaMsgID("n1", "s1", 1),
		StanzaMsgID("n1", "s1", 2),
		StanzaMsgID("n1", "s2", 1),
		StanzaMsgID("n2", "s1", 1),
		HandBackMsgID("n1", "s1", 1, 0, "n2", "t1"),
		HandBackMsgID("n1", "s1", 1, 1, "n2", "t1"),
		HandBackMsgID("n1", "s1", 1, 0, "n2", "t2"),
		HandBackMsgID("n1", "s1", 1, 0, "n3", "t1"),
	} {
		if ids[id] {
			t.Errorf("message id %q used twice", id)
		}
		ids[id] = true
	}
}

func TestDeleteStateRemovesStreamAndBucketsAndToleratesMissingOnes(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{JetStreamDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := New("deltest", 4)
	if err := s.EnsureRouteStream(ctx, js, StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureLeaseBucket(ctx, js, 3*time.Second, StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureS2SLeaseBucket(ctx, js, 3*time.Second, StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteState(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(ctx, s.S2SLeaseBucket()); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("s2s lease bucket still there: %v", err)
	}
	if _, err := js.Stream(ctx, s.RouteStream()); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("route stream still there: %v", err)
	}
	if _, err := js.KeyValue(ctx, s.LeaseBucket()); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("lease bucket still there: %v", err)
	}
	if err := s.DeleteState(ctx, js); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}
