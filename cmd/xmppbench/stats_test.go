package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<20 + 1, histMax - 1, histMax, histMax + 5} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		if i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, past the last bucket %d", v, i, histBuckets-1)
		}
		lo, w := bucketRange(i)
		if cv := min(v, histMax); cv < lo || cv >= lo+w {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		prev = i
	}
}

func TestHistogramQuantilesAgreeWithSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var samples []int64
	for range 100000 {
		// Log-normal-ish latencies from microseconds to about a second.
		v := int64(float64(int64(1000)<<r.IntN(20)) * (1 + r.Float64()))
		samples = append(samples, v)
		h.Record(time.Duration(v))
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(q*float64(len(samples))+0.9999999)-1]
		got := int64(h.Quantile(q))
		if d := float64(got-exact) / float64(exact); d > 0.01 || d < -0.01 {
			t.Errorf("p%v = %d, exact %d: off by %.2f%%, more than the 1%% the buckets allow", q*100, got, exact, d*100)
		}
	}
	if h.Count() != uint64(len(samples)) {
		t.Errorf("count %d, want %d", h.Count(), len(samples))
	}
	if got := h.Summary().MaxMs; got != ms(time.Duration(samples[len(samples)-1])) {
		t.Errorf("max %v ms, want the largest sample %v", got, samples[len(samples)-1])
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("median of 1..100 = %v, want 50ns", got)
	}
	if got := h.Quantile(1); got != 100 {
		t.Errorf("p100 of 1..100 = %v, want 100ns", got)
	}
}

func TestHistogramMergeEqualsRecordingEverything(t *testing.T) {
	var a, b, both Histogram
	for v := range 5000 {
		d := time.Duration(v * 997)
		if v%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	a.Merge(&b)
	if a.Summary() != both.Summary() {
		t.Errorf("merged %+v, recorded together %+v", a.Summary(), both.Summary())
	}
}

func TestEmptyHistogramSummarisesToZero(t *testing.T) {
	var h Histogram
	if s := h.Summary(); s != (Latency{}) {
		t.Errorf("empty summary %+v", s)
	}
}

func TestSeqTrackerCountsDuplicatesReorderingAndLoss(t *testing.T) {
	s := newSeqTracker()
	for _, seq := range []int64{0, 1, 3, 2, 3, 5, 200, 1} {
		s.Observe(seq)
	}
	if s.distinct != 6 {
		t.Errorf("distinct %d, want 6 (0 1 2 3 5 200)", s.distinct)
	}
	if s.dups != 2 {
		t.Errorf("duplicates %d, want 2 (3 and 1 again)", s.dups)
	}
	if s.reordered != 1 {
		t.Errorf("reordered %d, want 1 (2 after 3)", s.reordered)
	}
	// 0..6 sent: 4 and 6 never came. 200 was not counted as sent.
	if got := s.Lost(7); got != 2 {
		t.Errorf("lost of 7 sent = %d, want 2", got)
	}
}

func TestSeqTrackerInOrderStreamIsClean(t *testing.T) {
	s := newSeqTracker()
	for seq := range int64(10000) {
		if !s.Observe(seq) {
			t.Fatalf("seq %d reported as seen before", seq)
		}
	}
	if s.dups != 0 || s.reordered != 0 || s.Lost(10000) != 0 {
		t.Errorf("clean stream: dups %d reordered %d lost %d", s.dups, s.reordered, s.Lost(10000))
	}
}
