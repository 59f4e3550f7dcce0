package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fuzzConfig is a TLS stream with both bindings, one account and DIGEST-MD5
// enabled. PLAIN runs PBKDF2 for every input, so its fuzzer stores keys
// of one iteration; the SCRAM seeds come from a client that wants 4096.
func fuzzConfig(f *testing.F, iterations int) *ServerConfig {
	f.Helper()
	creds := &Credentials{DigestMD5: DigestMD5Hash(testUser, testHost, testPassword), DigestRealm: testHost}
	for _, h := range []scramHash{hashSHA1, hashSHA256} {
		k, err := deriveScramKeys(h, testPassword, []byte("fuzz salt"), iterations)
		if err != nil {
			f.Fatal(err)
		}
		creds.Scram = append(creds.Scram, k)
	}
	cfg := tlsConfig(accounts{testUser: creds})
	cfg.Mechanisms = append(DefaultMechanisms(), DigestMD5)
	cfg.UnknownUserIterations = 1
	cfg.nonce = fixed("fuzzservernonce")
	return cfg
}

var scramMechs = []string{ScramSHA1, ScramSHA1Plus, ScramSHA256, ScramSHA256Plus}

// checkFailure fails unless err is nil or a *Failure.
func checkFailure(t *testing.T, err error) {
	t.Helper()
	var fl *Failure
	if err != nil && !errors.As(err, &fl) {
		t.Fatalf("error %v (%T) is not a *Failure", err, err)
	}
}

func FuzzScramServer(f *testing.F) {
	cfg := fuzzConfig(f, MinIterations)
	// Seeds: valid exchanges of every mechanism, then a few broken ones.
	for i, mech := range scramMechs {
		c, err := NewScramClient(mech, testUser, testPassword, "juliet@example.org", CBTLSExporter, bothBindings[CBTLSExporter], true)
		if err != nil {
			f.Fatal(err)
		}
		c.(*scramClient).nonce = "fuzzclientnonce"
		first, _ := c.Start()
		s, _ := cfg.Start(mech)
		sf, _, err := s.Step(context.Background(), first)
		if err != nil {
			f.Fatal(err)
		}
		final, err := c.Step(sf)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), first, final)
	}
	f.Add(uint8(0), []byte("n,,n=jul=2Ciet,r=x"), []byte("c=biws,r=xfuzzservernonce,p=AAAA"))
	f.Add(uint8(1), []byte("p=tls-exporter,a=a=3D,n=a,r=b,x=y"), []byte("c=,r=,p="))
	f.Add(uint8(2), []byte("y,,n=nobody,r=abc"), []byte("c=eSws,r=abcfuzzservernonce,x=1,p=!!"))

	f.Fuzz(func(t *testing.T, mech uint8, first, final []byte) {
		s, err := cfg.Start(scramMechs[int(mech)%len(scramMechs)])
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		out, done, err := s.Step(ctx, first)
		checkFailure(t, err)
		if err != nil || done {
			return
		}
		if !strings.HasPrefix(string(out), "r=") && len(out) != 0 {
			t.Fatalf("server-first %q", out)
		}
		out, done, err = s.Step(ctx, final)
		checkFailure(t, err)
		if done && (s.Username() != testUser || !strings.HasPrefix(string(out), "v=")) {
			t.Fatalf("success for %q with %q", s.Username(), out)
		}
		_, _, err = s.Step(ctx, final)
		if err == nil {
			t.Fatal("step after the end accepted")
		}
		checkFailure(t, err)
	})
}

func FuzzPlain(f *testing.F) {
	cfg := fuzzConfig(f, 1)
	f.Add([]byte("\x00juliet\x00" + testPassword))
	f.Add([]byte("juliet@example.org\x00JULIET\x00" + testPassword))
	f.Add([]byte("\x00nobody\x00x"))
	f.Add([]byte("a\x00b\x00c\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := cfg.Start(Plain)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := s.Step(context.Background(), in)
		checkFailure(t, err)
		if done && s.Username() != testUser {
			t.Fatalf("success for %q", s.Username())
		}
	})
}

func FuzzDigestMD5(f *testing.F) {
	cfg := fuzzConfig(f, 1)
	uri := "xmpp/" + testHost
	resp := refDigest(testUser, testHost, testPassword, "fuzzservernonce", "c", "", uri, false)
	f.Add([]byte(`username="juliet",realm="example.org",nonce="fuzzservernonce",cnonce="c",nc=00000001,qop=auth,digest-uri="` + uri + `",response=` + resp))
	f.Add([]byte(`username="a\"b",,nonce=x`))
	f.Add([]byte(`a=`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := cfg.Start(DigestMD5)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, _, err := s.Step(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, done, err := s.Step(ctx, in)
		checkFailure(t, err)
		if done {
			t.Fatal("done before the rspauth acknowledgement")
		}
	})
}
