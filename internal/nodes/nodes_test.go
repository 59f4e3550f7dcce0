package nodes

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{JetStreamDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitFor polls List until match accepts it or 10s passed.
func waitFor(t *testing.T, js jetstream.JetStream, s bus.Subjects, what string, match func([]*busv1.NodeStatus) bool) []*busv1.NodeStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := List(context.Background(), js, s)
		if err != nil {
			t.Fatal(err)
		}
		if match(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 10s", what, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestListWithoutBucketIsEmpty(t *testing.T) {
	js := startJS(t)
	got, err := List(context.Background(), js, bus.New("nobucket", 4))
	if err != nil || len(got) != 0 {
		t.Fatalf("List = %v, %v; want empty, nil", got, err)
	}
}

func TestReportersAreListedWithTheirStatusAndRemovedAtStop(t *testing.T) {
	js := startJS(t)
	s := bus.New("nodestest", 4)
	var conns atomic.Int32
	conns.Store(7)
	var ready atomic.Bool
	var draining atomic.Bool
	c2s, err := New(Config{
		JS: js, Subjects: s, Service: "c2s", Node: "c2s-1", Version: "v9.9.9",
		Interval:    50 * time.Millisecond,
		Connections: func() int { return int(conns.Load()) },
		Ready: func() error {
			if !ready.Load() {
				return errors.New("starting")
			}
			return nil
		},
		Draining: draining.Load,
	})
	if err != nil {
		t.Fatal(err)
	}
	router, err := New(Config{JS: js, Subjects: s, Service: "router", Node: "router-1", Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopC2S := context.WithCancel(context.Background())
	c2sDone := make(chan struct{})
	go func() { c2s.Run(ctx); close(c2sDone) }()
	rctx, stopRouter := context.WithCancel(context.Background())
	defer stopRouter()
	go router.Run(rctx)

	got := waitFor(t, js, s, "both listed, c2s not ready", func(l []*busv1.NodeStatus) bool {
		return len(l) == 2 && l[0].Service == "c2s" && !l[0].Ready && l[0].Detail == "starting"
	})
	if got[1].Service != "router" || got[1].Node != "router-1" || !got[1].Ready || got[1].Version == "" {
		t.Errorf("router status %v", got[1])
	}
	st := got[0]
	if st.Node != "c2s-1" || st.Version != "v9.9.9" || st.Connections != 7 || st.StartedUnixMs == 0 || st.UpdatedUnixMs < st.StartedUnixMs {
		t.Errorf("c2s status %v", st)
	}

	ready.Store(true)
	draining.Store(true)
	conns.Store(3)
	waitFor(t, js, s, "c2s ready, draining, 3 connections", func(l []*busv1.NodeStatus) bool {
		return len(l) == 2 && l[0].Ready && l[0].Detail == "" && l[0].Draining && l[0].Connections == 3
	})

	stopC2S()
	<-c2sDone
	// The key is deleted at a clean stop, not left to expire.
	got, err = List(context.Background(), js, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Service != "router" {
		t.Fatalf("after the c2s stop: %v, want the router only", got)
	}

	kv, err := js.KeyValue(context.Background(), s.NodeBucket())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TTL() != TTL || cfg.History() != 1 {
		t.Errorf("bucket TTL %v history %d, want %v and 1", cfg.TTL(), cfg.History(), TTL)
	}
	if err := s.DeleteState(context.Background(), js); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesNamesThatCannotBeKeys(t *testing.T) {
	js := startJS(t)
	for _, c := range []Config{
		{JS: js, Subjects: bus.New("x", 1), Service: "", Node: "n"},
		{JS: js, Subjects: bus.New("x", 1), Service: "c2s", Node: "a.b"},
		{JS: js, Subjects: bus.New("x", 1), Service: "c*s", Node: "n"},
		{Subjects: bus.New("x", 1), Service: "c2s", Node: "n"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestVersionIsNeverEmpty(t *testing.T) {
	if Version() == "" {
		t.Fatal("empty version")
	}
	old := version
	version = "v1.2.3"
	defer func() { version = old }()
	if Version() != "v1.2.3" {
		t.Fatalf("Version() = %q with the link-time version set", Version())
	}
}
