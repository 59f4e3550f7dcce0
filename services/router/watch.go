package router

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
)

// watchInterval is how often the watcher checks, besides on every status
// change of the connection, that no event was dropped or missed.
const watchInterval = time.Second

// watchSessions subscribes to the presence service's PresenceChanged
// events, which evict the session cache, and keeps the cache on exactly
// while that subscription is known to receive every event: from a flush
// that proves the server has the subscription, until the connection drops
// or the client drops a message for being slow. It returns a function
// that stops watching and turns the cache off.
func (r *Router) watchSessions() (stop func(), err error) {
	c := r.cache
	if c == nil {
		return func() {}, nil
	}
	var subp atomic.Pointer[nats.Subscription]
	kick := make(chan struct{}, 1)
	var seenDropped atomic.Int64
	sub, err := r.nc.Subscribe(r.subjects.PresenceChanged(), func(m *nats.Msg) {
		if bus.DecodeChanged(m.Data, c.invalidate) {
			c.flush()
		}
		// Messages are dropped only while others wait in the
		// subscription's queue, so this check runs after a drop.
		if s := subp.Load(); s != nil {
			if d, err := s.Dropped(); err == nil && int64(d) != seenDropped.Load() {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	subp.Store(sub)
	status := r.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(watchInterval)
		defer tick.Stop()
		live := false
		var reconnects uint64
		check := func() {
			d, derr := sub.Dropped()
			rc := r.nc.Stats().Reconnects
			if derr != nil || !r.nc.IsConnected() {
				if live {
					r.log.Warn("router: session cache off while the NATS connection is down")
					c.setOn(false)
					live = false
				}
				return
			}
			if live && int64(d) == seenDropped.Load() && rc == reconnects {
				return
			}
			if live {
				// Events may have been missed: start again empty.
				r.log.Warn("router: session cache flushed: events may have been missed",
					"dropped", d, "reconnects", rc)
				c.setOn(false)
				live = false
			}
			// The counters were read before the flush: a drop or a
			// reconnect during it shows at the next check.
			if err := r.nc.FlushTimeout(flushTimeout); err != nil {
				return
			}
			seenDropped.Store(int64(d))
			reconnects = rc
			c.setOn(true)
			live = true
		}
		check()
		for {
			select {
			case <-quit:
				return
			case <-status:
			case <-kick:
			case <-tick.C:
			}
			check()
		}
	}()
	return func() {
		close(quit)
		<-done
		r.nc.RemoveStatusListener(status)
		_ = sub.Unsubscribe()
		c.setOn(false)
	}, nil
}

// SessionCacheStats counts what the session cache did since the router
// was made.
type SessionCacheStats struct {
	Hits, Misses uint64
	// Stale counts registry answers not kept because an event or a
	// flush came while they were asked for.
	Stale uint64
	// Invalidations counts evicted accounts (events, and the router's
	// own presence changes); Flushes counts times the cache was emptied.
	Invalidations, Flushes uint64
	// Entries is the number of accounts cached now.
	Entries int
}

// SessionCacheStats returns the session cache's counters; all zero when
// the cache is off (Config.SessionCacheSize zero).
func (r *Router) SessionCacheStats() SessionCacheStats {
	c := r.cache
	if c == nil {
		return SessionCacheStats{}
	}
	return SessionCacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(),
		Invalidations: c.invalidations.Load(), Flushes: c.flushes.Load(), Entries: c.len(),
	}
}
