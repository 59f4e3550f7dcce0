package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/services/presence/redisstore"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// redisAddr is the shared Redis of the integration tests; each test uses
// a key prefix of its own and deletes its keys.
func redisAddr() string {
	if a := os.Getenv("SWITCHBOARD_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return redisstore.DefaultAddr
}

// presenceOnRedis runs the real presence service over a Redis store under
// a fresh key prefix, publishing its events on subjects, and returns a
// gRPC client of it.
func presenceOnRedis(t *testing.T, subjects bus.Subjects) presencev1.SessionRegistryClient {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	prefix := "sbtest:router-cache:" + hex.EncodeToString(b[:]) + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := redisstore.Open(ctx, redisstore.Config{Addr: redisAddr(), Prefix: prefix})
	if err != nil {
		t.Fatalf("Redis: %v (set SWITCHBOARD_TEST_REDIS_ADDR to a Redis the tests may use)", err)
	}
	t.Cleanup(func() {
		store.Close()
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr()})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("cleanup of %s*: %v", prefix, err)
		}
	})
	events, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Close)
	svc, err := presence.New(presence.Config{Store: store, Events: events, Subjects: subjects, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return presencev1.NewSessionRegistryClient(cc)
}

// cachingRouter runs a router with its session cache on over reg, and
// waits until the cache is on.
func cachingRouter(t *testing.T, name string, subjects bus.Subjects, reg presencev1.SessionRegistryClient) *Router {
	t.Helper()
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r, err := New(Config{
		Domain: domain, Node: name, NATS: nc, Subjects: subjects,
		Sessions: reg, Accounts: &fakeAccounts{exists: map[string]bool{}}, Roster: newFakeRoster(),
		Logger: testLogger(), LeaseTTL: testLeaseTTL, Stream: testStream,
		// Long enough that only an event can explain a change seen.
		SessionCacheSize: 100, SessionCacheTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("router did not stop")
		}
	})
	waitUntil(t, name+"'s session cache on", r.cache.isOn)
	return r
}

// view is what router r routes with for the account bare: its cached
// sessions, filling the cache when they are not there. It describes them
// as "resource:available:priority", sorted.
func view(t *testing.T, r *Router, bare string) string {
	t.Helper()
	j := &job{ctx: context.Background(), r: r, st: &busv1.Stanza{Kind: busv1.Kind_KIND_PRESENCE}}
	defer func() {
		if j.cancel != nil {
			j.cancel()
		}
	}()
	sessions, ok := j.lookup(jid.MustParse(bare))
	if !ok {
		t.Fatalf("lookup of %s failed", bare)
	}
	var d []string
	for _, s := range sessions {
		_, res, _ := strings.Cut(s.Jid, "/")
		a := "unavailable"
		if s.Available {
			a = "available"
		}
		d = append(d, res+":"+a+":"+strconv.Itoa(int(s.Priority)))
	}
	slices.Sort(d)
	return strings.Join(d, ",")
}

// waitView waits until both routers' views of bare are want.
func waitView(t *testing.T, bare, want string, rs ...*Router) {
	t.Helper()
	for _, r := range rs {
		var got string
		deadline := time.Now().Add(10 * time.Second)
		for got = view(t, r, bare); got != want; got = view(t, r, bare) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's view of %s: %q, want %q", r.node, bare, got, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// TestSessionCachesFollowTheRegistryAcrossRouters runs two routers with
// session caches against the real presence service on Redis: every
// change made through the registry (Bind, Unbind, DropNode) or routed by
// one router (presence) reaches the other router's cache, which would
// otherwise hold its first answer for an hour.
func TestSessionCachesFollowTheRegistryAcrossRouters(t *testing.T) {
	subjects := bus.New(testPrefix("cache"), 4)
	reg := presenceOnRedis(t, subjects)
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dropStreams(t, js, subjects)
	r1 := cachingRouter(t, "r1", subjects, reg)
	r2 := cachingRouter(t, "r2", subjects, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob := "bob@example.com"

	// Both cache "no session" for bob, and answer from the cache.
	waitView(t, bob, "", r1, r2)
	wantHit(t, r1, bob, "")
	wantHit(t, r2, bob, "")

	if _, err := reg.Bind(ctx, &presencev1.BindRequest{Jid: bob + "/desk", Node: "n2", SessionId: "b-desk"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, bob, "desk:unavailable:0", r1, r2)
	wantHit(t, r2, bob, "desk:unavailable:0")

	// Bob's initial presence, routed by r1: r1 records it in the
	// registry and forgets bob at once; r2 hears of it.
	el := pres("", "", "p1", priorityEl("5"))
	el.SetAttr("from", bob+"/desk")
	st := &busv1.Stanza{From: bob + "/desk", Kind: busv1.Kind_KIND_PRESENCE, Id: "p1",
		Origin: &busv1.Origin{Node: "n2", Session: "b-desk"}, Raw: el.Marshal(), Seq: 1}
	r1.route(ctx, st, nil)
	if got := view(t, r1, bob); got != "desk:available:5" {
		t.Errorf("r1's view right after routing bob's presence: %q", got)
	}
	waitView(t, bob, "desk:available:5", r2)

	// A second resource, then the first one leaves.
	if _, err := reg.Bind(ctx, &presencev1.BindRequest{Jid: bob + "/phone", Node: "n1", SessionId: "b-phone"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, bob, "desk:available:5,phone:unavailable:0", r1, r2)
	if _, err := reg.Unbind(ctx, &presencev1.UnbindRequest{Jid: bob + "/desk", SessionId: "b-desk"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, bob, "phone:unavailable:0", r1, r2)

	// A node dropped: every account with a session there.
	if _, err := reg.Bind(ctx, &presencev1.BindRequest{Jid: "alice@example.com/laptop", Node: "n1", SessionId: "a-laptop"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, "alice@example.com", "laptop:unavailable:0", r1, r2)
	if _, err := reg.DropNode(ctx, &presencev1.DropNodeRequest{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, bob, "", r1, r2)
	waitView(t, "alice@example.com", "", r1, r2)
}

// wantHit checks that r answers its view of bare from the cache.
func wantHit(t *testing.T, r *Router, bare, want string) {
	t.Helper()
	hits := r.SessionCacheStats().Hits
	if got := view(t, r, bare); got != want {
		t.Errorf("%s's view of %s: %q, want %q", r.node, bare, got, want)
	}
	if r.SessionCacheStats().Hits != hits+1 {
		t.Errorf("%s did not answer %s from its cache", r.node, bare)
	}
}

// TestSessionCacheFlushedOnReconnect checks the cache forgets everything
// when its NATS connection is lost and comes back, since events may have
// been missed in between, and works again afterwards.
func TestSessionCacheFlushedOnReconnect(t *testing.T) {
	subjects := bus.New(testPrefix("cache"), 4)
	reg := presenceOnRedis(t, subjects)
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dropStreams(t, js, subjects)
	r := cachingRouter(t, "r1", subjects, reg)
	bob := "bob@example.com"
	waitView(t, bob, "", r)
	flushes := r.cache.flushes.Load()
	if err := r.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cache flushed after the reconnect", func() bool {
		return r.cache.flushes.Load() > flushes+1 && r.cache.isOn() && r.nc.IsConnected()
	})
	if n := r.cache.len(); n != 0 {
		t.Errorf("%d entries survived the reconnect", n)
	}
	// Events reach it again.
	waitView(t, bob, "", r)
	if _, err := reg.Bind(context.Background(), &presencev1.BindRequest{Jid: bob + "/desk", Node: "n2", SessionId: "b-desk"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, bob, "desk:unavailable:0", r)
}
