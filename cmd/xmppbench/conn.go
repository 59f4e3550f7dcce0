package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
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
		cfg.AllowPlaintext = true
		cfg.AllowPLAINWithoutTLS = true
		cfg.Dialer = plainDialer{&net.Dialer{}}
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

// plainDialer makes --tls none possible. The client library always takes
// STARTTLS when the server offers it (it has no "never TLS" setting), so
// the connection hides the <starttls/> element of the server's first
// stream features; a server that does not require TLS then goes on in the
// clear. Everything after that first features element passes untouched.
type plainDialer struct{ d *net.Dialer }

func (p plainDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &noStartTLSConn{Conn: c}, nil
}

// noStartTLSConn removes <starttls .../> (or <starttls ...>...</starttls>)
// from the first stream features the server sends.
type noStartTLSConn struct {
	net.Conn
	pending []byte // filtered bytes not yet handed to the reader
	passed  bool   // the first features are through: no more filtering
	in      []byte // bytes held back until the first features end
}

const maxHeld = 64 << 10

func (c *noStartTLSConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.passed {
		return c.Conn.Read(p)
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		if end := featuresEnd(c.in); end >= 0 || len(c.in) > maxHeld {
			if end < 0 {
				end = len(c.in)
			}
			c.pending = append(stripStartTLS(c.in[:end]), c.in[end:]...)
			c.in, c.passed = nil, true
			k := copy(p, c.pending)
			c.pending = c.pending[k:]
			return k, nil
		}
		if err != nil {
			// Hand over what we have; the reader sees the error next.
			c.pending, c.in, c.passed = c.in, nil, true
			k := copy(p, c.pending)
			c.pending = c.pending[k:]
			if k == 0 {
				return 0, err
			}
			return k, nil
		}
	}
}

// featuresEnd returns the index just past the end of the first stream
// features element in b (</stream:features> with any prefix, or an empty
// <...features/>), or -1.
func featuresEnd(b []byte) int {
	i := bytes.Index(b, []byte("features"))
	for i >= 0 {
		// Find the '<' that opened this tag.
		lt := bytes.LastIndexByte(b[:i], '<')
		gt := bytes.IndexByte(b[i:], '>')
		if lt >= 0 && gt >= 0 {
			tag := b[lt : i+gt+1]
			if bytes.HasPrefix(tag, []byte("</")) || bytes.HasSuffix(tag, []byte("/>")) {
				return i + gt + 1
			}
		}
		j := bytes.Index(b[i+8:], []byte("features"))
		if j < 0 {
			return -1
		}
		i += 8 + j
	}
	return -1
}

// stripStartTLS removes the starttls element from b.
func stripStartTLS(b []byte) []byte {
	i := bytes.Index(b, []byte("<starttls"))
	if i < 0 {
		return b
	}
	gt := bytes.IndexByte(b[i:], '>')
	if gt < 0 {
		return b
	}
	end := i + gt + 1
	if b[end-2] != '/' {
		closeTag := bytes.Index(b[end:], []byte("</starttls>"))
		if closeTag < 0 {
			return b
		}
		end += closeTag + len("</starttls>")
	}
	out := append([]byte{}, b[:i]...)
	return append(out, b[end:]...)
}
