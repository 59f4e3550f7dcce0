package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// IdleResults is the outcome of the idle scenario.
type IdleResults struct {
	Connections int     `json:"connections"`
	Connected   int     `json:"connected"`
	Failed      int     `json:"failed"`
	RampS       float64 `json:"ramp_s"`
	HoldS       float64 `json:"hold_s"`
	StillUp     int     `json:"still_up"` // sessions open at the end of the hold
	Dropped     int     `json:"dropped"`  // sessions the server ended during the hold
	// ServerRSSPerConnKiB is the server's RSS growth from before the
	// first login to after the last, divided by the sessions made (only
	// with --server-pid).
	ServerRSSPerConnKiB float64 `json:"server_rss_per_conn_kib,omitempty"`
}

func idleScenario() *scenario {
	var conns int
	var hold time.Duration
	var presence bool
	return &scenario{
		conns: true,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&conns, "conns", 1000, "connections to hold (accounts --first .. --first+conns-1)")
			fs.DurationVar(&hold, "duration", 30*time.Second, "how long to hold them once all are up")
			fs.BoolVar(&presence, "presence", true, "send initial presence after login")
		},
		run: func(ctx context.Context, r *runner) (any, error) {
			if conns < 1 || r.concurrency < 1 {
				return nil, fmt.Errorf("--conns and --concurrency must be positive")
			}
			return result(runIdle(ctx, r, conns, hold, presence))
		},
	}
}

func runIdle(ctx context.Context, r *runner, n int, hold time.Duration, presence bool) (*IdleResults, error) {
	res := &IdleResults{Connections: n}
	before := sampleProc(r.serverPID)
	r.begin()
	clients, failed := dialAll(ctx, r, n, func(int) func(*client.Client, *dom.Element) bool { return consumeAll }, presence)
	res.RampS = time.Since(r.t0).Seconds()
	// Let the server settle (its GC, the last writes) before reading RSS.
	settle(ctx, 2*time.Second)
	after := sampleProc(r.serverPID)
	res.Failed = failed
	for _, c := range clients {
		if c != nil {
			res.Connected++
		}
	}
	if before.ok && after.ok && res.Connected > 0 {
		res.ServerRSSPerConnKiB = round3(float64(after.rssKiB-before.rssKiB) / float64(res.Connected))
	}
	r.perConn = float64(res.Connected)
	fmt.Fprintf(r.stderr, "xmppbench idle: %d of %d connected in %.1fs; holding for %v\n", res.Connected, n, res.RampS, hold)

	var dropped atomic.Int64
	pctx, stopProgress := context.WithCancel(ctx)
	go progress(pctx, r.stderr, r.progressEvery, func() string {
		return fmt.Sprintf("up %d dropped %d", int64(res.Connected)-dropped.Load(), dropped.Load())
	})
	holdStart := time.Now()
	hctx, cancel := context.WithTimeout(ctx, hold)
	var watch sync.WaitGroup
	for _, c := range clients {
		if c == nil {
			continue
		}
		watch.Add(1)
		go func() {
			defer watch.Done()
			select {
			case <-c.Done():
				dropped.Add(1)
				r.errs.add(fmt.Errorf("%s dropped: %v", c.JID(), c.Err()))
			case <-hctx.Done():
			}
		}()
	}
	<-hctx.Done()
	cancel()
	watch.Wait()
	res.HoldS = time.Since(holdStart).Seconds()
	r.end()
	stopProgress()
	res.Dropped = int(dropped.Load())
	res.StillUp = res.Connected - res.Dropped
	closeAll(clients)
	fmt.Fprintf(r.stderr, "xmppbench idle: %d still up, %d dropped, %d failed to connect; server RSS %+.1f KiB per connection\n",
		res.StillUp, res.Dropped, res.Failed, res.ServerRSSPerConnKiB)
	if res.Failed > 0 || res.Dropped > 0 {
		return res, fmt.Errorf("%d failed, %d dropped", res.Failed, res.Dropped)
	}
	return res, nil
}

// settle waits d or until ctx ends.
func settle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dialAll logs accounts 0..n-1 in, --concurrency at a time, with
// handler(i) as account i's handler, and sends initial presence when asked.
// clients[i] is nil for a failed login.
func dialAll(ctx context.Context, r *runner, n int, handler func(i int) func(*client.Client, *dom.Element) bool, presence bool) (clients []*client.Client, failed int) {
	clients = make([]*client.Client, n)
	var next, ok, bad atomic.Int64
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go progress(pctx, r.stderr, r.progressEvery, func() string {
		return fmt.Sprintf("logging in: %d up, %d failed of %d", ok.Load(), bad.Load(), n)
	})
	var wg sync.WaitGroup
	for range min(r.concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := r.target.dial(ctx, i, handler(i))
				if err == nil && presence {
					pctx, cancel := context.WithTimeout(ctx, r.target.timeout)
					err = c.SendPresence(pctx, client.Presence{})
					cancel()
					if err != nil {
						closeClient(c)
					}
				}
				if err != nil {
					bad.Add(1)
					r.errs.add(err)
					continue
				}
				clients[i] = c
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return clients, int(bad.Load())
}

// closeAll ends every session, a few at a time.
func closeAll(clients []*client.Client) {
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for _, c := range clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			closeClient(c)
		}()
	}
	wg.Wait()
}
