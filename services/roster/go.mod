module github.com/switchboard-xmpp/switchboard/services/roster

go 1.26.0

replace (
	github.com/switchboard-xmpp/switchboard/internal => ../../internal
	github.com/switchboard-xmpp/switchboard/proto => ../../proto
	github.com/switchboard-xmpp/switchboard/xmpp => ../../xmpp
)
