package c2s

import (
	"fmt"
	"strings"
	"testing"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// saslReady connects, negotiates STARTTLS and reads the SASL features.
func (e *env) saslReady() *client {
	e.t.Helper()
	c := e.dial()
	c.open()
	c.header()
	c.next()
	c.startTLS()
	c.open()
	c.header()
	c.next()
	return c
}

// authAs runs mech (a SCRAM mechanism or PLAIN) as user and returns the
// server's final element.
func (c *client) authAs(mech, user, password string) *dom.Element {
	c.t.Helper()
	if mech != sasl.Plain {
		return c.auth(mech, user, password, true)
	}
	c.send(fmt.Sprintf("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>", sasl.NS, sasl.EncodePayload([]byte("\x00"+user+"\x00"+password))))
	return c.next()
}

func wantSASLCondition(t *testing.T, what string, el *dom.Element, cond sasl.Condition) {
	t.Helper()
	f := sasl.ParseFailure(el)
	if f == nil || f.Condition != cond {
		t.Fatalf("%s: server answered %s, want a failure with <%s/>", what, el, cond)
	}
}

// An account disabled through the roster service's AccountService, in its
// real store, cannot log in with any mechanism: a client that proves the
// password gets <account-disabled/> (RFC 6120 section 6.5.2), one that
// does not gets <not-authorized/> like any wrong password. Enabling the
// account again lets the same stream log in.
func TestDisabledAccountGetsAccountDisabledWithEveryMechanism_RFC6120_6_5_2(t *testing.T) {
	e := newEnv(t, nil)
	accounts := rosterv1.NewAccountServiceClient(e.cc)
	setDisabled := func(disabled bool) {
		t.Helper()
		if _, err := accounts.SetAccountDisabled(t.Context(), &rosterv1.SetAccountDisabledRequest{Jid: "bob@" + testDomain, Disabled: disabled}); err != nil {
			t.Fatalf("SetAccountDisabled(%v): %v", disabled, err)
		}
	}
	setDisabled(true)

	for _, mech := range []string{sasl.ScramSHA256Plus, sasl.ScramSHA1Plus, sasl.ScramSHA256, sasl.ScramSHA1, sasl.Plain} {
		t.Run(mech, func(t *testing.T) {
			c := e.saslReady()
			wantSASLCondition(t, "right password", c.authAs(mech, "bob", testPassword), sasl.AccountDisabled)
			if !strings.Contains(c.wire.String(), "<account-disabled") {
				t.Errorf("no <account-disabled/> on the wire: %s", c.wire)
			}
			wantSASLCondition(t, "wrong password", c.authAs(mech, "bob", "not "+testPassword), sasl.NotAuthorized)
		})
	}

	// Another account is not affected, and bob can log in once enabled.
	if el := e.saslReady().authAs(sasl.ScramSHA256, "alice", testPassword); el.Local != "success" {
		t.Fatalf("alice: %s", el)
	}
	c := e.saslReady()
	wantSASLCondition(t, "before enabling", c.authAs(sasl.ScramSHA256, "bob", testPassword), sasl.AccountDisabled)
	setDisabled(false)
	if el := c.authAs(sasl.ScramSHA256, "bob", testPassword); el.Local != "success" {
		t.Fatalf("bob after enabling: %s", el)
	}
}
