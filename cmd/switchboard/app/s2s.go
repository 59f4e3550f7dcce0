package app

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/internal/tlsconf"
	"github.com/switchboard-xmpp/switchboard/services/s2s"
)

// Settings of federation.
const (
	SettingS2SListen  = "S2SListen"
	SettingS2SHostMap = "S2SHostMap"
	SettingS2SCAFile  = "S2SCAFile"
)

// SecretFile is the dialback secret's file in the data directory, made on
// first start: every process that serves the domain must share it.
const SecretFile = "s2s-dialback-secret"

// federation is the s2s service of an App.
type federation struct {
	srv  *s2s.Server
	nc   *nats.Conn
	done chan struct{}
}

// ParseHostMap reads "domain=host:port,domain=host:port".
func ParseHostMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		d, addr, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not domain=host:port", kv)
		}
		dom, err := CheckDomain(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("domain %q: %w", d, err)
		}
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("address %q of %s: %w", addr, dom, err)
		}
		m[dom] = addr
	}
	return m, nil
}

// normalizeS2S checks the federation settings.
func (c *Config) normalizeS2S() error {
	if c.S2SListen == "off" {
		c.S2SListen = ""
	}
	if c.S2SListen != "" {
		if err := CheckListenAddr(c.S2SListen); err != nil {
			return &SettingError{SettingS2SListen, c.S2SListen, err}
		}
	}
	for d, addr := range c.S2SHostMap {
		if _, err := CheckDomain(d); err != nil {
			return &SettingError{SettingS2SHostMap, d + "=" + addr, err}
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return &SettingError{SettingS2SHostMap, d + "=" + addr, err}
		}
	}
	return nil
}

// loadSecret returns the dialback secret of the data directory, making it
// on first start.
func loadSecret(dir string) (string, error) {
	p := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var r [32]byte
	rand.Read(r[:])
	s := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// buildS2S makes the s2s service: outbound always (the routers hand it
// every remote stanza), inbound when S2SListen is set. Its certificates
// are c2s's: each domain's own, self-signed on a first run, which dialback
// accepts.
func (a *App) buildS2S(subjects bus.Subjects) (*federation, error) {
	cfg := a.cfg
	secret, err := loadSecret(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("dialback secret: %w", err)
	}
	var roots *x509.CertPool
	if cfg.S2SCAFile != "" {
		pem, err := os.ReadFile(cfg.S2SCAFile)
		if err != nil {
			return nil, &SettingError{SettingS2SCAFile, cfg.S2SCAFile, err}
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &SettingError{SettingS2SCAFile, cfg.S2SCAFile, errors.New("no PEM certificate in it")}
		}
	}
	f := &federation{done: make(chan struct{})}
	f.nc, err = a.nats.Connect(append(a.nm.Client("s2s").Options(), nats.Name("switchboard-s2s-"+cfg.NodeID))...)
	if err != nil {
		return nil, fmt.Errorf("NATS connection for s2s: %w", err)
	}
	a.onClose("s2s NATS connection", drainer(f.nc))
	f.srv, err = s2s.New(s2s.Config{
		Domains:         cfg.Domains,
		Node:            cfg.NodeID + "-s2s",
		Listen:          cfg.S2SListen,
		TLS:             tlsconf.Dynamic(a.certs.GetCertificate, cfg.Legacy3DES),
		RootCAs:         roots,
		Secret:          secret,
		HostMap:         maps.Clone(cfg.S2SHostMap),
		MaxInboundPerIP: cfg.S2SMaxInboundPerIP,
		NATS:            f.nc,
		Subjects:        subjects,
		Logger:          a.log,
		Metrics:         a.metrics.S2S(),
	})
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "listen" {
			return nil, &SettingError{SettingS2SListen, cfg.S2SListen, oe.Err}
		}
		return nil, err
	}
	a.onClose("s2s", func(ctx context.Context) error {
		select {
		case <-f.done:
			return nil // Run stopped it
		default:
		}
		done, cancel := context.WithCancel(ctx)
		cancel()
		return f.srv.Run(done) // closes the listener and returns
	})
	if addr := f.srv.Addr(); addr != nil {
		a.log.Info("s2s listening", "addr", addr.String())
	}
	return f, nil
}

// run starts s2s; stop ends it and waits.
func (f *federation) run(errc chan<- error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(f.done)
		if err := f.srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("s2s: %w", err)
		}
	}()
	return func() { cancel(); <-f.done }
}

// S2SAddr is the address of the s2s listener, or nil.
func (a *App) S2SAddr() net.Addr {
	if a.fed == nil {
		return nil
	}
	return a.fed.srv.Addr()
}
