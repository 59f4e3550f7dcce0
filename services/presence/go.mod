module github.com/switchboard-xmpp/switchboard/services/presence

go 1.26.0

replace (
	github.com/switchboard-xmpp/switchboard/internal => ../../internal
	github.com/switchboard-xmpp/switchboard/proto => ../../proto
	github.com/switchboard-xmpp/switchboard/xmpp => ../../xmpp
)

require (
	github.com/switchboard-xmpp/switchboard/internal v0.0.0-00010101000000-000000000000
	github.com/switchboard-xmpp/switchboard/proto v0.0.0-00010101000000-000000000000
	github.com/switchboard-xmpp/switchboard/xmpp v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
