package stanza_test

import (
	"errors"
	"fmt"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

func ExampleErrorReply() {
	iq := dom.New(stanza.NSClient, stanza.IQ,
		"from", "juliet@example.com/balcony", "to", "example.com", "id", "v1", "type", "get")
	iq.Append(dom.New("jabber:iq:version", "query"))

	reply := stanza.ErrorReply(iq, &stanza.Error{Condition: stanza.FeatureNotImplemented})
	fmt.Println(string(reply.AppendXML(nil, stanza.NSClient)))

	e, _ := stanza.ParseError(reply)
	fmt.Println(errors.Is(e, stanza.FeatureNotImplemented), e.Type)
	// Output:
	// <iq from='example.com' to='juliet@example.com/balcony' id='v1' type='error'><query xmlns='jabber:iq:version'/><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>
	// true cancel
}
