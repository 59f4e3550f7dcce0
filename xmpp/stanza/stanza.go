// Package stanza has the three XMPP stanza kinds and the stanza errors of
// RFC 6120 section 8.
//
// Stanzas are dom elements; this package names them, recognises them, and
// builds and reads their <error/> children: an Error is a Go error that
// errors.Is matches against its Condition, Element writes it in the RFC's
// form, ParseError reads it back, and ErrorReply turns a stanza into the
// error reply RFC 6120 section 8.3.1 asks for.
package stanza

import "github.com/switchboard-xmpp/switchboard/xmpp/dom"

// NS is the namespace of stanza error conditions.
const NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Namespaces of the streams that carry stanzas (RFC 6120 section 4.8.2).
const (
	NSClient = "jabber:client"
	NSServer = "jabber:server"
)

// Kinds, as element local names.
const (
	Message  = "message"
	Presence = "presence"
	IQ       = "iq"
)

// IsStanza reports whether el is a message, presence or iq in the
// jabber:client or jabber:server namespace.
func IsStanza(el *dom.Element) bool {
	if el == nil || (el.Space != NSClient && el.Space != NSServer) {
		return false
	}
	switch el.Local {
	case Message, Presence, IQ:
		return true
	}
	return false
}
