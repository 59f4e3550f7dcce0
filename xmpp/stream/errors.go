package stream

import (
	"errors"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// ErrClosed is returned by Reader.Next when the peer closed its stream with
// </stream:stream>.
var ErrClosed = errors.New("stream: closed by peer")

// ErrWriterClosed is returned by a Writer after Close or WriteError: the
// stream has ended and nothing more may be written on it.
var ErrWriterClosed = errors.New("stream: write after the stream was closed")

// errNoHeader is returned by Reader.Next when ReadHeader has not succeeded on
// the current stream; it is a programming error, not the peer's.
var errNoHeader = errors.New("stream: Next called before ReadHeader")

// errHeaderRead is returned by Reader.ReadHeader when called twice without a
// Reset in between.
var errHeaderRead = errors.New("stream: ReadHeader called twice without Reset")

// Condition is a stream error condition of RFC 6120 section 4.9.3.
// Every condition is a constant of this type (BadFormat, ..., UnsupportedVersion).
type Condition string

// The stream error conditions of RFC 6120 section 4.9.3, in the order of
// that section.
const (
	BadFormat              Condition = "bad-format"               // 4.9.3.1
	BadNamespacePrefix     Condition = "bad-namespace-prefix"     // 4.9.3.2
	Conflict               Condition = "conflict"                 // 4.9.3.3
	ConnectionTimeout      Condition = "connection-timeout"       // 4.9.3.4
	HostGone               Condition = "host-gone"                // 4.9.3.5
	HostUnknown            Condition = "host-unknown"             // 4.9.3.6
	ImproperAddressing     Condition = "improper-addressing"      // 4.9.3.7
	InternalServerError    Condition = "internal-server-error"    // 4.9.3.8
	InvalidFrom            Condition = "invalid-from"             // 4.9.3.9
	InvalidNamespace       Condition = "invalid-namespace"        // 4.9.3.10
	InvalidXML             Condition = "invalid-xml"              // 4.9.3.11
	NotAuthorized          Condition = "not-authorized"           // 4.9.3.12
	NotWellFormed          Condition = "not-well-formed"          // 4.9.3.13
	PolicyViolation        Condition = "policy-violation"         // 4.9.3.14
	RemoteConnectionFailed Condition = "remote-connection-failed" // 4.9.3.15
	Reset                  Condition = "reset"                    // 4.9.3.16
	ResourceConstraint     Condition = "resource-constraint"      // 4.9.3.17
	RestrictedXML          Condition = "restricted-xml"           // 4.9.3.18
	SeeOtherHost           Condition = "see-other-host"           // 4.9.3.19; the host is Error.Host
	SystemShutdown         Condition = "system-shutdown"          // 4.9.3.20
	UndefinedCondition     Condition = "undefined-condition"      // 4.9.3.21
	UnsupportedEncoding    Condition = "unsupported-encoding"     // 4.9.3.22
	UnsupportedFeature     Condition = "unsupported-feature"      // 4.9.3.23
	UnsupportedStanzaType  Condition = "unsupported-stanza-type"  // 4.9.3.24
	UnsupportedVersion     Condition = "unsupported-version"      // 4.9.3.25
)

// conditions lists every defined condition; ParseError maps anything else to
// UndefinedCondition.
var conditions = [...]Condition{
	BadFormat, BadNamespacePrefix, Conflict, ConnectionTimeout, HostGone,
	HostUnknown, ImproperAddressing, InternalServerError, InvalidFrom,
	InvalidNamespace, InvalidXML, NotAuthorized, NotWellFormed,
	PolicyViolation, RemoteConnectionFailed, Reset, ResourceConstraint,
	RestrictedXML, SeeOtherHost, SystemShutdown, UndefinedCondition,
	UnsupportedEncoding, UnsupportedFeature, UnsupportedStanzaType,
	UnsupportedVersion,
}

func (c Condition) Error() string { return string(c) }

// Known reports whether c is one of the conditions defined in RFC 6120
// section 4.9.3.
func (c Condition) Known() bool {
	for _, k := range conditions {
		if k == c {
			return true
		}
	}
	return false
}

// Error is a stream error. errors.Is(err, stream.Conflict) works.
type Error struct {
	Condition Condition
	Text      string
	Lang      string
	Host      string // for see-other-host
	App       *dom.Element
}

// Error returns the condition and, when present, the text.
func (e *Error) Error() string {
	if e.Text == "" {
		return "stream error: " + string(e.Condition)
	}
	return "stream error: " + string(e.Condition) + ": " + e.Text
}

// Is reports whether target is e's Condition or an *Error with it.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Condition:
		return e.Condition == t
	case *Error:
		return t != nil && e.Condition == t.Condition
	}
	return false
}

// Element returns the <stream:error> element: the condition (with the host
// as its character data for see-other-host), the text when set, and the
// application-specific condition when set. An empty Condition is written as
// undefined-condition.
func (e *Error) Element() *dom.Element {
	cond := e.Condition
	if cond == "" {
		cond = UndefinedCondition
	}
	el := &dom.Element{Space: NS, Local: "error"}
	c := &dom.Element{Space: NSError, Local: string(cond)}
	if cond == SeeOtherHost && e.Host != "" {
		c.AppendText(e.Host)
	}
	el.Append(c)
	if e.Text != "" {
		t := &dom.Element{Space: NSError, Local: "text"}
		if e.Lang != "" {
			t.SetAttrNS(dom.NSXML, "lang", e.Lang)
		}
		el.Append(t.AppendText(e.Text))
	}
	if e.App != nil {
		el.Append(e.App)
	}
	return el
}

// ParseError reads a <stream:error> element. It returns nil when el is not
// one. A condition that RFC 6120 does not define, or a missing one, becomes
// UndefinedCondition, so that a newer peer's conditions still map to an
// error the caller can act on.
func ParseError(el *dom.Element) *Error {
	if el == nil || el.Space != NS || el.Local != "error" {
		return nil
	}
	e := &Error{}
	for _, n := range el.Nodes {
		c := n.Elem
		switch {
		case c == nil:
		case c.Space == NSError && c.Local == "text":
			if e.Text == "" {
				e.Text = c.Text()
				e.Lang = c.Lang()
			}
		case c.Space == NSError:
			if e.Condition == "" {
				e.Condition = Condition(c.Local)
				if e.Condition == SeeOtherHost {
					e.Host = strings.TrimSpace(c.Text())
				}
			}
		default:
			if e.App == nil {
				e.App = c
			}
		}
	}
	if !e.Condition.Known() {
		e.Condition = UndefinedCondition
	}
	return e
}

// newError returns an error the reader found in the peer's data, with an
// English text naming what was wrong.
func newError(c Condition, text string) *Error {
	return &Error{Condition: c, Text: text, Lang: "en"}
}
