package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/c2s"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"

	"go.opentelemetry.io/otel/trace"
)

// Default listen addresses of the command. They bind the loopback interface
// only: a first run has a self-signed certificate and whatever test
// accounts its operator made, and should not be reachable from the network
// until someone decides so (`--c2s-listen 0.0.0.0:5222`, or `:5222`).
const (
	DefaultC2SListen          = "127.0.0.1:5222"
	DefaultC2SDirectTLSListen = "127.0.0.1:5223"
)

// DefaultShutdownTimeout bounds a graceful stop.
const DefaultShutdownTimeout = 10 * time.Second

// DBFile is the name of the account database inside the data directory.
const DBFile = "switchboard.db"

// Config configures an App. The zero value of a field means its default,
// except for the optional listeners, where "" means "not listening".
type Config struct {
	// Domain is the XMPP domain served; default "localhost". It may list
	// several, comma-separated, as the --domain flag does; the first is
	// the default domain. Normalize leaves the first here and the whole
	// list in Domains.
	Domain string
	// Domains are further domains served (besides those of Domain). A
	// client names its domain in its stream header; the server presents
	// that domain's certificate (see CertDir).
	Domains []string
	// DataDir holds the account database and the self-signed certificates;
	// default "./data". It is created (mode 0700) when missing.
	DataDir string
	// C2SListen is the host:port of client streams with STARTTLS; default
	// DefaultC2SListen. Port 0 picks a free port (see C2SAddr).
	C2SListen string
	// C2SDirectTLSListen is the host:port of client streams with TLS from
	// the first byte (XEP-0368); "" or "off" disables it.
	C2SDirectTLSListen string
	// GRPCListen is an optional TCP host:port serving the same gRPC
	// services the process uses internally (accounts, credentials,
	// sessions, health). "" disables it. It has no authentication: bind it
	// to loopback or a private network.
	GRPCListen string
	// NATSListen is an optional TCP host:port of the embedded NATS server,
	// for tools outside the process; "" disables it.
	NATSListen string
	// MetricsListen is an optional HTTP host:port serving /healthz,
	// /readyz and /metrics; "" disables it.
	MetricsListen string
	// S2SListen is the host:port of server-to-server streams (5269 in
	// production); "" or "off" (the default) accepts none. Outbound
	// federation runs either way, but peers that authenticate by dialback
	// must reach this listener to verify our keys.
	S2SListen string
	// S2SHostMap maps remote domains to host:port, bypassing DNS.
	S2SHostMap map[string]string
	// S2SCAFile holds PEM roots for peer servers' certificates; empty
	// means the system roots. Peers with a valid certificate use SASL
	// EXTERNAL, others dialback.
	S2SCAFile string
	// AdminListen is the host:port of the admin API (gRPC over TLS, bearer
	// tokens); "" or "off" disables it. DefaultConfig sets
	// DefaultAdminListen.
	AdminListen string
	// AdminTokenFile holds the admin API's tokens; empty means
	// <DataDir>/admin-token, made with one new token on first start.
	AdminTokenFile string
	// AdminCertFile and AdminKeyFile are the admin port's certificate;
	// empty means a self-signed one made in DataDir (AdminCertBase).
	AdminCertFile, AdminKeyFile string
	// S2SMaxInboundPerIP bounds the inbound s2s streams from one address;
	// zero means the s2s default, negative no limit.
	S2SMaxInboundPerIP int
	// NodeID names this node on the bus; default the host name, with
	// characters other than letters, digits, '-' and '_' turned into '-'.
	NodeID string

	// TLSOptional lets clients skip STARTTLS. Off: TLS is required.
	TLSOptional bool
	// AllowPlaintextAuth offers PLAIN on unencrypted streams. Off.
	AllowPlaintextAuth bool
	// Legacy3DES enables TLS_RSA_WITH_3DES_EDE_CBC_SHA and an RSA
	// certificate for it. Off (see internal/tlsconf for why).
	Legacy3DES bool
	// DigestMD5 stores the DIGEST-MD5 hash of new passwords and offers the
	// mechanism. Off (RFC 6331 made it historic; the hash is
	// password-equivalent).
	DigestMD5 bool
	// Mechanisms lists the SASL mechanisms to offer, in preference order;
	// empty means the c2s default.
	Mechanisms []string

	// CertFile and KeyFile name a PEM certificate chain and key. Both or
	// neither; without them a self-signed certificate for Domain is made
	// in DataDir on first start and reused after.
	CertFile, KeyFile string
	// CertDir holds one certificate per domain, <CertDir>/<domain>/tls.crt
	// and tls.key, chosen by the name a client asks for (SNI) or its
	// stream's domain; the files, CertFile's included, are re-read when
	// they change (every CertReloadInterval). "" means none.
	CertDir string
	// CertReloadInterval is how often the certificate files are checked
	// for changes; zero means certs.DefaultReloadInterval.
	CertReloadInterval time.Duration

	// ShutdownTimeout bounds the graceful stop; default
	// DefaultShutdownTimeout. A stop first drains the clients within it,
	// then stops the services within it again.
	ShutdownTimeout time.Duration
	// DrainRedirect, when set, is the host[:port] the clients are sent to
	// with <see-other-host/> when the server stops; empty means
	// <system-shutdown/>.
	DrainRedirect string
	// DrainSpread is the period over which a drain closes the client
	// streams; zero means the c2s default.
	DrainSpread time.Duration

	// Client stream limits; zero means the c2s default.
	MaxStanzaBytes     int           // bytes of one stanza (default 256 KiB)
	MaxAuthFailures    int           // failed SASL attempts per stream (default 3)
	NegotiationTimeout time.Duration // from connect to bound resource (default 30s)
	IdleTimeout        time.Duration // no traffic from the client (default 5m)
	KeepaliveInterval  time.Duration // whitespace keepalive when idle (default 60s)

	// Abuse are the c2s abuse controls (connections per address and per
	// second, stanzas and bytes per session, failed logins); the zero
	// value means the c2s defaults.
	Abuse c2s.AbuseLimits

	// Logger receives the log of every service; nil means slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the spans of stanzas and gRPC calls
	// (internal/tracing); nil means no tracing.
	TracerProvider trace.TracerProvider
}

// DefaultConfig returns the configuration of `switchboard` run without
// flags: every listener the command opens by default is set.
func DefaultConfig() Config {
	return Config{
		Domain:             "localhost",
		DataDir:            "./data",
		C2SListen:          DefaultC2SListen,
		C2SDirectTLSListen: DefaultC2SDirectTLSListen,
		AdminListen:        DefaultAdminListen,
		NodeID:             DefaultNodeID(),
		ShutdownTimeout:    DefaultShutdownTimeout,
	}
}

// DefaultNodeID is the host name made safe for a NATS subject token, or
// "switchboard" when the host name is unknown.
func DefaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "switchboard"
	}
	return strings.Map(func(r rune) rune {
		if validNodeRune(r) {
			return r
		}
		return '-'
	}, h)
}

func validNodeRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// SettingError is a configuration value that is not valid. Setting names
// the field as the user wrote it (a flag, an environment variable or a
// Config field).
type SettingError struct {
	Setting string
	Value   string
	Err     error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.Setting, e.Value, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// Names of settings, used in SettingError. The command maps them to its
// flags and environment variables.
const (
	SettingDomain             = "Domain"
	SettingDataDir            = "DataDir"
	SettingC2SListen          = "C2SListen"
	SettingC2SDirectTLSListen = "C2SDirectTLSListen"
	SettingGRPCListen         = "GRPCListen"
	SettingNATSListen         = "NATSListen"
	SettingMetricsListen      = "MetricsListen"
	SettingNodeID             = "NodeID"
	SettingMechanisms         = "Mechanisms"
	SettingCertFile           = "CertFile"
	SettingKeyFile            = "KeyFile"
	SettingCertDir            = "CertDir"
	SettingCertReloadInterval = "CertReloadInterval"
	SettingShutdownTimeout    = "ShutdownTimeout"
	SettingDrainRedirect      = "DrainRedirect"
	SettingDrainSpread        = "DrainSpread"
	SettingMaxStanzaBytes     = "MaxStanzaBytes"
	SettingMaxAuthFailures    = "MaxAuthFailures"
	SettingNegotiationTimeout = "NegotiationTimeout"
	SettingIdleTimeout        = "IdleTimeout"
	SettingKeepaliveInterval  = "KeepaliveInterval"
)

// knownMechanisms are the SASL mechanisms c2s can offer.
var knownMechanisms = []string{
	sasl.ScramSHA256Plus, sasl.ScramSHA1Plus, sasl.ScramSHA256, sasl.ScramSHA1,
	sasl.Plain, sasl.DigestMD5,
}

// Normalize fills in defaults and checks every setting, returning the
// configuration New will use. Errors are *SettingError.
func (c Config) Normalize() (Config, error) {
	domains, err := normalizeDomains(c.Domain, c.Domains)
	if err != nil {
		return c, err
	}
	c.Domain, c.Domains = domains[0], domains
	if c.CertReloadInterval < 0 {
		return c, &SettingError{SettingCertReloadInterval, c.CertReloadInterval.String(), errors.New("negative")}
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.C2SListen == "" {
		c.C2SListen = DefaultC2SListen
	}
	if c.C2SDirectTLSListen == "off" {
		c.C2SDirectTLSListen = ""
	}
	for _, l := range []struct{ name, addr string }{
		{SettingC2SListen, c.C2SListen},
		{SettingC2SDirectTLSListen, c.C2SDirectTLSListen},
		{SettingGRPCListen, c.GRPCListen},
		{SettingNATSListen, c.NATSListen},
		{SettingMetricsListen, c.MetricsListen},
	} {
		if l.addr == "" {
			continue
		}
		if err := CheckListenAddr(l.addr); err != nil {
			return c, &SettingError{l.name, l.addr, err}
		}
	}
	if err := c.normalizeS2S(); err != nil {
		return c, err
	}
	if err := c.normalizeAdmin(); err != nil {
		return c, err
	}
	if c.NodeID == "" {
		c.NodeID = DefaultNodeID()
	}
	if err := CheckNodeID(c.NodeID); err != nil {
		return c, &SettingError{SettingNodeID, c.NodeID, err}
	}
	for _, m := range c.Mechanisms {
		if !contains(knownMechanisms, m) {
			return c, &SettingError{SettingMechanisms, strings.Join(c.Mechanisms, ","),
				fmt.Errorf("unknown mechanism %q (known: %s)", m, strings.Join(knownMechanisms, ", "))}
		}
		if m == sasl.DigestMD5 && !c.DigestMD5 {
			return c, &SettingError{SettingMechanisms, strings.Join(c.Mechanisms, ","),
				errors.New("DIGEST-MD5 is listed but the DIGEST-MD5 option is off")}
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		if c.CertFile == "" {
			return c, &SettingError{SettingCertFile, "", errors.New("a key file is set without a certificate file")}
		}
		return c, &SettingError{SettingKeyFile, "", errors.New("a certificate file is set without a key file")}
	}
	if c.ShutdownTimeout < 0 {
		return c, &SettingError{SettingShutdownTimeout, c.ShutdownTimeout.String(), errors.New("negative")}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.DrainRedirect != "" {
		if err := c2s.CheckRedirect(c.DrainRedirect); err != nil {
			return c, &SettingError{SettingDrainRedirect, c.DrainRedirect, err}
		}
	}
	if c.DrainSpread < 0 {
		return c, &SettingError{SettingDrainSpread, c.DrainSpread.String(), errors.New("negative")}
	}
	if c.MaxStanzaBytes < 0 || (c.MaxStanzaBytes > 0 && c.MaxStanzaBytes < 1024) {
		return c, &SettingError{SettingMaxStanzaBytes, fmt.Sprint(c.MaxStanzaBytes), errors.New("must be 0 (default) or at least 1024")}
	}
	if c.MaxAuthFailures < 0 {
		return c, &SettingError{SettingMaxAuthFailures, fmt.Sprint(c.MaxAuthFailures), errors.New("negative")}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{SettingNegotiationTimeout, c.NegotiationTimeout},
		{SettingIdleTimeout, c.IdleTimeout},
		{SettingKeepaliveInterval, c.KeepaliveInterval},
	} {
		if d.v < 0 {
			return c, &SettingError{d.name, d.v.String(), errors.New("negative")}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// normalizeDomains returns the domains of list (comma-separated) and more,
// checked, normalised and without repeats; "localhost" when there are none.
func normalizeDomains(list string, more []string) ([]string, error) {
	var out []string
	for _, d := range append(strings.Split(list, ","), more...) {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		n, err := CheckDomain(d)
		if err != nil {
			return nil, &SettingError{SettingDomain, d, err}
		}
		if !contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []string{"localhost"}
	}
	return out, nil
}

// ServesDomain reports whether d (normalised) is one of the domains of a
// normalised configuration.
func (c Config) ServesDomain(d string) bool { return contains(c.Domains, d) }

// CheckDomain checks that d is a domain-only JID and returns it normalised.
func CheckDomain(d string) (string, error) {
	j, err := jid.Parse(d)
	if err != nil {
		return "", err
	}
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return "", errors.New("not a bare domain (no '@' or '/')")
	}
	return j.Domainpart(), nil
}

// CheckListenAddr checks a host:port listen address; the host may be empty
// (all interfaces) and the port 0 (any free port).
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			msg := strings.TrimSuffix(ae.Err, " in address")
			if msg == "too many colons" {
				msg += " (write an IPv6 host in brackets: [::1]:5222)"
			}
			return errors.New(msg)
		}
		return err
	}
	if port == "" {
		return errors.New("missing port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil {
		if strings.ContainsAny(host, " /@") {
			return fmt.Errorf("bad host %q", host)
		}
	}
	return nil
}

// CheckNodeID checks that id can be used as one NATS subject token.
func CheckNodeID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	for _, r := range id {
		if !validNodeRune(r) {
			return fmt.Errorf("character %q not allowed (only letters, digits, '-' and '_')", r)
		}
	}
	return nil
}

// DBPath is the account database of a data directory, shared by the
// server and the `switchboard user` command.
func DBPath(dataDir string) string { return filepath.Join(dataDir, DBFile) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
