// Package imtest holds the instant-messaging scenarios that the test
// suites run against a real server: the RFC 6121 Appendix A subscription
// state table and the section 8.5 delivery matrix, with the raw client they
// drive. The one-process suite (cmd/switchboard/e2e) and the cluster suite
// (services/c2s/cmd/c2s, users on two c2s processes) run the same cells;
// only the Env differs.
//
// The client reads with encoding/xml, a parser independent of the
// server's, and never answers anything but roster pushes, so that what a
// test sees is exactly what the server sent. A client proves that every
// stanza due to it arrived with a ping round trip (Conn.Sync), not a
// sleep: the router routes one sender's stanzas in order and publishes
// their deliveries before the ping's result.
package imtest
