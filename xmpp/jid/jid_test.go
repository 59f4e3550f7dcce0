package jid

import (
	"errors"
	"strings"
	"testing"
)

// rfcValid are the addresses RFC 7622 section 3.5.1 lists as valid, with the
// form each one takes once prepared.
var rfcValid = []struct {
	in, want                string
	local, domain, resource string
}{
	{"juliet@example.com", "juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com/foo", "juliet@example.com/foo", "juliet", "example.com", "foo"},
	{"juliet@example.com/foo bar", "juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	{"juliet@example.com/foo@bar", "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
	{`foo\20bar@example.com`, `foo\20bar@example.com`, `foo\20bar`, "example.com", ""},
	{"fussball@example.com", "fussball@example.com", "fussball", "example.com", ""},
	{"fußball@example.com", "fußball@example.com", "fußball", "example.com", ""},
	{"π@example.com", "π@example.com", "π", "example.com", ""},
	{"Σ@example.com/foo", "σ@example.com/foo", "σ", "example.com", "foo"},
	{"σ@example.com/foo", "σ@example.com/foo", "σ", "example.com", "foo"},
	{"ς@example.com/foo", "ς@example.com/foo", "ς", "example.com", "foo"},
	{"king@example.com/♚", "king@example.com/♚", "king", "example.com", "♚"},
	{"example.com", "example.com", "", "example.com", ""},
	{"example.com/foobar", "example.com/foobar", "", "example.com", "foobar"},
	{"a.example.com/b@example.net", "a.example.com/b@example.net", "", "a.example.com", "b@example.net"},
}

// rfcInvalid are the addresses RFC 7622 section 3.5.2 lists as invalid,
// with the part that is to blame. Its example 18 (a leading space in the
// resourcepart) is left out: erratum 4560 withdrew it, see
// TestParseAcceptsLeadingSpaceInResourcepart_RFC7622_Erratum4560.
var rfcInvalid = []struct {
	in, part string
}{
	{`"juliet"@example.com`, PartLocal},
	{"foo bar@example.com", PartLocal},
	{"@example.com/", PartLocal},
	{"henry\u2163@example.com", PartLocal},
	{"♚@example.com", PartLocal},
	{"juliet@", PartDomain},
	{"/foobar", PartDomain},
}

func TestParseAcceptsValidExamples_RFC7622_3_5_1(t *testing.T) {
	for _, tc := range rfcValid {
		j, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := j.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if j.Localpart() != tc.local || j.Domainpart() != tc.domain || j.Resourcepart() != tc.resource {
			t.Errorf("Parse(%q) parts = %q %q %q, want %q %q %q", tc.in,
				j.Localpart(), j.Domainpart(), j.Resourcepart(), tc.local, tc.domain, tc.resource)
		}
	}
}

func TestParseRejectsInvalidExamples_RFC7622_3_5_2(t *testing.T) {
	for _, tc := range rfcInvalid {
		j, err := Parse(tc.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, %v; want a *jid.Error", tc.in, j, err)
			continue
		}
		if e.Part != tc.part {
			t.Errorf("Parse(%q) blames %s (%v), want %s", tc.in, e.Part, err, tc.part)
		}
	}
}

func TestParseAcceptsLeadingSpaceInResourcepart_RFC7622_Erratum4560(t *testing.T) {
	// OpaqueString allows a leading space, so the RFC's example 18 is valid.
	j, err := Parse("juliet@example.com/ foo")
	if err != nil {
		t.Fatal(err)
	}
	if j.Resourcepart() != " foo" {
		t.Errorf("resourcepart = %q, want %q", j.Resourcepart(), " foo")
	}
}

func TestParseRejectsEmptyInput_RFC7622_3_1(t *testing.T) {
	_, err := Parse("")
	var e *Error
	if !errors.As(err, &e) || e.Part != PartAddress || !errors.Is(err, ErrEmpty) {
		t.Errorf("Parse(\"\") = %v, want an empty-address error", err)
	}
}

func TestParseRejectsEmptyLocalpart_RFC7622_3_3(t *testing.T) {
	for _, in := range []string{"@example.com", "@example.com/r"} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartLocal || !errors.Is(err, ErrEmpty) {
			t.Errorf("Parse(%q) = %v, want an empty-localpart error", in, err)
		}
	}
}

func TestParseRejectsEmptyResourcepart_RFC7622_3_4(t *testing.T) {
	for _, in := range []string{"example.com/", "juliet@example.com/"} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartResource || !errors.Is(err, ErrEmpty) {
			t.Errorf("Parse(%q) = %v, want an empty-resourcepart error", in, err)
		}
	}
}

func TestParseRejectsEmptyDomainpart_RFC7622_3_2(t *testing.T) {
	for _, in := range []string{"juliet@", "juliet@/r", "/r", ".", "juliet@./r"} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartDomain || !errors.Is(err, ErrEmpty) {
			t.Errorf("Parse(%q) = %v, want an empty-domainpart error", in, err)
		}
	}
}

func TestParseSplitsAtFirstSlashThenFirstAt_RFC7622_3_1(t *testing.T) {
	tests := []struct{ in, local, domain, resource string }{
		{"a@b/c@d/e", "a", "b", "c@d/e"},
		{"a/b@c", "", "a", "b@c"},
		{"a/b/c", "", "a", "b/c"},
		{"a@b/@", "a", "b", "@"},
	}
	for _, tc := range tests {
		j, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if j.Localpart() != tc.local || j.Domainpart() != tc.domain || j.Resourcepart() != tc.resource {
			t.Errorf("Parse(%q) parts = %q %q %q, want %q %q %q", tc.in,
				j.Localpart(), j.Domainpart(), j.Resourcepart(), tc.local, tc.domain, tc.resource)
		}
	}
	// A second '@' before the '/' lands in the domainpart, which refuses it.
	if _, err := Parse("a@b@c"); err == nil {
		t.Error(`Parse("a@b@c") succeeded`)
	}
}

func TestParseStripsOneTrailingDotOfDomainpart_RFC7622_3_2(t *testing.T) {
	for in, want := range map[string]string{
		"example.com.":             "example.com",
		"juliet@example.com./r":    "juliet@example.com/r",
		"EXAMPLE.com.":             "example.com",
		"bücher.example.":          "bücher.example",
		"example.com\u3002":        "example.com",
		"juliet@example.com\uff0e": "juliet@example.com",
	} {
		j, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if j.String() != want {
			t.Errorf("Parse(%q) = %q, want %q", in, j.String(), want)
		}
	}
	for _, in := range []string{"example.com..", "a..b", ".example.com", "bücher..example"} {
		_, err := Parse(in)
		if !errors.Is(err, ErrEmptyLabel) {
			t.Errorf("Parse(%q) = %v, want ErrEmptyLabel", in, err)
		}
	}
}

func TestParseMapsDomainpartToLowerCaseULabels_RFC7622_3_2(t *testing.T) {
	for in, want := range map[string]string{
		"EXAMPLE.COM":           "example.com",
		"Bücher.Example":        "bücher.example",
		"xn--bcher-kva.example": "bücher.example",
		"XN--BCHER-KVA.example": "bücher.example",
		"ｅｘａｍｐｌｅ.com":           "example.com",
		"example\u3002com":      "example.com",
		"bu\u0308cher.example":  "bücher.example", // NFC
		"straße.example":        "straße.example", // no transitional mapping
	} {
		j, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if j.Domainpart() != want {
			t.Errorf("Parse(%q).Domainpart() = %q, want %q", in, j.Domainpart(), want)
		}
	}
}

func TestParseRejectsBadDomainparts_RFC7622_3_2(t *testing.T) {
	for _, in := range []string{
		"exa mple.com", "under_score.example", "-example.com", "example-.com",
		"ab--cd.example", "xn--a.example", "exa<mple.com", "example.com:5222",
		"\xff.example", "a\u200db.example",
	} {
		_, err := Parse("juliet@" + in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartDomain {
			t.Errorf("Parse(%q) = %v, want a domainpart error", "juliet@"+in, err)
		}
	}
}

func TestParseAcceptsIPLiterals_RFC7622_3_2(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"[2001:db8::1]":           "[2001:db8::1]",
		"[2001:DB8:0:0:0:0:0:1]":  "[2001:db8::1]",
		"[::1]":                   "[::1]",
		"[::ffff:192.0.2.1]":      "[::ffff:192.0.2.1]",
		"juliet@[::1]/balcony":    "juliet@[::1]/balcony",
		"juliet@[0:0::1]/balcony": "juliet@[::1]/balcony",
	} {
		j, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if j.String() != want {
			t.Errorf("Parse(%q) = %q, want %q", in, j.String(), want)
		}
	}
	for _, in := range []string{"[192.0.2.1]", "[fe80::1%eth0]", "[::1", "[]", "[", "[zz::1]", "[::1]x", "::1"} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartDomain {
			t.Errorf("Parse(%q) = %v, want a domainpart error", in, err)
		}
	}
}

func TestParseCaseMapsLocalpartButNotResourcepart_RFC7622_3_3_2(t *testing.T) {
	j, err := Parse("Juliet@Example.COM/Balcony")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := j.String(), "juliet@example.com/Balcony"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseMapsWidthOfLocalpart_RFC7622_3_3_2(t *testing.T) {
	j, err := Parse("ＪＵＬＩＥＴ@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j.Localpart() != "juliet" {
		t.Errorf("localpart = %q, want %q", j.Localpart(), "juliet")
	}
}

func TestParseRejectsLocalpartExclusions_RFC7622_3_3_1(t *testing.T) {
	for _, local := range []string{
		`a"b`, "a&b", "a'b", "a:b", "a<b", "a>b",
		"a\uff06b", // fullwidth '&' becomes '&' by width mapping
		"a\uff20b", // fullwidth '@'
		"a\uff0fb", // fullwidth '/'
		"a\uff1cb", // fullwidth '<'
	} {
		_, err := Parse(local + "@example.com")
		var e *Error
		if !errors.As(err, &e) || e.Part != PartLocal {
			t.Errorf("Parse(%q) = %v, want a localpart error", local+"@example.com", err)
		}
	}
	for _, local := range []string{"a@b", "a/b", "a&b"} {
		_, err := New(local, "example.com", "")
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("New(%q, ...) = %v, want ErrForbidden", local, err)
		}
	}
}

func TestParseRejectsDisallowedLocalpartCharacters_RFC8265_3_3(t *testing.T) {
	for _, local := range []string{"a b", "a\tb", "a\x00b", "a\u00a0b", "\u2163", "☃", "\xff"} {
		_, err := Parse(local + "@example.com")
		var e *Error
		if !errors.As(err, &e) || e.Part != PartLocal {
			t.Errorf("Parse(%q) = %v, want a localpart error", local+"@example.com", err)
		}
	}
}

func TestParseAppliesBidiRuleOnlyToRightToLeftLocalparts_RFC8265_3_3_3(t *testing.T) {
	// Left-to-right localparts are not subject to the Bidi Rule, even when
	// they start with a digit or end with punctuation.
	for _, local := range []string{"1ü", "ü.", "1π", "\u05d0\u05d1", "\u05d01"} {
		if _, err := Parse(local + "@example.com"); err != nil {
			t.Errorf("Parse(%q): %v", local+"@example.com", err)
		}
	}
	// Right-to-left localparts must follow it.
	for _, local := range []string{"a\u05d0", "1\u05d0", "\u05d0a"} {
		if _, err := Parse(local + "@example.com"); err == nil {
			t.Errorf("Parse(%q) succeeded, want a Bidi Rule error", local+"@example.com")
		}
	}
}

func TestParseNormalisesResourcepart_RFC7622_3_4(t *testing.T) {
	for in, want := range map[string]string{
		"a\u00a0b": "a b",     // non-ASCII space to ASCII space
		"a\u3000b": "a b",     // ideographic space too
		"e\u0301":  "\u00e9",  // NFC
		"Balcony":  "Balcony", // no case mapping
		"♚ ♛":      "♚ ♛",
	} {
		j, err := Parse("juliet@example.com/" + in)
		if err != nil {
			t.Errorf("resource %q: %v", in, err)
			continue
		}
		if j.Resourcepart() != want {
			t.Errorf("resource %q became %q, want %q", in, j.Resourcepart(), want)
		}
	}
	for _, in := range []string{"a\tb", "a\nb", "\x7f", "a\u200bb", "\xff"} {
		_, err := Parse("juliet@example.com/" + in)
		var e *Error
		if !errors.As(err, &e) || e.Part != PartResource {
			t.Errorf("resource %q: got %v, want a resourcepart error", in, err)
		}
	}
}

func TestParseLimitsEachPartTo1023Bytes_RFC7622_3(t *testing.T) {
	long := strings.Repeat("a", 1023)
	longDomain := strings.Repeat("a.", 511) + "a"
	for _, in := range []string{
		long + "@example.com",
		"example.com/" + long,
		longDomain,
		long + "@" + longDomain + "/" + long,
	} {
		if _, err := Parse(in); err != nil {
			t.Errorf("Parse of %d bytes: %v", len(in), err)
		}
	}
	for in, part := range map[string]string{
		long + "a@example.com":          PartLocal,
		"example.com/" + long + "a":     PartResource,
		longDomain + "a":                PartDomain,
		"π" + long[2:] + "@example.com": "", // 1023 bytes: fine
		"é" + long + "@example.com":     PartLocal,
		"example.com/é" + long:          PartResource,
		"é" + longDomain[1:] + "a":      PartDomain,
	} {
		_, err := Parse(in)
		if part == "" {
			if err != nil {
				t.Errorf("Parse of %d bytes: %v", len(in), err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Part != part || !errors.Is(err, ErrTooLong) {
			t.Errorf("Parse of %d bytes = %v, want %s too long", len(in), err, part)
		}
	}
}

func TestParseMeasuresLengthAfterPreparation_RFC7622_3_3(t *testing.T) {
	// 1023 fullwidth letters are 3069 bytes, but 1023 once width-mapped.
	wide := strings.Repeat("\uff41", 1023)
	j, err := Parse(wide + "@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Localpart()) != 1023 {
		t.Errorf("localpart is %d bytes, want 1023", len(j.Localpart()))
	}
}

func TestNewPreparesEachPart_RFC7622_3(t *testing.T) {
	j, err := New("Juliet", "Example.COM.", "Balcony")
	if err != nil {
		t.Fatal(err)
	}
	if j != MustParse("juliet@example.com/Balcony") {
		t.Errorf("New = %q", j)
	}
	d, err := New("", "example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != "example.com" || !d.IsBare() || d.Localpart() != "" {
		t.Errorf("New domain JID = %q", d)
	}
	// A resource may hold any separator; a domain may not.
	r, err := New("juliet", "example.com", "a/b@c")
	if err != nil || r.Resourcepart() != "a/b@c" {
		t.Errorf("New with resource a/b@c = %q, %v", r, err)
	}
	for _, domain := range []string{"", "a@b", "a/b"} {
		var e *Error
		if _, err := New("juliet", domain, ""); !errors.As(err, &e) || e.Part != PartDomain {
			t.Errorf("New with domain %q = %v, want a domainpart error", domain, err)
		}
	}
}

func TestJIDAccessors(t *testing.T) {
	full := MustParse("juliet@example.com/balcony")
	if full.IsBare() || full.IsZero() {
		t.Errorf("%q: IsBare %v IsZero %v", full, full.IsBare(), full.IsZero())
	}
	if b := full.Bare(); b != MustParse("juliet@example.com") || !b.IsBare() {
		t.Errorf("Bare = %q", b)
	}
	if d := full.Domain(); d != MustParse("example.com") {
		t.Errorf("Domain = %q", d)
	}
	var zero JID
	if !zero.IsZero() || zero.String() != "" {
		t.Errorf("zero JID: IsZero %v String %q", zero.IsZero(), zero.String())
	}
}

func TestWithResourcePreparesResource_RFC7622_3_4(t *testing.T) {
	bare := MustParse("juliet@example.com")
	j, err := bare.WithResource("e\u0301")
	if err != nil {
		t.Fatal(err)
	}
	if j != MustParse("juliet@example.com/\u00e9") {
		t.Errorf("WithResource = %q", j)
	}
	if j2, err := j.WithResource(""); err != nil || j2 != bare {
		t.Errorf("WithResource(\"\") = %q, %v; want %q", j2, err, bare)
	}
	if _, err := bare.WithResource("a\tb"); err == nil {
		t.Error("WithResource accepted a tab")
	}
	if _, err := (JID{}).WithResource("r"); err == nil {
		t.Error("WithResource on the zero JID succeeded")
	}
}

func TestMustParsePanicsOnBadAddress(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustParse did not panic")
		} else if _, ok := r.(*Error); !ok {
			t.Errorf("MustParse panicked with %T, want *jid.Error", r)
		}
	}()
	MustParse("@example.com")
}

func TestErrorMessageNamesPart(t *testing.T) {
	_, err := Parse("juliet@example.com/")
	if err == nil || !strings.Contains(err.Error(), "resourcepart") {
		t.Errorf("error %v does not name the resourcepart", err)
	}
}

func TestParseDoesNotAllocateForNormalASCII(t *testing.T) {
	for _, in := range []string{"juliet@example.com/balcony", "example.com", "juliet@example.com."} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Parse(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Parse(%q) allocates %v times", in, allocs)
		}
	}
}

func TestParseRejectsInvalidUTF8InEveryPart_RFC7622_3(t *testing.T) {
	for in, part := range map[string]string{
		"a\xffb@example.com":       PartLocal,
		"juliet@\xff.example":      PartDomain,
		"juliet@example.com/\xff":  PartResource,
		"juliet@example.com/a\xc3": PartResource,
	} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Part != part || !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("Parse(%q) = %v, want invalid UTF-8 in the %s", in, err, part)
		}
	}
}
