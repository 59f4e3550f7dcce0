package main

import (
	"io"
	"net"
	"strings"
	"testing"
)

func TestStartTLSIsHiddenFromFirstFeaturesOnly(t *testing.T) {
	const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'>`
	const rest = `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><starttls xmlns='x'/>`
	for name, features := range map[string]string{
		"empty":      `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
		"required":   `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>`,
		"no element": ``,
	} {
		t.Run(name, func(t *testing.T) {
			in := header + strings.Replace(rest, "<mechanisms", features+"<mechanisms", 1)
			want := header + rest
			// Deliver in 7-byte pieces so that tags are split across reads.
			server, cl := net.Pipe()
			go func() {
				for i := 0; i < len(in); i += 7 {
					server.Write([]byte(in[i:min(i+7, len(in))]))
				}
				server.Close()
			}()
			got, err := io.ReadAll(&noStartTLSConn{Conn: cl})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("read\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestFeaturesEndFindsClosingOrEmptyFeatures(t *testing.T) {
	for in, want := range map[string]int{
		`<stream:features><a/></stream:features>x`: 39,
		`<features xmlns='a'/>y`:                   21,
		`<stream:features><a/>`:                    -1,
		`<f:features></f:features>`:                25,
	} {
		if got := featuresEnd([]byte(in)); got != want {
			t.Errorf("featuresEnd(%q) = %d, want %d", in, got, want)
		}
	}
}
