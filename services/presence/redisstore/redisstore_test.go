package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/storetest"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// redisAddr is the shared Redis the tests use. They never stop it or
// flush it: each test owns a random key prefix and deletes its keys.
func redisAddr() string {
	if a := os.Getenv("SWITCHBOARD_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return DefaultAddr
}

// testPrefix returns a fresh key prefix and deletes every key under it
// when the test ends.
func testPrefix(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	prefix := "sbtest:presence:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr()})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: SCAN %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: DEL: %v", err)
			}
		}
	})
	return prefix
}

// open opens a Store on the shared Redis (or cfg.Addr) under a test
// prefix, closed when the test ends.
func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = redisAddr()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v (set SWITCHBOARD_TEST_REDIS_ADDR to a Redis the tests may use)", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) presence.Store {
		// A small batch makes every reap of the suite take several steps.
		return open(t, Config{ReapBatch: 3})
	})
}

// Keys are the store's and the test's alone: none is written outside the
// prefix, and none is left once every session is gone and every node
// dropped, but the epoch counter, the tombstones and the expiring reply of
// the last drop step.
func TestEveryKeyIsUnderThePrefixAndSessionsLeaveNoKeysBehind(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	full := jid.MustParse("juliet@example.com/balcony")
	if _, err := s.Heartbeat(ctx, "node-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-a", ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bind(ctx, presence.Session{JID: full, Node: "node-b", ID: "s2"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Unbind(ctx, full, "s2"); err != nil || !ok {
		t.Fatalf("Unbind = %v, %v", ok, err)
	}
	if _, err := s.DropNode(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	keys, err := s.rdb.Keys(ctx, s.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch {
		case k == s.dead || k == s.epochSeq:
		case strings.HasPrefix(k, s.prefix+"step:"):
			// A drop step's reply, kept for a while in case it was lost.
			if ttl, err := s.rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > stepTTL {
				t.Errorf("step key %q has TTL %v, %v; want one up to %v", k, ttl, err, stepTTL)
			}
		default:
			t.Errorf("key %q left behind", k)
		}
	}
}

func TestOpenOfAnUnreachableRedisFailsNamingTheAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := closedAddr(t)
	start := time.Now()
	_, err := Open(ctx, Config{Addr: addr, Timeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Open took %v to fail", elapsed)
	}
	if want := addr; !strings.Contains(err.Error(), want) {
		t.Errorf("Open error %q does not name %s", err, want)
	}
}

// A registry written by a version of this store that kept no set of nodes
// with sessions still counts the sessions of every node that sends
// heartbeats, which every c2s node does.
func TestCountByNodeCountsSessionsBoundBeforeTheNodesSetWasKept(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	if _, err := s.Heartbeat(ctx, "node-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"balcony", "garden"} {
		if _, err := s.Bind(ctx, presence.Session{JID: jid.MustParse("juliet@example.com/" + r), Node: "node-a", ID: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.rdb.Del(ctx, s.nodes).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.CountByNode(ctx)
	if err != nil || len(got) != 1 || got["node-a"] != 2 {
		t.Fatalf("CountByNode = %v, %v; want node-a: 2", got, err)
	}
}
