package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the partition leases. Every router announces itself in
// the lease bucket under its member key and renews it; the live members,
// sorted, share the partitions round-robin (partition p belongs to member
// p mod n), so each gets a fair share and a join or a leave moves only what
// must move. A router consumes a partition only while it holds that
// partition's lease, a key it created (create fails when the key exists)
// and renews with a compare-and-set on its revision. Every key lives one
// LeaseTTL unless renewed: when a router dies its member key and leases
// expire and the others take its partitions over.

// Run routes the stanzas of the partitions this router holds until ctx is
// done, taking and giving up partitions as routers join and leave. It
// creates the route stream and the lease bucket when they do not exist.
//
// When ctx is done, each partition finishes the batch in hand (its
// deliveries published and the stanzas acknowledged), its lease is given
// back so another router takes it at once, and Run returns nil. When the
// NATS connection closes under it, Run stops at once, acknowledging
// nothing more, and returns ErrSubscriptionClosed; its leases then expire.
func (r *Router) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)

	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("router: JetStream: %w", err)
	}
	// A Run cancelled while it starts still starts, then stops as usual.
	setup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.subjects.EnsureRouteStream(setup, js, r.stream); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	kv, err := r.subjects.EnsureLeaseBucket(setup, js, r.leaseTTL, r.stream)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	// One router of the cluster (a queue group) turns each session the
	// presence service removed into its unavailable presence.
	sub, err := r.nc.QueueSubscribe(r.subjects.SessionsRemoved(), "router", func(msg *nats.Msg) {
		r.sessionsRemoved(js, msg.Data)
	})
	if err != nil {
		return fmt.Errorf("router: subscribe to removed sessions: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	stopWatch, err := r.watchSessions()
	if err != nil {
		return fmt.Errorf("router: subscribe to presence changes: %w", err)
	}
	defer stopWatch()
	m := &manager{r: r, js: js, kv: kv, held: make(map[int]*lease)}
	return m.run(ctx)
}

// manager keeps this router's member key and leases, and a worker per
// leased partition.
type manager struct {
	r    *Router
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	held map[int]*lease
}

// lease is a partition this router holds.
type lease struct {
	p   int
	rev uint64 // revision of the lease key we last wrote
	// validUntil (unix nanoseconds) is when the lease may have expired on
	// the server: the time of the request that last wrote it plus three
	// quarters of the TTL. A worker stops acknowledging past it.
	validUntil atomic.Int64
	// aborted tells the worker to stop without acknowledging anything
	// more: the lease is lost.
	aborted   atomic.Bool
	releasing bool // asked to stop; the key is deleted once done
	stop      context.CancelFunc
	done      chan error
}

func (l *lease) valid() bool { return time.Now().UnixNano() < l.validUntil.Load() }

func (l *lease) extend(from time.Time, ttl time.Duration) {
	l.validUntil.Store(from.Add(ttl * 3 / 4).UnixNano())
}

func (m *manager) run(ctx context.Context) error {
	r := m.r
	closed := r.nc.StatusChanged(nats.CLOSED)
	defer r.nc.RemoveStatusListener(closed)
	if r.nc.IsClosed() {
		return ErrSubscriptionClosed
	}
	tick := time.NewTicker(r.leaseTTL / 4)
	defer tick.Stop()
	r.log.Info("router: running", "instance", r.instance, "stream", r.subjects.RouteStream(),
		"partitions", r.subjects.Partitions, "lease_ttl", r.leaseTTL, "domains", r.domains)
	m.step()
	for {
		select {
		case <-ctx.Done():
			m.releaseAll()
			r.log.Info("router: stopped; partitions handed back")
			return nil
		case <-closed:
			m.abortAll()
			return ErrSubscriptionClosed
		case <-tick.C:
			if r.nc.IsClosed() {
				m.abortAll()
				return ErrSubscriptionClosed
			}
			m.step()
		}
	}
}

// step renews what this router holds, then takes or gives up partitions
// to match its share.
func (m *manager) step() {
	r := m.r
	ctx, cancel := context.WithTimeout(context.Background(), r.leaseTTL/2)
	defer cancel()
	if _, err := m.kv.Put(ctx, r.subjects.MemberKey(r.instance), []byte(r.node)); err != nil {
		r.log.Warn("router: announcing this router failed", "err", err)
		// The bucket may be gone with a NATS server that lost it; make it
		// again (a no-op when it exists) so that the next step works.
		if kv, err := r.subjects.EnsureLeaseBucket(ctx, m.js, r.leaseTTL, r.stream); err == nil {
			m.kv = kv
		}
	}
	for p, l := range m.held {
		select {
		case err := <-l.done:
			// The worker ended: released, or failed (a broken consumer,
			// the lease lapsed). Either way the lease goes back; a
			// failed partition is taken again on a later step, with
			// its consumer reset.
			if err != nil && !l.aborted.Load() {
				r.log.Warn("router: partition worker stopped", "partition", p, "err", err)
			}
			m.giveBack(ctx, l)
			delete(m.held, p)
			continue
		default:
		}
		at := time.Now()
		rev, err := m.kv.Update(ctx, r.subjects.LeaseKey(p), []byte(r.instance), l.rev)
		if err != nil {
			r.log.Warn("router: lease lost", "partition", p, "err", err)
			l.aborted.Store(true)
			l.stop()
			go drainDone(l)
			delete(m.held, p)
			continue
		}
		l.rev = rev
		l.extend(at, r.leaseTTL)
	}

	members, err := m.members(ctx)
	if err != nil {
		r.log.Warn("router: listing routers failed", "err", err)
		return
	}
	mine := func(p int) bool { return members[p%len(members)] == r.instance }
	for p, l := range m.held {
		if !mine(p) && !l.releasing {
			r.log.Info("router: handing a partition over", "partition", p)
			l.releasing = true
			l.stop()
		}
	}
	for p := range r.subjects.Partitions {
		if _, ok := m.held[p]; ok || !mine(p) {
			continue
		}
		at := time.Now()
		rev, err := m.kv.Create(ctx, r.subjects.LeaseKey(p), []byte(r.instance))
		if err != nil {
			// Still held by another router, which gives it up or lets it
			// expire.
			continue
		}
		l := &lease{p: p, rev: rev, done: make(chan error, 1)}
		l.extend(at, r.leaseTTL)
		m.held[p] = l
		m.start(l)
		r.log.Debug("router: partition taken", "partition", p)
	}
}

// members returns the instances of the live routers, sorted, this one
// included.
func (m *manager) members(ctx context.Context) ([]string, error) {
	lister, err := m.kv.ListKeysFiltered(ctx, m.r.subjects.MemberKeys())
	if err != nil {
		return nil, err
	}
	defer lister.Stop()
	var out []string
	for k := range lister.Keys() {
		out = append(out, strings.TrimPrefix(k, "member."))
	}
	if !slices.Contains(out, m.r.instance) {
		out = append(out, m.r.instance)
	}
	slices.Sort(out)
	return out, nil
}

// start runs the worker of a partition just leased.
func (m *manager) start(l *lease) {
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go func() { l.done <- m.r.consume(ctx, m.js, l) }()
}

// giveBack deletes the lease key if it is still ours, so that the next
// owner need not wait for it to expire.
func (m *manager) giveBack(ctx context.Context, l *lease) {
	if err := m.kv.Delete(ctx, m.r.subjects.LeaseKey(l.p), jetstream.LastRevision(l.rev)); err != nil {
		m.r.log.Debug("router: giving a lease back", "partition", l.p, "err", err)
	}
}

// releaseAll stops every worker after its current batch and gives the
// leases and the member key back.
func (m *manager) releaseAll() {
	for _, l := range m.held {
		l.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout+m.r.leaseTTL)
	defer cancel()
	for p, l := range m.held {
		select {
		case err := <-l.done:
			if err != nil {
				m.r.log.Warn("router: partition worker stopped", "partition", p, "err", err)
			}
		case <-ctx.Done():
			m.r.log.Warn("router: partition worker did not stop in time", "partition", p)
			l.aborted.Store(true)
			continue
		}
		m.giveBack(ctx, l)
	}
	clear(m.held)
	if err := m.kv.Delete(ctx, m.r.subjects.MemberKey(m.r.instance)); err != nil {
		m.r.log.Debug("router: removing the member key", "err", err)
	}
}

// abortAll stops every worker at once, acknowledging nothing more.
func (m *manager) abortAll() {
	for _, l := range m.held {
		l.aborted.Store(true)
		l.stop()
	}
	for _, l := range m.held {
		<-l.done
	}
	clear(m.held)
}

func drainDone(l *lease) { <-l.done }

// instanceID names one run of a router: its node id, made a valid subject
// token and key, and random bits.
func instanceID(node string) string {
	b := []byte(node)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	return string(b) + "-" + hex.EncodeToString(rnd[:])
}

// errLeaseLapsed ends a worker that could not renew its lease in time.
var errLeaseLapsed = errors.New("router: partition lease lapsed")
