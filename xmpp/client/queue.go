package client

import (
	"context"
	"sync"
)

// queue is an unbounded-until-limit FIFO that many goroutines can wait on
// with a context. The reader pushes and never blocks: when the queue is
// full the oldest entry goes, so a test or tool that ignores one kind of
// stanza cannot stall IQ responses behind it.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{} // closed and replaced on every push
	limit  int
}

func newQueue[T any](limit int) *queue[T] {
	return &queue[T]{signal: make(chan struct{}), limit: limit}
}

// push appends v and reports whether the oldest entry was dropped for it.
func (q *queue[T]) push(v T) (dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.limit {
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		dropped = true
	}
	q.items = append(q.items, v)
	close(q.signal)
	q.signal = make(chan struct{})
	return dropped
}

// pop removes the oldest entry.
func (q *queue[T]) pop() (T, bool, chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if len(q.items) == 0 {
		return zero, false, q.signal
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true, nil
}

// next waits for an entry. Once done is closed, what is queued is still
// returned, then endErr().
func (q *queue[T]) next(ctx context.Context, done <-chan struct{}, endErr func() error) (T, error) {
	for {
		v, ok, signal := q.pop()
		if ok {
			return v, nil
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return v, ctx.Err()
		case <-done:
			if v, ok, _ := q.pop(); ok {
				return v, nil
			}
			return v, endErr()
		}
	}
}
