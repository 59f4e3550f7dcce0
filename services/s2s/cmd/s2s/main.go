// Command s2s runs one server-to-server node of a Switchboard cluster: it
// accepts streams from other XMPP servers on 5269 and publishes their
// stanzas for the routers, and it sends the stanzas the routers hand it
// for remote domains. Run `s2s --help` for the settings.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/certs"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/health"
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	"github.com/switchboard-xmpp/switchboard/internal/natsconn"
	"github.com/switchboard-xmpp/switchboard/internal/nodes"
	"github.com/switchboard-xmpp/switchboard/internal/tlsconf"
	"github.com/switchboard-xmpp/switchboard/services/s2s"
)

// secretFile is the dialback secret's file in --data-dir when none is
// given; the one-process binary uses the same name.
const secretFile = "s2s-dialback-secret"

type settings struct {
	domains        []string
	natsURL        string
	subjectPrefix  string
	listen         string
	certFile       string
	certDir        string
	legacy3DES     bool
	keyFile        string
	dataDir        string
	caFile         string
	secret         string
	secretFile     string
	hostMap        map[string]string
	allow, deny    []string
	refuseDialback bool
	verification   s2s.Verification
	idle           time.Duration
	maxPerIP       int
	leaseTTL       time.Duration
	healthListen   string
	node           string
	startup        time.Duration
	shutdown       time.Duration
	log            config.Log
}

func declare(s *settings) *config.Set {
	set := config.New("s2s", "Usage: s2s [flags]\n\nFederates the cluster's domains with other XMPP servers until SIGINT or SIGTERM.")
	set.Func("domain", "localhost", "XMPP domain(s) served, comma-separated", func(v string) error {
		s.domains = splitList(v)
		if len(s.domains) == 0 {
			return errors.New("names no domain")
		}
		return nil
	}).Required()
	s.domains = []string{"localhost"}
	set.String(&s.natsURL, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated; JetStream must be enabled").Required()
	set.String(&s.subjectPrefix, "subject-prefix", bus.DefaultPrefix, "prefix of every NATS subject of this deployment").Required()
	set.String(&s.listen, "s2s-listen", ":5269", "listen address of inbound server-to-server streams; off disables inbound").Required()
	set.String(&s.certFile, "cert-file", "", "PEM certificate chain presented to peers; empty: a self-signed one in --data-dir (peers then need dialback)")
	set.String(&s.keyFile, "key-file", "", "PEM private key of --cert-file").Check(func() error {
		if (s.certFile == "") != (s.keyFile == "") {
			return errors.New("--cert-file and --key-file go together")
		}
		return nil
	})
	set.String(&s.certDir, "cert-dir", "", "directory of one certificate per domain, <dir>/<domain>/tls.crt and tls.key (a Kubernetes TLS Secret mounted per domain), chosen by the name the peer asks for (SNI) or its stream's 'to'; re-read when changed")
	set.String(&s.dataDir, "data-dir", "./data", "directory of the self-signed certificate and of a generated dialback secret")
	set.String(&s.caFile, "ca-file", "", "PEM roots that peer certificates are checked against; empty: the system roots")
	set.String(&s.secret, "dialback-secret", "", "dialback secret shared by every s2s node of the domains (XEP-0185); prefer the variable or --dialback-secret-file, a flag shows in the process list").Secret()
	set.String(&s.secretFile, "dialback-secret-file", "", "file holding the dialback secret; with neither this nor --dialback-secret one is generated into --data-dir (one node only)")
	set.Func("host-map", "", "static addresses of peer domains, domain=host:port,... (bypasses DNS)", func(v string) error {
		m, err := parseHostMap(v)
		s.hostMap = m
		return err
	})
	set.Func("allow", "", "peer domains federated with, comma-separated; empty: all not denied", func(v string) error {
		s.allow = splitList(v)
		return nil
	})
	set.Func("deny", "", "peer domains refused, comma-separated", func(v string) error {
		s.deny = splitList(v)
		return nil
	})
	set.Bool(&s.legacy3DES, "legacy-3des", false, "also allow TLS_RSA_WITH_3DES_EDE_CBC_SHA with old peers (weak: no forward secrecy, 64-bit blocks); needs an RSA certificate, made self-signed when --cert-file is empty")
	set.Bool(&s.refuseDialback, "refuse-dialback", false, "accept only peers that authenticate with SASL EXTERNAL (a certificate valid for their domain)")
	set.Func("verify", "dialback-fallback", "peer certificate checks: dialback-fallback (an invalid certificate may be made up for by dialback) or required", func(v string) error {
		switch v {
		case "dialback-fallback":
			s.verification = s2s.VerifyDialbackFallback
		case "required":
			s.verification = s2s.VerifyRequired
		default:
			return errors.New("must be dialback-fallback or required")
		}
		return nil
	})
	set.Duration(&s.idle, "idle-timeout", s2s.DefaultIdleTimeout, "close a stream that carried nothing for this long")
	set.Int(&s.maxPerIP, "max-inbound-per-ip", s2s.DefaultMaxInboundPerIP, "inbound streams open at once from one IPv4 address or IPv6 /64; over it: policy-violation; 0: no limit").Check(func() error {
		if s.maxPerIP < 0 {
			return errors.New("negative (0 turns the limit off)")
		}
		return nil
	})
	set.Duration(&s.leaseTTL, "lease-ttl", s2s.DefaultLeaseTTL, "lifetime of a node's claim on a domain pair's outbound stream; a dead node's pairs move after it")
	set.String(&s.healthListen, "health-listen", ":8080", "HTTP listen address of /healthz, /readyz and /metrics").Required()
	set.NodeID(&s.node)
	set.Duration(&s.startup, "startup-timeout", 30*time.Second, "how long to wait for NATS at start")
	set.Duration(&s.shutdown, "shutdown-timeout", 15*time.Second, "how long a graceful stop may take")
	set.Logging(&s.log, "json")
	return set
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, env config.LookupEnv, stdout, stderr io.Writer) int {
	var s settings
	set := declare(&s)
	if _, err := set.Parse(args, env); err != nil {
		if errors.Is(err, config.ErrHelp) {
			set.Usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "s2s: %v\n", err)
		return 2
	}
	if s.maxPerIP == 0 {
		s.maxPerIP = -1 // off on the flag; the Config's zero is the default
	}
	if err := serve(ctx, set, &s, stderr); err != nil {
		fmt.Fprintf(stderr, "s2s: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, set *config.Set, s *settings, stderr io.Writer) error {
	log := s.log.Logger(stderr).With("service", "s2s", "node", s.node)
	if s.listen == "off" {
		s.listen = ""
	}
	// Without --cert-file, a self-signed certificate (with an RSA one for
	// the legacy suite) answers for the domains --cert-dir has none of.
	var static []tls.Certificate
	if s.certFile == "" {
		cert, err := loadCertificate(s)
		if err != nil {
			return set.Wrap("cert-file", err)
		}
		if static, err = certificates(s, cert); err != nil {
			return set.Wrap("legacy-3des", err)
		}
	}
	store, err := certs.NewStore(certs.StoreOptions{CertFile: s.certFile, KeyFile: s.keyFile, Dir: s.certDir, Static: static, Logger: log})
	if err != nil {
		if s.certDir != "" {
			return fmt.Errorf("--cert-file/--cert-dir: %w", err)
		}
		return set.Wrap("cert-file", err)
	}
	var roots *x509.CertPool
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return set.Wrap("ca-file", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return set.Errorf("ca-file", "no PEM certificate in %s", s.caFile)
		}
	}
	secret, where, err := loadSecret(s)
	if err != nil {
		return set.Wrap(where, err)
	}

	mx := metrics.New()
	nc, err := natsconn.Connect(ctx, log, s.natsURL, "switchboard-s2s-"+s.node, s.startup, mx.NATS().Client("s2s"))
	if err != nil {
		return set.Wrap("nats-url", err)
	}
	defer nc.Close()
	subjects := bus.New(s.subjectPrefix, bus.DefaultPartitions)
	leases, err := leaseBucket(ctx, log, nc, subjects, s.leaseTTL, s.startup)
	if err != nil {
		return set.Wrap("nats-url", err)
	}

	srv, err := s2s.New(s2s.Config{
		Domains:         s.domains,
		Node:            s.node,
		Listen:          s.listen,
		TLS:             tlsconf.Dynamic(store.GetCertificate, s.legacy3DES),
		RootCAs:         roots,
		Secret:          secret,
		HostMap:         s.hostMap,
		Allow:           s.allow,
		Deny:            s.deny,
		RefuseDialback:  s.refuseDialback,
		Verification:    s.verification,
		IdleTimeout:     s.idle,
		MaxInboundPerIP: s.maxPerIP,
		Leases:          leases,
		LeaseTTL:        s.leaseTTL,
		NATS:            nc,
		Metrics:         mx.S2S(),
		Subjects:        subjects,
		Logger:          log,
	})
	if err != nil {
		if strings.Contains(err.Error(), "Config.Listen") {
			return set.Wrap("s2s-listen", err)
		}
		return err
	}

	probe := health.New()
	probe.ServeMetrics(mx.Handler())
	probe.AddCheck("NATS", func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	})
	probe.AddCheck("s2s", func() error {
		select {
		case <-srv.Ready():
			return nil
		default:
			return errors.New("not taking outbound stanzas yet")
		}
	})
	p := &health.Process{Log: log, Probe: probe, ShutdownTimeout: s.shutdown}
	p.Go("s2s", srv.Run)
	status, err := nodes.New(nodes.Config{NATS: nc, Subjects: subjects, Service: "s2s", Node: s.node, Ready: probe.Ready, Logger: log,
		Connections: srv.StreamCount,
	})
	if err != nil {
		return err
	}
	p.Go("node status", status.Run)
	p.Go("certificates", func(ctx context.Context) error { store.Watch(ctx); return nil })
	p.OnStop("NATS", func(ctx context.Context) error { return natsconn.Drain(ctx, nc) })
	if p.HTTP, err = health.Listen(s.healthListen, probe); err != nil {
		return set.Wrap("health-listen", err)
	}
	// The secret itself is never logged; only where it came from.
	log.Info("starting", "health", p.HTTP.Addr().String(), "nats", s.natsURL, "subject_prefix", s.subjectPrefix,
		"domains", s.domains, "listen", s.listen, "dialback_secret_from", where, "self_signed", s.certFile == "",
		"lease_ttl", s.leaseTTL.String())
	return p.Run(ctx)
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseHostMap reads "domain=host:port,domain=host:port"; the service
// checks the names and addresses.
func parseHostMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range splitList(v) {
		d, addr, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(d) == "" || strings.TrimSpace(addr) == "" {
			return nil, fmt.Errorf("%q is not domain=host:port", kv)
		}
		m[strings.TrimSpace(d)] = strings.TrimSpace(addr)
	}
	return m, nil
}

// loadCertificate returns a self-signed certificate for the first domain
// (and the others) made once in the data directory, under a file lock so
// that nodes sharing the directory do not read each other's half-written
// key.
func loadCertificate(s *settings) (tls.Certificate, error) {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	unlock, err := lockDir(s.dataDir)
	if err != nil {
		return tls.Certificate{}, err
	}
	defer unlock()
	return certs.LoadOrCreate(s.dataDir, "selfsigned-s2s-"+s.domains[0]+"-ecdsa", s.domains, false)
}

// certificates is cert, plus a self-signed RSA certificate when the legacy
// 3DES suite is on and the operator gave no certificate (that suite's RSA
// key exchange needs one).
func certificates(s *settings, cert tls.Certificate) ([]tls.Certificate, error) {
	list := []tls.Certificate{cert}
	if !s.legacy3DES || s.certFile != "" {
		return list, nil
	}
	unlock, err := lockDir(s.dataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rsa, err := certs.LoadOrCreate(s.dataDir, "selfsigned-s2s-"+s.domains[0]+"-rsa", s.domains, true)
	if err != nil {
		return nil, err
	}
	return append(list, rsa), nil
}

// loadSecret returns the dialback secret and the setting it came from:
// the variable or flag, the file, or one generated into the data
// directory on first start. A generated secret suits one node, or nodes
// sharing the directory; a cluster gives every node the same secret.
func loadSecret(s *settings) (secret, where string, err error) {
	if s.secret != "" {
		return s.secret, "dialback-secret", nil
	}
	if s.secretFile != "" {
		b, err := os.ReadFile(s.secretFile)
		if err != nil {
			return "", "dialback-secret-file", err
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, "dialback-secret-file", nil
		}
		return "", "dialback-secret-file", errors.New("the file is empty")
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return "", "data-dir", err
	}
	unlock, err := lockDir(s.dataDir)
	if err != nil {
		return "", "data-dir", err
	}
	defer unlock()
	p := filepath.Join(s.dataDir, secretFile)
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), "data-dir", nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "data-dir", err
	}
	var r [32]byte
	rand.Read(r[:])
	v := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		return "", "data-dir", err
	}
	return v, "data-dir", nil
}

func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".s2s.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// leaseBucket makes or opens the bucket of the pairs' leases, waiting up
// to timeout for JetStream to answer.
func leaseBucket(ctx context.Context, log *slog.Logger, nc *nats.Conn, subjects bus.Subjects, ttl, timeout time.Duration) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	var kv jetstream.KeyValue
	err = health.Await(ctx, log, "JetStream lease bucket", subjects.S2SLeaseBucket(), timeout, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		kv, err = subjects.EnsureS2SLeaseBucket(cctx, js, ttl, bus.StreamOptions{})
		return err
	})
	return kv, err
}
