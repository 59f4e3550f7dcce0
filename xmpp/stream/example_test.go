package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// A server reads the client's header, answers with its own header and
// features, then reads stanzas until the client closes its stream.
func Example() {
	in := strings.NewReader("<?xml version='1.0'?><stream:stream to='im.example.com' version='1.0'" +
		" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" +
		"<presence/> <message to='romeo@example.net'><body>hi</body></message></stream:stream>")
	var out bytes.Buffer

	r := stream.NewReader(in, stream.DefaultLimits())
	w := stream.NewWriter(&out, stream.NSClient)
	h, err := r.ReadHeader()
	if err != nil {
		fmt.Println(err)
		return
	}
	w.WriteHeader(stream.Header{From: h.To, ID: "t7AMCin9zjMNwQKDnplntZPIDEI", Version: "1.0"})
	w.WriteElement(&dom.Element{Space: stream.NS, Local: "features"})
	for {
		el, err := r.Next()
		if errors.Is(err, stream.ErrClosed) {
			w.Close()
			break
		}
		var se *stream.Error
		if errors.As(err, &se) {
			w.WriteError(se) // the condition the peer caused
			break
		}
		if err != nil {
			break // I/O error: the connection is gone
		}
		fmt.Println(el.Local, el.Space)
	}
	fmt.Println(out.String())
	// Output:
	// presence jabber:client
	// message jabber:client
	// <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI' version='1.0'><stream:features/></stream:stream>
}
