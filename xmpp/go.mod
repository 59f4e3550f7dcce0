module github.com/switchboard-xmpp/switchboard/xmpp

go 1.26.0
