// Package redisstore is the session registry of a cluster: sessions and
// node liveness in Redis, shared by every presence pod. Each change is one
// Lua script, so it is atomic however many pods run, and times come from
// the Redis server's clock, so pods with skewed clocks agree on which node
// is dead.
//
// Keys, all under the configured prefix:
//
//	a:<bare JID>   hash: resourcepart -> session
//	r:<bare JID>   hash: resourcepart -> id of the session that requested its roster
//	d:<full JID> NUL <session id>   set: the session's directed-presence targets
//	n:<node>       set of the node's sessions, for reaping and counting
//	nodes          set of the nodes whose n:<node> is not empty
//	live           sorted set: node -> heartbeat expiry (Unix ms, server clock)
//	dead           sorted set: node -> when it was reaped or dropped
//	epoch          hash: node -> epoch
//	epochseq       counter of epochs
//	step:<token>   reply of a reap or drop step, kept for a client that lost it
package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-xmpp/switchboard/services/presence"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// Defaults of Config.
const (
	DefaultAddr      = "127.0.0.1:6379"
	DefaultPrefix    = "sb:presence:"
	DefaultTimeout   = time.Second
	DefaultReapBatch = 1000
)

// maxReapBatch bounds Config.ReapBatch: a step's reply, three items per
// session, is also kept in Redis, and one script should not block Redis
// for long.
const maxReapBatch = 10000

// scanBatch is how many expired nodes one step of ReapDeadNodes lists.
const scanBatch = 100

// stepTTL is how long Redis keeps the reply of a reap or drop step for a
// client that lost it (see dropScript): the next reap of this Store, every
// couple of seconds, asks again, so this covers Redis outages of minutes.
const stepTTL = 10 * time.Minute

// Config configures a Store.
type Config struct {
	// Addr is the Redis server's host:port; DefaultAddr when empty.
	Addr string
	// Username and Password authenticate to Redis (ACL or requirepass).
	Username, Password string
	// DB is the Redis database number.
	DB int
	// Prefix starts every key of the store; DefaultPrefix when empty. A
	// deployment, or a test, owns its prefix. On Redis Cluster it must be
	// a hash tag such as "{sb}:" (see scripts.go).
	Prefix string
	// Timeout bounds each call to Redis, within the caller's own deadline;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// ReapBatch is how many sessions one reap step removes at most, which
	// bounds how long a reap of a large node blocks Redis;
	// DefaultReapBatch when zero.
	ReapBatch int
	// PoolSize is the most connections to Redis; go-redis's default (ten
	// per CPU) when zero.
	PoolSize int
}

// Store is a presence.Store in Redis. It is safe for concurrent use.
type Store struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
	batch   int
	// Keys that do not depend on the call.
	live, dead, epochs, epochSeq, nodes string

	mu sync.Mutex
	// pending holds, by node, the tokens of drop steps whose reply did not
	// arrive: they may have removed sessions that only their kept reply
	// still names.
	pending map[string][]string
}

var _ presence.Store = (*Store)(nil)

// Open connects to Redis and checks that it answers, so that a wrong
// address fails at start with an error that names it. Later outages make
// calls fail until Redis is back; the Store reconnects by itself.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	addr := cmp.Or(cfg.Addr, DefaultAddr)
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	if timeout < 0 || cfg.ReapBatch < 0 || cfg.ReapBatch > maxReapBatch {
		return nil, fmt.Errorf("redisstore: Timeout must not be negative, ReapBatch must be 0 to %d", maxReapBatch)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:     addr,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		PoolSize: cfg.PoolSize,
		// A retry could run a script twice whose first reply was lost:
		// a Bind would lose the session it replaced, a reap the sessions
		// it removed. Callers retry instead, knowing what they asked.
		MaxRetries: -1,
		// One dial per call: the call's deadline is short, and the next
		// call dials again.
		DialerRetries:         1,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	})
	s := newStore(rdb, cmp.Or(cfg.Prefix, DefaultPrefix), timeout, cmp.Or(cfg.ReapBatch, DefaultReapBatch))
	pctx, cancel := s.call(ctx)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: Redis at %s: %w", addr, err)
	}
	return s, nil
}

func newStore(rdb *redis.Client, prefix string, timeout time.Duration, batch int) *Store {
	return &Store{
		rdb:      rdb,
		prefix:   prefix,
		timeout:  timeout,
		batch:    batch,
		live:     prefix + "live",
		dead:     prefix + "dead",
		epochs:   prefix + "epoch",
		epochSeq: prefix + "epochseq",
		nodes:    prefix + "nodes",
		pending:  make(map[string][]string),
	}
}

// Close closes the connections to Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// call bounds one call to Redis by the store's timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) accountKey(bare string) string { return s.prefix + "a:" + bare }
func (s *Store) rosterKey(bare string) string  { return s.prefix + "r:" + bare }
func (s *Store) directedKey(full jid.JID, id string) string {
	return s.prefix + "d:" + full.String() + "\x00" + id
}
func (s *Store) nodeKey(node string) string { return s.prefix + "n:" + node }

// fail wraps a Redis error. A call that ran out of the caller's own time
// reports the caller's context error, as the other stores do.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redisstore: %s: %w", op, cerr)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// checkName refuses what the stored form cannot hold.
func checkName(what, v string) error {
	if v == "" || strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: %s %q is empty or holds NUL", presence.ErrInvalidSession, what, v)
	}
	return nil
}

// Bind implements presence.Store.
func (s *Store) Bind(ctx context.Context, sess presence.Session) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sess.JID.IsBare() {
		return nil, fmt.Errorf("%w: Bind needs a full JID", presence.ErrInvalidJID)
	}
	if err := cmp.Or(checkName("session id", sess.ID), checkName("node", sess.Node)); err != nil {
		return nil, err
	}
	bare, res := sess.JID.Bare().String(), sess.JID.Resourcepart()
	cctx, cancel := s.call(ctx)
	defer cancel()
	old, err := bindScript.Run(cctx, s.rdb,
		[]string{s.accountKey(bare), s.nodeKey(sess.Node), s.dead, s.live, s.nodes, s.rosterKey(bare)},
		s.prefix+"n:", bare, res, sess.ID, sess.Node, encode(sess), flag(sess.RosterRequested),
		s.prefix+"d:", presence.DirectedRetention.Milliseconds()).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fail(ctx, "bind", err)
	}
	replaced, err := decode(sess.JID, old)
	if err != nil {
		return nil, err
	}
	return []presence.Session{replaced}, nil
}

// Unbind implements presence.Store.
func (s *Store) Unbind(ctx context.Context, full jid.JID, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bare := full.Bare().String()
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := unbindScript.Run(cctx, s.rdb, []string{s.accountKey(bare), s.nodes, s.rosterKey(bare), s.directedKey(full, sessionID)},
		s.prefix+"n:", bare, full.Resourcepart(), sessionID, presence.DirectedRetention.Milliseconds()).Int()
	if err != nil {
		return false, fail(ctx, "unbind", err)
	}
	return n == 1, nil
}

// SetPresence implements presence.Store.
func (s *Store) SetPresence(ctx context.Context, full jid.JID, sessionID string, available bool, priority int, raw []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := setPresenceScript.Run(cctx, s.rdb, []string{s.accountKey(full.Bare().String())},
		full.Resourcepart(), sessionID, encodePresence(available, priority, raw)).Int()
	if err != nil {
		return false, fail(ctx, "set presence", err)
	}
	return n == 1, nil
}

// Lookup implements presence.Store. It is one HGET or HGETALL of the
// account, pipelined with the same of its roster-requested flags: no
// script, so that the router's most frequent call costs one round trip.
func (s *Store) Lookup(ctx context.Context, j jid.JID) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bare := j.Bare()
	key, rkey := s.accountKey(bare.String()), s.rosterKey(bare.String())
	cctx, cancel := s.call(ctx)
	defer cancel()
	if !j.IsBare() {
		var v, asked *redis.StringCmd
		_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
			v = p.HGet(cctx, key, j.Resourcepart())
			asked = p.HGet(cctx, rkey, j.Resourcepart())
			return nil
		})
		switch {
		case errors.Is(v.Err(), redis.Nil):
			return nil, nil
		case err != nil && !errors.Is(err, redis.Nil):
			return nil, fail(ctx, "lookup", err)
		}
		sess, err := decode(j, v.Val())
		if err != nil {
			return nil, err
		}
		sess.RosterRequested = asked.Val() == sess.ID
		return []presence.Session{sess}, nil
	}
	var all, asked *redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(cctx, key)
		asked = p.HGetAll(cctx, rkey)
		return nil
	}); err != nil {
		return nil, fail(ctx, "lookup", err)
	}
	out := make([]presence.Session, 0, len(all.Val()))
	for res, v := range all.Val() {
		full, err := bare.WithResource(res)
		if err != nil {
			return nil, fmt.Errorf("redisstore: resourcepart %q stored under %s: %w", res, bare, err)
		}
		sess, err := decode(full, v)
		if err != nil {
			return nil, err
		}
		sess.RosterRequested = asked.Val()[res] == sess.ID
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b presence.Session) int {
		return strings.Compare(a.JID.Resourcepart(), b.JID.Resourcepart())
	})
	return out, nil
}

// SetRosterRequested implements presence.IMState.
func (s *Store) SetRosterRequested(ctx context.Context, full jid.JID, sessionID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bare := full.Bare().String()
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := rosterRequestedScript.Run(cctx, s.rdb, []string{s.accountKey(bare), s.rosterKey(bare)},
		full.Resourcepart(), sessionID).Int()
	if err != nil {
		return false, fail(ctx, "set roster requested", err)
	}
	return n == 1, nil
}

// UpdateDirected implements presence.IMState.
func (s *Store) UpdateDirected(ctx context.Context, full jid.JID, sessionID, target string, remove bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := updateDirectedScript.Run(cctx, s.rdb, []string{s.accountKey(full.Bare().String()), s.directedKey(full, sessionID)},
		full.Resourcepart(), sessionID, target, flag(remove), presence.MaxDirectedTargets).Int()
	if err != nil {
		return false, fail(ctx, "update directed presence", err)
	}
	return n == 1, nil
}

// TakeDirected implements presence.IMState.
func (s *Store) TakeDirected(ctx context.Context, full jid.JID, sessionID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	targets, err := takeDirectedScript.Run(cctx, s.rdb, []string{s.directedKey(full, sessionID)}).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail(ctx, "take directed presence", err)
	}
	slices.Sort(targets)
	return targets, nil
}

// flag is how the scripts take a boolean.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Heartbeat implements presence.Store.
func (s *Store) Heartbeat(ctx context.Context, node string, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkName("node", node); err != nil {
		return 0, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	e, err := heartbeatScript.Run(cctx, s.rdb, []string{s.live, s.dead, s.epochs, s.epochSeq},
		node, max(ttl.Milliseconds(), 1)).Uint64()
	if err != nil {
		return 0, fail(ctx, "heartbeat", err)
	}
	return e, nil
}

// ReapDeadNodes implements presence.Store. It works node by node and
// batch by batch, each batch one script, so Redis serves other clients
// between them; each batch checks again that the node is still expired.
// It first asks again for the steps of this Store whose reply was lost.
func (s *Store) ReapDeadNodes(ctx context.Context) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var removed []presence.Session
	for _, node := range s.pendingNodes() {
		got, err := s.drop(ctx, node, false)
		removed = append(removed, got...)
		if err != nil {
			return removed, err
		}
	}
	for {
		cctx, cancel := s.call(ctx)
		nodes, err := expiredScript.Run(cctx, s.rdb, []string{s.live}, scanBatch).StringSlice()
		cancel()
		if err != nil {
			return removed, fail(ctx, "list expired nodes", err)
		}
		for _, node := range nodes {
			got, err := s.drop(ctx, node, false)
			removed = append(removed, got...)
			if err != nil {
				return removed, err
			}
		}
		if len(nodes) < scanBatch {
			return removed, nil
		}
	}
}

// DropNode implements presence.Store.
func (s *Store) DropNode(ctx context.Context, node string) ([]presence.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName("node", node); err != nil {
		return nil, err
	}
	return s.drop(ctx, node, true)
}

// drop runs dropScript on node until it reports done. On an error it
// returns what earlier batches removed along with the error, so that the
// caller still announces them, and keeps the failed step's token for the
// next reap.
func (s *Store) drop(ctx context.Context, node string, forced bool) ([]presence.Session, error) {
	force := flag(forced)
	var removed []presence.Session
	prev := ""
	for {
		token := s.claimStep(node)
		step := s.prefix + "step:" + token
		cctx, cancel := s.call(ctx)
		res, err := dropScript.Run(cctx, s.rdb,
			[]string{s.live, s.dead, s.epochs, s.nodeKey(node), step, cmp.Or(prev, step), s.nodes},
			node, s.batch, force, s.prefix+"a:", presence.TombstoneRetention.Milliseconds(), stepTTL.Milliseconds(),
			s.prefix+"r:", s.prefix+"d:", presence.DirectedRetention.Milliseconds()).StringSlice()
		cancel()
		if err != nil {
			// The script may have run and only its reply been lost.
			s.unclaimStep(node, token)
			return removed, fail(ctx, "drop node "+node, err)
		}
		prev = step
		if len(res) == 0 || (len(res)-1)%3 != 0 {
			return removed, fmt.Errorf("redisstore: drop node %s: malformed reply of %d items", node, len(res))
		}
		for i := 1; i < len(res); i += 3 {
			bare, r, v := res[i], res[i+1], res[i+2]
			full, err := jid.Parse(bare + "/" + r)
			if err != nil {
				return removed, fmt.Errorf("redisstore: session %s/%s stored on node %s: %w", bare, r, node, err)
			}
			sess, err := decode(full, v)
			if err != nil {
				return removed, err
			}
			removed = append(removed, sess)
		}
		if res[0] == "1" {
			return removed, nil
		}
	}
}

// CountByNode implements presence.Store: one script reads the size of
// every node's set, so the counts are one consistent snapshot. No KEYS
// scan: the nodes come from the set the other scripts keep.
func (s *Store) CountByNode(ctx context.Context) (map[string]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := countScript.Run(cctx, s.rdb, []string{s.nodes, s.live}, s.prefix+"n:").StringSlice()
	if err != nil {
		return nil, fail(ctx, "count by node", err)
	}
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("redisstore: count by node: malformed reply of %d items", len(res))
	}
	out := make(map[string]int, len(res)/2)
	for i := 0; i < len(res); i += 2 {
		n, err := strconv.Atoi(res[i+1])
		if err != nil {
			return nil, fmt.Errorf("redisstore: count by node: count %q of %s", res[i+1], res[i])
		}
		out[res[i]] = n
	}
	return out, nil
}

// claimStep returns a token for the next drop step of node: one whose
// reply was lost, which no other caller then holds, or a new one.
func (s *Store) claimStep(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tokens := s.pending[node]; len(tokens) > 0 {
		t := tokens[len(tokens)-1]
		if len(tokens) == 1 {
			delete(s.pending, node)
		} else {
			s.pending[node] = tokens[:len(tokens)-1]
		}
		return t
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) unclaimStep(node, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[node] = append(s.pending[node], token)
}

func (s *Store) pendingNodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var nodes []string
	for n := range s.pending {
		nodes = append(nodes, n)
	}
	return nodes
}

// encode renders a session as the scripts read it: id, node, bound time,
// then what SetPresence replaces.
func encode(s presence.Session) string {
	bound := ""
	if !s.Bound.IsZero() {
		bound = strconv.FormatInt(s.Bound.UnixMilli(), 10)
	}
	return s.ID + "\x00" + s.Node + "\x00" + bound + "\x00" + encodePresence(s.Available, s.Priority, s.LastPresence)
}

func encodePresence(available bool, priority int, raw []byte) string {
	a := "0"
	if available {
		a = "1"
	}
	return a + "\x00" + strconv.Itoa(priority) + "\x00" + string(raw)
}

// decode parses a stored session of full.
func decode(full jid.JID, v string) (presence.Session, error) {
	bad := func() (presence.Session, error) {
		return presence.Session{}, fmt.Errorf("redisstore: malformed session stored for %s", full)
	}
	var f [5]string
	rest := v
	for i := range f {
		var ok bool
		f[i], rest, ok = strings.Cut(rest, "\x00")
		if !ok {
			return bad()
		}
	}
	s := presence.Session{JID: full, ID: f[0], Node: f[1], Available: f[3] == "1"}
	if f[2] != "" {
		ms, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return bad()
		}
		s.Bound = time.UnixMilli(ms)
	}
	p, err := strconv.Atoi(f[4])
	if err != nil {
		return bad()
	}
	s.Priority = p
	if rest != "" {
		s.LastPresence = []byte(rest)
	}
	return s, nil
}
