module github.com/switchboard-xmpp/switchboard/cmd/xmppbench

go 1.26.0

replace github.com/switchboard-xmpp/switchboard/xmpp => ../../xmpp

require github.com/switchboard-xmpp/switchboard/xmpp v0.0.0-00010101000000-000000000000

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
