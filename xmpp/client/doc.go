// Package client is the client side of XMPP (RFC 6120 and RFC 6121): it
// finds the server, negotiates a stream, and exchanges stanzas.
//
// # Connecting
//
// Dial takes a context and a Config and returns a bound session. Without
// Config.Addr the server is found through the _xmpp-client._tcp SRV records
// of the JID's domain, tried by priority and weight (RFC 2782), falling
// back to the domain itself on port 5222 when there are no records; a
// single record with the target "." means the domain has no client service
// (ErrNoService). With Config.DirectTLS the _xmpps-client._tcp records of
// XEP-0368 are mixed in, and those targets speak TLS from the first byte.
//
// TLS is required: the client upgrades with STARTTLS, verifies the
// server's certificate against the JID's domain, and refuses a server
// without STARTTLS (ErrTLSRequired) unless Config.AllowPlaintext is set.
// Tests with a self-signed certificate put it in Config.TLSConfig.RootCAs.
//
// # Authentication
//
// The client picks the first mechanism the server offers in the order
// SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN;
// Config.Mechanisms narrows the choice. The -PLUS forms bind the exchange
// to the TLS connection with tls-exporter (TLS 1.3, or TLS 1.2 with the
// extended master secret) or else tls-server-end-point, restricted to the
// types the server lists (XEP-0440) when it lists them. PLAIN is never
// used on an unencrypted stream unless Config.AllowPLAINWithoutTLS is set.
// Client.Mechanism reports what was used. A refusal is a *sasl.Failure, so
// errors.Is(err, sasl.NotAuthorized) works.
//
// # Stanzas
//
// Send writes any element; SendMessage and SendPresence write the typed
// forms, and IQ sends a request and waits for the response with the same
// id, from the entity it was sent to, returning a stanza error as
// *stanza.Error. Roster, SetRosterItem and RemoveRosterItem manage the
// roster; Subscribe, Unsubscribe, ApproveSubscription and DenySubscription
// send the subscription presences; Online fetches the roster before the
// initial presence.
//
// Incoming messages and presences go to Config.Handler when it is set and
// otherwise wait in queues for NextMessage and NextPresence, which block
// with a context; roster pushes are acknowledged as RFC 6121 section 2.1.6
// requires and queued for NextRosterPush. IQ requests go to handlers
// registered with HandleIQ; the rest are answered with service-unavailable.
//
// Every I/O method takes a context first, and its deadline becomes the
// socket deadline. A write interrupted part way ends the session, since a
// stream cannot go on from the middle of an element.
//
// # Ending
//
// Close sends </stream:stream> and waits, bounded, for the server's before
// closing the connection (RFC 6120 section 4.4). A session that the server
// ends reports why through Done and Err: a *stream.Error, so
// errors.Is(c.Err(), stream.Conflict) works, or stream.ErrClosed wrapped.
//
// Keeper keeps a session up, dialing again with exponential backoff and
// jitter, and a fresh DNS lookup each time (RFC 6120 section 3.3). A
// server that sends the client elsewhere with <see-other-host/> (RFC 6120
// section 4.9.3.19; RedirectAddr reads the address) is followed at once,
// one time; <system-shutdown/> is retried after the backoff.
package client
