module github.com/switchboard-xmpp/switchboard/cmd/switchboard

go 1.26.0

replace (
	github.com/switchboard-xmpp/switchboard/internal => ../../internal
	github.com/switchboard-xmpp/switchboard/proto => ../../proto
	github.com/switchboard-xmpp/switchboard/xmpp => ../../xmpp
	github.com/switchboard-xmpp/switchboard/services/c2s => ../../services/c2s
	github.com/switchboard-xmpp/switchboard/services/router => ../../services/router
	github.com/switchboard-xmpp/switchboard/services/roster => ../../services/roster
	github.com/switchboard-xmpp/switchboard/services/presence => ../../services/presence
)
