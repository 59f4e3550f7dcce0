package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Config describes one account and how to reach its server. The zero value
// of every field except JID and Password is a safe default: certificate
// verification on, TLS required, the best SCRAM mechanism the server offers,
// a server-generated resource.
type Config struct {
	// JID is the account (localpart@domainpart). A resourcepart, when
	// present and Resource is empty, is the resource asked for at bind.
	JID jid.JID
	// Password is the account's password.
	Password string
	// Resource is the resource asked for at bind (RFC 6120 section
	// 7.7.2.2); empty lets the server generate one.
	Resource string

	// Addr is host:port to connect to, skipping the DNS SRV lookup. Tests
	// use it; so does a deployment without SRV records.
	Addr string
	// DirectTLS makes the connection to Addr start with TLS (XEP-0368).
	// Without Addr, it also looks up _xmpps-client._tcp records and mixes
	// them with the _xmpp-client._tcp ones by priority and weight.
	DirectTLS bool

	// TLSConfig is cloned for the TLS handshake. Its ServerName defaults to
	// the JID's domainpart, which is the identity the certificate must hold
	// (RFC 6120 section 13.7.2.1), whatever host DNS pointed to. Set
	// RootCAs in tests that use a self-signed certificate.
	TLSConfig *tls.Config
	// InsecureSkipVerify turns certificate verification off. It exists for
	// throwaway test servers; it lets anyone on the path read the password
	// of a PLAIN exchange and every stanza.
	InsecureSkipVerify bool
	// AllowPlaintext lets the session go on without TLS when the server
	// does not offer STARTTLS. Off by default.
	AllowPlaintext bool
	// AllowPLAINWithoutTLS lets the PLAIN mechanism send the password over
	// a stream that is not encrypted. Off by default; it has no effect
	// unless AllowPlaintext is also set.
	AllowPLAINWithoutTLS bool
	// DisableStartTLS never takes STARTTLS, even when the server offers
	// it: the whole session, password exchange included, goes in the
	// clear. It is for measuring servers without the cost of TLS, and
	// needs AllowPlaintext. A server that requires STARTTLS fails the
	// negotiation with ErrTLSRequired.
	DisableStartTLS bool

	// Mechanisms, when not empty, restricts SASL to these mechanism names.
	// The client still picks the strongest of them that the server offers,
	// in the order SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256,
	// SCRAM-SHA-1, PLAIN.
	Mechanisms []string
	// ScramCache, when set, keeps the salted passwords of SCRAM logins
	// (RFC 5802 section 5.1), so that logging in again to an account
	// whose salt has not changed skips the PBKDF2 run, the client's
	// costliest step. Clients may share one; a load tool that logs the
	// same accounts in many times is the use.
	ScramCache *sasl.ScramCache

	// Lang is the xml:lang of the stream header; empty sends none.
	Lang string
	// Limits bound what the server can make the reader hold.
	Limits stream.Limits

	// Handler, when set, sees every incoming message and presence in the
	// reader goroutine, in arrival order, before it is queued for
	// NextMessage and NextPresence. Returning true consumes the stanza.
	// It must not block for long and must not wait for an IQ reply (that
	// reply is read by the same goroutine); start a goroutine for that.
	Handler func(c *Client, st *dom.Element) bool
	// QueueLimit bounds each queue of incoming stanzas (messages,
	// presences, roster pushes) that nobody has taken yet; when a queue is
	// full its oldest entry is dropped and logged. Default 4096.
	QueueLimit int

	// CloseTimeout bounds how long Close waits for the server's closing
	// stream tag when its context has no earlier deadline. Default 5s.
	CloseTimeout time.Duration

	// Resolver looks up SRV records; default net.DefaultResolver.
	Resolver Resolver
	// Dialer opens TCP connections; default a net.Dialer.
	Dialer Dialer
	// Logger receives structured logs; default none.
	Logger *slog.Logger
}

// Resolver looks up SRV records. *net.Resolver implements it.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// Dialer opens connections. *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// mechanismOrder is the client's preference, strongest first.
var mechanismOrder = []string{
	sasl.ScramSHA256Plus,
	sasl.ScramSHA1Plus,
	sasl.ScramSHA256,
	sasl.ScramSHA1,
	sasl.Plain,
}

const (
	defaultQueueLimit   = 4096
	defaultCloseTimeout = 5 * time.Second
	defaultClientPort   = "5222"
)

// withDefaults returns a copy of c with every empty setting filled.
func (c Config) withDefaults() Config {
	if c.QueueLimit <= 0 {
		c.QueueLimit = defaultQueueLimit
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{KeepAlive: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resource == "" {
		c.Resource = c.JID.Resourcepart()
	}
	return c
}

// tlsConfig returns the configuration of one handshake.
func (c *Config) tlsConfig(alpn string) *tls.Config {
	var t *tls.Config
	if c.TLSConfig != nil {
		t = c.TLSConfig.Clone()
	} else {
		t = &tls.Config{}
	}
	if t.ServerName == "" {
		t.ServerName = c.JID.Domainpart()
	}
	if t.MinVersion == 0 {
		t.MinVersion = tls.VersionTLS12
	}
	if c.InsecureSkipVerify {
		t.InsecureSkipVerify = true
	}
	if alpn != "" && len(t.NextProtos) == 0 {
		t.NextProtos = []string{alpn}
	}
	return t
}
