package sasl

import "github.com/switchboard-xmpp/switchboard/xmpp/dom"

// Condition is a SASL failure condition of RFC 6120 section 6.5.
type Condition string

// The conditions of RFC 6120 section 6.5, in the order of that section.
const (
	// Aborted: the client aborted the exchange (section 6.5.1).
	Aborted Condition = "aborted"
	// AccountDisabled: the account is disabled (section 6.5.2). This server
	// says so only to a client that proved it knows the password.
	AccountDisabled Condition = "account-disabled"
	// CredentialsExpired: the credentials have expired (section 6.5.3).
	CredentialsExpired Condition = "credentials-expired"
	// EncryptionRequired: the mechanism needs TLS first (section 6.5.4).
	EncryptionRequired Condition = "encryption-required"
	// IncorrectEncoding: the data was not valid base64 (section 6.5.5).
	IncorrectEncoding Condition = "incorrect-encoding"
	// InvalidAuthzid: the authorization identity was refused (section 6.5.6).
	InvalidAuthzid Condition = "invalid-authzid"
	// InvalidMechanism: the mechanism is unknown or not offered (section 6.5.7).
	InvalidMechanism Condition = "invalid-mechanism"
	// MalformedRequest: the data broke the mechanism's syntax (section 6.5.8).
	MalformedRequest Condition = "malformed-request"
	// MechanismTooWeak: server policy forbids the mechanism (section 6.5.9).
	MechanismTooWeak Condition = "mechanism-too-weak"
	// NotAuthorized: the credentials were wrong; also used for unknown users
	// so that the two cannot be told apart (section 6.5.10).
	NotAuthorized Condition = "not-authorized"
	// TemporaryAuthFailure: a server-side problem, try later (section 6.5.11).
	TemporaryAuthFailure Condition = "temporary-auth-failure"
)

// Conditions lists every condition of RFC 6120 section 6.5.
func Conditions() []Condition {
	return []Condition{
		Aborted, AccountDisabled, CredentialsExpired, EncryptionRequired,
		IncorrectEncoding, InvalidAuthzid, InvalidMechanism, MalformedRequest,
		MechanismTooWeak, NotAuthorized, TemporaryAuthFailure,
	}
}

func (c Condition) Error() string { return "sasl: " + string(c) }

// Failure is a SASL failure; errors.Is(err, sasl.NotAuthorized) works.
type Failure struct {
	Condition Condition
	Text      string
}

func (f *Failure) Error() string { return "sasl failure: " + string(f.Condition) }

// Is reports whether target is f's Condition or a *Failure with it.
func (f *Failure) Is(target error) bool {
	switch t := target.(type) {
	case Condition:
		return f.Condition == t
	case *Failure:
		return t != nil && f.Condition == t.Condition
	}
	return false
}

// Element returns <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> with
// the condition and, when Text is set, a <text/> child. An empty Condition
// is written as not-authorized, because RFC 6120 requires one.
func (f *Failure) Element() *dom.Element {
	cond := f.Condition
	if cond == "" {
		cond = NotAuthorized
	}
	el := dom.New(NS, "failure").Append(dom.New(NS, string(cond)))
	if f.Text != "" {
		el.Append(dom.New(NS, "text").AppendText(f.Text))
	}
	return el
}

// ParseFailure reads a <failure/> element. It returns nil when el is not a
// SASL failure. A condition this package does not know is kept as it is; a
// failure without any condition (as some pre-RFC 6120 servers send) reads as
// not-authorized.
func ParseFailure(el *dom.Element) *Failure {
	if el == nil || el.Space != NS || el.Local != "failure" {
		return nil
	}
	f := &Failure{}
	for _, c := range el.Children() {
		if c.Space != NS {
			continue
		}
		if c.Local == "text" {
			if f.Text == "" {
				f.Text = c.Text()
			}
			continue
		}
		if f.Condition == "" {
			f.Condition = Condition(c.Local)
		}
	}
	if f.Condition == "" {
		f.Condition = NotAuthorized
	}
	return f
}

// fail returns a *Failure as an error.
func fail(c Condition, text string) error { return &Failure{Condition: c, Text: text} }
