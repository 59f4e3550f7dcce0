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
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// ChatSettings are the knobs of one chat run.
type ChatSettings struct {
	Pairs     int     `json:"pairs"`
	Window    int     `json:"window"`     // unacknowledged messages per sender; 0: no limit
	Rate      float64 `json:"rate"`       // total messages/s; 0: as fast as the window lets
	BodyBytes int     `json:"body_bytes"` // at least
	WarmupS   float64 `json:"warmup_s"`
	DurationS float64 `json:"duration_s"`
	GraceS    float64 `json:"grace_s"`
}

// ChatResults is the outcome of the chat scenario. A message counts as
// delivered once, when its receiver first sees it; its latency is from
// the send time it carries to that moment (in rate mode, from the time it
// was due, so a sender that fell behind does not hide the delay).
type ChatResults struct {
	Settings ChatSettings `json:"settings"`
	// Totals over every pair. Sent, Received and the checks cover the
	// whole run (warm-up too); Delivered, PerSecond and Latency only the
	// measured window after the warm-up.
	Sent      int64   `json:"sent"`
	Received  int64   `json:"received"` // distinct messages received
	Lost      int64   `json:"lost"`     // sent but never received within the grace period
	Dups      int64   `json:"duplicates"`
	Reordered int64   `json:"reordered"`
	Misrouted int64   `json:"misrouted"` // a body of another pair, or not ours
	Bounced   int64   `json:"bounced"`   // error messages back to a sender
	Delivered int64   `json:"delivered"` // received in the measured window
	PerSecond float64 `json:"delivered_per_s"`
	Latency   Latency `json:"latency"`
	// Pairs lists every pair's own figures.
	Pairs []PairResult `json:"per_pair"`
}

// PairResult is one sender-receiver pair.
type PairResult struct {
	Pair      int     `json:"pair"`
	From      string  `json:"from"`
	To        string  `json:"to"`
	Sent      int64   `json:"sent"`
	Received  uint64  `json:"received"`
	Lost      uint64  `json:"lost"`
	Dups      uint64  `json:"duplicates"`
	Reordered uint64  `json:"reordered"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
}

func chatScenario() *scenario {
	var s ChatSettings
	var warmup, duration, grace time.Duration
	return &scenario{
		conns: true,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&s.Pairs, "pairs", 50, "sender-receiver pairs (accounts 2i and 2i+1 from --first)")
			fs.IntVar(&s.Window, "window", 10, "unacknowledged messages per sender (acknowledged: seen by its receiver); 0: no limit")
			fs.Float64Var(&s.Rate, "rate", 0, "fixed total send rate in messages/s, spread over the pairs (0: as fast as the window allows)")
			fs.IntVar(&s.BodyBytes, "size", 0, "pad bodies to this many bytes")
			fs.DurationVar(&warmup, "warmup", 2*time.Second, "sending before the measured window")
			fs.DurationVar(&duration, "duration", 10*time.Second, "measured window")
			fs.DurationVar(&grace, "grace", 5*time.Second, "wait for stragglers after sending stops before counting losses")
		},
		run: func(ctx context.Context, r *runner) (any, error) {
			if s.Pairs < 1 || s.Window < 0 || s.Rate < 0 || duration <= 0 || warmup < 0 {
				return nil, fmt.Errorf("--pairs and --duration must be positive, --window, --rate and --warmup not negative")
			}
			if s.Window == 0 && s.Rate == 0 {
				return nil, fmt.Errorf("give --window, --rate or both: without either the senders have no bound")
			}
			s.WarmupS, s.DurationS, s.GraceS = warmup.Seconds(), duration.Seconds(), grace.Seconds()
			return result(runChat(ctx, r, s, warmup, duration, grace))
		},
	}
}

// pairState is one pair's sender and receiver bookkeeping.
type pairState struct {
	id       int
	from, to jid.JID
	window   chan struct{} // a slot per message in flight
	sent     atomic.Int64

	mu      sync.Mutex // the receiver's reader goroutine and the summary
	seq     seqTracker
	hist    Histogram
	fromWin atomic.Int64 // delivered inside the measured window
}

// chatRun is the shared state of a chat run.
type chatRun struct {
	pairs      []*pairState
	winStart   atomic.Int64 // ns since base; 0 until the warm-up ends
	winEnd     atomic.Int64 // ns since base; 0 while measuring
	received   atomic.Int64
	misrouted  atomic.Int64
	bounced    atomic.Int64
	dupsOrMiss atomic.Int64
}

// receiver returns the message handler of pair p's receiver.
func (cr *chatRun) receiver(p *pairState) func(*client.Client, *dom.Element) bool {
	return func(_ *client.Client, el *dom.Element) bool {
		if el.Local != "message" {
			return true
		}
		if el.Attr("type") == "error" {
			cr.bounced.Add(1)
			return true
		}
		at := now()
		st, err := DecodeBody(el.ChildText(stream.NSClient, "body"))
		if err != nil || st.Pair != p.id {
			cr.misrouted.Add(1)
			return true
		}
		p.mu.Lock()
		first := p.seq.Observe(st.Seq)
		if first {
			if ws := cr.winStart.Load(); ws != 0 && st.Sent >= ws {
				if we := cr.winEnd.Load(); we == 0 || st.Sent < we {
					p.hist.Record(time.Duration(at - st.Sent))
				}
			}
		}
		p.mu.Unlock()
		if !first {
			cr.dupsOrMiss.Add(1)
			return true
		}
		cr.received.Add(1)
		if ws := cr.winStart.Load(); ws != 0 && at >= ws {
			if we := cr.winEnd.Load(); we == 0 || at < we {
				p.fromWin.Add(1)
			}
		}
		if p.window != nil {
			select {
			case <-p.window:
			default:
			}
		}
		return true
	}
}

// senderHandler counts error messages bounced back to a sender.
func (cr *chatRun) senderHandler(_ *client.Client, el *dom.Element) bool {
	if el.Local == "message" && el.Attr("type") == "error" {
		cr.bounced.Add(1)
	}
	return true
}

func runChat(ctx context.Context, r *runner, s ChatSettings, warmup, duration, grace time.Duration) (*ChatResults, error) {
	cr := &chatRun{}
	for i := range s.Pairs {
		p := &pairState{id: i, seq: newSeqTracker()}
		if s.Window > 0 {
			p.window = make(chan struct{}, s.Window)
		}
		cr.pairs = append(cr.pairs, p)
	}
	// Account 2i sends to account 2i+1.
	clients, failed := dialAll(ctx, r, 2*s.Pairs, func(i int) func(*client.Client, *dom.Element) bool {
		if i%2 == 0 {
			return cr.senderHandler
		}
		return cr.receiver(cr.pairs[i/2])
	}, true)
	defer closeAll(clients)
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d logins failed: %v", failed, 2*s.Pairs, r.errs.summary())
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i, p := range cr.pairs {
		p.from, p.to = clients[2*i].JID(), clients[2*i+1].JID()
	}

	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var senders sync.WaitGroup
	var sendErrs atomic.Int64
	interval := time.Duration(0)
	if s.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(s.Pairs) / s.Rate)
	}
	start := now()
	for i, p := range cr.pairs {
		c := clients[2*i]
		senders.Add(1)
		go func() {
			defer senders.Done()
			// Spread the pairs' schedules over one interval.
			due := start + int64(interval)*int64(i)/int64(s.Pairs)
			for seq := int64(0); ; seq++ {
				if p.window != nil {
					select {
					case p.window <- struct{}{}:
					case <-sendCtx.Done():
						return
					}
				}
				sent := now()
				if interval > 0 {
					if wait := time.Duration(due - sent); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-t.C:
						case <-sendCtx.Done():
							t.Stop()
							return
						}
					}
					sent = due
					due += int64(interval)
				}
				if sendCtx.Err() != nil {
					return
				}
				body := EncodeBody(Stamp{Pair: p.id, Seq: seq, Sent: sent}, s.BodyBytes)
				err := c.SendMessage(sendCtx, client.Message{To: p.to, Type: client.MessageChat, Body: body})
				if err != nil {
					if sendCtx.Err() == nil {
						sendErrs.Add(1)
						r.errs.add(fmt.Errorf("pair %d: send: %w", p.id, err))
					}
					return
				}
				p.sent.Add(1)
			}
		}()
	}

	var lastRecv atomic.Int64
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go progress(pctx, r.stderr, r.progressEvery, func() string {
		var sent int64
		for _, p := range cr.pairs {
			sent += p.sent.Load()
		}
		got := cr.received.Load()
		rate := got - lastRecv.Swap(got)
		phase := "warm-up"
		if cr.winStart.Load() != 0 {
			phase = "measuring"
		}
		if cr.winEnd.Load() != 0 {
			phase = "draining"
		}
		return fmt.Sprintf("%s: sent %d received %d (%d/s) in flight %d dup %d bounced %d",
			phase, sent, got, rate*int64(time.Second/max(r.progressEvery, time.Millisecond)), sent-got, cr.dupsOrMiss.Load(), cr.bounced.Load())
	})

	settle(ctx, warmup)
	r.begin()
	cr.winStart.Store(max(now(), 1))
	settle(ctx, duration)
	cr.winEnd.Store(now())
	r.end()
	stopSending()
	senders.Wait()

	// Wait for the messages still in flight, up to the grace period.
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var sent int64
		for _, p := range cr.pairs {
			sent += p.sent.Load()
		}
		if cr.received.Load() >= sent {
			break
		}
		<-tick.C
	}
	tick.Stop()
	stopProgress()

	res := &ChatResults{Settings: s, Misrouted: cr.misrouted.Load(), Bounced: cr.bounced.Load()}
	var all Histogram
	for _, p := range cr.pairs {
		p.mu.Lock()
		sent := p.sent.Load()
		pr := PairResult{
			Pair: p.id, From: p.from.String(), To: p.to.String(), Sent: sent,
			Received: p.seq.distinct, Lost: p.seq.Lost(sent), Dups: p.seq.dups, Reordered: p.seq.reordered,
			P50Ms: ms(p.hist.Quantile(0.5)), P99Ms: ms(p.hist.Quantile(0.99)), P999Ms: ms(p.hist.Quantile(0.999)),
		}
		all.Merge(&p.hist)
		p.mu.Unlock()
		res.Pairs = append(res.Pairs, pr)
		res.Sent += pr.Sent
		res.Received += int64(pr.Received)
		res.Lost += int64(pr.Lost)
		res.Dups += int64(pr.Dups)
		res.Reordered += int64(pr.Reordered)
		res.Delivered += p.fromWin.Load()
	}
	res.Latency = all.Summary()
	res.PerSecond = round3(float64(res.Delivered) / r.t1.Sub(r.t0).Seconds())
	r.perOp = float64(res.Delivered)
	fmt.Fprintf(r.stderr, "xmppbench chat: %d pairs: %.0f delivered msgs/s; latency p50 %.3f ms p99 %.3f ms p99.9 %.3f ms; sent %d received %d lost %d dup %d reordered %d misrouted %d bounced %d\n",
		s.Pairs, res.PerSecond, res.Latency.P50Ms, res.Latency.P99Ms, res.Latency.P999Ms,
		res.Sent, res.Received, res.Lost, res.Dups, res.Reordered, res.Misrouted, res.Bounced)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.Lost > 0 || res.Dups > 0 || res.Reordered > 0 || res.Misrouted > 0 || res.Bounced > 0 || sendErrs.Load() > 0 {
		return res, fmt.Errorf("delivery was not clean: lost %d duplicates %d reordered %d misrouted %d bounced %d send errors %d",
			res.Lost, res.Dups, res.Reordered, res.Misrouted, res.Bounced, sendErrs.Load())
	}
	return res, nil
}
