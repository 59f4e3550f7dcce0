// Package e2e holds the end-to-end tests of Switchboard's protocol core.
//
// Every test runs the real server: an app.App with all its services in the
// test process, listening on 127.0.0.1 port 0, with a fresh data directory
// (embedded NATS, the SQLite account store, in-memory sessions). Clients
// reach it over TCP like any other: the project's Go client library, raw
// sockets that write exact bytes, and third-party Debian clients
// (python3-slixmpp and go-sendxmpp) run as child processes.
//
// The package has no code outside its tests; this file only documents it.
// Run it with:
//
//	cd cmd/switchboard && go test ./e2e
//	cd cmd/switchboard && go test ./e2e -run '^$' -bench . -benchmem
package e2e
