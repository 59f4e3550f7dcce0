// Package presence is the presence service. It owns the session registry:
// which full JIDs are bound, on which c2s node and under which session id,
// and each session's availability, priority and last presence stanza. c2s
// binds and unbinds sessions; the router looks them up to deliver stanzas.
//
// # Node liveness
//
// A c2s node that dies cannot unbind its sessions, so nodes send
// heartbeats and a Reaper removes the sessions of a node whose heartbeats
// stopped. Each removal that is not the node's own Unbind is published as
// a SessionsRemoved event (proto/presence/v1) on the bus subject
// bus.Subjects.SessionsRemoved, once per session across every presence
// pod, so that contacts can be sent unavailable presence and caches can
// forget the sessions. What a c2s node does:
//
//   - At start, before it accepts clients: DropNode(node), which clears
//     what an earlier process under the same name left behind, then
//     Heartbeat(node, ttl) and keep the returned epoch.
//   - Every ttl/3 or so (with the 5 s TTL: every 1.5 to 2 s): Heartbeat
//     again. If the epoch differs from the last one, the registry removed
//     some of the node's sessions while it was out of reach: Bind every
//     session the node still holds again (a Bind of a session still bound
//     changes nothing), then keep the new epoch. A failed Heartbeat
//     (Unavailable) is retried at the next tick; the node keeps serving.
//   - At a clean shutdown, after closing its streams: DropNode(node).
//
// The sessions of a node that never sent a heartbeat are never reaped, so
// the one-process binary needs none. With a 5 s TTL and the default 2 s
// reap interval, a dead node's sessions leave the registry about 7 s after
// its last heartbeat.
package presence
