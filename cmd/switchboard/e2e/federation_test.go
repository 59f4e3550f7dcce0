package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/internal/metrics/metricstest"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// freeAddr returns a loopback address with a port free at the moment.
// Two federated servers must each know the other's s2s address before
// either starts, so the ports are picked first.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// fedServer is a server of its own domain.
type fedServer struct {
	*server
	domain string
}

// startDomain runs a server for dom with s2s on s2sAddr and the peer
// domain mapped to peerAddr.
func startDomain(t *testing.T, dom, s2sAddr, peer, peerAddr string, opts ...func(*app.Config)) *fedServer {
	t.Helper()
	opts = append([]func(*app.Config){func(c *app.Config) {
		c.Domain = dom
		c.NodeID = "e2e-" + dom[:1]
		c.S2SListen = s2sAddr
		c.S2SHostMap = map[string]string{peer: peerAddr}
		c.MetricsListen = "127.0.0.1:0"
	}}, opts...)
	return &fedServer{server: startServer(t, opts...), domain: dom}
}

func (s *fedServer) jid(local, resource string) jid.JID {
	return jid.MustParse(local + "@" + s.domain + "/" + resource)
}

// login creates local@domain and logs it in as local@domain/resource.
func (s *fedServer) login(t *testing.T, local, resource string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	bareJID := jid.MustParse(local + "@" + s.domain)
	if err := s.app.Roster().CreateAccount(ctx, bareJID.String(), password(local)); err != nil {
		t.Fatalf("CreateAccount %s: %v", bareJID, err)
	}
	return s.dialLogin(t, local, resource)
}

// dialLogin logs the existing account local@domain in as resource.
func (s *fedServer) dialLogin(t *testing.T, local, resource string) *client.Client {
	t.Helper()
	bareJID := jid.MustParse(local + "@" + s.domain)
	return s.dialConfig(t, client.Config{
		JID:        bareJID,
		Password:   password(local),
		Resource:   resource,
		Addr:       s.addr,
		TLSConfig:  &tls.Config{RootCAs: s.roots, ServerName: s.domain, MinVersion: tls.VersionTLS12},
		Mechanisms: []string{sasl.ScramSHA256},
	})
}

// federated runs everything issue 5 asks of two federated domains over
// one s2s method: messages both ways, a mutual subscription between
// alice@a.test and bob@b.test, and each one's presence at the other, both
// available and unavailable.
func federated(t *testing.T, a, b *fedServer, method string) {
	alice := a.login(t, "alice", "phone")
	bob := b.login(t, "bob", "desk")
	federatedChat(t, a, b, alice, bob)
	for _, s := range []*fedServer{a, b} {
		s.logs.wait(t, ioTimeout, "outbound stream up by "+method, msgIs("s2s outbound stream up", "method", method))
		s.logs.wait(t, ioTimeout, "inbound authenticated by "+method, msgIs("s2s inbound authenticated", "method", method))
		// The s2s metrics saw the same.
		m := strings.ToLower(method)
		metricstest.WaitFor(t, "http://"+s.app.MetricsAddr().String()+"/metrics", ioTimeout,
			metricstest.Positive("switchboard_s2s_streams", "direction", "outbound", "state", "authenticated"),
			metricstest.Positive("switchboard_s2s_streams", "direction", "inbound", "state", "authenticated"),
			metricstest.Positive("switchboard_s2s_auth_total", "direction", "outbound", "method", m, "result", "valid"),
			metricstest.Positive("switchboard_s2s_auth_total", "direction", "inbound", "method", m, "result", "valid"),
			metricstest.Positive("switchboard_s2s_stanzas_total", "direction", "inbound"),
			metricstest.Positive("switchboard_s2s_stanzas_total", "direction", "outbound"),
			metricstest.Positive("switchboard_router_stanzas_total", "kind", "message", "outcome", "remote"),
		)
	}
	federatedPresence(t, a, b, alice, bob)
}

// federatedChat sends a message each way between alice@a.test and
// bob@b.test and checks each arrives from the other domain, and not back
// to the sender as a bounce.
func federatedChat(t *testing.T, a, b *fedServer, alice, bob *client.Client) {
	m := client.Message{ID: "fed1", To: b.jid("bob", "desk"), Type: client.MessageChat, Body: "hello from a.test"}
	send(t, alice, m)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	bounced := make(chan client.Message, 1)
	aliceDone := make(chan struct{})
	go func() {
		defer close(aliceDone)
		if back, err := alice.NextMessage(ctx); err == nil {
			bounced <- back
		}
	}()
	arrived := make(chan client.Message, 1)
	go func() {
		if m, err := bob.NextMessage(ctx); err == nil {
			arrived <- m
		}
	}()
	var got client.Message
	select {
	case got = <-arrived:
	case back := <-bounced:
		t.Fatalf("alice got %+v instead of bob getting the message", back)
	case <-ctx.Done():
		t.Fatal("bob@b.test: no message")
	}
	checkMessage(t, "bob", got, client.Message{ID: "fed1", From: a.jid("alice", "phone"), To: b.jid("bob", "desk"), Type: client.MessageChat, Body: "hello from a.test"})
	// Stop watching alice's stream before bob answers, so the answer is
	// read below and not by that goroutine.
	cancel()
	<-aliceDone
	send(t, bob, client.Message{ID: "fed2", To: a.jid("alice", "phone"), Type: client.MessageChat, Body: "hello from b.test"})
	got = nextMessage(t, alice)
	checkMessage(t, "alice", got, client.Message{ID: "fed2", From: b.jid("bob", "desk"), To: a.jid("alice", "phone"), Type: client.MessageChat, Body: "hello from b.test"})
}

// presences reads a client's presence and keeps what one wait skipped
// for the next, since stanzas from two senders (or a server's presence
// and its subscription answer) need not come in a set order.
type presences struct {
	c    *client.Client
	held []client.Presence
}

// wait returns the first presence from from of type typ, held or coming
// within ioTimeout.
func (w *presences) wait(t *testing.T, from jid.JID, typ client.PresenceType, what string) client.Presence {
	t.Helper()
	for i, p := range w.held {
		if p.From == from && p.Type == typ {
			w.held = append(w.held[:i], w.held[i+1:]...)
			return p
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	for {
		p, err := w.c.NextPresence(ctx)
		if err != nil {
			var seen []string
			for _, h := range w.held {
				seen = append(seen, fmt.Sprintf("%q<%s>", h.Type, h.From))
			}
			t.Fatalf("%s: waiting for %s (presence type %q from %s): %v; holding %v", w.c.JID(), what, typ, from, err, seen)
		}
		if p.From == from && p.Type == typ {
			return p
		}
		w.held = append(w.held, p)
	}
}

// waitPush reads c's roster pushes until one for contact with
// subscription sub and no pending request comes, and fails at ioTimeout.
func waitPush(t *testing.T, c *client.Client, contact jid.JID, sub client.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var seen []string
	for {
		p, err := c.NextRosterPush(ctx)
		if err != nil {
			t.Fatalf("%s: waiting for a roster push of %s with subscription %s: %v; saw %v", c.JID(), contact, sub, err, seen)
		}
		if p.Item.JID == contact.Bare() && p.Item.Subscription == sub && !p.Item.Ask {
			return
		}
		seen = append(seen, fmt.Sprintf("%s:%s ask=%v", p.Item.JID, p.Item.Subscription, p.Item.Ask))
	}
}

// checkItem fetches c's roster and checks its item for contact.
func checkItem(t *testing.T, c *client.Client, contact jid.JID, sub client.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	r, err := c.Roster(ctx)
	if err != nil {
		t.Fatalf("%s: roster: %v", c.JID(), err)
	}
	for _, it := range r.Items {
		if it.JID == contact.Bare() {
			if it.Subscription != sub || it.Ask {
				t.Fatalf("%s: roster item %+v, want subscription %s without ask", c.JID(), it, sub)
			}
			return
		}
	}
	t.Fatalf("%s: roster %+v has no item for %s", c.JID(), r.Items, contact.Bare())
}

// federatedPresence makes alice@a.test and bob@b.test subscribe to each
// other (RFC 6121 3.1) across the s2s link and checks the rosters and
// the presence each side sees (4.2, 4.3, 4.5): available after each
// approval and at a new login (the probe answered by the other domain),
// unavailable when the other logs out.
func federatedPresence(t *testing.T, a, b *fedServer, alice, bob *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*ioTimeout)
	defer cancel()
	aliceBare, bobBare := alice.JID().Bare(), bob.JID().Bare()
	aliceP, bobP := &presences{c: alice}, &presences{c: bob}
	for _, w := range []*presences{aliceP, bobP} {
		if _, err := w.c.Online(ctx, client.Presence{}); err != nil {
			t.Fatalf("%s: online: %v", w.c.JID(), err)
		}
		w.wait(t, w.c.JID(), client.PresenceAvailable, "the echo of its own initial presence")
	}

	// Alice subscribes to bob; bob approves: alice gets 'to' and bob's
	// presence.
	if err := alice.Subscribe(ctx, bobBare); err != nil {
		t.Fatal(err)
	}
	bobP.wait(t, aliceBare, client.PresenceSubscribe, "alice's subscription request")
	if err := bob.ApproveSubscription(ctx, aliceBare); err != nil {
		t.Fatal(err)
	}
	waitPush(t, bob, aliceBare, client.SubscriptionFrom)
	waitPush(t, alice, bobBare, client.SubscriptionTo)
	aliceP.wait(t, bobBare, client.PresenceSubscribed, "bob's approval")
	aliceP.wait(t, bob.JID(), client.PresenceAvailable, "bob's presence after his approval")

	// Bob subscribes to alice; alice approves: both ways.
	if err := bob.Subscribe(ctx, aliceBare); err != nil {
		t.Fatal(err)
	}
	aliceP.wait(t, bobBare, client.PresenceSubscribe, "bob's subscription request")
	if err := alice.ApproveSubscription(ctx, bobBare); err != nil {
		t.Fatal(err)
	}
	waitPush(t, alice, bobBare, client.SubscriptionBoth)
	waitPush(t, bob, aliceBare, client.SubscriptionBoth)
	bobP.wait(t, aliceBare, client.PresenceSubscribed, "alice's approval")
	bobP.wait(t, alice.JID(), client.PresenceAvailable, "alice's presence after her approval")
	checkItem(t, alice, bobBare, client.SubscriptionBoth)
	checkItem(t, bob, aliceBare, client.SubscriptionBoth)

	// Bob logs out: alice learns it.
	if err := bob.Close(ctx); err != nil {
		t.Fatalf("bob Close: %v", err)
	}
	aliceP.wait(t, bob.JID(), client.PresenceUnavailable, "bob's logout")

	// Bob logs in again: alice sees him; his probe brings him alice's
	// presence from a.test.
	bob2 := b.dialLogin(t, "bob", "laptop")
	bob2P := &presences{c: bob2}
	if _, err := bob2.Online(ctx, client.Presence{}); err != nil {
		t.Fatalf("bob online again: %v", err)
	}
	bob2P.wait(t, alice.JID(), client.PresenceAvailable, "alice's presence, answering bob's probe")
	aliceP.wait(t, bob2.JID(), client.PresenceAvailable, "bob's presence at his new login")
	checkItem(t, bob2, aliceBare, client.SubscriptionBoth)

	// Alice logs out: bob learns it.
	if err := alice.Close(ctx); err != nil {
		t.Fatalf("alice Close: %v", err)
	}
	bob2P.wait(t, alice.JID(), client.PresenceUnavailable, "alice's logout")
}

// Out of the box: self-signed certificates made on first start, a
// dialback secret made in each data directory, and dialback.
func TestTwoDomainsFederateByDialback_XEP0220(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startDomain(t, "a.test", addrA, "b.test", addrB)
	b := startDomain(t, "b.test", addrB, "a.test", addrA)
	for _, s := range []*fedServer{a, b} {
		if fi, err := os.Stat(filepath.Join(s.cfg.DataDir, app.SecretFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("dialback secret in %s: %v %v", s.cfg.DataDir, fi, err)
		}
	}
	federated(t, a, b, "dialback")
}

// With certificates from a CA both trust, valid for each domain: SASL
// EXTERNAL, no dialback.
func TestTwoDomainsFederateBySASLExternal_RFC6120_13_7_2(t *testing.T) {
	dir := t.TempDir()
	caFile, issue := testCA(t, dir)
	addrA, addrB := freeAddr(t), freeAddr(t)
	withCert := func(dom string) func(*app.Config) {
		// The certificate goes in the data directory, where the harness
		// finds it as the one clients trust.
		data := t.TempDir()
		crt, key := issue(data, dom)
		return func(c *app.Config) { c.DataDir, c.CertFile, c.KeyFile, c.S2SCAFile = data, crt, key, caFile }
	}
	a := startDomain(t, "a.test", addrA, "b.test", addrB, withCert("a.test"))
	b := startDomain(t, "b.test", addrB, "a.test", addrA, withCert("b.test"))
	federated(t, a, b, "EXTERNAL")
}

// testCA writes a CA certificate to dir and returns its file and a
// function that issues a certificate and key file for a domain.
func testCA(t *testing.T, dir string) (string, func(dir, dom string) (string, string)) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", caDER)
	return caFile, func(dir, dom string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dom},
			DNSNames: []string{dom}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		crt, kf := filepath.Join(dir, dom+".crt"), filepath.Join(dir, dom+".key")
		writePEM(t, crt, "CERTIFICATE", der)
		writePEM(t, kf, "PRIVATE KEY", keyDER)
		return crt, kf
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
