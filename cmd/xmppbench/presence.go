package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// PresenceSettings are the knobs of one presence run.
type PresenceSettings struct {
	Users     int     `json:"users"`
	Contacts  int     `json:"contacts"` // per user, mutual ("both") subscriptions
	Rate      float64 `json:"rate"`     // presence broadcasts/s, all users together
	WarmupS   float64 `json:"warmup_s"`
	DurationS float64 `json:"duration_s"`
	GraceS    float64 `json:"grace_s"`
}

// PresenceResults is the outcome of the presence scenario. Each broadcast
// (a user changing its status) should reach every contact: Expected is
// broadcasts times contacts, and a delivery counts when a contact first
// sees that status.
type PresenceResults struct {
	Settings   PresenceSettings `json:"settings"`
	SetupS     float64          `json:"setup_s"` // subscriptions made by this run
	Broadcasts int64            `json:"broadcasts"`
	Expected   int64            `json:"expected_deliveries"`
	Received   int64            `json:"received"`
	Lost       int64            `json:"lost"`
	Dups       int64            `json:"duplicates"`
	Reordered  int64            `json:"reordered"`
	Delivered  int64            `json:"delivered"` // in the measured window
	PerSecond  float64          `json:"delivered_per_s"`
	Latency    Latency          `json:"latency"`
}

func presenceScenario() *scenario {
	var s PresenceSettings
	var warmup, duration, grace, setup time.Duration
	return &scenario{
		conns: true,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&s.Users, "accounts", 100, "users taking part (accounts --first ..)")
			fs.IntVar(&s.Contacts, "contacts", 10, "subscribed contacts per user (rounded up to even: user i and i±1..i±R/2 on a ring)")
			fs.Float64Var(&s.Rate, "rate", 100, "presence broadcasts per second, all users together")
			fs.DurationVar(&warmup, "warmup", 2*time.Second, "broadcasting before the measured window")
			fs.DurationVar(&duration, "duration", 10*time.Second, "measured window")
			fs.DurationVar(&grace, "grace", 5*time.Second, "wait for stragglers before counting losses")
			fs.DurationVar(&setup, "setup-timeout", 2*time.Minute, "bound of making the subscriptions")
		},
		run: func(ctx context.Context, r *runner) (any, error) {
			s.Contacts += s.Contacts % 2
			if s.Users < 2 || s.Contacts < 2 || s.Contacts >= s.Users || s.Rate <= 0 || duration <= 0 {
				return nil, fmt.Errorf("want --accounts >= 2, 2 <= --contacts < --accounts, --rate and --duration positive")
			}
			s.WarmupS, s.DurationS, s.GraceS = warmup.Seconds(), duration.Seconds(), grace.Seconds()
			return result(runPresence(ctx, r, s, warmup, duration, grace, setup))
		},
	}
}

// contactsOf returns the ring neighbours of user i.
func contactsOf(i, users, contacts int) []int {
	var out []int
	for k := 1; k <= contacts/2; k++ {
		out = append(out, (i+k)%users, (i-k+users)%users)
	}
	return out
}

// presenceUser is one user's receiving side.
type presenceUser struct {
	contacts map[int]bool // the users whose presence this one should get
	mu       sync.Mutex
	seqs     map[int]*seqTracker
	hist     Histogram
}

func runPresence(ctx context.Context, r *runner, s PresenceSettings, warmup, duration, grace, setupTimeout time.Duration) (*PresenceResults, error) {
	res := &PresenceResults{Settings: s}
	users := make([]*presenceUser, s.Users)
	byJID := make(map[string]int, s.Users)
	for i := range users {
		users[i] = &presenceUser{seqs: make(map[int]*seqTracker), contacts: make(map[int]bool)}
		for _, k := range contactsOf(i, s.Users, s.Contacts) {
			users[i].contacts[k] = true
		}
		byJID[r.target.jidOf(i).String()] = i
	}
	var winStart, winEnd atomic.Int64
	var received, delivered, approvals atomic.Int64

	handler := func(i int) func(*client.Client, *dom.Element) bool {
		u := users[i]
		return func(c *client.Client, el *dom.Element) bool {
			if el.Local != "presence" {
				return true
			}
			from, err := jid.Parse(el.Attr("from"))
			if err != nil {
				return true
			}
			switch el.Attr("type") {
			case "subscribe":
				// Approve requests from ring neighbours; never block the reader.
				if _, ok := byJID[from.Bare().String()]; ok {
					approvals.Add(1)
					go func() {
						actx, cancel := context.WithTimeout(context.Background(), r.target.timeout)
						defer cancel()
						_ = c.ApproveSubscription(actx, from)
					}()
				}
				return true
			case "":
			default:
				return true
			}
			st, err := DecodeBody(el.ChildText(stream.NSClient, "status"))
			if err != nil || !u.contacts[st.Pair] {
				// Not ours, or our own broadcast echoed to us
				// (RFC 6121 section 4.4.2).
				return true
			}
			at := now()
			sender := st.Pair
			u.mu.Lock()
			tr := u.seqs[sender]
			if tr == nil {
				t := newSeqTracker()
				tr = &t
				u.seqs[sender] = tr
			}
			first := tr.Observe(st.Seq)
			if first {
				if ws := winStart.Load(); ws != 0 && st.Sent >= ws {
					if we := winEnd.Load(); we == 0 || st.Sent < we {
						u.hist.Record(time.Duration(at - st.Sent))
					}
				}
			}
			u.mu.Unlock()
			if first {
				received.Add(1)
				if ws := winStart.Load(); ws != 0 && at >= ws {
					if we := winEnd.Load(); we == 0 || at < we {
						delivered.Add(1)
					}
				}
			}
			return true
		}
	}

	// Log in without presence: the roster comes first (RFC 6121 4.2.1).
	clients, failed := dialAll(ctx, r, s.Users, handler, false)
	defer closeAll(clients)
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d logins failed: %v", failed, s.Users, r.errs.summary())
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Rosters (RFC 6121 section 2) are required: ask the first user's.
	rctx, cancel := context.WithTimeout(ctx, r.target.timeout)
	_, err := clients[0].Roster(rctx)
	cancel()
	var se *stanza.Error
	if errors.As(err, &se) {
		return nil, fmt.Errorf("%w: the roster request (RFC 6121 section 2.1.3) was answered with <%s/>, so there are no rosters or subscriptions to fan presence out to", errUnsupported, se.Condition)
	}
	if err != nil {
		return nil, fmt.Errorf("roster request: %w", err)
	}

	// Everybody online the RFC 6121 way (roster, then initial presence):
	// a subscription request reaches only available resources that asked
	// for the roster (section 3.1.3).
	for _, c := range clients {
		octx, cancel := context.WithTimeout(ctx, r.target.timeout)
		_, err := c.Online(octx, client.Presence{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("going online: %w", err)
		}
	}

	// Subscriptions: user i asks its forward neighbours; the handler of
	// each approves, and each side's request makes the subscription
	// mutual. Done once per account set; later runs find them in place.
	setupStart := time.Now()
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := makeSubscriptions(sctx, r, clients, s); err != nil {
		return nil, fmt.Errorf("making subscriptions: %w", err)
	}
	res.SetupS = time.Since(setupStart).Seconds()

	// Broadcast: each user in turn changes its status at rate/users.
	var sent []atomic.Int64 = make([]atomic.Int64, s.Users)
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	interval := time.Duration(float64(time.Second) * float64(s.Users) / s.Rate)
	start := now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due := start + int64(interval)*int64(i)/int64(s.Users)
			for seq := int64(0); ; seq++ {
				if wait := time.Duration(due - now()); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-sendCtx.Done():
						t.Stop()
						return
					}
				}
				if sendCtx.Err() != nil {
					return
				}
				status := EncodeBody(Stamp{Pair: i, Seq: seq, Sent: due}, 0)
				if err := c.SendPresence(sendCtx, client.Presence{Status: status}); err != nil {
					if sendCtx.Err() == nil {
						r.errs.add(fmt.Errorf("user %d: presence: %w", i, err))
					}
					return
				}
				sent[i].Add(1)
				due += int64(interval)
			}
		}()
	}
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go progress(pctx, r.stderr, r.progressEvery, func() string {
		var b int64
		for i := range sent {
			b += sent[i].Load()
		}
		return fmt.Sprintf("broadcasts %d, deliveries %d of %d expected", b, received.Load(), b*int64(s.Contacts))
	})
	settle(ctx, warmup)
	r.begin()
	winStart.Store(max(now(), 1))
	settle(ctx, duration)
	winEnd.Store(now())
	r.end()
	stopSending()
	wg.Wait()
	for i := range sent {
		res.Broadcasts += sent[i].Load()
	}
	res.Expected = res.Broadcasts * int64(s.Contacts)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && received.Load() < res.Expected && ctx.Err() == nil {
		settle(ctx, 10*time.Millisecond)
	}
	stopProgress()

	var all Histogram
	for i, u := range users {
		u.mu.Lock()
		for _, k := range contactsOf(i, s.Users, s.Contacts) {
			tr := u.seqs[k]
			if tr == nil {
				res.Lost += sent[k].Load()
				continue
			}
			res.Lost += int64(tr.Lost(sent[k].Load()))
			res.Dups += int64(tr.dups)
			res.Reordered += int64(tr.reordered)
		}
		all.Merge(&u.hist)
		u.mu.Unlock()
	}
	res.Received = received.Load()
	res.Delivered = delivered.Load()
	res.Latency = all.Summary()
	res.PerSecond = round3(float64(res.Delivered) / r.t1.Sub(r.t0).Seconds())
	r.perOp = float64(res.Delivered)
	fmt.Fprintf(r.stderr, "xmppbench presence: %d users x %d contacts: %d broadcasts, %.0f deliveries/s, p50 %.3f ms p99 %.3f ms; lost %d dup %d reordered %d\n",
		s.Users, s.Contacts, res.Broadcasts, res.PerSecond, res.Latency.P50Ms, res.Latency.P99Ms, res.Lost, res.Dups, res.Reordered)
	if res.Lost > 0 || res.Dups > 0 {
		return res, fmt.Errorf("presence delivery was not clean: lost %d duplicates %d", res.Lost, res.Dups)
	}
	return res, ctx.Err()
}

// makeSubscriptions makes every ring neighbour a mutual contact, and
// waits until each user's roster shows them all with subscription both.
func makeSubscriptions(ctx context.Context, r *runner, clients []*client.Client, s PresenceSettings) error {
	for i, c := range clients {
		for k := 1; k <= s.Contacts/2; k++ {
			j := (i + k) % s.Users
			if err := c.Subscribe(ctx, r.target.jidOf(j)); err != nil {
				return err
			}
			if err := clients[j].Subscribe(ctx, r.target.jidOf(i)); err != nil {
				return err
			}
		}
	}
	for i, c := range clients {
		want := map[string]bool{}
		for _, j := range contactsOf(i, s.Users, s.Contacts) {
			want[r.target.jidOf(j).String()] = true
		}
		for {
			ro, err := c.Roster(ctx)
			if err != nil {
				return err
			}
			both := 0
			for _, it := range ro.Items {
				if want[it.JID.Bare().String()] && it.Subscription == client.SubscriptionBoth {
					both++
				}
			}
			if both == len(want) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s has %d of %d contacts with subscription both: %w", c.JID().Bare(), both, len(want), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
