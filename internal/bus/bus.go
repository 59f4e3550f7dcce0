// Package bus defines the NATS subjects Switchboard uses and how stanzas are
// spread over them. Every subject name is built here and nowhere else.
package bus

import (
	"hash/fnv"
	"strconv"
)

// DefaultPrefix is the subject prefix of a deployment. Tests use their own
// prefix so that they can share one NATS server.
const DefaultPrefix = "sb"

// DefaultPartitions is the number of route partitions. Stanzas of one sender
// always go to the same partition, which keeps them in order.
const DefaultPartitions = 16

// Subjects builds subject names under one prefix.
type Subjects struct {
	Prefix     string
	Partitions int
}

// New returns Subjects for prefix (DefaultPrefix when empty) and n partitions
// (DefaultPartitions when n <= 0).
func New(prefix string, n int) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if n <= 0 {
		n = DefaultPartitions
	}
	return Subjects{Prefix: prefix, Partitions: n}
}

// SessionsRemoved is the subject where the presence service announces
// sessions it removed without their node's Unbind: the node's heartbeat
// expired, or the node was dropped. The payload is a presence.v1
// SessionsRemoved message.
func (s Subjects) SessionsRemoved() string { return s.Prefix + ".presence.removed" }

// Route is the subject of route partition p, where connection services
// publish stanzas for the routers.
func (s Subjects) Route(p int) string { return s.Prefix + ".route." + strconv.Itoa(p) }

// RouteAll matches every route partition.
func (s Subjects) RouteAll() string { return s.Prefix + ".route.*" }

// RouteFor is the route subject for stanzas sent by the bare JID sender.
func (s Subjects) RouteFor(sender string) string { return s.Route(s.Partition(sender)) }

// Partition maps a sender's bare JID to a partition.
func (s Subjects) Partition(sender string) int {
	h := fnv.New32a()
	h.Write([]byte(sender))
	return int(h.Sum32() % uint32(s.Partitions))
}

// Node is the subject of a connection node (c2s or s2s), where routers
// publish deliveries for the sessions it holds.
func (s Subjects) Node(node string) string { return s.Prefix + ".node." + node }

// token turns the prefix into a name usable for streams, consumers and
// key-value buckets, which allow only letters, digits, '-' and '_'. Other
// characters become '_', so prefixes that differ only there ("a.b", "a_b")
// share streams: deployments on one NATS account need prefixes that differ
// in letters or digits.
func (s Subjects) token() string {
	b := []byte(s.Prefix)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// RouteStream is the JetStream stream that stores the route partitions.
func (s Subjects) RouteStream() string { return s.token() + "_route" }

// RouteConsumer is the durable consumer of route partition p.
func (s Subjects) RouteConsumer(p int) string { return "route-" + strconv.Itoa(p) }

// LeaseBucket is the key-value bucket where routers announce themselves and
// hold the lease of each partition they consume.
func (s Subjects) LeaseBucket() string { return s.token() + "_routers" }

// LeaseKey is the key of partition p's lease in LeaseBucket.
func (s Subjects) LeaseKey(p int) string { return "lease." + strconv.Itoa(p) }

// MemberKey is the key a live router renews in LeaseBucket.
func (s Subjects) MemberKey(router string) string { return "member." + router }

// MemberKeys matches every MemberKey.
func (s Subjects) MemberKeys() string { return "member.*" }

// NoResponders is the reply subject a router puts on the deliveries of
// worker w (a partition consumer of one router instance): NATS answers on
// it with a 503 status when no connection node subscribes to a delivery's
// subject, which is how a delivery to a node that no longer exists is
// noticed. n tells the deliveries of one batch apart.
func (s Subjects) NoResponders(w string, n int) string {
	return s.Prefix + ".noresp." + w + "." + strconv.Itoa(n)
}

// NoRespondersAll matches every NoResponders subject of worker w.
func (s Subjects) NoRespondersAll(w string) string { return s.Prefix + ".noresp." + w + ".*" }

// StanzaMsgID is the JetStream message id (Nats-Msg-Id) of a stanza from
// a session: the stream drops a second publish of it (a retry) within its
// duplicate window.
func StanzaMsgID(node, session string, seq uint64) string {
	return node + "/" + session + "/" + strconv.FormatUint(seq, 10)
}

// HandBackMsgID is the message id of a delivery handed back by the
// session (or for the node) that could not take it: the stanza's id, the
// delivery's part, and the failed session.
func HandBackMsgID(node, session string, seq uint64, part uint32, failedNode, failedSession string) string {
	return "u/" + StanzaMsgID(node, session, seq) + "/" + strconv.FormatUint(uint64(part), 10) + "/" + failedNode + "/" + failedSession
}
