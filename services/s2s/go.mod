module github.com/switchboard-xmpp/switchboard/services/s2s

go 1.26.0

replace (
	github.com/switchboard-xmpp/switchboard/internal => ../../internal
	github.com/switchboard-xmpp/switchboard/proto => ../../proto
	github.com/switchboard-xmpp/switchboard/xmpp => ../../xmpp
)

require (
	github.com/nats-io/nats.go v1.55.0
	github.com/switchboard-xmpp/switchboard/internal v0.0.0-00010101000000-000000000000
	github.com/switchboard-xmpp/switchboard/proto v0.0.0-00010101000000-000000000000
	github.com/switchboard-xmpp/switchboard/xmpp v0.0.0-00010101000000-000000000000
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
