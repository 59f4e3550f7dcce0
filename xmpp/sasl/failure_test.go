package sasl

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// readXML parses one element with encoding/xml, independently of the
// project's stream reader.
func readXML(t *testing.T, b []byte) *dom.Element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*dom.Element
	var root *dom.Element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			el := &dom.Element{Space: tok.Name.Space, Local: tok.Name.Local}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				el.Attrs = append(el.Attrs, dom.Attr{Space: a.Name.Space, Local: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				stack[len(stack)-1].Append(el)
			} else {
				root = el
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].AppendText(string(tok))
			}
		}
	}
	return root
}

func TestEveryConditionRendersAndParsesBack_RFC6120_6_5(t *testing.T) {
	if len(Conditions()) != 11 {
		t.Fatalf("RFC 6120 section 6.5 has 11 conditions, Conditions() has %d", len(Conditions()))
	}
	for _, c := range Conditions() {
		for _, text := range []string{"", "try <again> & later"} {
			f := &Failure{Condition: c, Text: text}
			wire := f.Element().String()
			want := "<failure xmlns='" + NS + "'><" + string(c) + "/>"
			if text != "" {
				want += "<text>try &lt;again&gt; &amp; later</text>"
			}
			want += "</failure>"
			if wire != want {
				t.Errorf("%s: %s, want %s", c, wire, want)
			}
			back := ParseFailure(readXML(t, []byte(wire)))
			if back == nil || *back != *f {
				t.Errorf("%s: parsed back as %+v", c, back)
			}
			if !errors.Is(back, c) || !errors.Is(back, &Failure{Condition: c}) {
				t.Errorf("%s: errors.Is does not match", c)
			}
		}
	}
}

func TestFailureIsMatchesOnlyItsCondition_RFC6120_6_5(t *testing.T) {
	var err error = &Failure{Condition: NotAuthorized, Text: "x"}
	if !errors.Is(err, NotAuthorized) || errors.Is(err, Aborted) || errors.Is(err, errors.New("not-authorized")) {
		t.Fatal("Is matched the wrong things")
	}
	if errors.Is(err, (*Failure)(nil)) {
		t.Fatal("Is matched a nil *Failure")
	}
}

func TestParseFailureEdgeCases_RFC6120_6_5(t *testing.T) {
	if ParseFailure(nil) != nil || ParseFailure(dom.New("jabber:client", "failure")) != nil ||
		ParseFailure(dom.New(NS, "success")) != nil {
		t.Error("parsed something that is not a SASL failure")
	}
	// A bare <failure/> (RFC 3920 era) reads as not-authorized.
	if f := ParseFailure(readXML(t, []byte("<failure xmlns='"+NS+"'/>"))); f.Condition != NotAuthorized {
		t.Errorf("empty failure: %+v", f)
	}
	// Unknown conditions survive; foreign elements are skipped.
	el := readXML(t, []byte("<failure xmlns='"+NS+"'><x xmlns='urn:other'/><text xml:lang='en'>hi</text><future-condition/></failure>"))
	if f := ParseFailure(el); f.Condition != "future-condition" || f.Text != "hi" {
		t.Errorf("got %+v", f)
	}
	// An empty condition is written as not-authorized.
	if s := (&Failure{}).Element().String(); s != "<failure xmlns='"+NS+"'><not-authorized/></failure>" {
		t.Error(s)
	}
}
