package main

import (
	"errors"
	"strconv"
	"strings"
)

// A chat body is "xb1 <pair> <seq> <sent>" then optional padding: the pair
// id, the sender's sequence number (from 0) and the send time in
// nanoseconds on the tool's monotonic clock (time since the run began).
// Sender and receiver live in the same process, so no clock sync is
// needed.
const bodyMagic = "xb1"

// Stamp is what a chat body carries.
type Stamp struct {
	Pair int
	Seq  int64
	Sent int64 // ns since the run's monotonic base
}

// errNotBench marks a body this tool did not write.
var errNotBench = errors.New("not an xmppbench body")

// EncodeBody writes s, padded with 'x' to at least size bytes.
func EncodeBody(s Stamp, size int) string {
	b := make([]byte, 0, max(size, 48))
	b = append(b, bodyMagic...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.Pair), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.Seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.Sent, 10)
	if len(b) < size {
		b = append(b, ' ')
		for len(b) < size {
			b = append(b, 'x')
		}
	}
	return string(b)
}

// DecodeBody reads a body written by EncodeBody.
func DecodeBody(body string) (Stamp, error) {
	f := strings.SplitN(body, " ", 5)
	if len(f) < 4 || f[0] != bodyMagic {
		return Stamp{}, errNotBench
	}
	pair, err1 := strconv.Atoi(f[1])
	seq, err2 := strconv.ParseInt(f[2], 10, 64)
	sent, err3 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || pair < 0 || seq < 0 {
		return Stamp{}, errNotBench
	}
	return Stamp{Pair: pair, Seq: seq, Sent: sent}, nil
}
