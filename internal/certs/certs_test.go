package certs

import (
	"crypto/rsa"
	"crypto/x509"
	"testing"
)

func TestLoadOrCreateCreatesOnceThenLoads(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, "server", []string{"localhost", "127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir, "server", []string{"localhost"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Certificate[0]) != string(b.Certificate[0]) {
		t.Fatal("second call generated a new certificate instead of loading the first")
	}
	leaf, err := x509.ParseCertificate(a.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

func TestRSAKeyWhenAsked(t *testing.T) {
	c, err := Pair([]string{"example.test"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PrivateKey.(*rsa.PrivateKey); !ok {
		t.Fatalf("key is %T, want RSA", c.PrivateKey)
	}
}
