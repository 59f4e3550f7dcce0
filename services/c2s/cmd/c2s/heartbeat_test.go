package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
)

// scriptedRegistry answers Heartbeat from a script of epochs (0: fail
// with Unavailable) and records DropNode calls; when the script is used
// up it calls done.
type scriptedRegistry struct {
	presencev1.SessionRegistryClient
	mu     sync.Mutex
	epochs []uint64
	calls  []string
	done   func()
}

func (r *scriptedRegistry) DropNode(_ context.Context, in *presencev1.DropNodeRequest, _ ...grpc.CallOption) (*presencev1.DropNodeResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "drop "+in.GetNode())
	return &presencev1.DropNodeResponse{}, nil
}

func (r *scriptedRegistry) Heartbeat(_ context.Context, in *presencev1.HeartbeatRequest, _ ...grpc.CallOption) (*presencev1.HeartbeatResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.epochs) == 0 {
		r.done()
		return nil, status.Error(codes.Unavailable, "script over")
	}
	e := r.epochs[0]
	r.epochs = r.epochs[1:]
	r.calls = append(r.calls, "heartbeat")
	if in.GetTtlMs() != 30 {
		r.calls = append(r.calls, "wrong ttl")
	}
	if e == 0 {
		return nil, status.Error(codes.Unavailable, "presence away")
	}
	return &presencev1.HeartbeatResponse{Epoch: e}, nil
}

func (r *scriptedRegistry) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

// scriptedServer fails its first failures Rebinds.
type scriptedServer struct {
	reg      *scriptedRegistry
	failures int
}

func (s *scriptedServer) Rebind(context.Context) (int, error) {
	if s.failures > 0 {
		s.failures--
		s.reg.record("rebind failed")
		return 0, errors.New("presence away")
	}
	s.reg.record("rebind")
	return 3, nil
}

func runHeartbeat(t *testing.T, epochs []uint64, rebindFailures int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := &scriptedRegistry{epochs: epochs, done: cancel}
	hb := &heartbeater{log: slog.New(slog.NewTextHandler(io.Discard, nil)), registry: reg, node: "c2s-9", ttl: 30 * time.Millisecond,
		srv: &scriptedServer{reg: reg, failures: rebindFailures}}
	if err := hb.start(ctx); err != nil {
		t.Fatal(err)
	}
	reg.record("serving")
	if err := hb.run(ctx); err != nil {
		t.Fatal(err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the heartbeat did not use up its script within 10 s")
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.calls
}

func TestHeartbeatDropsTheNodeBeforeServingAndRebindsOnlyWhenTheEpochChanges(t *testing.T) {
	got := runHeartbeat(t, []uint64{7, 7, 0, 7, 8, 8}, 0)
	want := []string{"drop c2s-9", "heartbeat", "serving", "heartbeat", "heartbeat", "heartbeat", "heartbeat", "rebind", "heartbeat"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls\n  %q\nwant\n  %q", got, want)
	}
}

func TestHeartbeatRetriesAFailedRebindAtTheNextTick(t *testing.T) {
	got := runHeartbeat(t, []uint64{1, 2, 2, 2}, 1)
	want := []string{"drop c2s-9", "heartbeat", "serving", "heartbeat", "rebind failed", "heartbeat", "rebind", "heartbeat"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls\n  %q\nwant\n  %q", got, want)
	}
}
