package main

import (
	"errors"
	"strings"
	"testing"
)

func TestBodyRoundTrip(t *testing.T) {
	for _, st := range []Stamp{
		{Pair: 0, Seq: 0, Sent: 0},
		{Pair: 49, Seq: 123456, Sent: 987654321012},
		{Pair: 1 << 20, Seq: 1 << 40, Sent: -5},
	} {
		for _, size := range []int{0, 10, 200} {
			b := EncodeBody(st, size)
			if len(b) < size {
				t.Errorf("EncodeBody(%+v, %d) is %d bytes, want at least %d", st, size, len(b), size)
			}
			got, err := DecodeBody(b)
			if err != nil || got != st {
				t.Errorf("DecodeBody(%q) = %+v, %v; want %+v", b, got, err, st)
			}
		}
	}
}

func TestBodyOfSomeoneElseIsRejected(t *testing.T) {
	for _, b := range []string{
		"",
		"hello",
		"xb1 1 2",
		"xb2 1 2 3",
		"xb1 one 2 3",
		"xb1 1 -2 3",
		"xb1 -1 2 3",
		"xb1 1 2 3x",
		strings.Repeat("x", 100),
	} {
		if _, err := DecodeBody(b); !errors.Is(err, errNotBench) {
			t.Errorf("DecodeBody(%q) = %v, want errNotBench", b, err)
		}
	}
}

func FuzzBodyRoundTrip(f *testing.F) {
	f.Add(3, int64(7), int64(11), 0)
	f.Fuzz(func(t *testing.T, pair int, seq, sent int64, size int) {
		if pair < 0 || seq < 0 || size > 1<<16 {
			t.Skip()
		}
		st := Stamp{Pair: pair, Seq: seq, Sent: sent}
		got, err := DecodeBody(EncodeBody(st, size))
		if err != nil || got != st {
			t.Fatalf("round trip of %+v: %+v, %v", st, got, err)
		}
	})
}
