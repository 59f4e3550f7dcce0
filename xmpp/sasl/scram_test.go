package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// rfcVector is one of the example exchanges of the SCRAM RFCs.
type rfcVector struct {
	mech                     string
	hash                     scramHash
	salt                     string // base64
	clientNonce, serverNonce string
	clientFirst, serverFirst string
	clientFinal, serverFinal string
}

// RFC 5802 section 5: user "user", password "pencil", SCRAM-SHA-1.
var rfc5802Vector = rfcVector{
	mech: ScramSHA1, hash: hashSHA1, salt: "QSXCR+Q6sek8bf92",
	clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
	serverNonce: "3rfcNHYJY1ZVvWVs7j",
	clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
}

// RFC 7677 section 3: the same user and password with SCRAM-SHA-256.
var rfc7677Vector = rfcVector{
	mech: ScramSHA256, hash: hashSHA256, salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
	clientNonce: "rOprNGfwEbeRWgbNEkqO",
	serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
}

func (v rfcVector) server(t *testing.T) Server {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(v.salt)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := deriveScramKeys(v.hash, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ServerConfig{
		Lookup:     accounts{"user": {Scram: []ScramKeys{keys}}}.lookup,
		Mechanisms: []string{v.mech},
		nonce:      fixed(v.serverNonce),
	}
	s, err := cfg.Start(v.mech)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (v rfcVector) testServer(t *testing.T) {
	s := v.server(t)
	ctx := context.Background()
	out, done, err := s.Step(ctx, []byte(v.clientFirst))
	if err != nil || done || string(out) != v.serverFirst {
		t.Fatalf("server-first = %q, %v, %v; want %q", out, done, err, v.serverFirst)
	}
	out, done, err = s.Step(ctx, []byte(v.clientFinal))
	if err != nil || !done || string(out) != v.serverFinal {
		t.Fatalf("server-final = %q, %v, %v; want %q", out, done, err, v.serverFinal)
	}
	if s.Username() != "user" {
		t.Fatalf("Username() = %q", s.Username())
	}
}

func (v rfcVector) testClient(t *testing.T) {
	// The examples use the 'n' flag: the client does not bind, and a
	// server offering -PLUS is what makes this client say 'n'.
	c, err := NewScramClient(v.mech, "user", "pencil", "", "", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	c.(*scramClient).nonce = v.clientNonce
	first, err := c.Start()
	if err != nil || string(first) != v.clientFirst {
		t.Fatalf("client-first = %q, %v; want %q", first, err, v.clientFirst)
	}
	final, err := c.Step([]byte(v.serverFirst))
	if err != nil || string(final) != v.clientFinal {
		t.Fatalf("client-final = %q, %v; want %q", final, err, v.clientFinal)
	}
	if err := c.Verify([]byte(v.serverFinal)); err != nil {
		t.Fatalf("Verify(server-final): %v", err)
	}
}

func TestScramSHA1ServerMatchesTestVector_RFC5802_5(t *testing.T) { rfc5802Vector.testServer(t) }
func TestScramSHA1ClientMatchesTestVector_RFC5802_5(t *testing.T) { rfc5802Vector.testClient(t) }
func TestScramSHA256ServerMatchesTestVector_RFC7677_3(t *testing.T) {
	rfc7677Vector.testServer(t)
}
func TestScramSHA256ClientMatchesTestVector_RFC7677_3(t *testing.T) {
	rfc7677Vector.testClient(t)
}

func TestScramClientRejectsForgedServerSignature_RFC5802_3(t *testing.T) {
	v := rfc7677Vector
	c, err := NewScramClient(v.mech, "user", "pencil", "", "", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	c.(*scramClient).nonce = v.clientNonce
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step([]byte(v.serverFirst)); err != nil {
		t.Fatal(err)
	}
	for _, final := range []string{
		"v=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"e=other-error",
		"",
		"v=not base64",
	} {
		if err := c.Verify([]byte(final)); err == nil {
			t.Errorf("Verify(%q) accepted", final)
		}
	}
}

func TestScramClientRejectsBadServerFirst_RFC5802_5_1(t *testing.T) {
	v := rfc5802Vector
	for _, sf := range []string{
		"r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096",                    // nonce not ours
		"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",       // nothing added
		"r=fyko+d2lbbFgONRv9qkxdawLx,s=***,i=4096",                   // salt
		"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1",         // too few iterations
		"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=999999999", // too many
		"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=+4096",
		"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92",
		"m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096",
		"",
	} {
		c, err := NewScramClient(v.mech, "user", "pencil", "", "", nil, true)
		if err != nil {
			t.Fatal(err)
		}
		c.(*scramClient).nonce = v.clientNonce
		if _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Step([]byte(sf)); err == nil {
			t.Errorf("Step(%q) accepted", sf)
		}
	}
}

func TestScramClientAcceptsServerFinalAsChallenge_RFC6120_6_3_10(t *testing.T) {
	v := rfc5802Vector
	c, _ := NewScramClient(v.mech, "user", "pencil", "", "", nil, true)
	c.(*scramClient).nonce = v.clientNonce
	c.Start()
	c.Step([]byte(v.serverFirst))
	resp, err := c.Step([]byte(v.serverFinal))
	if err != nil || len(resp) != 0 {
		t.Fatalf("Step(server-final) = %q, %v", resp, err)
	}
	if err := c.Verify(nil); err != nil {
		t.Fatalf("Verify(empty) after verified challenge: %v", err)
	}
}

func TestScramRoundTripEveryMechanismAndBinding_RFC5802_RFC9266_RFC5929(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cases := []struct{ mech, cbType string }{
		{ScramSHA1, ""},
		{ScramSHA256, ""},
		{ScramSHA1Plus, CBTLSExporter},
		{ScramSHA1Plus, CBTLSServerEndPoint},
		{ScramSHA256Plus, CBTLSExporter},
		{ScramSHA256Plus, CBTLSServerEndPoint},
	}
	for _, tc := range cases {
		t.Run(tc.mech+"/"+tc.cbType, func(t *testing.T) {
			// The user types the name in capitals; both sides map case.
			c, err := NewScramClient(tc.mech, "Juliet", testPassword, "", tc.cbType, bothBindings[tc.cbType], true)
			if err != nil {
				t.Fatal(err)
			}
			user, err, _ := run(t, tlsConfig(a), c)
			if err != nil {
				t.Fatal(err)
			}
			if user != testUser {
				t.Fatalf("Username() = %q, want %q", user, testUser)
			}
		})
	}
}

func TestScramWrongPasswordIsNotAuthorized_RFC6120_6_5_10(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	for _, mech := range []string{ScramSHA1, ScramSHA256Plus} {
		c, _ := NewScramClient(mech, testUser, "wrong", "", CBTLSExporter, bothBindings[CBTLSExporter], true)
		_, err, byServer := run(t, tlsConfig(a), c)
		if !byServer {
			t.Fatalf("%s: client error %v", mech, err)
		}
		wantFailure(t, err, NotAuthorized)
	}
}

func TestScramPlusWrongBindingDataIsNotAuthorized_RFC5802_6(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	// The client sees another TLS channel than the server: a man in the
	// middle terminating TLS.
	c, _ := NewScramClient(ScramSHA256Plus, testUser, testPassword, "", CBTLSExporter, []byte("the attacker's channel"), true)
	_, err, _ := run(t, tlsConfig(a), c)
	wantFailure(t, err, NotAuthorized)
}

func TestScramPlusUnavailableBindingTypeIsRefused_RFC5802_6(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cfg := tlsConfig(a)
	cfg.ChannelBinding = testBinding(map[string][]byte{CBTLSExporter: []byte("x")})
	for _, cb := range []string{CBTLSServerEndPoint, "tls-unique", "made-up"} {
		c, err := NewScramClient(ScramSHA256Plus, testUser, testPassword, "", cb, []byte("data"), true)
		if err != nil {
			t.Fatal(err)
		}
		_, err, _ = run(t, cfg, c)
		wantFailure(t, err, MalformedRequest)
	}
}

func TestScramDowngradeFlagYFailsWhenPlusOffered_RFC5802_6(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	// serverSupportsPlus false: the client saw no -PLUS and says 'y'.
	c, _ := NewScramClient(ScramSHA256, testUser, testPassword, "", "", nil, false)
	first, _ := c.Start()
	if !strings.HasPrefix(string(first), "y,,") {
		t.Fatalf("client-first %q does not use the y flag", first)
	}
	_, err, _ := run(t, tlsConfig(a), mustClient(t, ScramSHA256, false))
	wantFailure(t, err, NotAuthorized)

	// Without -PLUS on offer (no TLS here), 'y' is honest and works.
	plain := &ServerConfig{Lookup: a.lookup}
	if _, err, _ := run(t, plain, mustClient(t, ScramSHA256, false)); err != nil {
		t.Fatalf("y flag without -PLUS offered: %v", err)
	}
	// A client that does not bind at all says 'n' and works either way.
	if _, err, _ := run(t, tlsConfig(a), mustClient(t, ScramSHA1, true)); err != nil {
		t.Fatalf("n flag: %v", err)
	}
}

func mustClient(t *testing.T, mech string, serverSupportsPlus bool) Client {
	t.Helper()
	c, err := NewScramClient(mech, testUser, testPassword, "", "", nil, serverSupportsPlus)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startScram runs client-first for a raw message.
func startScram(t *testing.T, cfg *ServerConfig, mech, clientFirst string) (Server, string, error) {
	t.Helper()
	s, err := cfg.Start(mech)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := s.Step(context.Background(), []byte(clientFirst))
	return s, string(out), err
}

func TestScramMalformedClientFirstIsMalformedRequest_RFC5802_7(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cases := []struct{ mech, msg string }{
		{ScramSHA256, ""},
		{ScramSHA256, "n"},
		{ScramSHA256, "n,"},
		{ScramSHA256, "x,,n=juliet,r=abc"},
		{ScramSHA256, "n,b=juliet,n=juliet,r=abc"},
		{ScramSHA256, "n,,r=abc,n=juliet"},
		{ScramSHA256, "n,,n=juliet"},
		{ScramSHA256, "n,,n=,r=abc"},
		{ScramSHA256, "n,,n=juliet,r="},
		{ScramSHA256, "n,,n=juliet,r=a b"},
		{ScramSHA256, "n,,n=jul=2Diet,r=abc"}, // only =2C and =3D exist
		{ScramSHA256, "n,,n=juliet,r=abc,1=x"},
		{ScramSHA256, "n,,m=ext,n=juliet,r=abc"}, // mandatory extension
		{ScramSHA256, "n,a=jul=iet,n=juliet,r=abc"},
		{ScramSHA256, "p=tls-exporter,,n=juliet,r=abc"}, // binding without -PLUS
		{ScramSHA256Plus, "n,,n=juliet,r=abc"},          // -PLUS without binding
		{ScramSHA256Plus, "y,,n=juliet,r=abc"},
		{ScramSHA256Plus, "p=,,n=juliet,r=abc"},
		{ScramSHA256Plus, "p=tls_exporter,,n=juliet,r=abc"},
		{ScramSHA256, "n,,n=juliet,r=abc\xff"},
		{ScramSHA256, "n,,n=juliet,r=abc," + strings.Repeat("x", maxMessage)},
	}
	for _, tc := range cases {
		_, _, err := startScram(t, tlsConfig(a), tc.mech, tc.msg)
		if err == nil {
			t.Errorf("%s %q accepted", tc.mech, tc.msg)
			continue
		}
		wantFailure(t, err, MalformedRequest)
	}
}

func TestScramExtensionsAfterNonceAreIgnored_RFC5802_7(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	if _, _, err := startScram(t, tlsConfig(a), ScramSHA1, "n,,n=juliet,r=abc,x=future"); err != nil {
		t.Fatal(err)
	}
}

// scramFinal runs client-first through a real client and then sends a
// hand-made client-final built from the correct one by edit.
func scramFinal(t *testing.T, cfg *ServerConfig, c Client, edit func(final string) string) error {
	t.Helper()
	ctx := context.Background()
	s, err := cfg.Start(c.Mechanism())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := c.Start()
	sf, _, err := s.Step(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	final, err := c.Step(sf)
	if err != nil {
		t.Fatal(err)
	}
	_, done, err := s.Step(ctx, []byte(edit(string(final))))
	if done {
		t.Fatalf("edited client-final %q was accepted", edit(string(final)))
	}
	return err
}

func TestScramClientFinalChecks_RFC5802_5_1(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	replaceAttr := func(name, value string) func(string) string {
		return func(f string) string {
			attrs := strings.Split(f, ",")
			for i, at := range attrs {
				if strings.HasPrefix(at, name+"=") {
					attrs[i] = name + "=" + value
				}
			}
			return strings.Join(attrs, ",")
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		want Condition
	}{
		{"bad base64 in c", replaceAttr("c", "!!!!"), IncorrectEncoding},
		{"bad base64 in p", replaceAttr("p", "AAA"), IncorrectEncoding},
		{"c of another header", replaceAttr("c", base64.StdEncoding.EncodeToString([]byte("y,,"))), NotAuthorized},
		{"foreign nonce", replaceAttr("r", "abc"), NotAuthorized},
		{"short proof", replaceAttr("p", "AAAA"), MalformedRequest},
		{"proof not last", func(f string) string { return f + ",x=1" }, MalformedRequest},
		{"no proof", func(f string) string { return f[:strings.LastIndex(f, ",p=")] }, MalformedRequest},
		{"order", func(f string) string {
			a := strings.Split(f, ",")
			a[0], a[1] = a[1], a[0]
			return strings.Join(a, ",")
		}, MalformedRequest},
		{"empty", func(string) string { return "" }, MalformedRequest},
		{"bad extension", func(f string) string {
			i := strings.LastIndex(f, ",p=")
			return f[:i] + ",=x" + f[i:]
		}, MalformedRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := scramFinal(t, tlsConfig(a), mustClient(t, ScramSHA256, true), tc.edit)
			wantFailure(t, err, tc.want)
		})
	}
	// An extension before the proof is allowed and covered by the
	// signature, so adding one to a valid message breaks the proof.
	err := scramFinal(t, tlsConfig(a), mustClient(t, ScramSHA256, true), func(f string) string {
		i := strings.LastIndex(f, ",p=")
		return f[:i] + ",x=1" + f[i:]
	})
	wantFailure(t, err, NotAuthorized)
}

func TestScramAuthzid_RFC6120_6_3_8(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword), "romeo": scramCredentials(t, "x")}
	for _, tc := range []struct {
		authzid string
		ok      bool
	}{
		{"juliet@example.org", true},
		{"Juliet@EXAMPLE.org", true},
		{"juliet", true},
		{"romeo@example.org", false},
		{"juliet@example.net", false},
		{"juliet@example.org/balcony", false},
		{"@example.org", false},
		{"a,b=c@example.org", false},
	} {
		c, err := NewScramClient(ScramSHA256, testUser, testPassword, tc.authzid, "", nil, true)
		if err != nil {
			t.Fatal(err)
		}
		user, err, _ := run(t, tlsConfig(a), c)
		if tc.ok {
			if err != nil || user != testUser {
				t.Errorf("authzid %q: %q, %v", tc.authzid, user, err)
			}
			continue
		}
		wantFailure(t, err, InvalidAuthzid)
	}
}

func TestScramUsernameEscapes_RFC5802_5_1(t *testing.T) {
	// ',' and '=' are legal in a PRECIS username and escaped on the wire.
	const name = "a,b=c"
	a := accounts{name: scramCredentials(t, testPassword)}
	c, err := NewScramClient(ScramSHA1, name, testPassword, "", "", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := c.Start()
	if !strings.Contains(string(first), "n=a=2Cb=3Dc,") {
		t.Fatalf("client-first %q does not escape the name", first)
	}
	c, _ = NewScramClient(ScramSHA1, name, testPassword, "", "", nil, true)
	user, err, _ := run(t, tlsConfig(a), c)
	if err != nil || user != name {
		t.Fatalf("got %q, %v", user, err)
	}
}

func TestScramUnknownUserIndistinguishableFromWrongPassword_RFC5802_9(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cfg := tlsConfig(a)
	cfg.UnknownUserSecret = []byte("cluster secret")
	shape := regexp.MustCompile(`^r=[A-Za-z0-9+/]{48},s=[A-Za-z0-9+/]{22}==,i=4096$`)

	exchange := func(user, password string) (serverFirst string, err error) {
		c, _ := NewScramClient(ScramSHA256, user, password, "", "", nil, true)
		s, _ := cfg.Start(ScramSHA256)
		first, _ := c.Start()
		sf, _, err := s.Step(context.Background(), first)
		if err != nil {
			t.Fatalf("%s: client-first refused: %v", user, err)
		}
		final, err := c.Step(sf)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Step(context.Background(), final)
		return string(sf), err
	}
	known, errKnown := exchange(testUser, "wrong")
	unknown, errUnknown := exchange("nobody", "wrong")
	for _, sf := range []string{known, unknown} {
		if !shape.MatchString(sf) {
			t.Errorf("server-first %q has an unexpected shape", sf)
		}
	}
	wantFailure(t, errKnown, NotAuthorized)
	wantFailure(t, errUnknown, NotAuthorized)
	if errKnown.Error() != errUnknown.Error() || *errKnown.(*Failure) != *errUnknown.(*Failure) {
		t.Errorf("failures differ: %#v vs %#v", errKnown, errUnknown)
	}

	// A real account's salt is stable; so is the fake one.
	salt := func(sf string) string { return strings.Split(sf, ",")[1] }
	again, _ := exchange("nobody", "other")
	if salt(again) != salt(unknown) {
		t.Errorf("fake salt changed between attempts: %s, %s", salt(unknown), salt(again))
	}
	other, _ := exchange("nobody-else", "x")
	if salt(other) == salt(unknown) {
		t.Error("two unknown users share a salt")
	}
	cfg.UnknownUserSecret = []byte("another secret")
	rotated, _ := exchange("nobody", "x")
	if salt(rotated) == salt(unknown) {
		t.Error("fake salt does not depend on the server secret")
	}
}

func TestScramAccountWithoutKeysForHashLooksUnknown_RFC5802_9(t *testing.T) {
	k, _ := NewScramKeys(HashSHA256, testPassword, MinIterations)
	a := accounts{testUser: {Scram: []ScramKeys{k}}}
	_, err, _ := run(t, tlsConfig(a), mustClient(t, ScramSHA1, true))
	wantFailure(t, err, NotAuthorized)
}

func TestScramDisabledAccountOnlyAfterProof_RFC6120_6_5_2(t *testing.T) {
	creds := scramCredentials(t, testPassword)
	creds.Disabled = true
	a := accounts{testUser: creds}
	_, err, _ := run(t, tlsConfig(a), mustClient(t, ScramSHA256, true))
	wantFailure(t, err, AccountDisabled)

	c, _ := NewScramClient(ScramSHA256, testUser, "guess", "", "", nil, true)
	_, err, _ = run(t, tlsConfig(a), c)
	wantFailure(t, err, NotAuthorized)
}

func TestScramLookupErrorIsTemporaryAuthFailure_RFC6120_6_5_11(t *testing.T) {
	cases := map[string]Lookup{
		"store down": func(context.Context, string) (*Credentials, error) {
			return nil, errors.New("database is down")
		},
		"nil credentials": func(context.Context, string) (*Credentials, error) { return nil, nil },
		"damaged keys": func(context.Context, string) (*Credentials, error) {
			return &Credentials{Scram: []ScramKeys{{Hash: HashSHA256, Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("short")}}}, nil
		},
		"context":   func(ctx context.Context, _ string) (*Credentials, error) { return nil, ctx.Err() },
		"no lookup": nil,
	}
	for name, lookup := range cases {
		cfg := &ServerConfig{Lookup: lookup}
		s, _ := cfg.Start(ScramSHA256)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		first, _ := mustClient(t, ScramSHA256, true).Start()
		_, _, err := s.Step(ctx, first)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantFailure(t, err, TemporaryAuthFailure)
	}
}

func TestScramWithoutInitialResponseSendsEmptyChallenge_RFC6120_6_4_2(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	cfg := tlsConfig(a)
	s, _ := cfg.Start(ScramSHA1)
	c := mustClient(t, ScramSHA1, true)
	out, done, err := s.Step(context.Background(), nil)
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("Step(nil) = %q, %v, %v; want empty challenge", out, done, err)
	}
	first, _ := c.Start()
	sf, _, err := s.Step(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	final, _ := c.Step(sf)
	sv, done, err := s.Step(context.Background(), final)
	if err != nil || !done || c.Verify(sv) != nil {
		t.Fatalf("final: %q %v %v", sv, done, err)
	}
}

func TestScramStepAfterEndKeepsFailing_RFC6120_6_4_5(t *testing.T) {
	a := accounts{testUser: scramCredentials(t, testPassword)}
	s, _, err := startScram(t, tlsConfig(a), ScramSHA1, "garbage")
	wantFailure(t, err, MalformedRequest)
	_, _, err = s.Step(context.Background(), []byte("n,,n=juliet,r=abc"))
	wantFailure(t, err, MalformedRequest)

	cfg := tlsConfig(a)
	s, _ = cfg.Start(ScramSHA1)
	c := mustClient(t, ScramSHA1, true)
	first, _ := c.Start()
	sf, _, _ := s.Step(context.Background(), first)
	final, _ := c.Step(sf)
	if _, done, err := s.Step(context.Background(), final); !done || err != nil {
		t.Fatal(done, err)
	}
	_, done, err := s.Step(context.Background(), final)
	if done {
		t.Fatal("Step after success reported done again")
	}
	wantFailure(t, err, MalformedRequest)
}

func TestNewScramKeysUseFreshSaltAndMinIterations_RFC5802_5_1(t *testing.T) {
	a, err := NewScramKeys(HashSHA256, testPassword, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewScramKeys(HashSHA256, testPassword, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if a.Iterations != MinIterations || b.Iterations != 10000 {
		t.Errorf("iterations %d, %d", a.Iterations, b.Iterations)
	}
	if len(a.Salt) < 16 || string(a.Salt) == string(b.Salt) {
		t.Errorf("salts %x, %x", a.Salt, b.Salt)
	}
	if a.Hash != HashSHA256 || len(a.StoredKey) != 32 || len(a.ServerKey) != 32 {
		t.Errorf("keys %+v", a)
	}
	if _, err := NewScramKeys("MD5", testPassword, 0); err == nil {
		t.Error("unknown hash accepted")
	}
	if _, err := NewScramKeys(HashSHA1, "", 0); err == nil {
		t.Error("empty password accepted (OpaqueString forbids it)")
	}
}

func TestPasswordsPreparedWithOpaqueString_RFC8265_4_2(t *testing.T) {
	// U+00A0 NO-BREAK SPACE maps to SPACE under OpaqueString; a client
	// typing either form logs in.
	a := accounts{testUser: scramCredentials(t, "correct\u00a0horse")}
	c, err := NewScramClient(ScramSHA256, testUser, "correct horse", "", "", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err, _ := run(t, tlsConfig(a), c); err != nil {
		t.Fatal(err)
	}
}
