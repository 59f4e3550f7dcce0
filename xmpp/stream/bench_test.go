package stream

import (
	"io"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// chatStanza is a typical one-to-one chat message with a chat state and a
// receipt request: about 200 bytes.
const chatStanza = "<message from='juliet@im.example.com/balcony' id='ju2ba41c' to='romeo@example.net/orchard' type='chat' xml:lang='en'>" +
	"<body>Art thou not Romeo, and a Montague?</body>" +
	"<active xmlns='http://jabber.org/protocol/chatstates'/></message>"

// largeStanza is a message of about 4 KiB with XHTML-IM, a delay stamp
// and a long body with escapes and non-ASCII text.
var largeStanza = func() string {
	var b strings.Builder
	b.WriteString("<message from='juliet@im.example.com/balcony' id='ju2ba41c' to='romeo@example.net' type='chat' xml:lang='en'>")
	b.WriteString("<body>")
	for range 20 {
		b.WriteString("What&apos;s in a name? That which we call a rose by any other name would smell as sweet — 🌹. ")
	}
	b.WriteString("</body>")
	b.WriteString("<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>")
	for range 15 {
		b.WriteString("<p style='font-weight:bold'>Wherefore art thou <span style='color:red'>Romeo</span>?<br/></p>")
	}
	b.WriteString("</body></html>")
	b.WriteString("<delay xmlns='urn:xmpp:delay' from='im.example.com' stamp='2002-09-10T23:08:25Z'/>")
	b.WriteString("<request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/>")
	b.WriteString("</message>")
	return b.String()
}()

// BenchmarkReaderNext reads stanzas from an endless stream:
//
//	cd xmpp && go test ./stream/ -run '^$' -bench ReaderNext -benchmem
func BenchmarkReaderNext(b *testing.B) {
	for _, bc := range []struct{ name, stanza string }{
		{"chat", chatStanza},
		{"large", largeStanza},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewReader(&repeatReader{prefix: []byte(clientHeader), unit: []byte(bc.stanza)}, Limits{})
			if _, err := r.ReadHeader(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bc.stanza)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriterWriteElement writes a chat message and flushes it, as a
// session's writer does for each delivery.
func BenchmarkWriterWriteElement(b *testing.B) {
	el := dom.New(NSClient, "message", "from", "juliet@im.example.com/balcony", "id", "ju2ba41c", "to", "romeo@example.net/orchard", "type", "chat")
	el.SetAttrNS(dom.NSXML, "lang", "en")
	el.Append(dom.New(NSClient, "body").AppendText("Art thou not Romeo, and a Montague?"))
	el.Append(dom.New("http://jabber.org/protocol/chatstates", "active"))
	w := NewWriter(io.Discard, NSClient)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteElement(el); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
