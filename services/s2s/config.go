package s2s

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Defaults of the settings a zero Config leaves open.
const (
	// DefaultPort is the s2s port of RFC 6120 section 14.7, used when a
	// domain has no SRV record and no host map entry.
	DefaultPort = "5269"
	// DefaultConnectTimeout bounds an outbound attempt from the first
	// DNS query to an authenticated stream; stanzas waiting for it are
	// then bounced with <remote-server-timeout/>.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultNegotiationTimeout bounds an inbound stream from the TCP
	// accept until it carries its first authenticated domain.
	DefaultNegotiationTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a stream, in either direction, that
	// carried nothing for that long. Servers reopen streams on demand, so
	// a short idle time costs one handshake and saves sockets.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultQueueSize bounds the stanzas waiting for one outbound stream;
	// past it new stanzas are bounced with <resource-constraint/>.
	DefaultQueueSize = 1024
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before a new
	// attempt to a domain whose last attempt failed; the wait doubles per
	// failure, with up to 50% random jitter added.
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultMaxInboundPerIP bounds the inbound streams open at once from
	// one address. A peer needs one per domain pair, plus short dialback
	// verification streams; a whole peer cluster behind one NAT stays
	// well under it.
	DefaultMaxInboundPerIP = 32
)

// Verification is how strictly peer certificates are judged.
type Verification int

const (
	// VerifyDialbackFallback (the default) accepts a peer whose
	// certificate is not valid for its domain (self-signed, expired, wrong
	// name) when dialback proves the domain instead, as XEP-0220 and
	// XEP-0344 allow; a valid certificate is used for SASL EXTERNAL.
	VerifyDialbackFallback Verification = iota
	// VerifyRequired refuses a peer whose certificate is not valid for
	// its domain, in both directions: no dialback without a valid
	// certificate.
	VerifyRequired
)

// Config configures a Server.
type Config struct {
	// Domains are the domains served here, the first being the default.
	// Required.
	Domains []string
	// Node is this process's node id, unique in the cluster; it is the
	// origin node of the stanzas s2s publishes. Required.
	Node string
	// Listen is the host:port of the inbound listener (":5269" in
	// production); "" turns inbound off.
	Listen string
	// TLS is the TLS configuration presented to peers (server side) and
	// used for our own certificate as a client. Required: RFC 6120
	// section 5.1 makes TLS mandatory to implement, and s2s streams are
	// always encrypted here.
	TLS *tls.Config
	// RootCAs are the roots peer certificates are checked against; nil
	// means the system roots.
	RootCAs *x509.CertPool
	// Secret is the dialback secret (XEP-0185), shared by every s2s
	// process of these domains. Required.
	Secret string
	// HostMap maps a remote domain to host:port, bypassing DNS: for
	// domains without SRV records, and for tests.
	HostMap map[string]string
	// Allow, when not empty, lists the only remote domains federated
	// with; Deny lists domains refused. Both directions.
	Allow, Deny []string
	// RefuseDialback turns the acceptance of dialback off (inbound), so
	// only peers that authenticate with SASL EXTERNAL are accepted. The
	// zero value accepts dialback: two servers with self-signed
	// certificates federate out of the box.
	RefuseDialback bool
	// Verification is how peer certificates are judged; the zero value
	// is VerifyDialbackFallback.
	Verification Verification
	// Timeouts; zero means the Default of the same name.
	ConnectTimeout     time.Duration
	NegotiationTimeout time.Duration
	IdleTimeout        time.Duration
	MinBackoff         time.Duration
	MaxBackoff         time.Duration
	// QueueSize bounds one outbound stream's waiting stanzas; zero means
	// DefaultQueueSize.
	QueueSize int
	// MaxInboundPerIP bounds the inbound streams open at once from one
	// IPv4 address or IPv6 /64 (internal/limits.IPKey); a connection over
	// it gets our header and the <policy-violation/> stream error (RFC
	// 6120 section 4.9.3.13) at once. Zero means DefaultMaxInboundPerIP,
	// negative no limit.
	MaxInboundPerIP int
	// Limits bound what one peer can make a stream reader hold.
	Limits stream.Limits
	// Resolver resolves SRV records and addresses; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
	// Leases, when set, is the bucket of bus.Subjects.EnsureS2SLeaseBucket
	// and turns on the cluster mode: every pod of the deployment receives
	// every outbound stanza and sends only those of the (local, remote)
	// pairs whose lease it holds, so one stream per pair is open across
	// the pods and one sender's stanzas leave in order. Nil (one process):
	// the pods share the outbound subject in a queue group.
	Leases jetstream.KeyValue
	// LeaseTTL is the lifetime of a lease without renewal, the bucket's
	// TTL; zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// NATS carries stanzas to the routers and from them. Required.
	NATS *nats.Conn
	// Subjects names the NATS subjects; the zero value means
	// bus.New("", 0).
	Subjects bus.Subjects
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the service's metrics; nil means none.
	Metrics *metrics.S2S
}

// withDefaults validates c and fills in defaults. Errors name the setting.
func (c Config) withDefaults() (Config, error) {
	if len(c.Domains) == 0 {
		return c, fmt.Errorf("s2s: Config.Domains is required")
	}
	ds := make([]string, 0, len(c.Domains))
	for _, d := range c.Domains {
		p, err := prepDomain(d)
		if err != nil {
			return c, fmt.Errorf("s2s: Config.Domains: %w", err)
		}
		ds = append(ds, p)
	}
	c.Domains = ds
	if c.Node == "" || strings.ContainsAny(c.Node, ".*> \t\r\n") {
		return c, fmt.Errorf("s2s: Config.Node %q must be one NATS subject token", c.Node)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return c, fmt.Errorf("s2s: Config.Listen %q: %w", c.Listen, err)
		}
	}
	if c.TLS == nil || len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
		return c, fmt.Errorf("s2s: Config.TLS with a certificate is required")
	}
	if c.Secret == "" {
		return c, fmt.Errorf("s2s: Config.Secret (the dialback secret) is required")
	}
	if c.MaxInboundPerIP == 0 {
		c.MaxInboundPerIP = DefaultMaxInboundPerIP
	}
	hm := make(map[string]string, len(c.HostMap))
	for d, addr := range c.HostMap {
		p, err := prepDomain(d)
		if err != nil {
			return c, fmt.Errorf("s2s: Config.HostMap: %w", err)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return c, fmt.Errorf("s2s: Config.HostMap[%s] %q: %w", d, addr, err)
		}
		hm[p] = addr
	}
	c.HostMap = hm
	for _, l := range []*[]string{&c.Allow, &c.Deny} {
		out := (*l)[:0:0]
		for _, d := range *l {
			p, err := prepDomain(d)
			if err != nil {
				return c, fmt.Errorf("s2s: Config.Allow/Deny: %w", err)
			}
			out = append(out, p)
		}
		*l = out
	}
	if c.NATS == nil {
		return c, fmt.Errorf("s2s: Config.NATS is required")
	}
	if c.Subjects.Prefix == "" {
		c.Subjects = bus.New("", 0)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.NegotiationTimeout, DefaultNegotiationTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.LeaseTTL, DefaultLeaseTTL)
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// prepDomain prepares a domain name (RFC 7622) and refuses anything else.
func prepDomain(d string) (string, error) {
	j, err := jid.Parse(d)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return "", fmt.Errorf("%q is not a domain name", d)
	}
	return j.Domainpart(), nil
}

// ours reports whether d is one of our domains.
func (c *Config) ours(d string) bool { return slices.Contains(c.Domains, d) }

// permitted applies the allow and deny lists to a remote domain.
func (c *Config) permitted(d string) bool {
	if slices.Contains(c.Deny, d) {
		return false
	}
	return len(c.Allow) == 0 || slices.Contains(c.Allow, d)
}
