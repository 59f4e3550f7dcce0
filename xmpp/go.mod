module github.com/switchboard-xmpp/switchboard/xmpp

go 1.26.0

require (
	golang.org/x/net v0.60.0
	golang.org/x/text v0.44.0
)
