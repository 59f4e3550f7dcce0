package jid

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// maxPart is the longest a prepared part may be, in bytes (RFC 7622
// sections 3.2, 3.3 and 3.4).
const maxPart = 1023

// username is the UsernameCaseMapped profile of RFC 8265 section 3.3
// without its directionality rule, which checkBidi applies instead.
// precis.UsernameCaseMapped runs the Bidi Rule on every non-ASCII string, so
// it rejects left-to-right names such as "1ü" or "ü." that RFC 8265 accepts:
// the rule is meant only for strings that contain right-to-left code points.
var username = precis.NewIdentifier(
	precis.FoldWidth,
	precis.LowerCase(),
	precis.Norm(norm.NFC),
)

// domainProfile maps and validates a domainpart as RFC 7622 section 3.2
// asks: IDNA2008 lookup mapping (case, width, NFC), label validation, the
// Bidi Rule, letters, digits and hyphens only, and no transitional mapping
// (so "ß" stays itself). DNS length limits are not applied: an XMPP
// domainpart may be up to 1023 bytes.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
)

// checkBidi applies the Bidi Rule of RFC 5893 to s if s holds right-to-left
// code points, as RFC 8265 section 3.3.3 asks.
func checkBidi(s string) error {
	if bidirule.DirectionString(s) == bidi.RightToLeft && !bidirule.ValidString(s) {
		return bidirule.ErrInvalid
	}
	return nil
}

// prepLocal enforces the localpart rules of RFC 7622 section 3.3.
func prepLocal(s string) (string, error) {
	if s == "" {
		return "", &Error{Part: PartLocal, Err: ErrEmpty}
	}
	out, ok := asciiLocal(s)
	if !ok {
		if !utf8.ValidString(s) {
			return "", &Error{Part: PartLocal, Err: ErrInvalidUTF8}
		}
		var err error
		if out, err = username.String(s); err != nil {
			return "", &Error{Part: PartLocal, Err: err}
		}
		if err := checkBidi(out); err != nil {
			return "", &Error{Part: PartLocal, Err: err}
		}
		if strings.ContainsAny(out, localForbidden) {
			return "", &Error{Part: PartLocal, Err: ErrForbidden}
		}
		if out == "" {
			return "", &Error{Part: PartLocal, Err: ErrEmpty}
		}
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartLocal, Err: ErrTooLong}
	}
	return out, nil
}

// localForbidden are the characters RFC 7622 section 3.3.1 excludes from a
// localpart on top of the PRECIS profile.
const localForbidden = "\"&'/:<>@"

// asciiLocal is the fast path of prepLocal for printable ASCII: the profile
// only lower-cases such input, and allocates only when there is something to
// lower-case. ok is false when s needs the full profile or is invalid (the
// full path then reports why).
func asciiLocal(s string) (out string, ok bool) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return "", false
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '"', c == '&', c == '\'', c == '/', c == ':', c == '<', c == '>', c == '@':
			return "", false
		}
	}
	if !upper {
		return s, true
	}
	return asciiLower(s), true
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// prepResource enforces the resourcepart rules of RFC 7622 section 3.4.
func prepResource(s string) (string, error) {
	if s == "" {
		return "", &Error{Part: PartResource, Err: ErrEmpty}
	}
	out := s
	if !printableASCII(s) {
		// OpaqueString leaves printable ASCII (space included) as it is.
		if !utf8.ValidString(s) {
			return "", &Error{Part: PartResource, Err: ErrInvalidUTF8}
		}
		var err error
		if out, err = precis.OpaqueString.String(s); err != nil {
			return "", &Error{Part: PartResource, Err: err}
		}
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartResource, Err: ErrTooLong}
	}
	return out, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// prepDomain enforces the domainpart rules of RFC 7622 section 3.2.
func prepDomain(s string) (string, error) {
	if strings.HasPrefix(s, "[") {
		return prepIPv6(s)
	}
	out, ok := asciiDomain(s)
	if !ok {
		if !utf8.ValidString(s) {
			return "", &Error{Part: PartDomain, Err: ErrInvalidUTF8}
		}
		var err error
		if out, err = domainProfile.ToUnicode(s); err != nil {
			return "", &Error{Part: PartDomain, Err: err}
		}
		// The mapping turns the other label separators (U+3002 and its
		// kin) into dots, so the final dot is looked for only now.
		out = strings.TrimSuffix(out, ".")
		if err := checkLabels(out); err != nil {
			return "", err
		}
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartDomain, Err: ErrTooLong}
	}
	return out, nil
}

// checkLabels rejects an empty domainpart and empty labels, which the IDNA
// profile lets through when DNS lengths are not checked.
func checkLabels(s string) error {
	if s == "" {
		return &Error{Part: PartDomain, Err: ErrEmpty}
	}
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return &Error{Part: PartDomain, Err: ErrEmptyLabel}
	}
	return nil
}

// asciiDomain is the fast path of prepDomain for host names made of
// letters, digits and hyphens, already valid as IDNA2008 labels. Anything
// else (A-labels, reserved hyphens, other characters) takes the full path.
func asciiDomain(s string) (out string, ok bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", false
	}
	upper := false
	start := 0 // first byte of the current label
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			label := s[start:i]
			n := len(label)
			if n == 0 || label[0] == '-' || label[n-1] == '-' ||
				(n >= 4 && label[2] == '-' && label[3] == '-') {
				return "", false
			}
			start = i + 1
			continue
		}
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if !upper {
		return s, true
	}
	return asciiLower(s), true
}

// prepIPv6 accepts an IPv6 address in brackets (the IP-literal of RFC 3986
// that RFC 7622 section 3.2 allows) and writes it in the canonical form of
// RFC 5952, so that equal addresses compare equal.
func prepIPv6(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", &Error{Part: PartDomain, Err: ErrIPLiteral}
	}
	addr, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", &Error{Part: PartDomain, Err: ErrIPLiteral}
	}
	if canon := addr.String(); canon != s[1:len(s)-1] {
		return "[" + canon + "]", nil
	}
	return s, nil
}
