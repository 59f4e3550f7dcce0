package jid

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

func addSeeds(f *testing.F) {
	for _, tc := range rfcValid {
		f.Add(tc.in)
	}
	for _, tc := range rfcInvalid {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"juliet@example.com/ foo", "Juliet@Example.COM./Balcony", "[2001:DB8::1]",
		"xn--bcher-kva.example", "example\u3002com", "a\uff20b@example.com",
		"\u05d0\u05d1@example.com", "1ü@example.com",
	} {
		f.Add(s)
	}
}

// FuzzParse checks that parsing is idempotent: whatever parses prints to a
// form that parses again to the identical JID (RFC 7622 section 3 asks the
// preparation of each part to be stable), and the parts stay within the
// limits of the RFC.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			if j != (JID{}) {
				t.Fatalf("Parse(%q) returned %#v with error %v", s, j, err)
			}
			return
		}
		if j.IsZero() {
			t.Fatalf("Parse(%q) succeeded with no domainpart", s)
		}
		for _, p := range []string{j.local, j.domain, j.resource} {
			if len(p) > maxPart || !utf8.ValidString(p) {
				t.Fatalf("Parse(%q) gave a bad part %q", s, p)
			}
		}
		if strings.ContainsAny(j.local, localForbidden) || strings.ContainsAny(j.domain, "@/") {
			t.Fatalf("Parse(%q) = %#v: separator inside a part", s, j)
		}
		printed := j.String()
		again, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, printed, err)
		}
		if again != j {
			t.Fatalf("Parse(%q) = %#v, but its form %q parses to %#v", s, j, printed, again)
		}
		if again.String() != printed {
			t.Fatalf("%q printed as %q then %q", s, printed, again.String())
		}
		if n, err := New(j.local, j.domain, j.resource); err != nil || n != j {
			t.Fatalf("New(parts of %q) = %#v, %v; want %#v", s, n, err, j)
		}
	})
}

// FuzzASCIIFastPaths checks that the ASCII shortcuts give exactly what the
// PRECIS and IDNA profiles give, whenever they are taken.
func FuzzASCIIFastPaths(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkFastPaths(t, s)
	})
}

func checkFastPaths(t *testing.T, s string) {
	t.Helper()
	if out, ok := asciiLocal(s); ok {
		want, err := slowLocal(s)
		if err != nil || want != out {
			t.Fatalf("localpart %q: fast path gives %q, profile gives %q, %v", s, out, want, err)
		}
	}
	if printableASCII(s) && s != "" {
		want, err := slowResource(s)
		if err != nil || want != s {
			t.Fatalf("resourcepart %q: fast path keeps it, profile gives %q, %v", s, want, err)
		}
	}
	if out, ok := asciiDomain(s); ok {
		want, err := slowDomain(s)
		if err != nil || want != out {
			t.Fatalf("domainpart %q: fast path gives %q, profile gives %q, %v", s, out, want, err)
		}
	}
}

// The slow paths below are prepLocal, prepResource and prepDomain without
// their shortcuts.

func slowLocal(s string) (string, error) {
	out, err := username.String(s)
	if err == nil {
		err = checkBidi(out)
	}
	if err == nil && strings.ContainsAny(out, localForbidden) {
		err = ErrForbidden
	}
	return out, err
}

func slowResource(s string) (string, error) {
	return precis.OpaqueString.String(s)
}

func slowDomain(s string) (string, error) {
	out, err := domainProfile.ToUnicode(s)
	if err != nil {
		return "", err
	}
	out = strings.TrimSuffix(out, ".")
	return out, checkLabels(out)
}

func TestASCIIFastPathsMatchProfilesForAllShortStrings(t *testing.T) {
	// Every string of one or two ASCII bytes, and three-byte strings over
	// the characters that matter to domain labels.
	for a := 0; a < 0x80; a++ {
		checkFastPaths(t, string(rune(a)))
		for b := 0; b < 0x80; b++ {
			checkFastPaths(t, string([]byte{byte(a), byte(b)}))
		}
	}
	const alpha = "aZ0-._"
	for _, a := range alpha {
		for _, b := range alpha {
			for _, c := range alpha {
				for _, d := range alpha {
					checkFastPaths(t, string([]rune{a, b, c, d}))
					checkFastPaths(t, "xn"+string([]rune{a, b, c, d}))
				}
			}
		}
	}
}
