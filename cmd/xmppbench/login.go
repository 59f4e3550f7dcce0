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

// LoginResults is the outcome of the login scenario.
type LoginResults struct {
	Logins      int     `json:"logins"`
	Concurrency int     `json:"concurrency"`
	Accounts    int     `json:"accounts"`
	OK          int64   `json:"ok"`
	Failed      int64   `json:"failed"`
	Mechanism   string  `json:"mechanism"` // what the first login used
	TLS         bool    `json:"tls"`
	WallS       float64 `json:"wall_s"`
	PerSecond   float64 `json:"logins_per_s"`
	// Latency is from opening the TCP connection to a bound resource
	// (TLS, SASL and binding included); the closing handshake is not
	// counted.
	Latency Latency `json:"latency"`
}

func loginScenario() *scenario {
	var logins, accounts int
	return &scenario{
		conns: true,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&logins, "logins", 1000, "number of logins")
			fs.IntVar(&accounts, "accounts", 100, "logins cycle over this many accounts")
		},
		run: func(ctx context.Context, r *runner) (any, error) {
			if logins < 1 || accounts < 1 || r.concurrency < 1 {
				return nil, fmt.Errorf("--logins, --accounts and --concurrency must be positive")
			}
			return result(runLogin(ctx, r, logins, accounts))
		},
	}
}

func runLogin(ctx context.Context, r *runner, logins, accounts int) (*LoginResults, error) {
	res := &LoginResults{Logins: logins, Concurrency: r.concurrency, Accounts: accounts}
	var next, ok, failed atomic.Int64
	var mechOnce sync.Once
	hists := make([]Histogram, r.concurrency)
	var closing sync.WaitGroup
	var workers sync.WaitGroup

	pctx, stopProgress := context.WithCancel(ctx)
	go progress(pctx, r.stderr, r.progressEvery, func() string {
		return fmt.Sprintf("logins ok %d failed %d of %d", ok.Load(), failed.Load(), logins)
	})
	r.perOp = 0
	r.begin()
	for w := range r.concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			h := &hists[w]
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= int64(logins) {
					return
				}
				t := time.Now()
				c, err := r.target.dial(ctx, int(n)%accounts, consumeAll)
				if err != nil {
					failed.Add(1)
					r.errs.add(err)
					continue
				}
				h.Record(time.Since(t))
				ok.Add(1)
				mechOnce.Do(func() {
					res.Mechanism = c.Mechanism()
					_, res.TLS = c.TLS()
				})
				closing.Add(1)
				go func() {
					defer closing.Done()
					closeClient(c)
				}()
			}
		}()
	}
	workers.Wait()
	r.end()
	stopProgress()
	closing.Wait()

	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	res.OK, res.Failed = ok.Load(), failed.Load()
	res.WallS = r.t1.Sub(r.t0).Seconds()
	res.PerSecond = round3(float64(res.OK) / res.WallS)
	res.Latency = all.Summary()
	r.perOp = float64(res.OK)
	fmt.Fprintf(r.stderr, "xmppbench login: %d ok, %d failed in %.2fs: %.1f logins/s, p50 %.2f ms, p99 %.2f ms (%s, tls %v)\n",
		res.OK, res.Failed, res.WallS, res.PerSecond, res.Latency.P50Ms, res.Latency.P99Ms, res.Mechanism, res.TLS)
	if res.Failed > 0 {
		return res, fmt.Errorf("%d of %d logins failed (first: %v)", res.Failed, logins, r.errs.summary())
	}
	return res, ctx.Err()
}

// consumeAll takes every incoming message and presence, so that nothing
// waits in the client's queues.
func consumeAll(*client.Client, *dom.Element) bool { return true }
