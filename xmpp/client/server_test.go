package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// The scripted server speaks the server side of RFC 6120 negotiation with
// xmpp/stream and xmpp/sasl, then hands the bound connection to the test,
// which plays the rest of the conversation from its own goroutine.

const (
	testDomain   = "example.test"
	testUser     = "juliet"
	testPassword = "r0m30-s3cret"
)

var testJID = jid.MustParse(testUser + "@" + testDomain)

// testCert is a self-signed certificate for testDomain, made once.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: testDomain},
		DNSNames:              []string{testDomain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// testCredentials are the stored SCRAM keys of testUser, made once.
var testCredentials = sync.OnceValue(func() *sasl.Credentials {
	c := &sasl.Credentials{}
	for _, h := range []string{"SHA-1", "SHA-256"} {
		k, err := sasl.NewScramKeys(h, testPassword, sasl.MinIterations)
		if err != nil {
			panic(err)
		}
		c.Scram = append(c.Scram, k)
	}
	return c
})

// serverOpts choose what the scripted server offers.
type serverOpts struct {
	noStartTLS    bool     // offer no STARTTLS
	optionalTLS   bool     // offer STARTTLS without <required/>, with the mechanisms
	directTLS     bool     // TLS from the first byte (XEP-0368)
	mechanisms    []string // sasl.ServerConfig.Mechanisms; nil is the default set
	allowPlain    bool     // offer PLAIN without TLS
	cbTypes       []string // channel binding types the server has; nil means both
	advertiseCB   bool     // list them in stream features (XEP-0440)
	tlsMaxVersion uint16
	legacySession bool             // require the RFC 3921 session IQ
	bindError     stanza.Condition // refuse binding with this condition
}

type testServer struct {
	t    testing.TB
	ln   net.Listener
	opts serverOpts

	wg      sync.WaitGroup
	mu      sync.Mutex
	open    []net.Conn
	headers []stream.Header // client stream headers, in order
	auths   []string        // mechanisms the client asked for
	alpn    []string        // ALPN protocols negotiated on direct TLS

	bound chan *srvConn // connections that reached a bound resource
	ended chan error    // negotiations that ended without binding
}

// srvConn is the server side of one bound session, driven by the test.
type srvConn struct {
	t    *testing.T
	conn net.Conn
	r    *stream.Reader
	w    *stream.Writer
	jid  jid.JID // the client's full JID
}

func newTestServer(t testing.TB, opts serverOpts) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, opts: opts, bound: make(chan *srvConn, 8), ended: make(chan error, 8)}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

// config returns a client configuration that trusts the test certificate.
func (s *testServer) config() Config {
	_, pool := testCert()
	return Config{
		JID:       testJID,
		Password:  testPassword,
		Addr:      s.addr(),
		DirectTLS: s.opts.directTLS,
		TLSConfig: &tls.Config{RootCAs: pool},
	}
}

// dial connects a client with cfg and returns both ends of the session.
func (s *testServer) dial(t *testing.T, cfg Config) (*Client, *srvConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	sc := s.session(t)
	t.Cleanup(func() {
		sc.serveClose()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close at the end of the test: %v", err)
		}
	})
	return c, sc
}

// session returns the next bound server connection.
func (s *testServer) session(t *testing.T) *srvConn {
	t.Helper()
	select {
	case sc := <-s.bound:
		sc.t = t
		return sc
	case err := <-s.ended:
		t.Fatalf("server: negotiation ended without binding: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server: no session bound within 10s")
	}
	return nil
}

// endedWith returns the reason the server saw a negotiation end.
func (s *testServer) endedWith(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server: negotiation did not end within 10s")
	}
	return nil
}

func (s *testServer) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.open = append(s.open, conn)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sc, err := s.negotiate(conn)
			if err != nil {
				s.ended <- err
				conn.Close()
				return
			}
			s.bound <- sc
		}()
	}
}

func (s *testServer) tlsConfig() *tls.Config {
	cert, _ := testCert()
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MaxVersion:   s.opts.tlsMaxVersion,
		NextProtos:   []string{"xmpp-client"},
	}
}

// channelBinding is the server side of the binding data.
func (s *testServer) channelBinding(tc *tls.Conn) func(string) ([]byte, error) {
	return func(cbType string) ([]byte, error) {
		if s.opts.cbTypes != nil && !contains(s.opts.cbTypes, cbType) {
			return nil, errors.New("not offered")
		}
		cs := tc.ConnectionState()
		switch cbType {
		case sasl.CBTLSExporter:
			return cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		case sasl.CBTLSServerEndPoint:
			cert, _ := testCert()
			sum := sha256.Sum256(cert.Leaf.Raw) // the certificate is ECDSA with SHA-256
			return sum[:], nil
		}
		return nil, errors.New("unknown type")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// negotiate plays the server side up to a bound resource.
func (s *testServer) negotiate(conn net.Conn) (*srvConn, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var tc *tls.Conn
	if s.opts.directTLS {
		tc = tls.Server(conn, s.tlsConfig())
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.alpn = append(s.alpn, tc.ConnectionState().NegotiatedProtocol)
		s.mu.Unlock()
		conn = tc
	}
	sc := &srvConn{conn: conn, r: stream.NewReader(conn, stream.Limits{})}
	authed := false
	for n := 1; ; n++ {
		h, err := sc.r.ReadHeader()
		if err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
		s.mu.Lock()
		s.headers = append(s.headers, h)
		s.mu.Unlock()
		sc.w = stream.NewWriter(conn, stream.NSClient)
		if err := sc.w.WriteHeader(stream.Header{From: testDomain, ID: "stream-" + strconv.Itoa(n), Version: "1.0", NS: stream.NSClient}); err != nil {
			return nil, err
		}
		scfg := &sasl.ServerConfig{
			Lookup: func(_ context.Context, user string) (*sasl.Credentials, error) {
				if user != testUser {
					return nil, sasl.ErrNoAccount
				}
				return testCredentials(), nil
			},
			Mechanisms:               s.opts.mechanisms,
			TLS:                      tc != nil,
			AllowPlaintextWithoutTLS: s.opts.allowPlain,
			Host:                     testDomain,
		}
		if tc != nil {
			scfg.ChannelBinding = s.channelBinding(tc)
		}
		features := dom.New(stream.NS, "features")
		switch {
		case tc == nil && !s.opts.noStartTLS && !s.opts.optionalTLS:
			features.Append(dom.New(nsTLS, "starttls").Append(dom.New(nsTLS, "required")))
		case !authed:
			if tc == nil && s.opts.optionalTLS {
				features.Append(dom.New(nsTLS, "starttls"))
			}
			mechs := dom.New(sasl.NS, "mechanisms")
			for _, m := range scfg.Offered() {
				mechs.Append(dom.New(sasl.NS, "mechanism").AppendText(m))
			}
			features.Append(mechs)
			if s.opts.advertiseCB {
				cb := dom.New(nsSASLCB, "sasl-channel-binding")
				for _, t := range scfg.ChannelBindingTypes() {
					cb.Append(dom.New(nsSASLCB, "channel-binding", "type", t))
				}
				features.Append(cb)
			}
		default:
			features.Append(dom.New(nsBind, "bind"))
			if s.opts.legacySession {
				features.Append(dom.New(nsSession, "session"))
			}
		}
		if err := sc.write(features); err != nil {
			return nil, err
		}
		el, err := sc.r.Next()
		if err != nil {
			return nil, fmt.Errorf("read after features: %w", err)
		}
		switch {
		case el.Space == nsTLS && el.Local == "starttls":
			if err := sc.write(dom.New(nsTLS, "proceed")); err != nil {
				return nil, err
			}
			tc = tls.Server(conn, s.tlsConfig())
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			conn, sc.conn = tc, tc
			sc.r.Reset(tc)
		case el.Space == sasl.NS && el.Local == "auth":
			s.mu.Lock()
			s.auths = append(s.auths, el.Attr("mechanism"))
			s.mu.Unlock()
			if err := sc.sasl(scfg, el); err != nil {
				return nil, err
			}
			authed = true
			sc.r.Reset(conn)
		case el.Local == "iq" && el.Child(nsBind, "bind") != nil && s.opts.bindError != "":
			_ = sc.write(stanza.ErrorReply(el, &stanza.Error{Type: stanza.Cancel, Condition: s.opts.bindError}))
			return nil, fmt.Errorf("bind refused")
		case el.Local == "iq" && el.Child(nsBind, "bind") != nil:
			res := el.Child(nsBind, "bind").ChildText(nsBind, "resource")
			if res == "" {
				res = "generated-" + strconv.Itoa(n)
			}
			sc.jid, _ = testJID.WithResource(res)
			if err := sc.write(dom.New(stream.NSClient, "iq", "type", "result", "id", el.Attr("id")).Append(
				dom.New(nsBind, "bind").Append(dom.New(nsBind, "jid").AppendText(sc.jid.String())))); err != nil {
				return nil, err
			}
			_ = conn.SetDeadline(time.Time{})
			return sc, nil
		default:
			return nil, fmt.Errorf("unexpected <%s xmlns='%s'>", el.Local, el.Space)
		}
	}
}

// sasl runs one exchange; a failure is sent and returned.
func (sc *srvConn) sasl(scfg *sasl.ServerConfig, auth *dom.Element) error {
	srv, err := scfg.Start(auth.Attr("mechanism"))
	if err != nil {
		_ = sc.write(err.(*sasl.Failure).Element())
		return err
	}
	in, err := sasl.DecodePayload(auth.Text())
	for err == nil {
		out, done, serr := srv.Step(context.Background(), in)
		if serr != nil {
			_ = sc.write(serr.(*sasl.Failure).Element())
			return serr
		}
		if done {
			return sc.write(dom.New(sasl.NS, "success").AppendText(sasl.EncodePayload(out)))
		}
		if err = sc.write(dom.New(sasl.NS, "challenge").AppendText(sasl.EncodePayload(out))); err != nil {
			return err
		}
		var resp *dom.Element
		if resp, err = sc.r.Next(); err == nil {
			in, err = sasl.DecodePayload(resp.Text())
		}
	}
	return err
}

func (sc *srvConn) write(el *dom.Element) error {
	if err := sc.w.WriteElement(el); err != nil {
		return err
	}
	return sc.w.Flush()
}

// send writes el to the client or fails the test.
func (sc *srvConn) send(el *dom.Element) {
	sc.t.Helper()
	if err := sc.write(el); err != nil {
		sc.t.Fatalf("server write: %v", err)
	}
}

// next reads the next element from the client or fails the test.
func (sc *srvConn) next() *dom.Element {
	sc.t.Helper()
	_ = sc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	el, err := sc.r.Next()
	if err != nil {
		sc.t.Fatalf("server read: %v", err)
	}
	return el
}

// expectClosed reads until the client's </stream:stream>.
func (sc *srvConn) expectClosed() {
	sc.t.Helper()
	_ = sc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		el, err := sc.r.Next()
		if errors.Is(err, stream.ErrClosed) {
			return
		}
		if err != nil {
			sc.t.Fatalf("server: expected the client's closing tag, got %v", err)
		}
		sc.t.Logf("server: element before the closing tag: %s", el)
	}
}

// serveClose answers the client's closing tag with the server's, in the
// background, once the test no longer reads from sc itself.
func (sc *srvConn) serveClose() {
	go func() {
		for {
			_, err := sc.r.Next()
			if errors.Is(err, stream.ErrClosed) {
				if sc.w.Close() == nil {
					_ = sc.w.Flush()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// answer reads an IQ request and answers it with a result holding payload.
func (sc *srvConn) answer(payload *dom.Element) *dom.Element {
	sc.t.Helper()
	iq := sc.next()
	if iq.Local != "iq" {
		sc.t.Fatalf("server: expected an iq, got %s", iq)
	}
	res := dom.New(stream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))
	if payload != nil {
		res.Append(payload)
	}
	sc.send(res)
	return iq
}

// ctx returns a context that ends with the test, bounded to 5s.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
