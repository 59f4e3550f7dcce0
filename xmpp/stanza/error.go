package stanza

import (
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

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
func (e *Error) Is(target error) bool {
	if e == nil {
		return false
	}
	switch t := target.(type) {
	case Condition:
		return t == e.Condition
	case *Error:
		return t != nil && t.Condition == e.Condition
	}
	return false
}

// condition is the condition e is written with: a condition RFC 6120 does
// not define, or none, becomes undefined-condition, so that peers only ever
// see the RFC's vocabulary.
func (e *Error) condition() Condition {
	if e.Condition.Known() {
		return e.Condition
	}
	return UndefinedCondition
}

// EffectiveType is the type e is written with: Type when it is one of the
// five of RFC 6120 section 8.3.2, else the condition's default.
func (e *Error) EffectiveType() ErrorType {
	if e.Type.Valid() {
		return e.Type
	}
	return e.condition().DefaultType()
}

// Element returns the <error/> child in namespace ns (the stanza's).
//
// It holds, in the order of RFC 6120 section 8.3.2, the defined condition
// (with the URI as its text for gone and redirect), the optional <text/>
// with its xml:lang, and a copy of the optional application condition.
func (e *Error) Element(ns string) *dom.Element {
	el := dom.New(ns, "error", "type", string(e.EffectiveType()))
	if e.By != "" {
		el.SetAttr("by", e.By)
	}
	c := e.condition()
	cond := dom.New(NS, string(c))
	if (c == Gone || c == Redirect) && e.Redirect != "" {
		cond.AppendText(e.Redirect)
	}
	el.Append(cond)
	if e.Text != "" {
		text := dom.New(NS, "text")
		if e.Lang != "" {
			text.SetAttrNS(dom.NSXML, "lang", e.Lang)
		}
		el.Append(text.AppendText(e.Text))
	}
	if e.App != nil {
		el.Append(e.App.Clone())
	}
	return el
}

// ParseError returns the error carried by a stanza of type error.
//
// ok is false when st is not of type error or has no <error/> child. A
// condition this package does not know, or a missing one, is reported as
// undefined-condition; a missing or unknown type leaves Type empty. Only the
// first <text/> and the first application condition are kept, and App
// points into st rather than to a copy.
func ParseError(st *dom.Element) (*Error, bool) {
	if st == nil || st.Attr("type") != "error" {
		return nil, false
	}
	el := st.Child(st.Space, "error")
	if el == nil {
		return nil, false
	}
	e := &Error{By: el.Attr("by")}
	if t := ErrorType(el.Attr("type")); t.Valid() {
		e.Type = t
	}
	haveText := false
	for _, c := range el.Children() {
		switch {
		case c.Space != NS:
			if e.App == nil {
				e.App = c
			}
		case c.Local == "text":
			if !haveText {
				haveText = true
				e.Text, e.Lang = c.Text(), c.Lang()
			}
		case e.Condition == "":
			e.Condition = Condition(c.Local)
			if e.Condition == Gone || e.Condition == Redirect {
				e.Redirect = strings.TrimSpace(c.Text())
			}
		}
	}
	if !e.Condition.Known() {
		e.Condition = UndefinedCondition
	}
	return e, true
}

// ErrorReply turns st into the error reply RFC 6120 section 8.3.1 describes:
// from and to swapped, type error, same id, the original children kept, and
// the <error/> added. It returns nil for a stanza of type error, which is
// never answered with an error.
//
// st is not modified: the reply is a copy. A nil e is answered as
// internal-server-error, since it means the caller failed to say what went
// wrong.
func ErrorReply(st *dom.Element, e *Error) *dom.Element {
	if st == nil || st.Attr("type") == "error" {
		return nil
	}
	if e == nil {
		e = &Error{Condition: InternalServerError}
	}
	from, to := st.Attr("from"), st.Attr("to")
	r := st.Clone()
	r.SetAttr("from", to)
	r.SetAttr("to", from)
	r.SetAttr("type", "error")
	return r.Append(e.Element(st.Space))
}
