package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writePair writes a new self-signed pair for names as certFile and
// keyFile, each through a temporary file renamed over the old one, and
// returns the certificate's DER.
func writePair(t *testing.T, certFile, keyFile string, names ...string) []byte {
	t.Helper()
	c, k, err := Generate(names, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(certFile, c, 0o644); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Certificate[0]
}

// writeDomain writes <dir>/<domain>/tls.crt and tls.key for names (the
// domain when none).
func writeDomain(t *testing.T, dir, domain string, names ...string) []byte {
	t.Helper()
	if len(names) == 0 {
		names = []string{domain}
	}
	return writePair(t, filepath.Join(dir, domain, DirCertFile), filepath.Join(dir, domain, DirKeyFile), names...)
}

func leafDER(c *tls.Certificate) []byte {
	if c == nil || len(c.Certificate) == 0 {
		return nil
	}
	return c.Certificate[0]
}

func wantCert(t *testing.T, s *Store, name string, want []byte) {
	t.Helper()
	if got := leafDER(s.Certificate(name)); !bytes.Equal(got, want) {
		t.Fatalf("certificate for %q is not the expected one", name)
	}
}

func TestStoreChoosesByName(t *testing.T) {
	dir := t.TempDir()
	def := writePair(t, filepath.Join(dir, "default.crt"), filepath.Join(dir, "default.key"), "default.test")
	certDir := filepath.Join(dir, "certs")
	a := writeDomain(t, certDir, "a.test")
	b := writeDomain(t, certDir, "b.test")
	wild := writeDomain(t, certDir, "wildcard", "*.c.test")
	upper := writeDomain(t, certDir, "Upper.Test", "upper.test")
	// Neither a directory of certificates nor complete: ignored.
	os.WriteFile(filepath.Join(certDir, "README"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(certDir, ".hidden", "x"), 0o700)
	os.MkdirAll(filepath.Join(certDir, "empty"), 0o700)
	s, err := NewStore(StoreOptions{CertFile: filepath.Join(dir, "default.crt"), KeyFile: filepath.Join(dir, "default.key"), Dir: certDir})
	if err != nil {
		t.Fatal(err)
	}
	wantCert(t, s, "a.test", a)
	wantCert(t, s, "A.Test.", a) // SNI names compare case-insensitively
	wantCert(t, s, "b.test", b)
	wantCert(t, s, "chat.c.test", wild) // matched by the names it is valid for
	wantCert(t, s, "upper.test", upper) // a directory name in capitals
	wantCert(t, s, "other.test", def)
	wantCert(t, s, "", def)
	if d := s.Domains(); !slices.Equal(d, []string{"a.test", "b.test", "upper.test", "wildcard"}) {
		t.Fatalf("Domains() = %v", d)
	}
}

func TestStoreStaticFallback(t *testing.T) {
	x, err := Pair([]string{"x.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Pair([]string{"y.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(StoreOptions{Static: []tls.Certificate{x, y}})
	if err != nil {
		t.Fatal(err)
	}
	wantCert(t, s, "y.test", y.Certificate[0])
	wantCert(t, s, "x.test", x.Certificate[0])
	wantCert(t, s, "z.test", x.Certificate[0])
	wantCert(t, s, "", x.Certificate[0])
}

func TestStoreNeedsACertificate(t *testing.T) {
	if _, err := NewStore(StoreOptions{Dir: t.TempDir()}); err == nil {
		t.Fatal("a store without any certificate was made")
	}
	if _, err := NewStore(StoreOptions{CertFile: "x.crt"}); err == nil {
		t.Fatal("a certificate file without a key file was accepted")
	}
}

func TestStoreRefusesABrokenFileAtStart(t *testing.T) {
	dir := t.TempDir()
	writeDomain(t, dir, "a.test")
	if err := os.WriteFile(filepath.Join(dir, "a.test", DirKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStore(StoreOptions{Dir: dir}); err == nil {
		t.Fatal("a broken pair was accepted at start")
	}
}

func TestStoreReloadReplacedAndBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "default.crt"), filepath.Join(dir, "default.key")
	def1 := writePair(t, certFile, keyFile, "default.test")
	certDir := filepath.Join(dir, "certs")
	a1 := writeDomain(t, certDir, "a.test")
	s, err := NewStore(StoreOptions{CertFile: certFile, KeyFile: keyFile, Dir: certDir})
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.Reload(); len(errs) > 0 {
		t.Fatalf("unchanged files: %v", errs)
	}
	wantCert(t, s, "a.test", a1)

	// A new pair renamed over the old one is taken at the next reload.
	a2 := writeDomain(t, certDir, "a.test")
	def2 := writePair(t, certFile, keyFile, "default.test")
	if errs := s.Reload(); len(errs) > 0 {
		t.Fatal(errs)
	}
	wantCert(t, s, "a.test", a2)
	wantCert(t, s, "other.test", def2)
	if bytes.Equal(a1, a2) || bytes.Equal(def1, def2) {
		t.Fatal("Generate made the same certificate twice")
	}

	// A broken replacement keeps the certificate in use, and is
	// reported once, not at every reload.
	if err := writeAtomic(filepath.Join(certDir, "a.test", DirCertFile), []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := s.Reload(); len(errs) != 2 {
		t.Fatalf("Reload of two broken pairs returned %d errors: %v", len(errs), errs)
	}
	wantCert(t, s, "a.test", a2)
	wantCert(t, s, "other.test", def2)
	if errs := s.Reload(); len(errs) != 0 {
		t.Fatalf("the same broken content was reported again: %v", errs)
	}
	wantCert(t, s, "a.test", a2)

	// A fixed pair is taken again.
	a3 := writeDomain(t, certDir, "a.test")
	if errs := s.Reload(); len(errs) != 0 { // the default key is still broken, but already reported
		t.Fatalf("errors %v", errs)
	}
	wantCert(t, s, "a.test", a3)

	// A new domain appears; a removed one goes.
	b := writeDomain(t, certDir, "b.test")
	s.Reload()
	wantCert(t, s, "b.test", b)
	if err := os.RemoveAll(filepath.Join(certDir, "a.test")); err != nil {
		t.Fatal(err)
	}
	s.Reload()
	wantCert(t, s, "a.test", def2)
}

// TestStoreKubernetesSecretUpdate replays how the kubelet updates a Secret
// volume: the files are links through ..data, a link to a timestamped
// directory, and an update writes a new directory and swaps ..data.
func TestStoreKubernetesSecretUpdate(t *testing.T) {
	certDir := t.TempDir()
	mount := filepath.Join(certDir, "a.test")
	v1 := writePair(t, filepath.Join(mount, "..v1", DirCertFile), filepath.Join(mount, "..v1", DirKeyFile), "a.test")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("..v1", filepath.Join(mount, "..data")))
	must(os.Symlink(filepath.Join("..data", DirCertFile), filepath.Join(mount, DirCertFile)))
	must(os.Symlink(filepath.Join("..data", DirKeyFile), filepath.Join(mount, DirKeyFile)))
	s, err := NewStore(StoreOptions{Dir: certDir, ReloadInterval: 10 * time.Millisecond})
	must(err)
	wantCert(t, s, "a.test", v1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	v2 := writePair(t, filepath.Join(mount, "..v2", DirCertFile), filepath.Join(mount, "..v2", DirKeyFile), "a.test")
	must(os.Symlink("..v2", filepath.Join(mount, "..data_tmp")))
	must(os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")))
	must(os.RemoveAll(filepath.Join(mount, "..v1")))
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(leafDER(s.Certificate("a.test")), v2) {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not take the swapped Secret within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreInHandshakes checks GetCertificate through real handshakes: the
// server name picks the certificate, and a reload changes what the next
// handshake gets.
func TestStoreInHandshakes(t *testing.T) {
	certDir := t.TempDir()
	a1 := writeDomain(t, certDir, "a.test")
	b := writeDomain(t, certDir, "b.test")
	s, err := NewStore(StoreOptions{Dir: certDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{GetCertificate: s.GetCertificate, MinVersion: tls.VersionTLS12}
	served := func(sni string) []byte {
		t.Helper()
		a, c := net.Pipe()
		defer a.Close()
		defer c.Close()
		a.SetDeadline(time.Now().Add(10 * time.Second))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go tls.Server(a, srv).Handshake()
		cli := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		return cli.ConnectionState().PeerCertificates[0].Raw
	}
	if !bytes.Equal(served("a.test"), a1) || !bytes.Equal(served("b.test"), b) {
		t.Fatal("SNI did not pick the domain's certificate")
	}
	a2 := writeDomain(t, certDir, "a.test")
	s.Reload()
	if !bytes.Equal(served("a.test"), a2) {
		t.Fatal("the handshake after a reload did not get the new certificate")
	}
}
