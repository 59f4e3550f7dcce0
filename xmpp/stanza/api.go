// Package stanza has the three XMPP stanza kinds and the stanza errors of
// RFC 6120 section 8.
//
// API CONTRACT (stub written first; the implementation replaces the panics,
// keeps the signatures).
package stanza

import "github.com/switchboard-xmpp/switchboard/xmpp/dom"

// NS is the namespace of stanza error conditions.
const NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Kinds, as element local names.
const (
	Message  = "message"
	Presence = "presence"
	IQ       = "iq"
)

// IsStanza reports whether el is a message, presence or iq in the
// jabber:client or jabber:server namespace.
func IsStanza(el *dom.Element) bool { panic("stanza: unimplemented") }

// ErrorType is the type attribute of <error/> (RFC 6120 section 8.3.2).
type ErrorType string

const (
	Auth     ErrorType = "auth"
	Cancel   ErrorType = "cancel"
	Continue ErrorType = "continue"
	Modify   ErrorType = "modify"
	Wait     ErrorType = "wait"
)

// Condition is a stanza error condition of RFC 6120 section 8.3.3. Every
// condition is a constant (BadRequest, ..., UnexpectedRequest).
type Condition string

const (
	BadRequest         Condition = "bad-request"
	ServiceUnavailable Condition = "service-unavailable"
	// ... the implementation lists all of them.
)

func (c Condition) Error() string { return string(c) }

// DefaultType is the error type RFC 6120 section 8.3.3 gives for c.
func (c Condition) DefaultType() ErrorType { panic("stanza: unimplemented") }

// Error is a stanza error; errors.Is(err, stanza.ItemNotFound) works.
type Error struct {
	Type      ErrorType // empty means the condition's default
	Condition Condition
	Text      string
	Lang      string
	By        string
	Redirect  string // gone/redirect URI
	App       *dom.Element
}

func (e *Error) Error() string { return "stanza error: " + string(e.Condition) }

// Is reports whether target is e's Condition or an *Error with it.
func (e *Error) Is(target error) bool { panic("stanza: unimplemented") }

// Element returns the <error/> child in namespace ns (the stanza's).
func (e *Error) Element(ns string) *dom.Element { panic("stanza: unimplemented") }

// ParseError returns the error carried by a stanza of type error.
func ParseError(st *dom.Element) (*Error, bool) { panic("stanza: unimplemented") }

// ErrorReply turns st into the error reply RFC 6120 section 8.3.1 describes:
// from and to swapped, type error, same id, the original children kept, and
// the <error/> added. It returns nil for a stanza of type error, which is
// never answered with an error.
func ErrorReply(st *dom.Element, e *Error) *dom.Element { panic("stanza: unimplemented") }
