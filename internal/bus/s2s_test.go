package bus

import "testing"

func TestS2SOutRoundTrip(t *testing.T) {
	s := New("t", 0)
	for _, d := range []string{"b.test", "example", "xn--bcher-kva.example"} {
		subj := s.S2SOut(d)
		if subj == "" {
			t.Fatalf("S2SOut(%q) empty", d)
		}
		got, ok := s.S2SOutDomain(subj)
		if !ok || got != d {
			t.Errorf("S2SOutDomain(%q) = %q, %v", subj, got, ok)
		}
	}
	for _, d := range []string{"", "a.*", "a.>", "a b", ".a", "a.", "a..b"} {
		if subj := s.S2SOut(d); subj != "" {
			t.Errorf("S2SOut(%q) = %q, want refused", d, subj)
		}
	}
	if _, ok := s.S2SOutDomain("t.route.1"); ok {
		t.Error("a route subject was read as an s2s subject")
	}
}

func TestS2SLeaseKeysAreValidKeysAndDistinctPerPair(t *testing.T) {
	s := New("t.x", 0)
	if got := s.S2SLeaseBucket(); got != "t_x_s2s" {
		t.Errorf("bucket %q", got)
	}
	seen := map[string]bool{}
	for _, p := range [][2]string{{"a.test", "b.test"}, {"b.test", "a.test"}, {"a.test", "bücher.example"}, {"a.tes", "tb.test"}} {
		k := s.S2SLeaseKey(p[0], p[1])
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Errorf("key %q of %v holds %q", k, p, c)
			}
		}
		if seen[k] {
			t.Errorf("key %q of %v used twice", k, p)
		}
		seen[k] = true
	}
}
