package jid

import "errors"

// Names of the parts of an address, as used in Error.Part.
const (
	PartLocal    = "localpart"
	PartDomain   = "domainpart"
	PartResource = "resourcepart"
	PartAddress  = "address"
)

// Error names the part of an address that is wrong.
type Error struct {
	Part string // "localpart", "domainpart", "resourcepart" or "address"
	Err  error
}

func (e *Error) Error() string { return "jid: bad " + e.Part + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

var (
	// ErrEmpty is a part that is empty: a missing domainpart, or a localpart
	// or resourcepart whose separator is present with nothing beside it
	// (RFC 7622 section 3.1).
	ErrEmpty = errors.New("empty")

	// ErrTooLong is a part longer than 1023 bytes once prepared (RFC 7622
	// sections 3.2, 3.3 and 3.4).
	ErrTooLong = errors.New("longer than 1023 bytes")

	// ErrForbidden is a localpart holding one of the characters that RFC 7622
	// section 3.3.1 excludes beyond the PRECIS profile: " & ' / : < > @.
	ErrForbidden = errors.New("forbidden character")

	// ErrInvalidUTF8 is a part that is not valid UTF-8. The PRECIS and IDNA
	// libraries would quietly turn such bytes into U+FFFD.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")

	// ErrEmptyLabel is a domainpart with an empty label, such as "a..b" or
	// ".example".
	ErrEmptyLabel = errors.New("empty label")

	// ErrIPLiteral is a bracketed domainpart that is not an IPv6 address
	// without zone (RFC 7622 section 3.2, RFC 3986 IP-literal).
	ErrIPLiteral = errors.New("bad IP literal")
)
