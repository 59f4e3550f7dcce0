module github.com/switchboard-xmpp/switchboard/internal

go 1.26.0

replace (
	github.com/switchboard-xmpp/switchboard/proto => ../proto
	github.com/switchboard-xmpp/switchboard/xmpp => ../xmpp
)
