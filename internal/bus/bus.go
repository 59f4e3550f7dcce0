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
