package s2s

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// DefaultLeaseTTL is how long a pair's lease lives without renewal: a pod
// that dies keeps its pairs that long. The holder renews every third of it.
const DefaultLeaseTTL = 10 * time.Second

// leases decides, in a cluster, which stanzas this pod sends: those of
// the (local, remote) pairs whose lease it holds in Config.Leases. Every
// pod receives every outbound stanza; the first pod to see a pair with no
// live lease takes it (a key-value Create, which only one pod can win),
// the others drop that pair's stanzas while the lease lives. See
// docs/design/006-s2s-cluster.md.
type leases struct {
	s   *Server
	kv  jetstream.KeyValue
	ttl time.Duration

	// mu is held by the subscription callback from the lease decision to
	// the link's creation, and by the renewal pass, so a pair is never
	// released while a stanza is being handed to its link.
	mu     sync.Mutex
	held   map[pair]uint64       // the lease's revision
	others map[string]otherLease // by key: held elsewhere, as last read
}

type otherLease struct {
	node string
	read time.Time
}

func newLeases(s *Server) *leases {
	return &leases{s: s, kv: s.cfg.Leases, ttl: s.cfg.LeaseTTL, held: map[pair]uint64{}, others: map[string]otherLease{}}
}

// offer hands env to the server when this pod holds, or can take, the
// lease of its pair, and drops it otherwise (the holder sends it).
func (l *leases) offer(ctx context.Context, env *busv1.Stanza) {
	to, err1 := jid.Parse(env.GetTo())
	from, err2 := jid.Parse(env.GetFrom())
	if err1 != nil || err2 != nil {
		l.s.onOutbound(env) // logs and drops it
		return
	}
	p := pair{local: from.Domainpart(), remote: to.Domainpart()}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mine(ctx, p) {
		l.s.onOutbound(env)
	}
}

// mine reports whether this pod holds p's lease, taking it when it is
// free. A pair held elsewhere is read again after a quarter of the TTL,
// so a dead holder's pairs are taken within about 1.25 TTL of its last
// renewal. Called with mu held.
func (l *leases) mine(ctx context.Context, p pair) bool {
	if _, ok := l.held[p]; ok {
		return true
	}
	key := l.s.cfg.Subjects.S2SLeaseKey(p.local, p.remote)
	if o, ok := l.others[key]; ok && time.Since(o.read) < l.ttl/4 {
		return false
	}
	node := l.s.cfg.Node
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for range 2 {
		rev, err := l.kv.Create(cctx, key, []byte(node))
		if err == nil {
			l.held[p] = rev
			delete(l.others, key)
			l.s.log.Info("s2s lease taken", "local", p.local, "remote", p.remote)
			return true
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			l.s.log.Warn("s2s lease: cannot take; stanzas of the pair dropped here", "local", p.local, "remote", p.remote, "err", err)
			l.others[key] = otherLease{read: time.Now()}
			return false
		}
		e, err := l.kv.Get(cctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile: try again
		}
		if err != nil {
			l.s.log.Warn("s2s lease: cannot read", "local", p.local, "remote", p.remote, "err", err)
			l.others[key] = otherLease{read: time.Now()}
			return false
		}
		if string(e.Value()) == node {
			// Ours from before (this node restarted within the TTL).
			l.held[p] = e.Revision()
			return true
		}
		l.others[key] = otherLease{node: string(e.Value()), read: time.Now()}
		return false
	}
	return false
}

// watch forgets what it read of leases other pods hand back or take, as
// the bucket announces it, so a pair released at a clean stop is taken at
// its next stanza rather than a quarter TTL later. Expiry is not
// announced; mine reads an expired lease again after a quarter TTL.
func (l *leases) watch(ctx context.Context) {
	w, err := l.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		l.s.log.Warn("s2s lease: cannot watch the bucket", "err", err)
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			l.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut && string(e.Value()) != l.s.cfg.Node {
				l.others[e.Key()] = otherLease{node: string(e.Value()), read: time.Now()}
			} else if e.Operation() != jetstream.KeyValuePut {
				delete(l.others, e.Key())
			}
			l.mu.Unlock()
		}
	}
}

// renew runs until ctx ends: every third of the TTL it renews the leases
// of pairs with a link and releases those whose link retired (idle).
func (l *leases) renew(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		for p, rev := range l.held {
			l.s.mu.Lock()
			_, active := l.s.links[p]
			l.s.mu.Unlock()
			key := l.s.cfg.Subjects.S2SLeaseKey(p.local, p.remote)
			cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
			if !active {
				delete(l.held, p)
				if err := l.kv.Delete(cctx, key, jetstream.LastRevision(rev)); err != nil {
					l.s.log.Debug("s2s lease release", "err", err)
				}
				cancel()
				continue
			}
			nrev, err := l.kv.Update(cctx, key, []byte(l.s.cfg.Node), rev)
			cancel()
			switch {
			case err == nil:
				l.held[p] = nrev
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
				// Expired and perhaps taken: another pod sends the pair's
				// new stanzas; what this link still holds goes out first.
				delete(l.held, p)
				l.s.log.Warn("s2s lease lost", "local", p.local, "remote", p.remote, "err", err)
			default:
				l.s.log.Warn("s2s lease renewal failed; retrying", "local", p.local, "remote", p.remote, "err", err)
			}
		}
		l.mu.Unlock()
	}
}

// releaseAll hands back every lease at a clean stop, so other pods take
// the pairs at their next stanza instead of after the TTL.
func (l *leases) releaseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, rev := range l.held {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := l.kv.Delete(ctx, l.s.cfg.Subjects.S2SLeaseKey(p.local, p.remote), jetstream.LastRevision(rev)); err != nil {
			l.s.log.Debug("s2s lease release at stop", "err", err)
		}
		cancel()
		delete(l.held, p)
	}
}
