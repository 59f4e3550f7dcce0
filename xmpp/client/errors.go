package client

import "errors"

var (
	// ErrNoService means DNS says the domain offers no client service: its
	// only _xmpp-client._tcp record has the target "." (RFC 6120 section
	// 3.2.1, RFC 2782). The client does not fall back to the domain then.
	ErrNoService = errors.New("client: the domain has no XMPP client service (SRV target \".\")")

	// ErrTLSRequired means the server did not offer STARTTLS and
	// Config.AllowPlaintext is not set, so the client refused to continue
	// (RFC 7590: TLS is mandatory to use).
	ErrTLSRequired = errors.New("client: server does not offer STARTTLS and plaintext is not allowed")

	// ErrNoMechanism means no SASL mechanism is both offered by the server
	// and acceptable to the client (allowed by Config.Mechanisms, and for
	// PLAIN, protected by TLS unless Config.AllowPLAINWithoutTLS).
	ErrNoMechanism = errors.New("client: no acceptable SASL mechanism")

	// ErrNegotiation means the server broke the stream negotiation of RFC
	// 6120 (a missing feature, an unexpected element, an old version). The
	// wrapping error says what.
	ErrNegotiation = errors.New("client: stream negotiation failed")

	// ErrServerSignature means the server could not prove that it knows the
	// SCRAM keys (RFC 5802 section 5.1, the v= attribute): it may be an
	// impostor, so the session is not used.
	ErrServerSignature = errors.New("client: server signature did not verify")

	// ErrClosed is returned by calls on a client whose session ended
	// because Close was called.
	ErrClosed = errors.New("client: closed")

	// ErrBadReply means a reply from the server did not have the expected
	// shape (for example a bind result without a JID, or a roster result
	// with a bad item).
	ErrBadReply = errors.New("client: malformed reply")
)
