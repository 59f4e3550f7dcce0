package sasl

import (
	"context"
	"crypto/md5"
	"fmt"
	"strings"
	"testing"
)

// The example of RFC 2831 section 4 (IMAP): user chris, password secret.
func TestDigestMD5ResponseMatchesExample_RFC2831_4(t *testing.T) {
	h := DigestMD5Hash("chris", "elwood.innosoft.com", "secret")
	const nonce, cnonce, uri = "OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk", "imap/elwood.innosoft.com"
	if got := digestResponse(h, nonce, cnonce, "", uri, "AUTHENTICATE:"); got != "d388dad90d4bbd760a152321f2143af7" {
		t.Errorf("response = %s", got)
	}
	if got := digestResponse(h, nonce, cnonce, "", uri, ":"); got != "ea40f60335c427b5527b84dbabcdfffd" {
		t.Errorf("rspauth = %s", got)
	}
	// The reference client of the tests below agrees with the RFC too.
	if got := refDigest("chris", "elwood.innosoft.com", "secret", nonce, cnonce, "", uri, false); got != "d388dad90d4bbd760a152321f2143af7" {
		t.Errorf("reference response = %s", got)
	}
	if got := refDigest("chris", "elwood.innosoft.com", "secret", nonce, cnonce, "", uri, true); got != "ea40f60335c427b5527b84dbabcdfffd" {
		t.Errorf("reference rspauth = %s", got)
	}
}

// refDigest is an independent client computation, written from the
// formulas of RFC 2831 section 2.1.2.1 with hex strings throughout.
// With rspauth set it computes the server's response-auth (section 2.1.3).
func refDigest(user, realm, pass, nonce, cnonce, authzid, uri string, rspauth bool) string {
	a2 := "AUTHENTICATE:" + uri
	if rspauth {
		a2 = ":" + uri
	}
	md5hex := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	userHash := md5.Sum([]byte(user + ":" + realm + ":" + pass))
	a1 := string(userHash[:]) + ":" + nonce + ":" + cnonce
	if authzid != "" {
		a1 += ":" + authzid
	}
	return md5hex(md5hex(a1) + ":" + nonce + ":00000001:" + cnonce + ":auth:" + md5hex(a2))
}

// digestChallenge starts an exchange and returns the server and its nonce.
func digestChallenge(t *testing.T, cfg *ServerConfig) (Server, string) {
	t.Helper()
	s, err := cfg.Start(DigestMD5)
	if err != nil {
		t.Fatal(err)
	}
	ch, done, err := s.Step(context.Background(), nil)
	if err != nil || done {
		t.Fatal(done, err)
	}
	d, err := parseDirectives(string(ch))
	if err != nil {
		t.Fatalf("challenge %q: %v", ch, err)
	}
	if d["realm"] != cfg.Host || d["qop"] != "auth" || d["algorithm"] != "md5-sess" || d["charset"] != "utf-8" {
		t.Fatalf("challenge %q", ch)
	}
	return s, d["nonce"]
}

func digestConfig(a accounts) *ServerConfig {
	cfg := tlsConfig(a)
	cfg.Mechanisms = []string{ScramSHA256, DigestMD5}
	return cfg
}

func digestAccounts() accounts {
	disabled := &Credentials{DigestMD5: DigestMD5Hash("off", testHost, testPassword), DigestRealm: testHost, Disabled: true}
	return accounts{
		testUser: {DigestMD5: DigestMD5Hash(testUser, testHost, testPassword), DigestRealm: testHost},
		"müller": {DigestMD5: DigestMD5Hash("müller", testHost, testPassword), DigestRealm: testHost},
		"off":    disabled,
	}
}

// latin1 converts as an RFC 2831 client with charset=utf-8 does.
func latin1(s string) string { return string(latin1IfPossible(s)) }

func TestDigestMD5ExchangeWithIndependentClient_RFC2831_2_1(t *testing.T) {
	for _, tc := range []struct{ user, authzid string }{
		{testUser, ""},
		{testUser, "juliet@example.org"},
		{"müller", ""},
	} {
		s, nonce := digestChallenge(t, digestConfig(digestAccounts()))
		const cnonce = "OA6MHXh6VqTrRk"
		uri := "xmpp/" + testHost
		resp := refDigest(latin1(tc.user), testHost, testPassword, nonce, cnonce, tc.authzid, uri, false)
		msg := fmt.Sprintf(`charset=utf-8,username="%s",realm="%s",nonce="%s",nc=00000001,cnonce="%s",digest-uri="%s",response=%s,qop=auth`,
			tc.user, testHost, nonce, cnonce, uri, resp)
		if tc.authzid != "" {
			msg += `,authzid="` + tc.authzid + `"`
		}
		out, done, err := s.Step(context.Background(), []byte(msg))
		if err != nil || done {
			t.Fatalf("%s: %v %v", tc.user, done, err)
		}
		want := "rspauth=" + refDigest(latin1(tc.user), testHost, testPassword, nonce, cnonce, tc.authzid, uri, true)
		if string(out) != want {
			t.Fatalf("%s: second challenge %q, want %q", tc.user, out, want)
		}
		if s.Username() != "" {
			t.Fatal("username known before the exchange ended")
		}
		if _, done, err := s.Step(context.Background(), nil); !done || err != nil || s.Username() != tc.user {
			t.Fatalf("%s: final step %v %v %q", tc.user, done, err, s.Username())
		}
	}
}

func TestDigestMD5Failures_RFC2831_2_1_2(t *testing.T) {
	const cnonce = "abcdefg"
	uri := "xmpp/" + testHost
	build := func(nonce string, edit func(d map[string]string)) string {
		d := map[string]string{
			"username": testUser, "realm": testHost, "nonce": nonce, "nc": "00000001",
			"cnonce": cnonce, "digest-uri": uri, "qop": "auth", "charset": "utf-8",
		}
		pass := testPassword
		if edit != nil {
			edit(d)
		}
		if p, ok := d["password"]; ok {
			pass = p
			delete(d, "password")
		}
		if _, ok := d["response"]; !ok {
			d["response"] = refDigest(latin1(d["username"]), d["realm"], pass, d["nonce"], d["cnonce"], d["authzid"], d["digest-uri"], false)
		}
		var parts []string
		for k, v := range d {
			if v == "\x00drop" {
				continue
			}
			parts = append(parts, k+`="`+v+`"`)
		}
		return strings.Join(parts, ",")
	}
	cases := []struct {
		name string
		edit func(d map[string]string)
		want Condition
	}{
		{"wrong password", func(d map[string]string) { d["password"] = "nope" }, NotAuthorized},
		{"unknown user", func(d map[string]string) { d["username"] = "nobody" }, NotAuthorized},
		{"other realm", func(d map[string]string) { d["realm"] = "example.net" }, NotAuthorized},
		{"digest-uri of another service", func(d map[string]string) { d["digest-uri"] = "imap/" + testHost }, NotAuthorized},
		{"digest-uri of another host", func(d map[string]string) { d["digest-uri"] = "xmpp/example.net" }, NotAuthorized},
		{"disabled", func(d map[string]string) { d["username"] = "off" }, AccountDisabled},
		{"authzid of another user", func(d map[string]string) { d["authzid"] = "romeo@example.org" }, InvalidAuthzid},
		{"nonce of another exchange", func(d map[string]string) { d["nonce"] = "stale" }, MalformedRequest},
		{"second nonce count", func(d map[string]string) { d["nc"] = "00000002" }, MalformedRequest},
		{"integrity layer", func(d map[string]string) { d["qop"] = "auth-int" }, MalformedRequest},
		{"charset", func(d map[string]string) { d["charset"] = "latin-1" }, MalformedRequest},
		{"no cnonce", func(d map[string]string) { d["cnonce"] = "\x00drop" }, MalformedRequest},
		{"no digest-uri", func(d map[string]string) { d["digest-uri"] = "\x00drop" }, MalformedRequest},
		{"response not hex", func(d map[string]string) { d["response"] = strings.Repeat("z", 32) }, MalformedRequest},
		{"empty authzid", func(d map[string]string) { d["authzid"] = "" }, MalformedRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, nonce := digestChallenge(t, digestConfig(digestAccounts()))
			_, _, err := s.Step(context.Background(), []byte(build(nonce, tc.edit)))
			wantFailure(t, err, tc.want)
		})
	}
}

func TestDigestMD5SyntaxErrors_RFC2831_7_1(t *testing.T) {
	for _, msg := range []string{
		`username="juliet`,          // unterminated
		`username="a",username="b"`, // repeated
		`=x`,                        // no name
		`username "juliet"`,         // no '='
		`username="a" realm="b"`,    // no comma
		strings.Repeat("a", maxMessage+1),
	} {
		s, _ := digestChallenge(t, digestConfig(digestAccounts()))
		_, _, err := s.Step(context.Background(), []byte(msg))
		wantFailure(t, err, MalformedRequest)
	}
	// Quoted pairs, spaces and empty list elements are legal.
	d, err := parseDirectives(` a = "x\"y" ,, b=tok , c="" `)
	if err != nil || d["a"] != `x"y` || d["b"] != "tok" || d["c"] != "" || len(d) != 3 {
		t.Fatalf("%q %v", d, err)
	}
}

func TestDigestMD5HasNoInitialResponseAndNeedsEmptyAck_RFC2831_2_1(t *testing.T) {
	cfg := digestConfig(digestAccounts())
	s, _ := cfg.Start(DigestMD5)
	_, _, err := s.Step(context.Background(), []byte("username=x"))
	wantFailure(t, err, MalformedRequest)
}

func TestDigestMD5OnlyWhenListed_RFC6331(t *testing.T) {
	cfg := tlsConfig(digestAccounts())
	if contains := strings.Contains(strings.Join(cfg.Offered(), " "), DigestMD5); contains {
		t.Fatalf("DIGEST-MD5 offered by default: %v", cfg.Offered())
	}
	_, err := cfg.Start(DigestMD5)
	wantFailure(t, err, InvalidMechanism)

	cfg = digestConfig(digestAccounts())
	cfg.TLS = false
	_, err = cfg.Start(DigestMD5)
	wantFailure(t, err, EncryptionRequired)
}

func TestDigestMD5HashEncodesLatin1WhenPossible_RFC2831_2_1_2_1(t *testing.T) {
	got := DigestMD5Hash("müller", "realm", "pw")
	want := md5.Sum([]byte("m\xfcller:realm:pw"))
	if string(got) != string(want[:]) {
		t.Errorf("Latin-1 name: %x, want %x", got, want)
	}
	got = DigestMD5Hash("пётр", "realm", "pw")
	want = md5.Sum([]byte("пётр:realm:pw"))
	if string(got) != string(want[:]) {
		t.Errorf("UTF-8 name: %x, want %x", got, want)
	}
}
