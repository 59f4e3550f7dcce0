package bus

import "strings"

// Subjects of the s2s service.
//
// Outbound: a router publishes every stanza for a remote domain, as the
// busv1.Stanza envelope it consumed (from, to, kind, type, id, origin, seq
// and raw unchanged; raw in jabber:client form as connection services
// publish it), to S2SOut(domain of to). The s2s pods subscribe to
// S2SOutAll in the queue group S2SQueue, so each stanza is sent by one pod.
//
// Inbound: s2s publishes every accepted stanza from a remote server exactly
// as c2s does, to RouteFor(bare JID of from), with origin node = the s2s
// node and origin session = the stream's id. Bounces of stanzas s2s could
// not send (remote-server-not-found, remote-server-timeout) take the same
// path, addressed to the original sender: from is the remote address the
// stanza was for.

// S2SQueue is the queue group of the s2s pods on S2SOutAll.
const S2SQueue = "s2s"

// S2SOut is the subject of stanzas for the remote domain, or "" when
// domain cannot be part of a subject (empty, or holding '*', '>' or
// whitespace; the domain's own dots become subject separators).
func (s Subjects) S2SOut(domain string) string {
	if domain == "" || strings.ContainsAny(domain, "*> \t\r\n") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return ""
	}
	return s.Prefix + ".s2s.out." + domain
}

// S2SOutAll matches S2SOut of every domain.
func (s Subjects) S2SOutAll() string { return s.Prefix + ".s2s.out.>" }

// S2SOutDomain returns the remote domain of an S2SOut subject.
func (s Subjects) S2SOutDomain(subject string) (string, bool) {
	d, ok := strings.CutPrefix(subject, s.Prefix+".s2s.out.")
	return d, ok && d != ""
}
