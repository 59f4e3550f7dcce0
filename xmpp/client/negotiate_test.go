package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

func TestStartTLSWithTrustedSelfSignedCert_RFC6120_5_4(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, _ := s.dial(t, s.config())

	cs, ok := c.TLS()
	if !ok || !cs.HandshakeComplete {
		t.Fatal("session is not over TLS")
	}
	if cs.ServerName != testDomain {
		t.Errorf("SNI = %q, want the JID's domain %q", cs.ServerName, testDomain)
	}
	s.mu.Lock()
	headers := append([]stream.Header(nil), s.headers...)
	s.mu.Unlock()
	// Three streams: before TLS, after TLS, after SASL (RFC 6120 5.4.3.3, 6.4.6).
	if len(headers) != 3 {
		t.Fatalf("server saw %d stream headers, want 3", len(headers))
	}
	if headers[0].From != "" {
		t.Errorf("first header before TLS reveals the account: from=%q", headers[0].From)
	}
	if headers[1].From != testJID.String() {
		t.Errorf("header after TLS from=%q, want %q (RFC 6120 4.7.1)", headers[1].From, testJID)
	}
	for i, h := range headers {
		if h.To != testDomain || h.Version != "1.0" {
			t.Errorf("header %d: to=%q version=%q", i, h.To, h.Version)
		}
	}
}

func TestCertificateVerificationOnByDefault_RFC6120_13_7_2(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.TLSConfig = nil // system roots do not know the self-signed certificate

	_, err := Dial(testCtx(t), cfg)
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &cv) && !errors.As(err, &ua) {
		t.Fatalf("Dial error = %v, want a certificate verification error", err)
	}
	if Retryable(err) {
		t.Error("a certificate that does not verify should not be retried by a Keeper")
	}
	_ = s.endedWith(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.auths) != 0 {
		t.Errorf("client authenticated (%v) over a connection it could not verify", s.auths)
	}
}

func TestInsecureSkipVerifyIsExplicit_RFC6120_13_7_2(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.TLSConfig = nil
	cfg.InsecureSkipVerify = true
	c, _ := s.dial(t, cfg)
	if _, ok := c.TLS(); !ok {
		t.Fatal("session is not over TLS")
	}
}

func TestWrongCertificateNameRejected_RFC6125(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.TLSConfig.ServerName = "other.test"
	_, err := Dial(testCtx(t), cfg)
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("Dial error = %v, want a hostname mismatch", err)
	}
}

func TestServerWithoutStartTLSRefused_RFC6120_5_3_1(t *testing.T) {
	s := newTestServer(t, serverOpts{noStartTLS: true})
	_, err := Dial(testCtx(t), s.config())
	if !errors.Is(err, ErrTLSRequired) {
		t.Fatalf("Dial error = %v, want ErrTLSRequired", err)
	}
	// The client closed its stream rather than just dropping the socket.
	if err := s.endedWith(t); !errors.Is(err, stream.ErrClosed) {
		t.Errorf("server saw %v, want the client's closing tag", err)
	}
}

func TestPlaintextAllowedExplicitlyUsesSCRAM_RFC6120_13_9_4(t *testing.T) {
	s := newTestServer(t, serverOpts{noStartTLS: true, allowPlain: true})
	cfg := s.config()
	cfg.AllowPlaintext = true
	c, _ := s.dial(t, cfg)
	if _, ok := c.TLS(); ok {
		t.Fatal("expected a plaintext session")
	}
	if got := c.Mechanism(); got != sasl.ScramSHA256 {
		t.Errorf("mechanism = %s, want SCRAM-SHA-256 (no -PLUS without TLS, no PLAIN without TLS)", got)
	}
}

func TestPLAINRefusedWithoutTLS_RFC6120_13_8(t *testing.T) {
	s := newTestServer(t, serverOpts{noStartTLS: true, allowPlain: true, mechanisms: []string{sasl.Plain}})
	cfg := s.config()
	cfg.AllowPlaintext = true
	_, err := Dial(testCtx(t), cfg)
	if !errors.Is(err, ErrNoMechanism) {
		t.Fatalf("Dial error = %v, want ErrNoMechanism", err)
	}
	_ = s.endedWith(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.auths) != 0 {
		t.Errorf("client sent <auth/> %v on a plaintext stream", s.auths)
	}
}

func TestPLAINWithoutTLSWhenAllowed_RFC6120_13_8(t *testing.T) {
	s := newTestServer(t, serverOpts{noStartTLS: true, allowPlain: true, mechanisms: []string{sasl.Plain}})
	cfg := s.config()
	cfg.AllowPlaintext = true
	cfg.AllowPLAINWithoutTLS = true
	c, _ := s.dial(t, cfg)
	if c.Mechanism() != sasl.Plain {
		t.Errorf("mechanism = %s, want PLAIN", c.Mechanism())
	}
}

func TestSCRAMSHA256PlusWithTLSExporterOnTLS13_RFC9266(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, _ := s.dial(t, s.config())
	if c.Mechanism() != sasl.ScramSHA256Plus || c.ChannelBinding() != sasl.CBTLSExporter {
		t.Errorf("mechanism %s with binding %q, want SCRAM-SHA-256-PLUS with tls-exporter", c.Mechanism(), c.ChannelBinding())
	}
}

func TestChannelBindingFollowsAdvertisedTypes_XEP0440(t *testing.T) {
	s := newTestServer(t, serverOpts{cbTypes: []string{sasl.CBTLSServerEndPoint}, advertiseCB: true, tlsMaxVersion: tls.VersionTLS12})
	c, _ := s.dial(t, s.config())
	if c.Mechanism() != sasl.ScramSHA256Plus || c.ChannelBinding() != sasl.CBTLSServerEndPoint {
		t.Errorf("mechanism %s with binding %q, want SCRAM-SHA-256-PLUS with tls-server-end-point", c.Mechanism(), c.ChannelBinding())
	}
	if cs, _ := c.TLS(); cs.Version != tls.VersionTLS12 {
		t.Errorf("TLS version %x, want 1.2", cs.Version)
	}
}

func TestMechanismsOptionRestrictsChoice_RFC6120_6_3_3(t *testing.T) {
	for _, want := range []string{sasl.ScramSHA1Plus, sasl.ScramSHA256, sasl.ScramSHA1, sasl.Plain} {
		t.Run(want, func(t *testing.T) {
			s := newTestServer(t, serverOpts{})
			cfg := s.config()
			cfg.Mechanisms = []string{want}
			c, _ := s.dial(t, cfg)
			if c.Mechanism() != want {
				t.Errorf("mechanism = %s, want %s", c.Mechanism(), want)
			}
		})
	}
}

func TestSASLFailureIsTyped_RFC6120_6_5(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.Password = "wrong"
	_, err := Dial(testCtx(t), cfg)
	if !errors.Is(err, sasl.NotAuthorized) {
		t.Fatalf("Dial error = %v, want errors.Is(err, sasl.NotAuthorized)", err)
	}
	var f *sasl.Failure
	if !errors.As(err, &f) || f.Condition != sasl.NotAuthorized {
		t.Fatalf("Dial error = %#v, want a *sasl.Failure", err)
	}
	if Retryable(err) {
		t.Error("not-authorized should not be retried")
	}
}

func TestBindServerGeneratedResource_RFC6120_7_6(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	c, sc := s.dial(t, s.config())
	if c.JID() != sc.jid || c.JID().Resourcepart() == "" {
		t.Errorf("client JID %s, server bound %s", c.JID(), sc.jid)
	}
	if c.JID().Bare() != testJID {
		t.Errorf("bound JID %s is not of account %s", c.JID(), testJID)
	}
}

func TestBindChosenResource_RFC6120_7_7(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	cfg := s.config()
	cfg.Resource = "balcony"
	c, _ := s.dial(t, cfg)
	if c.JID().Resourcepart() != "balcony" {
		t.Errorf("resource = %q, want balcony", c.JID().Resourcepart())
	}
}

func TestLegacySessionEstablished_RFC3921_3(t *testing.T) {
	s := newTestServer(t, serverOpts{legacySession: true})
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Dial(testCtx(t), s.config())
		done <- result{c, err}
	}()
	sc := s.session(t)
	iq := sc.answer(nil)
	if iq.Child(nsSession, "session") == nil || iq.Attr("type") != "set" {
		t.Errorf("expected the session IQ, got %s", iq)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	sc.serveClose()
	if err := r.c.Close(testCtx(t)); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestDirectTLSWithALPN_XEP0368(t *testing.T) {
	s := newTestServer(t, serverOpts{directTLS: true})
	c, _ := s.dial(t, s.config())
	if _, ok := c.TLS(); !ok {
		t.Fatal("not TLS")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.alpn) != 1 || s.alpn[0] != "xmpp-client" {
		t.Errorf("ALPN = %v, want xmpp-client", s.alpn)
	}
	if len(s.headers) != 2 {
		t.Errorf("%d stream headers, want 2 (no STARTTLS over direct TLS)", len(s.headers))
	}
}

func TestContextDeadlineBoundsNegotiation_RFC6120_4_6(t *testing.T) {
	// A listener that accepts and never speaks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{JID: testJID, Password: "x", Addr: ln.Addr().String()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want context.DeadlineExceeded", err)
	}
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Error("server never saw the connection")
	}
}

func TestStreamErrorDuringNegotiationIsTyped_RFC6120_4_9(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := stream.NewReader(conn, stream.Limits{})
		if _, err := r.ReadHeader(); err != nil {
			return
		}
		w := stream.NewWriter(conn, stream.NSClient)
		_ = w.WriteHeader(stream.Header{From: testDomain, ID: "x", Version: "1.0", NS: stream.NSClient})
		_ = w.WriteError(&stream.Error{Condition: stream.HostUnknown})
		_ = w.Flush()
		_, _ = r.Next()
	}()
	_, err = Dial(testCtx(t), Config{JID: testJID, Password: "x", Addr: ln.Addr().String()})
	var se *stream.Error
	if !errors.Is(err, stream.HostUnknown) || !errors.As(err, &se) {
		t.Fatalf("Dial error = %v, want a *stream.Error host-unknown", err)
	}
	if Retryable(err) {
		t.Error("host-unknown should not be retried")
	}
}

func TestBindErrorIsStanzaError_RFC6120_7_6_2(t *testing.T) {
	s := newTestServer(t, serverOpts{bindError: stanza.NotAllowed})
	_, err := Dial(testCtx(t), s.config())
	var se *stanza.Error
	if !errors.Is(err, stanza.NotAllowed) || !errors.As(err, &se) {
		t.Fatalf("Dial error = %v, want a *stanza.Error not-allowed", err)
	}
}

func TestServerSkippingAuthenticationRefused_RFC6120_6_4_6(t *testing.T) {
	// A server offering binding with no SASL at all is not trusted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := stream.NewReader(conn, stream.Limits{})
		w := stream.NewWriter(conn, stream.NSClient)
		if _, err := r.ReadHeader(); err != nil {
			return
		}
		_ = w.WriteHeader(stream.Header{From: testDomain, ID: "x", Version: "1.0", NS: stream.NSClient})
		_ = w.WriteElement(dom.New(stream.NS, "features").Append(dom.New(nsBind, "bind")))
		_ = w.Flush()
		_, _ = r.Next()
	}()
	cfg := Config{JID: testJID, Password: "x", Addr: ln.Addr().String(), AllowPlaintext: true}
	_, err = Dial(testCtx(t), cfg)
	if !errors.Is(err, ErrNegotiation) {
		t.Fatalf("Dial error = %v, want ErrNegotiation", err)
	}
}

func TestBytesInjectedAfterProceedRejected_RFC6120_5_4_3_3(t *testing.T) {
	// A man in the middle appends plaintext after <proceed/> hoping the
	// client reads it as if it came over TLS (CVE-2011-0411).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := stream.NewReader(conn, stream.Limits{})
		w := stream.NewWriter(conn, stream.NSClient)
		if _, err := r.ReadHeader(); err != nil {
			return
		}
		_ = w.WriteHeader(stream.Header{From: testDomain, ID: "x", Version: "1.0", NS: stream.NSClient})
		_ = w.WriteElement(dom.New(stream.NS, "features").Append(dom.New(nsTLS, "starttls")))
		_ = w.Flush()
		if _, err := r.Next(); err != nil {
			return
		}
		_ = w.WriteElement(dom.New(nsTLS, "proceed"))
		_ = w.WriteElement(dom.New(stream.NS, "features").Append(dom.New(nsBind, "bind")))
		_ = w.Flush()
		_, _ = io.Copy(io.Discard, conn)
	}()
	cfg := Config{JID: testJID, Password: "x", Addr: ln.Addr().String()}
	cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
	if _, err = Dial(testCtx(t), cfg); err == nil {
		t.Fatal("Dial succeeded over an injected stream")
	}
	var rec tls.RecordHeaderError
	if !errors.Is(err, ErrNegotiation) && !errors.As(err, &rec) {
		t.Errorf("Dial = %v, want the injected bytes refused", err)
	}
}

func TestTLSExporterOnTLS12WithExtendedMasterSecret_RFC9266(t *testing.T) {
	// crypto/tls negotiates the extended master secret on TLS 1.2, which
	// makes tls-exporter safe there too (RFC 9266 section 3).
	s := newTestServer(t, serverOpts{tlsMaxVersion: tls.VersionTLS12})
	c, _ := s.dial(t, s.config())
	cs, _ := c.TLS()
	if _, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); cs.Version != tls.VersionTLS12 || err != nil {
		t.Fatalf("TLS version %x, exporter: %v", cs.Version, err)
	}
	if c.Mechanism() != sasl.ScramSHA256Plus || c.ChannelBinding() != sasl.CBTLSExporter {
		t.Errorf("mechanism %s with binding %q, want SCRAM-SHA-256-PLUS with tls-exporter", c.Mechanism(), c.ChannelBinding())
	}
}

func TestNoCommonChannelBindingFallsBackToSCRAM_XEP0440(t *testing.T) {
	// The server lists a type the client lacks: no -PLUS, and the GS2 flag
	// says 'n' (the server offered -PLUS, so 'y' would be a downgrade alarm).
	s := newTestServer(t, serverOpts{cbTypes: []string{}, advertiseCB: true})
	c, _ := s.dial(t, s.config())
	if c.Mechanism() != sasl.ScramSHA256 || c.ChannelBinding() != "" {
		t.Errorf("mechanism %s with binding %q, want SCRAM-SHA-256 without binding", c.Mechanism(), c.ChannelBinding())
	}
}

func TestGS2FlagSaysWhetherClientCouldBind_RFC5802_6(t *testing.T) {
	// Without TLS there is no binding; the TLS cases run against the
	// scripted server in the tests around this one.
	all := []string{sasl.ScramSHA256Plus, sasl.ScramSHA256, sasl.Plain}
	for _, tc := range []struct {
		name                string
		offered, allowed    []string
		wantMech            string
		wantNoBinding       bool
		wantErrNoMechanism  bool
		plainWithoutTLSFlag bool
	}{
		{name: "plaintext, PLUS offered", offered: all, wantMech: sasl.ScramSHA256, wantNoBinding: true},
		{name: "plaintext, only PLAIN", offered: []string{sasl.Plain}, wantErrNoMechanism: true},
		{name: "plaintext, PLAIN allowed", offered: []string{sasl.Plain}, plainWithoutTLSFlag: true, wantMech: sasl.Plain, wantNoBinding: true},
		{name: "restricted to SCRAM-SHA-1", offered: all, allowed: []string{sasl.ScramSHA1}, wantErrNoMechanism: true},
	} {
		got, err := chooseMechanism(tc.offered, tc.allowed, nil, nil, tc.plainWithoutTLSFlag)
		if tc.wantErrNoMechanism {
			if !errors.Is(err, ErrNoMechanism) {
				t.Errorf("%s: %+v, %v; want ErrNoMechanism", tc.name, got, err)
			}
			continue
		}
		if err != nil || got.mech != tc.wantMech || got.gs2NoBinding != tc.wantNoBinding {
			t.Errorf("%s: %+v, %v; want %s with gs2NoBinding=%v", tc.name, got, err, tc.wantMech, tc.wantNoBinding)
		}
	}
}

func TestServerWithoutPlusGetsGS2FlagY_RFC5802_6(t *testing.T) {
	// Over TLS the client could bind; the server offers no -PLUS, so the
	// client says 'y' and a server that really offers -PLUS would notice
	// the stripped list. This server is honest, so authentication works.
	s := newTestServer(t, serverOpts{mechanisms: []string{sasl.ScramSHA256}})
	c, _ := s.dial(t, s.config())
	if c.Mechanism() != sasl.ScramSHA256 {
		t.Errorf("mechanism = %s", c.Mechanism())
	}
}
