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
// the connection hides the <starttls/> element of the stream features the
// server sends during negotiation: before authentication and after it
// (Prosody offers STARTTLS again on the restarted stream). A server that
// does not require TLS then goes on in the clear. Once filteredFeatures
// features elements have gone by, bytes pass untouched.
type plainDialer struct{ d *net.Dialer }

func (p plainDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &noStartTLSConn{Conn: c}, nil
}

// filteredFeatures is how many stream features elements are filtered:
// the one before SASL and the one after.
const filteredFeatures = 2

// noStartTLSConn removes <starttls .../> (or <starttls ...>...</starttls>)
// from the first filteredFeatures stream features elements.
type noStartTLSConn struct {
	net.Conn
	out    []byte // filtered bytes not yet handed to the reader
	in     []byte // bytes read but not yet filtered: a features element or a tag in pieces
	seen   int    // features elements filtered so far
	passed bool   // no more filtering
}

// maxHeld bounds what is held back waiting for the end of a features
// element; past it the bytes go through unfiltered.
const maxHeld = 64 << 10

func (c *noStartTLSConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.passed {
			if len(c.in) > 0 {
				c.out, c.in = c.in, nil
				break
			}
			return c.Conn.Read(p)
		}
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		c.filter()
		if err != nil {
			c.out = append(c.out, c.in...)
			c.in, c.passed = nil, true
			if len(c.out) == 0 {
				return 0, err
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// filter moves from in to out everything that is known not to be, or is a
// complete, features element, with starttls removed from the latter.
func (c *noStartTLSConn) filter() {
	for !c.passed {
		start := featuresStart(c.in)
		if start < 0 {
			// Hold back a tag cut in two, which may be a features start tag.
			keep := len(c.in)
			if lt := bytes.LastIndexByte(c.in, '<'); lt >= 0 && bytes.IndexByte(c.in[lt:], '>') < 0 {
				keep = lt
			}
			if len(c.in)-keep > maxHeld {
				keep = len(c.in)
			}
			c.out = append(c.out, c.in[:keep]...)
			c.in = append([]byte(nil), c.in[keep:]...)
			return
		}
		c.out = append(c.out, c.in[:start]...)
		c.in = c.in[start:]
		end := featuresEnd(c.in)
		if end < 0 {
			if len(c.in) > maxHeld {
				c.out = append(c.out, c.in...)
				c.in, c.passed = nil, true
			}
			return
		}
		c.out = append(c.out, stripStartTLS(c.in[:end])...)
		c.in = c.in[end:]
		c.seen++
		if c.seen >= filteredFeatures {
			c.out = append(c.out, c.in...)
			c.in, c.passed = nil, true
		}
	}
}

// featuresStart returns the index of the '<' that opens the first stream
// features element in b (<stream:features> with any prefix), or -1.
func featuresStart(b []byte) int {
	from := 0
	for {
		i := bytes.Index(b[from:], []byte("features"))
		if i < 0 {
			return -1
		}
		i += from
		lt := bytes.LastIndexByte(b[:i], '<')
		if lt >= 0 && b[lt+1] != '/' && bytes.IndexAny(b[lt:i], " >/") < 0 {
			return lt
		}
		from = i + len("features")
	}
}

// featuresEnd returns the index just past the end of the features
// element that b starts with (its end tag, </features> with any prefix, or
// the start tag itself when it is empty), or -1 while that end is not in b.
// Other elements inside may mention "features" in their namespaces.
func featuresEnd(b []byte) int {
	gt := bytes.IndexByte(b, '>')
	if gt < 0 {
		return -1
	}
	if b[gt-1] == '/' {
		return gt + 1
	}
	for from := gt + 1; ; {
		j := bytes.Index(b[from:], []byte("</"))
		if j < 0 {
			return -1
		}
		j += from
		end := bytes.IndexByte(b[j:], '>')
		if end < 0 {
			return -1
		}
		name := bytes.TrimSpace(b[j+2 : j+end])
		if string(name) == "features" || bytes.HasSuffix(name, []byte(":features")) {
			return j + end + 1
		}
		from = j + end + 1
	}
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
