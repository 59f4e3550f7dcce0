package c2s

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Defaults of the settings a zero Config leaves open.
const (
	// DefaultMaxAuthFailures is the number of failed SASL attempts after
	// which the stream is closed with <policy-violation/>. RFC 6120 section
	// 6.4.5 asks for between 2 and 5 retries.
	DefaultMaxAuthFailures = 3
	// DefaultNegotiationTimeout bounds the time from the TCP accept to a
	// bound resource: a client that has not finished TLS, SASL and binding
	// by then is cut off, so half-open negotiations cannot pile up.
	DefaultNegotiationTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a session from which nothing at all (not
	// even a whitespace keepalive) arrived for that long. Five minutes
	// finds a dead peer that vanished without a TCP reset; clients that
	// stay silent longer must send keepalives (whitespace or XEP-0199).
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultKeepaliveInterval is how long a session's outbound side may be
	// silent before the server writes a single space, which keeps NAT and
	// firewall state alive and lets a client detect a dead server.
	DefaultKeepaliveInterval = 60 * time.Second
	// DefaultCloseTimeout bounds the closing handshake (RFC 6120 section
	// 4.4): how long we wait for the peer's </stream:stream>, and how long a
	// final write (stream error, closing tag) may block.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultQueueSize bounds a session's outbound queue in stanzas.
	DefaultQueueSize = 256
	// DefaultPublishTimeout bounds the wait for the route stream to
	// acknowledge a stanza; past it the client gets a stanza error.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultDrainSpread is the period over which a drain closes the
	// node's sessions, one after the other, so that their clients do not
	// all reconnect to the other nodes in the same instant.
	DefaultDrainSpread = 5 * time.Second
	// DefaultDrainDeadline bounds a drain that did not give its own
	// deadline: past it the sessions left are closed at once and Run
	// returns.
	DefaultDrainDeadline = time.Minute
)

// maxPendingAcks bounds the stanzas of the whole node waiting for the
// stream's acknowledgement; a publish beyond it waits for room.
const maxPendingAcks = 8192

// credentialSource is the part of rosterv1.CredentialServiceClient c2s uses.
type credentialSource interface {
	GetCredentials(ctx context.Context, in *rosterv1.GetCredentialsRequest, opts ...grpc.CallOption) (*rosterv1.GetCredentialsResponse, error)
}

// sessionRegistry is the part of presencev1.SessionRegistryClient c2s uses.
type sessionRegistry interface {
	Bind(ctx context.Context, in *presencev1.BindRequest, opts ...grpc.CallOption) (*presencev1.BindResponse, error)
	Unbind(ctx context.Context, in *presencev1.UnbindRequest, opts ...grpc.CallOption) (*presencev1.UnbindResponse, error)
}

// Config configures a c2s Server.
type Config struct {
	// Domain is the default served domain: a stream header without 'to'
	// is for it. Required.
	Domain string
	// Domains are further domains served (repeating Domain is allowed). A
	// client names its domain in the 'to' of its stream header; SASL,
	// resource binding and the addresses of its session are in that
	// domain.
	Domains []string
	// Node is this process's node id, unique in the cluster; deliveries
	// for its sessions arrive on Subjects.Node(Node). Required.
	Node string

	// Listen is the host:port of the STARTTLS listener; "" turns it off.
	Listen string
	// ListenDirectTLS is the host:port of the XEP-0368 direct TLS
	// listener; "" turns it off. At least one listener is required.
	ListenDirectTLS string
	// TLS is the server TLS configuration (see internal/tlsconf). Required
	// for ListenDirectTLS, and for Listen unless TLSOptional is set. Its
	// GetCertificate, when set, is asked with the client's SNI name or,
	// when the client sent none, the stream's domain (known before
	// STARTTLS) or Domain (direct TLS): see internal/certs.Store.
	TLS *tls.Config
	// TLSOptional offers STARTTLS without <required/> and lets a client
	// authenticate without it. Off by default: STARTTLS is mandatory.
	TLSOptional bool
	// AllowPlaintextAuth offers PLAIN on unencrypted streams. Off by
	// default: it would send the password in the clear.
	AllowPlaintextAuth bool
	// Mechanisms are the SASL mechanisms enabled, in preference order; nil
	// means sasl.DefaultMechanisms().
	Mechanisms []string
	// DigestMD5Realm is the realm of the legacy DIGEST-MD5 mechanism, used
	// only when "DIGEST-MD5" is in Mechanisms; "" means the stream's
	// domain. The sasl package uses the stream's domain as the realm, so
	// any other value than Domain is refused (the roster service must
	// store the hash for the same realm).
	DigestMD5Realm string

	// Limits bound what one client can make the stream reader hold; the
	// zero value means stream.DefaultLimits().
	Limits stream.Limits
	// MaxAuthFailures is the number of failed SASL attempts (aborts
	// included) after which the stream is closed with <policy-violation/>
	// (RFC 6120 section 6.4.5); zero means DefaultMaxAuthFailures.
	MaxAuthFailures int

	// Timeouts; zero means the Default of the same name.
	NegotiationTimeout time.Duration
	IdleTimeout        time.Duration
	KeepaliveInterval  time.Duration
	CloseTimeout       time.Duration
	// PublishTimeout bounds the wait for the route stream's
	// acknowledgement of a stanza; zero means DefaultPublishTimeout.
	PublishTimeout time.Duration

	// Abuse are the abuse controls: connections per address and per
	// second, stanzas and bytes per second per session, failed logins
	// (limits.go). The zero value means the defaults.
	Abuse AbuseLimits
	// DrainSpread is the period over which a drain (Server.Drain, a
	// control request) closes the sessions, evenly spaced but never more
	// than a hundredth of it apart (a node with few sessions drains at
	// once); it is cut to half the drain's deadline. Zero means
	// DefaultDrainSpread.
	DrainSpread time.Duration
	// DrainDeadline is the deadline of a drain that gives none; zero
	// means DefaultDrainDeadline.
	DrainDeadline time.Duration

	// QueueSize bounds a session's outbound queue; a session whose queue is
	// full is closed with <policy-violation/>. Zero means DefaultQueueSize.
	QueueSize int

	// Credentials fetches account credentials (the roster service).
	// Required.
	Credentials credentialSource
	// Sessions is the session registry (the presence service). Required.
	Sessions sessionRegistry
	// NATS carries stanzas to the routers and deliveries back. Required.
	NATS *nats.Conn
	// Subjects names the NATS subjects; the zero value means
	// bus.New("", 0).
	Subjects bus.Subjects
	// Stream tunes the route stream, which c2s creates at start when no
	// router has yet.
	Stream bus.StreamOptions
	// Logger receives the server's log; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the node's metrics; nil means none.
	Metrics *metrics.C2S
	// Tracer traces stanzas through the node; nil means off.
	Tracer *tracing.Tracer
}

// withDefaults validates c and fills in defaults. Errors name the setting.
func (c Config) withDefaults() (Config, error) {
	if c.Domain == "" {
		return c, fmt.Errorf("c2s: Config.Domain is required")
	}
	d, err := jid.Parse(c.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return c, fmt.Errorf("c2s: Config.Domain %q is not a domain name", c.Domain)
	}
	c.Domain = d.Domainpart()
	served := []string{c.Domain}
	for _, name := range c.Domains {
		d, err := jid.Parse(name)
		if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
			return c, fmt.Errorf("c2s: Config.Domains: %q is not a domain name", name)
		}
		if !slices.Contains(served, d.Domainpart()) {
			served = append(served, d.Domainpart())
		}
	}
	c.Domains = served
	if c.Node == "" {
		return c, fmt.Errorf("c2s: Config.Node is required")
	}
	if strings.ContainsAny(c.Node, ".*> \t\r\n") {
		return c, fmt.Errorf("c2s: Config.Node %q must be one NATS subject token (no '.', '*', '>' or spaces)", c.Node)
	}
	if c.Listen == "" && c.ListenDirectTLS == "" {
		return c, fmt.Errorf("c2s: Config.Listen or Config.ListenDirectTLS is required")
	}
	for name, addr := range map[string]string{"Listen": c.Listen, "ListenDirectTLS": c.ListenDirectTLS} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return c, fmt.Errorf("c2s: Config.%s %q: %w", name, addr, err)
		}
	}
	if c.TLS == nil {
		if c.ListenDirectTLS != "" {
			return c, fmt.Errorf("c2s: Config.TLS is required with Config.ListenDirectTLS")
		}
		if !c.TLSOptional {
			return c, fmt.Errorf("c2s: Config.TLS is required unless Config.TLSOptional is set")
		}
	} else if len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil {
		return c, fmt.Errorf("c2s: Config.TLS has no certificate")
	}
	if c.Mechanisms != nil {
		if len(c.Mechanisms) == 0 {
			return c, fmt.Errorf("c2s: Config.Mechanisms is empty (nil means the defaults)")
		}
		known := map[string]bool{sasl.ScramSHA1: true, sasl.ScramSHA1Plus: true, sasl.ScramSHA256: true,
			sasl.ScramSHA256Plus: true, sasl.Plain: true, sasl.DigestMD5: true}
		for _, m := range c.Mechanisms {
			if !known[m] {
				return c, fmt.Errorf("c2s: Config.Mechanisms: unknown mechanism %q", m)
			}
		}
	}
	if c.DigestMD5Realm != "" && c.DigestMD5Realm != c.Domain {
		return c, fmt.Errorf("c2s: Config.DigestMD5Realm %q: only the served domain %q is supported as the realm", c.DigestMD5Realm, c.Domain)
	}
	if c.Limits == (stream.Limits{}) {
		c.Limits = stream.DefaultLimits()
	}
	// Any other zero or negative field takes its default in the reader.
	switch {
	case c.MaxAuthFailures == 0:
		c.MaxAuthFailures = DefaultMaxAuthFailures
	case c.MaxAuthFailures < 0:
		return c, fmt.Errorf("c2s: Config.MaxAuthFailures is negative")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"NegotiationTimeout", &c.NegotiationTimeout, DefaultNegotiationTimeout},
		{"IdleTimeout", &c.IdleTimeout, DefaultIdleTimeout},
		{"KeepaliveInterval", &c.KeepaliveInterval, DefaultKeepaliveInterval},
		{"CloseTimeout", &c.CloseTimeout, DefaultCloseTimeout},
		{"PublishTimeout", &c.PublishTimeout, DefaultPublishTimeout},
		{"DrainSpread", &c.DrainSpread, DefaultDrainSpread},
		{"DrainDeadline", &c.DrainDeadline, DefaultDrainDeadline},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return c, fmt.Errorf("c2s: Config.%s is negative", d.name)
		}
	}
	if c.Abuse, err = c.Abuse.withDefaults(); err != nil {
		return c, err
	}
	switch {
	case c.QueueSize == 0:
		c.QueueSize = DefaultQueueSize
	case c.QueueSize < 0:
		return c, fmt.Errorf("c2s: Config.QueueSize is negative")
	}
	if c.Credentials == nil {
		return c, fmt.Errorf("c2s: Config.Credentials is required")
	}
	if c.Sessions == nil {
		return c, fmt.Errorf("c2s: Config.Sessions is required")
	}
	if c.NATS == nil {
		return c, fmt.Errorf("c2s: Config.NATS is required")
	}
	if c.Subjects.Prefix == "" || c.Subjects.Partitions <= 0 {
		c.Subjects = bus.New(c.Subjects.Prefix, c.Subjects.Partitions)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
