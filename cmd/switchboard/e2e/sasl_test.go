package e2e

import (
	"context"
	"database/sql"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/services/c2s"
	_ "github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore" // the "sqlite" database/sql driver
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// mechanisms lists the SASL mechanisms of a features element.
func mechanisms(features *node) []string {
	var out []string
	if m := features.Child(nsSASL, "mechanisms"); m != nil {
		for _, n := range m.Nodes {
			if n.Is(nsSASL, "mechanism") {
				out = append(out, n.Text)
			}
		}
	}
	return out
}

// tlsStream opens a stream, negotiates TLS and returns the connection and
// the features offered over TLS.
func (s *server) tlsStream(t *testing.T) (*rawConn, *node) {
	t.Helper()
	r := s.rawDial(t)
	r.open()
	return r, r.startTLS()
}

// scram runs a SCRAM exchange of mech as local with pass and returns the
// server's last answer (<success/> or <failure/>). plusOffered says
// whether the server listed a -PLUS mechanism (the GS2 flag depends on
// it). Each challenge is checked to be a well-formed server-first message.
func (r *rawConn) scram(mech, local, pass string, plusOffered bool) *node {
	r.t.Helper()
	c, err := sasl.NewScramClient(mech, local, pass, "", "", nil, plusOffered)
	if err != nil {
		r.t.Fatal(err)
	}
	first, err := c.Start()
	if err != nil {
		r.t.Fatal(err)
	}
	r.send("<auth xmlns='" + nsSASL + "' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString(first) + "</auth>")
	for {
		n := r.mustNext("a SASL answer")
		if !n.Is(nsSASL, "challenge") {
			return n
		}
		ch, err := base64.StdEncoding.DecodeString(n.Text)
		if err != nil {
			r.t.Fatalf("challenge %q is not base64: %v", n.Text, err)
		}
		resp, err := c.Step(ch)
		if err != nil {
			r.t.Fatalf("SCRAM client refused the challenge %q: %v", ch, err)
		}
		r.send("<response xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")
	}
}

// TestSASLFailures_RFC6120_6_5 provokes every SASL failure condition of RFC
// 6120 section 6.5 that the server can produce, on raw connections, and
// checks the exact <failure/> and the server's log line for it.
//
// Two conditions cannot be produced, so no test fakes them:
// credentials-expired (6.5.3): accounts have no password expiry;
// mechanism-too-weak (6.5.9): no setting refuses a mechanism as too weak
// for an account or a stream (PLAIN without TLS is encryption-required,
// which 6.5.4 names for exactly that case).
func TestSASLFailures_RFC6120_6_5(t *testing.T) {
	s := startServer(t)
	s.createAccounts(t, "alice", "bob", "dave", "erin", "frank")
	alice := s.dial(t, "alice", "witness")
	bob := s.dial(t, "bob", "witness")

	// A server where TLS is optional, offering SCRAM-SHA-256 and PLAIN.
	opt := startServer(t, func(c *app.Config) {
		c.TLSOptional = true
		c.Mechanisms = []string{sasl.ScramSHA256, sasl.Plain}
	})
	opt.createAccounts(t, "alice")

	logged := func(t *testing.T, srv *server, cond sasl.Condition) {
		t.Helper()
		srv.logs.wait(t, ioTimeout, "authentication failed "+string(cond), msgIs("authentication failed", "condition", string(cond)))
	}

	t.Run("aborted_RFC6120_6_4_4", func(t *testing.T) {
		r, _ := s.tlsStream(t)
		r.send("<auth xmlns='" + nsSASL + "' mechanism='SCRAM-SHA-256'>" +
			base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefghijklmnop")) + "</auth>")
		r.expect(nsSASL, "challenge")
		r.send("<abort xmlns='" + nsSASL + "'/>")
		r.saslFailure(string(sasl.Aborted))
		logged(t, s, sasl.Aborted)
		// The stream goes on: a new attempt succeeds (section 6.4.5).
		r.authPlain("alice", password("alice"))
	})

	t.Run("account-disabled_RFC6120_6_5_1", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.app.Roster().SetDisabled(ctx, bare("dave").String(), true); err != nil {
			t.Fatal(err)
		}
		r, _ := s.tlsStream(t)
		// A wrong password does not reveal that the account is
		// disabled; the right one does.
		r.send(authPlainElement("", "dave", "wrong password"))
		r.saslFailure(string(sasl.NotAuthorized))
		r.send(authPlainElement("", "dave", password("dave")))
		r.saslFailure(string(sasl.AccountDisabled))
		logged(t, s, sasl.AccountDisabled)
		// SCRAM says the same once the proof is right.
		r2, f := s.tlsStream(t)
		if n := r2.scram(sasl.ScramSHA256, "dave", password("dave"), slices.Contains(mechanisms(f), sasl.ScramSHA256Plus)); !n.Is(nsSASL, "failure") || n.Child(nsSASL, string(sasl.AccountDisabled)) == nil {
			t.Fatalf("SCRAM-SHA-256 for a disabled account: got %s, want <failure><account-disabled/>", n)
		}
		if err := s.app.Roster().SetDisabled(ctx, bare("dave").String(), false); err != nil {
			t.Fatal(err)
		}
		r3, _ := s.tlsStream(t)
		r3.authPlain("dave", password("dave"))
	})

	t.Run("encryption-required/TLS-required-and-not-negotiated_RFC6120_6_5_4", func(t *testing.T) {
		r := s.rawDial(t)
		f := r.open()
		if f.Child(nsTLS, "starttls").Child(nsTLS, "required") == nil || len(mechanisms(f)) != 0 {
			t.Fatalf("features before TLS: %s, want only <starttls><required/></starttls>", f)
		}
		r.send(authPlainElement("", "alice", password("alice")))
		r.saslFailure(string(sasl.EncryptionRequired))
		logged(t, s, sasl.EncryptionRequired)
	})

	t.Run("encryption-required/PLAIN-without-TLS-where-TLS-is-optional_RFC6120_6_5_4", func(t *testing.T) {
		r := opt.rawDial(t)
		f := r.open()
		if got := mechanisms(f); !slices.Equal(got, []string{sasl.ScramSHA256}) {
			t.Fatalf("mechanisms offered without TLS: %v, want only SCRAM-SHA-256 (PLAIN needs TLS)", got)
		}
		if st := f.Child(nsTLS, "starttls"); st == nil || st.Child(nsTLS, "required") != nil {
			t.Fatalf("features: %s, want STARTTLS offered and not required", f)
		}
		r.send(authPlainElement("", "alice", password("alice")))
		r.saslFailure(string(sasl.EncryptionRequired))
		logged(t, opt, sasl.EncryptionRequired)
		// After STARTTLS the same request succeeds.
		if got := mechanisms(r.startTLS()); !slices.Equal(got, []string{sasl.ScramSHA256, sasl.Plain}) {
			t.Fatalf("mechanisms offered over TLS: %v", got)
		}
		r.authPlain("alice", password("alice"))
	})

	t.Run("incorrect-encoding_RFC6120_6_5_5", func(t *testing.T) {
		r, _ := s.tlsStream(t)
		r.send("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>not*base64!</auth>")
		r.saslFailure(string(sasl.IncorrectEncoding))
		logged(t, s, sasl.IncorrectEncoding)
	})

	t.Run("invalid-authzid_RFC6120_6_5_6", func(t *testing.T) {
		r, _ := s.tlsStream(t)
		r.send(authPlainElement("bob@localhost", "alice", password("alice")))
		r.saslFailure(string(sasl.InvalidAuthzid))
		logged(t, s, sasl.InvalidAuthzid)
		// Her own bare JID as authzid is fine.
		r.send(authPlainElement("alice@localhost", "alice", password("alice")))
		if n := r.mustNext("the answer to <auth/>"); !n.Is(nsSASL, "success") {
			t.Fatalf("PLAIN with her own JID as authzid: %s", n)
		}
	})

	t.Run("invalid-mechanism/unknown_RFC6120_6_5_7", func(t *testing.T) {
		r, _ := s.tlsStream(t)
		r.send("<auth xmlns='" + nsSASL + "' mechanism='X-NO-SUCH-MECHANISM'>=</auth>")
		r.saslFailure(string(sasl.InvalidMechanism))
		logged(t, s, sasl.InvalidMechanism)
	})

	t.Run("invalid-mechanism/known-but-not-enabled_RFC6120_6_5_7", func(t *testing.T) {
		r := opt.rawDial(t)
		r.open()
		r.startTLS()
		c, err := sasl.NewScramClient(sasl.ScramSHA1, "alice", password("alice"), "", "", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := c.Start()
		r.send("<auth xmlns='" + nsSASL + "' mechanism='SCRAM-SHA-1'>" + base64.StdEncoding.EncodeToString(first) + "</auth>")
		r.saslFailure(string(sasl.InvalidMechanism))
		logged(t, opt, sasl.InvalidMechanism)
	})

	t.Run("malformed-request_RFC6120_6_5_8", func(t *testing.T) {
		r, _ := s.tlsStream(t)
		// PLAIN's message has two NUL separators (RFC 4616).
		r.send("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("alice:"+password("alice"))) + "</auth>")
		r.saslFailure(string(sasl.MalformedRequest))
		logged(t, s, sasl.MalformedRequest)
		// A response with no exchange running.
		r2, _ := s.tlsStream(t)
		r2.send("<response xmlns='" + nsSASL + "'>=</response>")
		r2.saslFailure(string(sasl.MalformedRequest))
	})

	t.Run("not-authorized/wrong-password-and-unknown-user-alike_RFC6120_6_5_10", func(t *testing.T) {
		r, f := s.tlsStream(t)
		plus := slices.Contains(mechanisms(f), sasl.ScramSHA256Plus)
		r.send(authPlainElement("", "erin", "not her password"))
		wrong := r.saslFailure(string(sasl.NotAuthorized))
		r.send(authPlainElement("", "nobody-by-this-name", "whatever"))
		unknown := r.saslFailure(string(sasl.NotAuthorized))
		if wrong.String() != unknown.String() {
			t.Errorf("PLAIN failures differ: wrong password %s, unknown user %s", wrong, unknown)
		}
		logged(t, s, sasl.NotAuthorized)
		// With SCRAM the unknown user also gets a challenge (a salt
		// and an iteration count) and the same failure.
		r2, _ := s.tlsStream(t)
		w2 := r2.scram(sasl.ScramSHA256, "erin", "not her password", plus)
		r3, _ := s.tlsStream(t)
		u2 := r3.scram(sasl.ScramSHA256, "nobody-by-this-name", "whatever", plus)
		if !w2.Is(nsSASL, "failure") || w2.Child(nsSASL, string(sasl.NotAuthorized)) == nil || w2.String() != u2.String() {
			t.Errorf("SCRAM failures: wrong password %s, unknown user %s; want the same <not-authorized/>", w2, u2)
		}
		// The stream allows a retry (section 6.4.5) that succeeds.
		r.authPlain("erin", password("erin"))
	})

	t.Run("temporary-auth-failure/account-store-failing_RFC6120_6_5_11", func(t *testing.T) {
		// The account store fails for real: another connection to the
		// same SQLite file (which the store shares with `switchboard
		// user`) renames the table of SCRAM keys away, so the roster
		// service's lookup errors and c2s cannot check any password.
		db, err := sql.Open("sqlite", app.DBPath(s.cfg.DataDir))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if _, err := db.ExecContext(ctx, `ALTER TABLE scram_credentials RENAME TO scram_credentials_away`); err != nil {
			t.Fatalf("breaking the store: %v", err)
		}
		restored := false
		restore := func() {
			if restored {
				return
			}
			restored = true
			if _, err := db.ExecContext(context.Background(), `ALTER TABLE scram_credentials_away RENAME TO scram_credentials`); err != nil {
				t.Fatalf("repairing the store: %v", err)
			}
		}
		defer restore()
		r, f := s.tlsStream(t)
		r.send(authPlainElement("", "frank", password("frank")))
		r.saslFailure(string(sasl.TemporaryAuthFailure))
		logged(t, s, sasl.TemporaryAuthFailure)
		r2, _ := s.tlsStream(t)
		if n := r2.scram(sasl.ScramSHA256, "frank", password("frank"), slices.Contains(mechanisms(f), sasl.ScramSHA256Plus)); !n.Is(nsSASL, "failure") || n.Child(nsSASL, string(sasl.TemporaryAuthFailure)) == nil {
			t.Fatalf("SCRAM-SHA-256 while the store fails: got %s, want <failure><temporary-auth-failure/>", n)
		}
		// Temporary indeed: once the store works, so does the login,
		// on the same stream.
		restore()
		r.authPlain("frank", password("frank"))
	})

	t.Run("failed-attempts-limit-policy-violation_RFC6120_6_4_5", func(t *testing.T) {
		// The app keeps c2s's default limit.
		r, _ := s.tlsStream(t)
		for range c2s.DefaultMaxAuthFailures {
			r.send(authPlainElement("", "alice", "wrong"))
			r.saslFailure(string(sasl.NotAuthorized))
		}
		r.expectStreamError(string(stream.PolicyViolation), true)
		s.logs.wait(t, ioTimeout, "stream error policy-violation", msgIs("stream error", "condition", string(stream.PolicyViolation)))
		exchange(t, alice, bob, "after the failed attempts")
	})
}
