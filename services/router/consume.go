package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

const (
	// batchMax is the most stanzas a worker takes in one batch: routed,
	// their deliveries published, one flush, then acknowledged. Under
	// load batches fill up; when idle a batch is one stanza.
	batchMax = 256
	// batchTime bounds the time a batch collects stanzas while routing
	// (slow backend calls), so that acknowledgements are never held long.
	batchTime = time.Second
	// ackWait is how long the server waits for an acknowledgement before
	// it delivers a stanza again. A worker never relies on that: a
	// redelivery or a gap in the consumer sequence resets the consumer
	// (see consume), so the value only needs to exceed a batch's time.
	ackWait = 2 * time.Minute
	// maxAckPending bounds the stanzas handed to a worker and not yet
	// acknowledged.
	maxAckPending = 4 * batchMax
	// flushTimeout bounds the wait for the server to confirm it has the
	// deliveries of a batch.
	flushTimeout = 5 * time.Second
)

// errOutOfOrder ends a worker whose consumer delivered out of sequence.
var errOutOfOrder = errors.New("router: consumer delivered out of sequence; resetting it")

// consume routes partition l.p until ctx is done (after the batch in hand)
// or l is aborted (at once, acknowledging nothing more).
//
// It starts by resetting the partition's durable consumer: deleted and
// made again to deliver every stanza still in the stream. The stream keeps
// exactly the stanzas not yet acknowledged (work-queue retention), so the
// new consumer starts where the previous owner stopped, in stream order,
// with what it had in hand and had not acknowledged. Reusing the consumer
// instead would hand out new stanzas before those, which the server only
// redelivers after ackWait, out of order.
func (r *Router) consume(ctx context.Context, js jetstream.JetStream, l *lease) error {
	stream, name := r.subjects.RouteStream(), r.subjects.RouteConsumer(l.p)
	setup, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(setup, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("resetting consumer %s: %w", name, err)
	}
	cons, err := js.CreateConsumer(setup, stream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Switchboard routers: partition " + strconv.Itoa(l.p),
		FilterSubject: r.subjects.Route(l.p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Work-queue streams take explicit acknowledgements only.
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", name, err)
	}

	defer r.metrics.Consuming(l.p)()
	w := &worker{r: r, js: js, lease: l, id: r.instance + "-" + strconv.Itoa(l.p)}
	w.noResp = make(chan *nats.Msg, 8192)
	nr, err := r.nc.ChanSubscribe(r.subjects.NoRespondersAll(w.id), w.noResp)
	if err != nil {
		return fmt.Errorf("subscribing to no-responder notices: %w", err)
	}
	defer nr.Unsubscribe()

	in := make(chan jetstream.Msg, batchMax)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Once ctx is done stanzas are dropped here, so what is in
		// hand after that may have a gap: the loop below stops first.
		select {
		case in <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(batchMax), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		r.log.Debug("router: consumer", "partition", l.p, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", name, err)
	}
	defer cc.Stop()

	batch := make([]jetstream.Msg, 0, batchMax)
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			// What is still in hand is not acknowledged: the next owner
			// gets it again.
			return nil
		case first = <-in:
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < batchMax {
			select {
			case m := <-in:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			// Stopping; the callback may have dropped stanzas before
			// some of these. None was dropped before the check, so a
			// batch taken while ctx was not done is whole.
			return nil
		}
		if err := w.process(batch); err != nil {
			return err
		}
	}
}

// worker routes the stanzas of one partition, one batch at a time.
type worker struct {
	r      *Router
	js     jetstream.JetStream
	lease  *lease
	id     string // names the worker in no-responder subjects
	noResp chan *nats.Msg

	lastSeq uint64     // consumer sequence of the last stanza taken
	out     []outbound // deliveries of the batch, reused
	sent    []int64    // when the batch's stanzas were published, reused
}

// process routes a batch: every stanza in order, then the deliveries are
// published with one flush, deliveries no node subscribed to are handed
// back, and only then are the stanzas acknowledged. Whatever fails before
// the acknowledgements leaves the stanzas to the next consumer.
func (w *worker) process(batch []jetstream.Msg) error {
	start := time.Now()
	w.out = w.out[:0]
	work := context.Background()
	for i, m := range batch {
		if i > 0 && time.Since(start) > batchTime {
			if err := w.finish(batch[:i]); err != nil {
				return err
			}
			return w.process(batch[i:])
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("router: stanza metadata: %w", err)
		}
		if meta.NumDelivered > 1 || meta.Sequence.Consumer != w.lastSeq+1 {
			return fmt.Errorf("%w: consumer sequence %d after %d, delivered %d times",
				errOutOfOrder, meta.Sequence.Consumer, w.lastSeq, meta.NumDelivered)
		}
		w.lastSeq = meta.Sequence.Consumer
		if i == len(batch)-1 {
			w.r.metrics.Pending(w.lease.p, meta.NumPending)
		}
		st := new(busv1.Stanza)
		if err := proto.Unmarshal(m.Data(), st); err != nil {
			w.r.log.Warn("router: undecodable envelope dropped", "subject", m.Subject(), "bytes", len(m.Data()), "err", err)
			continue
		}
		tctx, span := w.r.tracer.Start(work, "router.route", st.Traceparent, tracing.Consumer)
		w.out = w.r.route(tctx, st, w.out)
		span.End()
		w.sent = append(w.sent, st.SentUnixNano)
	}
	return w.finish(batch)
}

// finish publishes the batch's deliveries and acknowledges its stanzas.
func (w *worker) finish(batch []jetstream.Msg) error {
	r := w.r
	if w.lease.aborted.Load() {
		return nil
	}
	if !w.lease.valid() {
		return errLeaseLapsed
	}
	for n := range w.out {
		o := &w.out[n]
		if o.then != nil {
			continue
		}
		var b []byte
		var err error
		if o.remote != nil {
			b, err = proto.Marshal(o.remote)
		} else {
			b, err = proto.Marshal(o.d)
		}
		if err != nil {
			r.log.Error("router: marshal delivery", "err", err)
			continue
		}
		m := &nats.Msg{Subject: o.subject, Reply: r.subjects.NoResponders(w.id, n), Data: b}
		if err := r.nc.PublishMsg(m); err != nil {
			return fmt.Errorf("router: publish delivery to %s: %w", o.subject, err)
		}
	}
	if len(w.out) > 0 {
		// The server has the deliveries once the flush returns, and has
		// told us (before the flush's answer) of every one that no node
		// subscribed to.
		if err := r.nc.FlushTimeout(flushTimeout); err != nil {
			return fmt.Errorf("router: flush deliveries: %w", err)
		}
		if err := w.handBackUnheard(); err != nil {
			return err
		}
	}
	for _, o := range w.out {
		if o.then != nil {
			o.then()
		}
	}
	now := time.Now()
	for _, t := range w.sent {
		r.metrics.Latency(t, now)
	}
	w.out, w.sent = w.out[:0], w.sent[:0]
	if f := r.afterFlush.Load(); f != nil {
		(*f)()
	}
	if w.lease.aborted.Load() {
		return nil
	}
	for _, m := range batch {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("router: acknowledge: %w", err)
		}
	}
	return nil
}

// handBackUnheard hands back, as undeliverable, every delivery of the
// batch that reached no subscriber: its node is gone (crashed, and not yet
// reaped from the session registry).
func (w *worker) handBackUnheard() error {
	for {
		var m *nats.Msg
		select {
		case m = <-w.noResp:
		default:
			return nil
		}
		if m.Header.Get("Status") != "503" {
			continue
		}
		i := strings.LastIndexByte(m.Subject, '.')
		n, err := strconv.Atoi(m.Subject[i+1:])
		if err != nil || n < 0 || n >= len(w.out) {
			continue
		}
		o := &w.out[n]
		if o.then != nil {
			continue
		}
		if o.remote != nil {
			// No s2s pod listens: the remote domain is unreachable
			// (RFC 6120 section 10.4.3).
			w.r.log.Info("router: no s2s service for a remote stanza", "subject", o.subject)
			if fb := o.fallback; fb != nil {
				b, err := proto.Marshal(fb.d)
				if err != nil {
					return err
				}
				if err := w.r.nc.Publish(fb.subject, b); err != nil {
					return fmt.Errorf("router: publish bounce to %s: %w", fb.subject, err)
				}
			}
			continue
		}
		w.r.metrics.Routed(int32(o.d.GetKind()), metrics.HandedBack)
		w.r.log.Info("router: no node subscribes to a delivery's subject; applying the no-session rules",
			"subject", o.subject, "session", o.d.GetSession())
		if err := handBack(context.Background(), w.js, w.r.subjects, o.d, o.node); err != nil {
			return err
		}
	}
}

// handBack publishes delivery d, which session d.Session on node could not
// take, back to the route stream as an undeliverable stanza, and waits for
// the stream to store it. c2s does the same for a session it no longer
// holds; see handBackStanza.
func handBack(ctx context.Context, js jetstream.JetStream, s bus.Subjects, d *busv1.Delivery, node string) error {
	st := handBackStanza(d, node)
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	o := st.GetOrigin()
	id := bus.HandBackMsgID(o.GetNode(), o.GetSession(), st.Seq, d.Part, node, d.Session)
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: s.RouteFor(bareOf(d.From)), Data: b}, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("router: handing back an undeliverable stanza: %w", err)
	}
	return nil
}

// handBackStanza turns a delivery that session d.Session on node could not
// take into the stanza a router applies the no-session rules to.
func handBackStanza(d *busv1.Delivery, node string) *busv1.Stanza {
	failed := make([]*busv1.Origin, 0, len(d.Failed)+1)
	failed = append(failed, d.Failed...)
	failed = append(failed, &busv1.Origin{Node: node, Session: d.Session})
	return &busv1.Stanza{
		From: d.From, To: d.To, Kind: d.Kind, Type: d.Type, Id: d.Id, Raw: d.Raw,
		Origin: d.Origin, Seq: d.Seq,
		Undeliverable: &busv1.Undeliverable{Failed: failed, Part: d.Part},
	}
}

func bareOf(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}
