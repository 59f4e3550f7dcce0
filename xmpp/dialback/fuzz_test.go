package dialback

import (
	"bytes"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// FuzzParse reads arbitrary stream content, parses every <db:result/> and
// <db:verify/> it finds, writes what was parsed and parses it again: both
// parses must agree.
func FuzzParse(f *testing.F) {
	f.Add(`<db:result from='capulet.example' to='montague.example'>b4835385f37f</db:result>`)
	f.Add(`<db:verify from='montague.example' to='capulet.example' id='D6' type='valid'/>`)
	f.Add(`<db:result from='a.example' to='b.example' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`)
	f.Fuzz(func(t *testing.T, body string) {
		src := "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>" + body
		r := stream.NewReader(bytes.NewReader([]byte(src)), stream.Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		for {
			el, err := r.Next()
			if err != nil {
				return
			}
			switch el.Local {
			case "result":
				a, err := ParseResult(el)
				if err != nil {
					continue
				}
				b, err := ParseResult(a.Element())
				if err != nil || a.From != b.From || a.To != b.To || a.Key != b.Key || a.Type != b.Type {
					t.Fatalf("result %+v became %+v (%v)", a, b, err)
				}
			case "verify":
				a, err := ParseVerify(el)
				if err != nil {
					continue
				}
				b, err := ParseVerify(a.Element())
				if err != nil || a.From != b.From || a.To != b.To || a.ID != b.ID || a.Key != b.Key || a.Type != b.Type {
					t.Fatalf("verify %+v became %+v (%v)", a, b, err)
				}
			}
		}
	})
}
