package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/internal/config"
	"github.com/switchboard-xmpp/switchboard/internal/tracing"
	"github.com/switchboard-xmpp/switchboard/services/c2s"
	"github.com/switchboard-xmpp/switchboard/services/s2s"
)

// serveFlags binds the server's settings to flags. Each flag has an
// environment variable (see envName).
type serveFlags struct {
	fs    *flag.FlagSet
	cfg   app.Config
	log   logOptions
	field map[string]string // app setting name -> flag name
	file  string            // --config
}

func newServeFlags() *serveFlags {
	s := &serveFlags{cfg: app.DefaultConfig(), field: map[string]string{}}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c := &s.cfg
	str := func(p *string, name, setting, usage string) {
		fs.StringVar(p, name, *p, usage)
		if setting != "" {
			s.field[setting] = name
		}
	}
	str(&s.file, config.ConfigSetting, "", "YAML file of settings, one 'name: value' per line, names as the flags without '--'; flags and variables win over it")
	str(&c.Domain, "domain", app.SettingDomain, "XMPP domain(s) served, comma-separated; the first is the default")
	str(&c.DataDir, "data-dir", app.SettingDataDir, "directory of the account database and self-signed certificates")
	str(&c.C2SListen, "c2s-listen", app.SettingC2SListen, "client (STARTTLS) listen address, host:port; host empty or 0.0.0.0 for all interfaces")
	str(&c.C2SDirectTLSListen, "c2s-direct-tls-listen", app.SettingC2SDirectTLSListen, `client direct TLS (XEP-0368) listen address; "off" disables`)
	str(&c.GRPCListen, "grpc-listen", app.SettingGRPCListen, "TCP listen address of the internal gRPC services (no authentication); empty: off")
	str(&c.NATSListen, "nats-listen", app.SettingNATSListen, "TCP listen address of the embedded NATS server; empty: off")
	str(&c.MetricsListen, "metrics-listen", app.SettingMetricsListen, "HTTP listen address of /healthz, /readyz and /metrics; empty: off")
	str(&c.S2SListen, "s2s-listen", app.SettingS2SListen, "server-to-server listen address, host:port; empty: no inbound federation")
	fs.Func("s2s-host-map", "remote servers by domain, bypassing DNS: domain=host:port,...", func(v string) (err error) {
		c.S2SHostMap, err = app.ParseHostMap(v)
		return err
	})
	s.field[app.SettingS2SHostMap] = "s2s-host-map"
	str(&c.S2SCAFile, "s2s-ca-file", app.SettingS2SCAFile, "PEM roots for peer servers' certificates; empty: the system roots")
	str(&c.AdminListen, "admin-listen", app.SettingAdminListen, `admin API (gRPC over TLS, bearer tokens) listen address; "off" disables`)
	str(&c.AdminTokenFile, "admin-token-file", app.SettingAdminTokenFile, "admin API tokens, one per line; empty: <data-dir>/admin-token, made on first start")
	str(&c.AdminCertFile, "admin-cert-file", app.SettingAdminCertFile, "PEM certificate of the admin API; empty: self-signed, made in the data directory")
	str(&c.AdminKeyFile, "admin-key-file", app.SettingAdminKeyFile, "PEM private key of --admin-cert-file")
	c.S2SMaxInboundPerIP = s2s.DefaultMaxInboundPerIP
	fs.IntVar(&c.S2SMaxInboundPerIP, "s2s-max-inbound-per-ip", c.S2SMaxInboundPerIP, "inbound s2s streams open at once from one IPv4 address or IPv6 /64; over it: policy-violation; 0: no limit")
	str(&c.NodeID, "node-id", app.SettingNodeID, "name of this node on the bus (letters, digits, '-', '_')")
	fs.BoolVar(&c.TLSOptional, "tls-optional", false, "let clients skip STARTTLS (insecure; default: TLS required)")
	fs.BoolVar(&c.AllowPlaintextAuth, "allow-plaintext-auth", false, "offer PLAIN without TLS (insecure)")
	fs.BoolVar(&c.Legacy3DES, "legacy-3des", false, "enable TLS_RSA_WITH_3DES_EDE_CBC_SHA for old clients (weak)")
	fs.BoolVar(&c.DigestMD5, "digest-md5", false, "store DIGEST-MD5 hashes of new passwords and offer the mechanism (historic, weak)")
	fs.Var(listValue{&c.Mechanisms}, "mechanisms", "comma-separated SASL mechanisms to offer, in order; empty: the default set")
	s.field[app.SettingMechanisms] = "mechanisms"
	str(&c.CertFile, "cert-file", app.SettingCertFile, "PEM certificate chain; empty: self-signed, made in the data directory")
	str(&c.KeyFile, "key-file", app.SettingKeyFile, "PEM private key of --cert-file")
	str(&c.CertDir, "cert-dir", app.SettingCertDir, "directory of one certificate per domain, <dir>/<domain>/tls.crt and tls.key, chosen by the name a client asks for (SNI); empty: none")
	fs.DurationVar(&c.CertReloadInterval, "cert-reload-interval", 0, "how often certificate files are checked for changes; 0: 5s")
	s.field[app.SettingCertReloadInterval] = "cert-reload-interval"
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a graceful stop may take")
	s.field[app.SettingShutdownTimeout] = "shutdown-timeout"
	str(&c.DrainRedirect, "drain-redirect", app.SettingDrainRedirect, "at stop, send clients to this host[:port] with <see-other-host/>; empty: <system-shutdown/>")
	fs.DurationVar(&c.DrainSpread, "drain-spread", 0, "a drain closes the client streams one after the other over this period; 0: 5s")
	s.field[app.SettingDrainSpread] = "drain-spread"
	fs.IntVar(&c.MaxStanzaBytes, "max-stanza-bytes", 0, "largest stanza a client may send, in bytes; 0: 262144")
	s.field[app.SettingMaxStanzaBytes] = "max-stanza-bytes"
	fs.IntVar(&c.MaxAuthFailures, "max-auth-failures", 0, "failed SASL attempts before the stream is closed; 0: 3")
	s.field[app.SettingMaxAuthFailures] = "max-auth-failures"
	fs.DurationVar(&c.NegotiationTimeout, "negotiation-timeout", 0, "time a client has from connecting to binding a resource; 0: 30s")
	s.field[app.SettingNegotiationTimeout] = "negotiation-timeout"
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 0, "close a client stream after this long without traffic; 0: 5m")
	s.field[app.SettingIdleTimeout] = "idle-timeout"
	fs.DurationVar(&c.KeepaliveInterval, "keepalive-interval", 0, "whitespace keepalive interval on idle client streams; 0: 60s")
	s.field[app.SettingKeepaliveInterval] = "keepalive-interval"
	for _, l := range c.Abuse.LimitSettings() {
		if l.Int != nil {
			fs.IntVar(l.Int, l.Name, l.Default, l.Usage)
		} else {
			fs.DurationVar(l.Duration, l.Name, l.DefaultD, l.Usage)
		}
	}
	c.Abuse.Exempt, _ = c2s.ParseExempt(c2s.DefaultExempt)
	fs.Func("c2s-limit-exempt", `networks the per-address limits skip, comma-separated CIDR prefixes or addresses; "none": none (default "`+c2s.DefaultExempt+`")`,
		func(v string) (err error) {
			c.Abuse.Exempt, err = c2s.ParseExempt(v)
			return err
		})
	s.log.register(fs)
	s.fs = fs
	return s
}

func (s *serveFlags) names() []string {
	var n []string
	s.fs.VisitAll(func(f *flag.Flag) { n = append(n, f.Name) })
	return n
}

func (s *serveFlags) usage(w io.Writer) {
	fmt.Fprint(w, "Usage: switchboard [serve] [flags]\n\nRuns every service in one process until SIGINT or SIGTERM.\n\nFlags:\n")
	all := map[string]bool{}
	for _, n := range s.names() {
		all[n] = true
	}
	describe(w, s.fs, all)
}

// parseServe reads the server's configuration from args and the
// environment and checks it. Errors name the flag or variable they come
// from.
func parseServe(args []string, env lookupEnv) (app.Config, logOptions, error) {
	s := newServeFlags()
	pos, err := parseArgs(s.fs, args)
	if err != nil {
		return app.Config{}, logOptions{}, err
	}
	if len(pos) > 0 {
		return app.Config{}, logOptions{}, usagef("serve takes no arguments, got %q", pos[0])
	}
	source, err := applyEnv(s.fs, s.names(), env)
	if err != nil {
		return app.Config{}, logOptions{}, err
	}
	if s.file != "" {
		if err := applyConfigFile(s.fs, s.file, source, env); err != nil {
			return app.Config{}, logOptions{}, err
		}
	}
	for _, l := range s.cfg.Abuse.LimitSettings() {
		if err := l.Check(); err != nil {
			var v string
			if l.Int != nil {
				v = fmt.Sprint(*l.Int)
			} else {
				v = l.Duration.String()
			}
			return app.Config{}, logOptions{}, usageError{&app.SettingError{Setting: source[l.Name], Value: v, Err: err}}
		}
	}
	s.cfg.Abuse.FlagsDone()
	switch {
	case s.cfg.S2SMaxInboundPerIP < 0:
		return app.Config{}, logOptions{}, usageError{&app.SettingError{Setting: source["s2s-max-inbound-per-ip"],
			Value: fmt.Sprint(s.cfg.S2SMaxInboundPerIP), Err: errors.New("negative (0 turns the limit off)")}}
	case s.cfg.S2SMaxInboundPerIP == 0:
		s.cfg.S2SMaxInboundPerIP = -1
	}
	cfg, err := s.cfg.Normalize()
	if err != nil {
		return app.Config{}, logOptions{}, s.nameSetting(err, source)
	}
	return cfg, s.log, nil
}

// nameSetting turns an app.SettingError about a Config field into one about
// the flag or environment variable the value came from.
func (s *serveFlags) nameSetting(err error, source map[string]string) error {
	var se *app.SettingError
	if !errors.As(err, &se) {
		return err
	}
	name, ok := s.field[se.Setting]
	if !ok {
		return usageError{err}
	}
	return usageError{&app.SettingError{Setting: source[name], Value: se.Value, Err: se.Err}}
}

func serve(ctx context.Context, args []string, env lookupEnv, stdout, stderr io.Writer) error {
	cfg, lo, err := parseServe(args, env)
	if errors.Is(err, flag.ErrHelp) {
		newServeFlags().usage(stdout)
		return err
	}
	if err != nil {
		return err
	}
	cfg.Logger = lo.logger(stderr)
	// Spans are exported only when the standard OTLP variables ask.
	tp, stopTracing, err := tracing.Setup(ctx, "switchboard")
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	cfg.TracerProvider = tp
	a, err := app.New(cfg)
	if err != nil {
		var se *app.SettingError
		if errors.As(err, &se) {
			// A listener that cannot bind, or an unreadable certificate:
			// name the flag, but it is not a usage mistake.
			s := newServeFlags()
			if name, ok := s.field[se.Setting]; ok {
				return &app.SettingError{Setting: "--" + name, Value: se.Value, Err: se.Err}
			}
		}
		return err
	}
	return a.Run(ctx)
}
