package c2s

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// FuzzUnauthenticatedStream feeds arbitrary bytes to a connection as a
// client would before authenticating (TLS optional, PLAIN allowed, the
// credential service failing) and checks that the connection ends and
// that what the server wrote is a well-formed stream.
func FuzzUnauthenticatedStream(f *testing.F) {
	const open = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"
	for _, seed := range []string{
		"",
		open,
		open + "</stream:stream>",
		open + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + "AGFsaWNlAHB3" + "</auth>",
		open + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>biwsbj1hbGljZSxyPWFiYw==</auth><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>",
		open + "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><message/><iq type='get'/>",
		open + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
		"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
		"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' version='x'>",
		open + "<foo>&bad;</foo>",
		"\x00\xff<<<",
	} {
		f.Add([]byte(seed))
	}
	ns, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		f.Fatal(err)
	}
	defer nc.Close()
	srv, err := New(Config{
		Domain:             testDomain,
		Node:               testNode,
		Listen:             "127.0.0.1:0",
		TLSOptional:        true,
		AllowPlaintextAuth: true,
		Mechanisms:         []string{sasl.ScramSHA256, sasl.Plain},
		NegotiationTimeout: 5 * time.Second,
		CloseTimeout:       time.Second,
		Credentials:        failingCredentials{errUnavailable},
		Sessions:           failingRegistry{errUnavailable},
		NATS:               nc,
		Logger:             slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.closeListeners()

	f.Fuzz(func(t *testing.T, input []byte) {
		server, client := net.Pipe()
		defer client.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.newConn(server, false).serve(context.Background())
		}()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			io.Copy(&out, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(input)
		// End of input: the client goes away.
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
		<-read
		checkWellFormed(t, out.Bytes())
	})
}

// checkWellFormed reads what the server sent as a stream: a header, then
// elements, possibly cut short by the end of the connection.
func checkWellFormed(t *testing.T, b []byte) {
	t.Helper()
	if len(b) == 0 {
		return
	}
	r := stream.NewReader(bytes.NewReader(b), stream.Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatalf("server header: %v in %q", err, b)
	}
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		if errors.Is(err, stream.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		t.Fatalf("server output: %v in %q", err, b)
	}
}
