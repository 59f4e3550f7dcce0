package bus

import "strings"

// PresenceChanged is the subject where the presence service announces that
// the sessions of some accounts changed: a Bind, Unbind or SetPresence, or
// sessions removed by the reaper or DropNode. Routers that cache registry
// lookups subscribe to it (every router, no queue group) and forget what
// they hold for those accounts. The payload is EncodeChanged's: the bare
// JIDs, one per line, or nothing at all, which means every account.
func (s Subjects) PresenceChanged() string { return s.Prefix + ".presence.changed" }

// EncodeChanged builds a PresenceChanged payload naming the bare JIDs
// bare. A prepared JID never holds a line feed (RFC 7622 forbids control
// characters in every part), so one per line is unambiguous. No JID at all
// encodes "every account".
func EncodeChanged(bare ...string) []byte {
	n := 0
	for _, b := range bare {
		n += len(b) + 1
	}
	out := make([]byte, 0, n)
	for i, b := range bare {
		if i > 0 {
			out = append(out, '\n')
		}
		out = append(out, b...)
	}
	return out
}

// DecodeChanged calls f with each bare JID named in a PresenceChanged
// payload, and reports whether the payload means every account instead
// (it is empty); f is not called then. Empty lines are skipped.
func DecodeChanged(data []byte, f func(bare string)) (all bool) {
	if len(data) == 0 {
		return true
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" {
			f(line)
		}
	}
	return false
}
