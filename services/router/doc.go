// Package router routes XMPP stanzas between the connection services of a
// Switchboard deployment.
//
// Connection services (c2s now, s2s later) publish every stanza they accept
// as a busv1.Stanza on the route subject of its sender's partition. A Router
// consumes those subjects, applies the server rules of RFC 6120 section 10 and
// RFC 6121 section 8, asks the presence service which sessions a recipient
// has, and publishes a busv1.Delivery to the subject of each node holding a
// target session. The connection service writes Delivery.Raw to the session.
//
// # Decisions from envelopes
//
// Routing reads the envelope fields (from, to, kind, type). The raw XML is
// forwarded untouched and parsed only when the server answers itself (IQs to
// the server or on an account's behalf, stanza errors built from the
// original) or must look inside (the priority of broadcast presence).
//
// # Rules
//
// All rules are in route.go and server.go, each with its RFC section:
//
//   - to that cannot be prepared: <jid-malformed/> (RFC 6120 8.1.1.1).
//   - no to: a message goes to the sender's bare JID (10.3.1), presence is
//     broadcast (10.3.2, RFC 6121 4), an IQ is answered for the account
//     (10.3.3).
//   - a domain not served here: handed to the s2s service on
//     bus.Subjects.S2SOut; <remote-server-not-found/> (10.4.3) when no s2s
//     pod listens. Every domain of Config.Domains is local, so stanzas
//     between two served domains never leave the cluster.
//   - one of our domains: ping and disco#info answered; other requests get
//     <service-unavailable/>; messages and presence are ignored (10.5.1).
//   - an account of ours: RFC 6121 8.5.1 (no such user), 8.5.2 (bare JID)
//     and 8.5.3 (full JID); see the comments of each function for the
//     choices the RFC leaves open.
//
// Errors are never answered with errors (RFC 6120 8.3.1), and nothing is
// cached: each stanza asks the presence and roster services afresh.
//
// # Order, loss and duplicates
//
// One sender's stanzas share a partition, stored by a JetStream work-queue
// stream. Each partition is consumed by one router at a time, the holder of
// its lease in a key-value bucket (lease.go), one stanza after the other
// (RFC 6120 10.1). Stanzas are acknowledged only after their deliveries
// were flushed to the server, so a router that dies loses nothing: the
// next holder resets the partition's consumer and routes again what was
// not acknowledged (consume.go). Deliveries carry the origin and seq of
// their stanza, by which the receiving node drops the duplicates this
// causes.
//
// # No session
//
// A stanza handed back as undeliverable (its session ended, its queue was
// full, or its node is gone, which the router notices by NATS's
// no-responders status) is routed again without the failed sessions: RFC
// 6121 section 8.5.3.2. Design note docs/design/002-routing.md has the
// reasons and the figures.
//
// # Not done yet
//
// Rosters, subscriptions, probes, presence broadcast to contacts, offline
// storage and server-to-server routing come with later work; the places
// where they hook in say so. Until then such stanzas are dropped (with a
// debug log) or answered with the error the RFC allows.
package router
