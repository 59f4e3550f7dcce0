package dialback

import (
	"errors"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// The example keys of the two XEPs, recomputed here from their inputs.
var keyVectors = []struct {
	name                                    string
	secret, receiving, originating, id, key string
}{
	{"XEP-0185 section 2", "s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F",
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"},
	// XEP-0220 section 2.1.1: capulet.example asks montague.example to
	// accept it.
	{"XEP-0220 section 2.1.1", "s3cr3tf0rd14lb4ck", "montague.example", "capulet.example", "D60000229F",
		"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"},
}

func TestKeyMatchesExamples_XEP0185_2_XEP0220_2_1_1(t *testing.T) {
	for _, v := range keyVectors {
		if got := Key(v.secret, v.receiving, v.originating, v.id); got != v.key {
			t.Errorf("%s: Key = %s, want %s", v.name, got, v.key)
		}
		if !Check(v.secret, v.receiving, v.originating, v.id, v.key) {
			t.Errorf("%s: Check refused the example key", v.name)
		}
	}
}

func TestKeyBindsEveryInput_XEP0185_2(t *testing.T) {
	v := keyVectors[0]
	for name, k := range map[string]string{
		"secret":      Key("other", v.receiving, v.originating, v.id),
		"receiving":   Key(v.secret, "other.example", v.originating, v.id),
		"originating": Key(v.secret, v.receiving, "other.example", v.id),
		"stream id":   Key(v.secret, v.receiving, v.originating, "other"),
		"order":       Key(v.secret, v.originating, v.receiving, v.id),
	} {
		if k == v.key {
			t.Errorf("changing the %s left the key unchanged", name)
		}
		if Check(v.secret, v.receiving, v.originating, v.id, k) {
			t.Errorf("Check accepted the key made with another %s", name)
		}
	}
}

func TestResultRoundTrip_XEP0220_2_1(t *testing.T) {
	for _, r := range []Result{
		{From: "capulet.example", To: "montague.example", Key: "abc"},
		{From: "montague.example", To: "capulet.example", Type: Valid},
		{From: "montague.example", To: "capulet.example", Type: Invalid},
		{From: "montague.example", To: "capulet.example", Type: Error, Err: &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}},
	} {
		el := r.Element()
		if el.Space != NS || el.Local != "result" {
			t.Fatalf("element %s", el)
		}
		got, err := ParseResult(el)
		if err != nil {
			t.Fatalf("ParseResult(%s): %v", el, err)
		}
		if got.From != r.From || got.To != r.To || got.Key != r.Key || got.Type != r.Type {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
		if r.Err != nil && (got.Err == nil || got.Err.Condition != r.Err.Condition) {
			t.Errorf("error lost: %+v", got.Err)
		}
	}
}

func TestVerifyRoundTrip_XEP0220_2_2(t *testing.T) {
	v := Verify{From: "montague.example", To: "capulet.example", ID: "D60000229F", Key: "k"}
	got, err := ParseVerify(v.Element())
	if err != nil || got != v {
		t.Fatalf("ParseVerify = %+v, %v; want %+v", got, err, v)
	}
	a := Verify{From: "capulet.example", To: "montague.example", ID: "D60000229F", Type: Valid}
	if got, err := ParseVerify(a.Element()); err != nil || got != a {
		t.Fatalf("ParseVerify = %+v, %v; want %+v", got, err, a)
	}
}

func TestParseRefusesMalformed_XEP0220_2(t *testing.T) {
	for name, el := range map[string]*dom.Element{
		"wrong namespace":  dom.New("jabber:server", "result", "from", "a.example", "to", "b.example").AppendText("k"),
		"no from":          dom.New(NS, "result", "to", "b.example").AppendText("k"),
		"from with user":   dom.New(NS, "result", "from", "u@a.example", "to", "b.example").AppendText("k"),
		"request, no key":  dom.New(NS, "result", "from", "a.example", "to", "b.example"),
		"unknown type":     dom.New(NS, "result", "from", "a.example", "to", "b.example", "type", "maybe"),
		"verify, no id":    dom.New(NS, "verify", "from", "a.example", "to", "b.example").AppendText("k"),
		"verify as result": dom.New(NS, "verify", "from", "a.example", "to", "b.example", "id", "1").AppendText("k"),
	} {
		var err error
		if el.Local == "verify" && name != "verify as result" {
			_, err = ParseVerify(el)
		} else {
			_, err = ParseResult(el)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestErrorTypeWithoutConditionIsUndefined_XEP0220_2_4(t *testing.T) {
	r, err := ParseResult(dom.New(NS, "result", "from", "a.example", "to", "b.example", "type", "error"))
	if err != nil || r.Err == nil || r.Err.Condition != stanza.UndefinedCondition {
		t.Fatalf("ParseResult = %+v, %v", r, err)
	}
}
