package c2s

import (
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// A second served domain is answered in its own name; a stream restarted
// after STARTTLS must stay in the domain it began with (the client would
// otherwise authenticate in one domain and bind in another).
func TestStreamDomainComesFromTheHeaderAndStaysAcrossRestarts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Domains = []string{"other.test", testDomain} })
	c := e.dial()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='OTHER.test' version='1.0'>")
	if h := c.header(); h.From != "other.test" {
		t.Fatalf("stream to other.test answered from %q", h.From)
	}
	c.next() // features: STARTTLS
	c.startTLS()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + testDomain + "' version='1.0'>")
	c.header()
	c.expectStreamError(stream.HostUnknown)

	// A restart without 'to' stays in the stream's domain.
	c = e.dial()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='other.test' version='1.0'>")
	c.header()
	c.next()
	c.startTLS()
	c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	if h := c.header(); h.From != "other.test" {
		t.Fatalf("restart without 'to' answered from %q, want other.test", h.From)
	}
}

func TestConfigRefusesABadExtraDomain(t *testing.T) {
	c := Config{Domain: testDomain, Domains: []string{"a@b.test"}}
	if _, err := c.withDefaults(); err == nil {
		t.Fatal("a JID with a localpart was accepted as a domain")
	}
}
