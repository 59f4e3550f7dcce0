package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
)

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// redisPrefix returns a fresh key prefix whose keys are deleted when the
// test ends.
func redisPrefix(t *testing.T, addr string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "sbtest:presencecmd:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return prefix
}

// services waits until the gRPC server at addr answers reflection and
// returns what it lists.
func services(t *testing.T, addr string) []string {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		names, err := grpcx.ListServices(ctx, cc)
		cancel()
		if err == nil {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("reflection at %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListenerServesHealthAndReflection(t *testing.T) {
	redisAddr := getenv("SWITCHBOARD_TEST_REDIS_ADDR", "127.0.0.1:6379")
	addr := freeAddr(t)
	b := make([]byte, 6)
	rand.Read(b)
	natsURL := getenv("SWITCHBOARD_TEST_NATS_URL", "nats://127.0.0.1:4222")
	subjectPrefix := "presencecmd" + hex.EncodeToString(b)
	// Runs after the process stopped (cleanups run last first): the node
	// bucket it made goes, so the shared NATS keeps nothing of the test.
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bus.New(subjectPrefix, bus.DefaultPartitions).DeleteState(ctx, js); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{
			"--grpc-listen", addr, "--health-listen", "127.0.0.1:0",
			"--redis-addr", redisAddr, "--redis-prefix", redisPrefix(t, redisAddr),
			"--nats-url", natsURL,
			"--subject-prefix", subjectPrefix, "--node-id", "presence-test",
		}, func(string) (string, bool) { return "", false }, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("presence did not stop")
		}
	})
	want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
		"grpc.reflection.v1alpha.ServerReflection", "switchboard.presence.v1.SessionRegistry"}
	if got := services(t, addr); !slices.Equal(got, want) {
		t.Errorf("lists %q, want %q", got, want)
	}
}
