package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the files of one domain in a certificate directory: the names
// Kubernetes gives the keys of a TLS Secret (type kubernetes.io/tls), which
// cert-manager writes, so a Secret mounted at <dir>/<domain> is read as is.
const (
	DirCertFile = "tls.crt"
	DirKeyFile  = "tls.key"
)

// DefaultReloadInterval is how often Store.Watch looks at the files when
// StoreOptions.ReloadInterval is zero.
const DefaultReloadInterval = 5 * time.Second

// StoreOptions configures a Store.
type StoreOptions struct {
	// CertFile and KeyFile are the default certificate chain and key
	// (PEM), presented when no certificate of the directory fits the name
	// a client asked for. Both or neither.
	CertFile, KeyFile string
	// Dir holds one certificate per domain: <Dir>/<domain>/tls.crt and
	// <Dir>/<domain>/tls.key. Entries whose names start with '.' and
	// directories without those two files are ignored. "" means none.
	Dir string
	// Static are fixed certificates presented after the files: the
	// self-signed ones made when no file is configured, or the RSA one the
	// legacy 3DES suite needs. They are matched by the names they are
	// valid for, and the first is the last resort.
	Static []tls.Certificate
	// ReloadInterval is Watch's polling period; zero means
	// DefaultReloadInterval.
	ReloadInterval time.Duration
	// Logger receives reloads and reload errors; nil means slog.Default().
	Logger *slog.Logger
}

// Store holds the certificates a TLS server presents, chooses one per
// handshake by the name the client asked for (SNI), and reloads the files
// when their content changes.
//
// Reloading polls: Watch reads the files every ReloadInterval and compares
// a hash of their content with the last one seen. Kubernetes updates a
// mounted Secret by swapping a symbolic link to a new directory, which
// file-change notifications on the old path do not report, while a read
// through the path always sees the current content. A pair that fails to
// load (a half-written file, a key that does not match) leaves the
// certificate in use unchanged and is logged; it is tried again when the
// content changes once more. New handshakes use what is current; a
// connection keeps the certificate it was made with.
type Store struct {
	opts StoreOptions
	log  *slog.Logger

	mu   sync.Mutex           // serialises Reload
	seen map[string][32]byte  // source -> hash of the content last tried
	cur  atomic.Pointer[snap] // what handshakes use
}

// snap is one immutable state of a Store.
type snap struct {
	def    *tls.Certificate            // from CertFile; nil without one
	byName map[string]*tls.Certificate // the directory's, by domain
	names  []string                    // byName's keys, sorted
}

// source names a certificate in seen: "" for the default pair, else the
// domain of a directory entry.
const defaultSource = ""

// NewStore loads every configured certificate. At start any file that
// cannot be loaded is an error: a server does not begin with a certificate
// missing.
func NewStore(opts StoreOptions) (*Store, error) {
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("certs: a certificate file and its key file go together")
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Static = slices.Clone(opts.Static)
	for i := range opts.Static {
		if err := setLeaf(&opts.Static[i]); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts, log: opts.Logger, seen: map[string][32]byte{}}
	s.cur.Store(&snap{byName: map[string]*tls.Certificate{}})
	if errs := s.reload(true); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if s.empty() {
		return nil, errors.New("certs: no certificate: give a certificate file, a directory with one, or a static one")
	}
	return s, nil
}

func (s *Store) empty() bool {
	c := s.cur.Load()
	return c.def == nil && len(c.byName) == 0 && len(s.opts.Static) == 0
}

// Reload reads the files once and takes every pair whose content changed
// and loads; it returns the errors of those that did not (each also
// logged). Watch calls it periodically; tests call it directly.
func (s *Store) Reload() []error { return s.reload(false) }

func (s *Store) reload(initial bool) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := &snap{def: old.def, byName: make(map[string]*tls.Certificate, len(old.byName))}
	var errs []error
	changed := false
	fail := func(source string, err error) {
		errs = append(errs, err)
		if !initial {
			if source == defaultSource {
				s.log.Error("certificate not reloaded; the previous one stays in use", "err", err)
			} else {
				s.log.Error("certificate not reloaded; the previous one stays in use", "domain", source, "err", err)
			}
		}
	}

	if s.opts.CertFile != "" {
		c, ok, err := s.load(defaultSource, s.opts.CertFile, s.opts.KeyFile)
		switch {
		case err != nil:
			fail(defaultSource, err)
		case ok:
			next.def, changed = c, true
			if !initial {
				s.log.Info("certificate reloaded", "file", s.opts.CertFile, "names", leafNames(c))
			}
		}
	}

	if s.opts.Dir != "" {
		domains, err := dirDomains(s.opts.Dir)
		if err != nil {
			// The directory itself is unreadable: keep what we have.
			fail(defaultSource, err)
			copyCerts(next.byName, old.byName)
		}
		present := map[string]bool{}
		for _, e := range domains {
			d := e.domain
			present[d] = true
			base := filepath.Join(s.opts.Dir, e.dir)
			c, ok, err := s.load(d, filepath.Join(base, DirCertFile), filepath.Join(base, DirKeyFile))
			switch {
			case err != nil:
				fail(d, err)
				if prev := old.byName[d]; prev != nil {
					next.byName[d] = prev
				}
			case ok:
				next.byName[d], changed = c, true
				if !initial {
					s.log.Info("certificate reloaded", "domain", d, "names", leafNames(c))
				}
			default:
				next.byName[d] = old.byName[d]
			}
		}
		if err == nil {
			for d := range old.byName {
				if !present[d] {
					// The domain's directory is gone (not merely
					// broken): its certificate goes too.
					changed = true
					delete(s.seen, d)
					s.log.Warn("certificate directory removed; its certificate is no longer presented", "domain", d)
				}
			}
		}
	}
	for d, c := range next.byName {
		if c == nil {
			delete(next.byName, d)
			continue
		}
		next.names = append(next.names, d)
	}
	slices.Sort(next.names)
	if changed || initial {
		s.cur.Store(next)
	}
	return errs
}

func copyCerts(dst, src map[string]*tls.Certificate) {
	for k, v := range src {
		dst[k] = v
	}
}

// load reads a pair and parses it when its content differs from the last
// content tried for source. ok reports a new certificate; an unchanged
// content gives (nil, false, nil).
func (s *Store) load(source, certFile, keyFile string) (*tls.Certificate, bool, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, false, fmt.Errorf("certs: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, false, fmt.Errorf("certs: %w", err)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if prev, ok := s.seen[source]; ok && prev == sum {
		return nil, false, nil
	}
	// Remember the content even when it does not load, so that a broken
	// file is reported once, not at every poll.
	s.seen[source] = sum
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, false, fmt.Errorf("certs: %s with %s: %w", certFile, keyFile, err)
	}
	if err := setLeaf(&c); err != nil {
		return nil, false, fmt.Errorf("certs: %s: %w", certFile, err)
	}
	return &c, true, nil
}

// dirEntry is a domain of a certificate directory and the name of its
// directory there.
type dirEntry struct{ domain, dir string }

// dirDomains lists the domains of a certificate directory: the entries
// that are directories (or links to them) holding one of the files. Domains
// are the names lower-cased; entries starting with '.' are skipped.
func dirDomains(dir string) ([]dirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var out []dirEntry
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		base := filepath.Join(dir, name)
		if st, err := os.Stat(base); err != nil || !st.IsDir() {
			continue
		}
		_, errC := os.Stat(filepath.Join(base, DirCertFile))
		_, errK := os.Stat(filepath.Join(base, DirKeyFile))
		if errC != nil && errK != nil {
			continue // not a certificate directory
		}
		out = append(out, dirEntry{domain: strings.ToLower(name), dir: name})
	}
	return out, nil
}

// setLeaf parses the leaf certificate of c when crypto/tls has not.
func setLeaf(c *tls.Certificate) error {
	if c.Leaf != nil {
		return nil
	}
	if len(c.Certificate) == 0 {
		return errors.New("certs: a certificate without a chain")
	}
	l, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	c.Leaf = l
	return nil
}

func leafNames(c *tls.Certificate) []string {
	if c.Leaf == nil {
		return nil
	}
	n := slices.Clone(c.Leaf.DNSNames)
	for _, ip := range c.Leaf.IPAddresses {
		n = append(n, ip.String())
	}
	return n
}

// Watch reloads every ReloadInterval until ctx ends.
func (s *Store) Watch(ctx context.Context) {
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// candidates lists the certificates that may answer name, best first: the
// directory's entry named so, then those of the directory valid for the
// name, the default pair, the static certificates valid for it, and the
// other static ones.
func (s *Store) candidates(name string) []*tls.Certificate {
	name = normalizeName(name)
	c := s.cur.Load()
	var out []*tls.Certificate
	if name != "" {
		if e := c.byName[name]; e != nil {
			out = append(out, e)
		}
		for _, d := range c.names {
			if d != name && c.byName[d].Leaf.VerifyHostname(name) == nil {
				out = append(out, c.byName[d])
			}
		}
	}
	if c.def != nil {
		out = append(out, c.def)
	}
	var rest []*tls.Certificate
	for i := range s.opts.Static {
		st := &s.opts.Static[i]
		if name != "" && st.Leaf.VerifyHostname(name) == nil {
			out = append(out, st)
		} else {
			rest = append(rest, st)
		}
	}
	return append(out, rest...)
}

func normalizeName(n string) string {
	return strings.ToLower(strings.TrimSuffix(n, "."))
}

// Certificate returns the certificate presented for name, or nil when
// the store has none (it always has one after NewStore).
func (s *Store) Certificate(name string) *tls.Certificate {
	c := s.candidates(name)
	if len(c) == 0 {
		return nil
	}
	return c[0]
}

// GetCertificate is a tls.Config.GetCertificate: the first candidate for
// the hello's server name that the client supports (for example the RSA
// certificate for a client that offers only an RSA key exchange), else the
// best candidate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Choose(hello, hello.ServerName)
}

// Choose is GetCertificate for name instead of the hello's server name:
// for a server that knows the name some other way (an XMPP stream header
// read before STARTTLS) when the client sent none.
func (s *Store) Choose(hello *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
	cands := s.candidates(name)
	if len(cands) == 0 {
		return nil, errors.New("certs: no certificate")
	}
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return cands[0], nil
}

// Domains lists the domains of the certificate directory, sorted.
func (s *Store) Domains() []string {
	return slices.Clone(s.cur.Load().names)
}
