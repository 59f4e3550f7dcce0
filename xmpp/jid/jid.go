// Package jid parses and normalises XMPP addresses (RFC 7622).
//
// A JID holds its three parts already prepared and enforced: the localpart
// with the PRECIS UsernameCaseMapped profile (RFC 8265) and the extra
// exclusions of RFC 7622 section 3.3.1, the domainpart as lower-case IDNA2008
// U-labels or an IP literal, the resourcepart with the PRECIS OpaqueString
// profile. Two JIDs that denote the same entity are therefore equal with ==,
// and String gives the canonical form.
package jid

import "strings"

// JID is a normalised address. The zero value is no address. JIDs are
// comparable with ==.
type JID struct {
	local, domain, resource string
}

// Parse parses and normalises s (PRECIS: UsernameCaseMapped localpart,
// lower-cased IDNA domainpart, OpaqueString resourcepart; each part at most
// 1023 bytes).
//
// s is split as RFC 7622 section 3.1 says: the resourcepart is everything
// after the first '/', the localpart everything before the first '@' that
// comes ahead of it. A separator with nothing beside it is an error, and so
// is an empty s. One final dot of the domainpart is dropped.
//
// Parts that are already in canonical ASCII form are kept as substrings of
// s, so parsing a normal address does not allocate.
func Parse(s string) (JID, error) {
	if s == "" {
		return JID{}, &Error{Part: PartAddress, Err: ErrEmpty}
	}
	var local, domain, resource string
	hasLocal, hasResource := false, false
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, resource, hasResource = rest[:i], rest[i+1:], true
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local, rest, hasLocal = rest[:i], rest[i+1:], true
	}
	domain = rest
	return build(local, domain, resource, hasLocal, hasResource)
}

// MustParse is Parse that panics; for constants.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New builds and normalises a JID from parts. An empty local or resource
// means that part is absent; the domain is required.
func New(local, domain, resource string) (JID, error) {
	return build(local, domain, resource, local != "", resource != "")
}

func build(local, domain, resource string, hasLocal, hasResource bool) (JID, error) {
	var j JID
	var err error
	if hasLocal {
		if j.local, err = prepLocal(local); err != nil {
			return JID{}, err
		}
	}
	if j.domain, err = prepDomain(domain); err != nil {
		return JID{}, err
	}
	if hasResource {
		if j.resource, err = prepResource(resource); err != nil {
			return JID{}, err
		}
	}
	return j, nil
}

// Localpart returns the prepared localpart, or "" if j has none.
func (j JID) Localpart() string { return j.local }

// Domainpart returns the prepared domainpart.
func (j JID) Domainpart() string { return j.domain }

// Resourcepart returns the prepared resourcepart, or "" if j has none.
func (j JID) Resourcepart() string { return j.resource }

// Bare returns j without its resource.
func (j JID) Bare() JID { return JID{local: j.local, domain: j.domain} }

// Domain returns the JID of j's domain.
func (j JID) Domain() JID { return JID{domain: j.domain} }

// WithResource returns j with resource r (normalised). An empty r gives the
// bare JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, &Error{Part: PartDomain, Err: ErrEmpty}
	}
	if r == "" {
		return j.Bare(), nil
	}
	res, err := prepResource(r)
	if err != nil {
		return JID{}, err
	}
	j.resource = res
	return j, nil
}

// IsBare reports whether j has no resource.
func (j JID) IsBare() bool { return j.resource == "" }

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool { return j.domain == "" }

// String returns the canonical form local@domain/resource, or "" for the
// zero JID.
func (j JID) String() string {
	if j.local == "" && j.resource == "" {
		return j.domain
	}
	n := len(j.domain)
	if j.local != "" {
		n += len(j.local) + 1
	}
	if j.resource != "" {
		n += len(j.resource) + 1
	}
	var b strings.Builder
	b.Grow(n)
	if j.local != "" {
		b.WriteString(j.local)
		b.WriteByte('@')
	}
	b.WriteString(j.domain)
	if j.resource != "" {
		b.WriteByte('/')
		b.WriteString(j.resource)
	}
	return b.String()
}
