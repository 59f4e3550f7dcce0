package main

import (
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets, like HdrHistogram with
// two significant decimal digits: exact below 128 ns, and above that 64
// buckets per power of two, so a reported percentile is within 0.8% of
// the true sample (the bucket's midpoint is reported). Memory is fixed
// (histBuckets counters) whatever the number of samples; values past
// histMax are counted in the last bucket.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact values below this
	histHalf    = histSub / 2      // buckets per power of two above it
	histMaxBits = 40               // about 18 minutes in nanoseconds
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
	histMax     = int64(1)<<histMaxBits - 1
)

// bucketOf returns the bucket index of v (nanoseconds, >= 0).
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > histMax {
		v = histMax
	}
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits
	top := int(v >> shift) // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + top - histHalf
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < histSub {
		return int64(i), 1
	}
	shift := (i-histSub)/histHalf + 1
	top := int64((i-histSub)%histHalf + histHalf)
	return top << shift, int64(1) << shift
}

// Record adds one sample.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value below which a fraction q (0..1) of the
// samples lie: the midpoint of the bucket holding the sample of rank
// ceil(q*n), clamped to the smallest and largest sample seen.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.9999999)
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// Mean is the average sample.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Latency is a histogram summarised for the results, in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// Summary returns the percentiles of h.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count:  h.n,
		MinMs:  ms(time.Duration(h.min)),
		MeanMs: ms(h.Mean()),
		P50Ms:  ms(h.Quantile(0.50)),
		P90Ms:  ms(h.Quantile(0.90)),
		P99Ms:  ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)),
		MaxMs:  ms(time.Duration(h.max)),
	}
}

// seqTracker follows the sequence numbers one receiver got from one
// sender: a bitmap of the numbers seen (one bit per message sent, so a
// million messages cost 125 KB) tells duplicates; a number below the
// highest seen so far is a reordering.
type seqTracker struct {
	seen      []uint64
	distinct  uint64
	dups      uint64
	reordered uint64
	highest   int64 // -1 before the first
}

func newSeqTracker() seqTracker { return seqTracker{highest: -1} }

// Observe records sequence number seq (>= 0) and reports whether it is
// the first time it was seen.
func (s *seqTracker) Observe(seq int64) (first bool) {
	w := int(seq / 64)
	for w >= len(s.seen) {
		s.seen = append(s.seen, 0)
	}
	bit := uint64(1) << (seq % 64)
	if s.seen[w]&bit != 0 {
		s.dups++
		return false
	}
	s.seen[w] |= bit
	s.distinct++
	if seq < s.highest {
		s.reordered++
	} else {
		s.highest = seq
	}
	return true
}

// Lost returns how many of the numbers 0..sent-1 were never seen.
func (s *seqTracker) Lost(sent int64) uint64 {
	var got uint64
	for seq := int64(0); seq < sent; seq++ {
		w := int(seq / 64)
		if w < len(s.seen) && s.seen[w]&(uint64(1)<<(seq%64)) != 0 {
			got++
		}
	}
	return uint64(sent) - got
}
