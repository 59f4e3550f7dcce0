package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

const (
	testHeader   = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'>`
	testMechs    = `<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>`
	testSuccess  = `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`
	testBind     = `<ver xmlns='urn:xmpp:features:rosterver'/><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>`
	startTLS     = `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`
	startTLSReq  = `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>`
	laterMessage = `<message><body>features <starttls/> stay in a message</body></message>`
)

// serve writes each part to conn in 7-byte pieces, so that tags are split
// across reads, and waits after each part until the reader has it.
func serve(conn net.Conn, parts []string, got <-chan struct{}) {
	for _, part := range parts {
		for i := 0; i < len(part); i += 7 {
			conn.Write([]byte(part[i:min(i+7, len(part))]))
		}
		<-got
	}
	conn.Close()
}

func TestStartTLSIsHiddenDuringNegotiationAndNothingElseChanges(t *testing.T) {
	for name, tls := range map[string]string{"empty": startTLS, "required": startTLSReq, "absent": ""} {
		t.Run(name, func(t *testing.T) {
			// The server's side of a negotiation: features, SASL success
			// (the client must see it before the server goes on), the
			// restarted stream's features, then a stanza.
			parts := []string{
				testHeader + `<stream:features>` + tls + testMechs + `</stream:features>`,
				testSuccess,
				testHeader + `<stream:features>` + testBind + tls + `</stream:features>`,
				laterMessage,
			}
			want := []string{
				testHeader + `<stream:features>` + testMechs + `</stream:features>`,
				testSuccess,
				testHeader + `<stream:features>` + testBind + `</stream:features>`,
				laterMessage,
			}
			server, cl := net.Pipe()
			got := make(chan struct{})
			go serve(server, parts, got)
			r := &noStartTLSConn{Conn: cl}
			for i, w := range want {
				buf := make([]byte, len(w))
				if _, err := io.ReadFull(r, buf); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				if string(buf) != w {
					t.Fatalf("part %d: read\n%s\nwant\n%s", i, buf, w)
				}
				got <- struct{}{}
			}
			if rest, _ := io.ReadAll(r); len(rest) != 0 {
				t.Errorf("read past the end: %q", rest)
			}
		})
	}
}

func TestFeaturesStartAndEndFindTheElement(t *testing.T) {
	for _, tc := range []struct {
		in         string
		start, end int
	}{
		{`<a/><stream:features><a/></stream:features>x`, 4, 43},
		{`<features xmlns='a'/>y`, 0, 21},
		{`<stream:features><a/>`, 0, -1},
		{`<f:features></f:features>`, 0, 25},
		{`<stream:features><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>`, 0, 77},
		{`<body>features</body>`, -1, -1},
	} {
		if got := featuresStart([]byte(tc.in)); got != tc.start {
			t.Errorf("featuresStart(%q) = %d, want %d", tc.in, got, tc.start)
		}
		if tc.start >= 0 {
			if got := featuresEnd([]byte(tc.in)[tc.start:]); got >= 0 && got+tc.start != tc.end || got < 0 && tc.end >= 0 {
				t.Errorf("featuresEnd(%q) = %d, want %d", tc.in[tc.start:], got, tc.end-tc.start)
			}
		}
	}
	if !bytes.Equal(stripStartTLS([]byte(`<f>`+startTLSReq+`<m/></f>`)), []byte(`<f><m/></f>`)) || strings.Contains(string(stripStartTLS([]byte(startTLS))), "starttls") {
		t.Error("stripStartTLS left the element in")
	}
}
