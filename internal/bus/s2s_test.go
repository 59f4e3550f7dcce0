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
