package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// target is how to reach the server under test and which accounts to use.
type target struct {
	addr      string
	domain    string
	users     string // account name pattern with one %d
	password  string // may hold %d too
	first     int    // number of the first account
	tlsMode   string // starttls, none, direct
	insecure  bool
	caFile    string
	mechanism string
	resource  string
	timeout   time.Duration // one login

	roots *x509.CertPool
	// scram keeps the salted passwords of SCRAM logins, shared by every
	// login of the run: the accounts' salts do not change between
	// logins, so the tool derives each once (RFC 5802 section 5.1).
	scram *sasl.ScramCache
}

// check validates the settings and loads the CA file.
func (t *target) check() error {
	switch t.tlsMode {
	case "starttls", "none", "direct":
	default:
		return fmt.Errorf("--tls %q: want starttls, none or direct", t.tlsMode)
	}
	if strings.Count(t.users, "%d") != 1 {
		return fmt.Errorf("--users %q: want exactly one %%d", t.users)
	}
	if _, err := jid.Parse(fmt.Sprintf(t.users, t.first) + "@" + t.domain); err != nil {
		return fmt.Errorf("--users %q with --domain %q: %v", t.users, t.domain, err)
	}
	if t.mechanism != "" {
		switch strings.ToUpper(t.mechanism) {
		case sasl.Plain, sasl.ScramSHA1, sasl.ScramSHA256, sasl.ScramSHA1Plus, sasl.ScramSHA256Plus:
			t.mechanism = strings.ToUpper(t.mechanism)
		default:
			return fmt.Errorf("--mechanism %q: want PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 or a -PLUS form", t.mechanism)
		}
	}
	t.scram = sasl.NewScramCache(0)
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return fmt.Errorf("--ca: %v", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no PEM certificate", t.caFile)
		}
	}
	return nil
}

// local returns the localpart of account i (0-based, offset by --first).
func (t *target) local(i int) string { return fmt.Sprintf(t.users, t.first+i) }

// jidOf returns the bare JID of account i.
func (t *target) jidOf(i int) jid.JID {
	return jid.MustParse(t.local(i) + "@" + t.domain)
}

// config returns the client configuration of account i.
func (t *target) config(i int, h func(*client.Client, *dom.Element) bool) client.Config {
	pw := t.password
	if strings.Contains(pw, "%d") {
		pw = fmt.Sprintf(pw, t.first+i)
	}
	cfg := client.Config{
		JID:                t.jidOf(i),
		Password:           pw,
		Resource:           t.resource,
		Addr:               t.addr,
		DirectTLS:          t.tlsMode == "direct",
		InsecureSkipVerify: t.insecure,
		Handler:            h,
		ScramCache:         t.scram,
		QueueLimit:         64,
		CloseTimeout:       2 * time.Second,
	}
	if t.roots != nil {
		cfg.TLSConfig = &tls.Config{RootCAs: t.roots}
	}
	if t.mechanism != "" {
		cfg.Mechanisms = []string{t.mechanism}
	}
	if t.tlsMode == "none" {
		// The whole session in the clear, even where STARTTLS is
		// offered; a server that requires it fails the login.
		cfg.AllowPlaintext = true
		cfg.AllowPLAINWithoutTLS = true
		cfg.DisableStartTLS = true
	}
	return cfg
}

// dial logs account i in, bounded by --timeout.
func (t *target) dial(ctx context.Context, i int, h func(*client.Client, *dom.Element) bool) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, err := client.Dial(ctx, t.config(i, h))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.jidOf(i), err)
	}
	return c, nil
}

// closeClient ends a session without waiting long for the server.
func closeClient(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
