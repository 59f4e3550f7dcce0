// Package jid parses and normalises XMPP addresses (RFC 7622).
//
// API CONTRACT (stub written first; the implementation replaces the panics,
// keeps the signatures).
package jid

// JID is a normalised address. The zero value is no address. JIDs are
// comparable with ==.
type JID struct {
	local, domain, resource string
}

// Error names the part of an address that is wrong.
type Error struct {
	Part string // "localpart", "domainpart", "resourcepart" or "address"
	Err  error
}

func (e *Error) Error() string { return "jid: bad " + e.Part + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Parse parses and normalises s (PRECIS: UsernameCaseMapped localpart,
// lower-cased IDNA domainpart, OpaqueString resourcepart; each part at most
// 1023 bytes).
func Parse(s string) (JID, error) { panic("jid: unimplemented") }

// MustParse is Parse that panics; for constants.
func MustParse(s string) JID { panic("jid: unimplemented") }

// New builds and normalises a JID from parts.
func New(local, domain, resource string) (JID, error) { panic("jid: unimplemented") }

func (j JID) Localpart() string    { return j.local }
func (j JID) Domainpart() string   { return j.domain }
func (j JID) Resourcepart() string { return j.resource }

// Bare returns j without its resource.
func (j JID) Bare() JID { return JID{local: j.local, domain: j.domain} }

// Domain returns the JID of j's domain.
func (j JID) Domain() JID { return JID{domain: j.domain} }

// WithResource returns j with resource r (normalised).
func (j JID) WithResource(r string) (JID, error) { panic("jid: unimplemented") }

// IsBare reports whether j has no resource.
func (j JID) IsBare() bool { return j.resource == "" }

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool { return j.domain == "" }

// String returns the canonical form local@domain/resource.
func (j JID) String() string { panic("jid: unimplemented") }
