package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

func TestNewNamesTheBadSetting(t *testing.T) {
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	good := func() Config {
		return Config{
			Domain: domain, Node: "n", NATS: nc, Subjects: bus.New("x", 2),
			Sessions: &fakeRegistry{}, Accounts: &fakeAccounts{}, Roster: newFakeRoster(),
		}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("New(good config) = %v", err)
	}
	for _, c := range []struct {
		setting string
		change  func(*Config)
	}{
		{"Domain", func(c *Config) { c.Domain = "" }},
		{"Domain", func(c *Config) { c.Domain = "user@example.com" }},
		{"Domain", func(c *Config) { c.Domain = "example.com/res" }},
		{"Domain", func(c *Config) { c.Domain = "bad domain" }},
		{"Node", func(c *Config) { c.Node = "" }},
		{"NATS", func(c *Config) { c.NATS = nil }},
		{"Subjects.Prefix", func(c *Config) { c.Subjects.Prefix = "" }},
		{"Subjects.Partitions", func(c *Config) { c.Subjects.Partitions = 0 }},
		{"Sessions", func(c *Config) { c.Sessions = nil }},
		{"Accounts", func(c *Config) { c.Accounts = nil }},
		{"Roster", func(c *Config) { c.Roster = nil }},
		{"LeaseTTL", func(c *Config) { c.LeaseTTL = time.Millisecond }},
	} {
		cfg := good()
		c.change(&cfg)
		_, err := New(cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.setting) {
			t.Errorf("New with bad %s: err = %v, want ErrConfig naming %s", c.setting, err, c.setting)
		}
	}
}

func TestNewPreparesDomain(t *testing.T) {
	nc, err := connectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r, err := New(Config{
		Domain: "Example.COM", Node: "n", NATS: nc, Subjects: bus.New("x", 2),
		Sessions: &fakeRegistry{}, Accounts: &fakeAccounts{}, Roster: newFakeRoster(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.domain != "example.com" {
		t.Errorf("domain = %q, want example.com", r.domain)
	}
}

func TestRunTwiceRefused(t *testing.T) {
	h := newHarness(t)
	if err := h.router.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

// Stanzas accepted while no router runs wait in the stream, and a router
// that stops hands its partitions back: the next router routes them all,
// in order.
func TestStanzasSurviveARouterStop(t *testing.T) {
	h := newHarness(t)
	h.bind(bobDesk, true, 0)
	if err := h.stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	const n = 100
	for i := range n {
		h.send(alicePhone, msg(bobDesk.jid, "chat", "m"+itoa(i), "x"))
	}
	h.run()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; {
		select {
		case g := <-h.in:
			if g.d.Id != "m"+itoa(i) {
				t.Fatalf("delivery %d is %s, want m%d", i, g.d.Id, i)
			}
			i++
		case <-deadline:
			t.Fatalf("only %d of %d stanzas routed by the next router", i, n)
		}
	}
}

func TestRunReportsClosedConnection(t *testing.T) {
	h := newHarness(t)
	h.rnc.Close()
	select {
	case err := <-h.done:
		if !errors.Is(err, ErrSubscriptionClosed) {
			t.Errorf("Run = %v, want ErrSubscriptionClosed", err)
		}
		h.cancel()
		h.cancel = nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its connection closed")
	}
}

func TestDecodeElementRoundTrip(t *testing.T) {
	el := dom.New(nsClient, "message", "to", "bob@example.com", "id", "a&b'<")
	el.SetAttrNS(dom.NSXML, "lang", "en")
	el.SetAttrNS("urn:example:attr", "flag", "1")
	el.Append(dom.New(nsClient, "body").AppendText("x < y & \"z\""))
	el.Append(dom.New("urn:example", "ext").Append(dom.New("urn:example", "inner", "k", "v")).AppendText(" t "))
	raw := el.Marshal()
	got, err := decodeElement(raw)
	if err != nil {
		t.Fatal(err)
	}
	if again := got.Marshal(); string(again) != string(raw) {
		t.Errorf("round trip changed the element:\n got %s\nwant %s", again, raw)
	}
	if got.Lang() != "en" {
		t.Errorf("xml:lang = %q, want en", got.Lang())
	}
}

func TestDecodeElementRefusesNonStanzas_RFC6120_11_1(t *testing.T) {
	for _, raw := range []string{
		"",
		"  ",
		"<iq",
		"<a/><b/>",
		"text<a/>",
		"<a><!-- c --></a>",
		"<?pi x?><a/>",
		"<!DOCTYPE a><a/>",
		"<a>" + strings.Repeat("<b>", maxDepth+1) + strings.Repeat("</b>", maxDepth+1) + "</a>",
	} {
		if el, err := decodeElement([]byte(raw)); err == nil {
			t.Errorf("decodeElement(%q) = %s, want an error", raw, el.Marshal())
		}
	}
}

func TestPriorityParsing_RFC6121_4_7_2_3(t *testing.T) {
	for _, c := range []struct {
		child   *dom.Element
		want    int32
		wantErr bool
	}{
		{nil, 0, false},
		{priorityEl("5"), 5, false},
		{priorityEl("-128"), -128, false},
		{priorityEl("128"), 127, false},
		{priorityEl("-129"), -128, false},
		{priorityEl("-99999999999999999999"), -128, false},
		{priorityEl("1.5"), 0, true},
		{priorityEl(""), 0, true},
		{dom.New("urn:other", "priority").AppendText("9"), 0, false}, // not ours
	} {
		p := pres("", "", "")
		if c.child != nil {
			p.Append(c.child)
		}
		got, err := priority(p)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("priority(%s) = %d, %v; want %d, error %v", p.Marshal(), got, err, c.want, c.wantErr)
		}
	}
}
