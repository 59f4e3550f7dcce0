package stanza

// ErrorType is the type attribute of <error/> (RFC 6120 section 8.3.2).
type ErrorType string

const (
	Auth     ErrorType = "auth"     // retry after providing credentials
	Cancel   ErrorType = "cancel"   // do not retry: the error cannot be remedied
	Continue ErrorType = "continue" // proceed: the condition was only a warning
	Modify   ErrorType = "modify"   // retry after changing the data sent
	Wait     ErrorType = "wait"     // retry after waiting: the error is temporary
)

// Valid reports whether t is one of the five types of RFC 6120 section 8.3.2.
func (t ErrorType) Valid() bool {
	switch t {
	case Auth, Cancel, Continue, Modify, Wait:
		return true
	}
	return false
}

// Condition is a stanza error condition of RFC 6120 section 8.3.3. Every
// condition is a constant (BadRequest, ..., UnexpectedRequest).
type Condition string

// The conditions of RFC 6120 section 8.3.3, in the RFC's order. The comment
// of each gives its default type.
const (
	BadRequest            Condition = "bad-request"             // modify: malformed or unprocessable
	Conflict              Condition = "conflict"                // cancel: the name or address is taken
	FeatureNotImplemented Condition = "feature-not-implemented" // cancel: understood but not supported
	Forbidden             Condition = "forbidden"               // auth: the sender lacks permission
	Gone                  Condition = "gone"                    // cancel: the address moved for good (URI in Error.Redirect)
	InternalServerError   Condition = "internal-server-error"   // cancel: a fault of the server
	ItemNotFound          Condition = "item-not-found"          // cancel: the addressed item does not exist
	JIDMalformed          Condition = "jid-malformed"           // modify: an address is not a valid JID
	NotAcceptable         Condition = "not-acceptable"          // modify: the request breaks the recipient's criteria
	NotAllowed            Condition = "not-allowed"             // cancel: nobody may do this
	NotAuthorized         Condition = "not-authorized"          // auth: the sender must authenticate first
	PolicyViolation       Condition = "policy-violation"        // modify: a local policy forbids it
	RecipientUnavailable  Condition = "recipient-unavailable"   // wait: the recipient is away for now
	Redirect              Condition = "redirect"                // modify: ask elsewhere (URI in Error.Redirect)
	RegistrationRequired  Condition = "registration-required"   // auth: registration comes first
	RemoteServerNotFound  Condition = "remote-server-not-found" // cancel: the remote domain does not resolve or answer
	RemoteServerTimeout   Condition = "remote-server-timeout"   // wait: the remote domain did not answer in time
	ResourceConstraint    Condition = "resource-constraint"     // wait: the server is short of resources
	ServiceUnavailable    Condition = "service-unavailable"     // cancel: the service is not offered
	SubscriptionRequired  Condition = "subscription-required"   // auth: a subscription comes first
	UndefinedCondition    Condition = "undefined-condition"     // cancel: none of the others; pair it with an application condition
	UnexpectedRequest     Condition = "unexpected-request"      // wait: not expected now, e.g. out of order
)

var conditions = [...]Condition{
	BadRequest, Conflict, FeatureNotImplemented, Forbidden, Gone,
	InternalServerError, ItemNotFound, JIDMalformed, NotAcceptable,
	NotAllowed, NotAuthorized, PolicyViolation, RecipientUnavailable,
	Redirect, RegistrationRequired, RemoteServerNotFound,
	RemoteServerTimeout, ResourceConstraint, ServiceUnavailable,
	SubscriptionRequired, UndefinedCondition, UnexpectedRequest,
}

// Conditions returns every condition of RFC 6120 section 8.3.3, in the
// RFC's order.
func Conditions() []Condition { return append([]Condition(nil), conditions[:]...) }

func (c Condition) Error() string { return string(c) }

// Known reports whether c is one of the conditions of RFC 6120 section 8.3.3.
func (c Condition) Known() bool {
	for _, k := range conditions {
		if c == k {
			return true
		}
	}
	return false
}

// DefaultType is the error type RFC 6120 section 8.3.3 gives for c.
//
// Where the RFC allows two types, the first it names is used
// (feature-not-implemented: cancel, policy-violation: modify,
// unexpected-request: wait). undefined-condition admits any type; cancel is
// used for it and for conditions the RFC does not define.
func (c Condition) DefaultType() ErrorType {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation, Redirect:
		return Modify
	case Forbidden, NotAuthorized, RegistrationRequired, SubscriptionRequired:
		return Auth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return Wait
	}
	return Cancel
}
