package bus

import (
	"slices"
	"strings"
	"testing"
)

func TestChangedPayloadRoundTrip(t *testing.T) {
	for _, in := range [][]string{
		{"alice@example.com"},
		{"alice@example.com", "bob@example.com", "carol@xn--bcher-kva.example"},
	} {
		var got []string
		if all := DecodeChanged(EncodeChanged(in...), func(b string) { got = append(got, b) }); all {
			t.Fatalf("%q decoded as every account", in)
		}
		if !slices.Equal(got, in) {
			t.Errorf("round trip of %q gave %q", in, got)
		}
	}
	called := false
	if !DecodeChanged(EncodeChanged(), func(string) { called = true }) || called {
		t.Error("an empty payload must mean every account, with no JID")
	}
	if got := New("t", 0).PresenceChanged(); got != "t.presence.changed" {
		t.Errorf("subject %q", got)
	}
}

// FuzzDecodeChanged checks that any payload decodes without panicking,
// into non-empty lines without line feeds that encode back to the payload
// less its empty lines.
func FuzzDecodeChanged(f *testing.F) {
	f.Add([]byte("alice@example.com\nbob@example.com"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []string
		all := DecodeChanged(data, func(b string) {
			if b == "" || strings.Contains(b, "\n") {
				t.Fatalf("line %q", b)
			}
			got = append(got, b)
		})
		if all != (len(data) == 0) {
			t.Fatalf("all = %v for %q", all, data)
		}
		var want []string
		for l := range strings.SplitSeq(string(data), "\n") {
			if l != "" {
				want = append(want, l)
			}
		}
		if !all && string(EncodeChanged(got...)) != strings.Join(want, "\n") {
			t.Fatalf("%q decoded to %q", data, got)
		}
	})
}
