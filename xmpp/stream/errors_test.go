package stream

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

func TestEveryConditionSurvivesTheWire_RFC6120_4_9_3(t *testing.T) {
	if len(conditions) != 25 {
		t.Fatalf("%d conditions, RFC 6120 section 4.9.3 defines 25", len(conditions))
	}
	for _, c := range conditions {
		for _, variant := range []string{"bare", "with text and application condition"} {
			t.Run(string(c)+" "+variant, func(t *testing.T) {
				in := &Error{Condition: c}
				if variant != "bare" {
					in.Text = "why: <" + string(c) + "> & more"
					in.Lang = "en"
					in.App = dom.New("http://example.org/ns", "detail", "code", "42")
				}
				if c == SeeOtherHost {
					in.Host = "[2001:41D0:1:A49b::1]:9222"
				}
				var buf bytes.Buffer
				w := NewWriter(&buf, NSClient)
				if err := w.WriteHeader(Header{From: "im.example.com", Version: "1.0"}); err != nil {
					t.Fatal(err)
				}
				if err := w.WriteError(in); err != nil {
					t.Fatal(err)
				}
				r := NewReader(&buf, Limits{})
				if _, err := r.ReadHeader(); err != nil {
					t.Fatal(err)
				}
				el, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				out := ParseError(el)
				if out == nil {
					t.Fatalf("ParseError(%s) = nil", el)
				}
				if out.Condition != in.Condition || out.Text != in.Text || out.Lang != in.Lang || out.Host != in.Host {
					t.Errorf("read back %+v, want %+v", out, in)
				}
				if (in.App == nil) != (out.App == nil) || (in.App != nil && canon(in.App) != canon(out.App)) {
					t.Errorf("application condition %v, want %v", out.App, in.App)
				}
				if _, err := r.Next(); err != ErrClosed {
					t.Errorf("after the error: %v, want ErrClosed", err)
				}
			})
		}
	}
}

func TestErrorsIsMatchesTheCondition_RFC6120_4_9_3(t *testing.T) {
	err := fmt.Errorf("reading: %w", newError(NotWellFormed, "x"))
	if !errors.Is(err, NotWellFormed) || !errors.Is(err, &Error{Condition: NotWellFormed}) {
		t.Error("errors.Is does not find the condition")
	}
	if errors.Is(err, RestrictedXML) || errors.Is(err, &Error{Condition: RestrictedXML}) || errors.Is(err, (*Error)(nil)) {
		t.Error("errors.Is matches another condition")
	}
	if got := err.Error(); got != "reading: stream error: not-well-formed: x" {
		t.Errorf("Error() = %q", got)
	}
}

func TestParseErrorMapsUnknownConditionsToUndefined_RFC6120_4_9_3_21(t *testing.T) {
	el := &dom.Element{Space: NS, Local: "error"}
	el.Append(dom.New(NSError, "xml-not-well-formed")) // RFC 3920's name
	if e := ParseError(el); e == nil || e.Condition != UndefinedCondition {
		t.Errorf("ParseError = %+v, want undefined-condition", e)
	}
	if e := ParseError(&dom.Element{Space: NS, Local: "error"}); e == nil || e.Condition != UndefinedCondition {
		t.Errorf("ParseError of an empty error = %+v, want undefined-condition", e)
	}
}

func TestParseErrorIgnoresOtherElements(t *testing.T) {
	for _, el := range []*dom.Element{nil, dom.New(NSClient, "error"), {Space: NS, Local: "features"}} {
		if e := ParseError(el); e != nil {
			t.Errorf("ParseError(%v) = %+v, want nil", el, e)
		}
	}
}

func TestEmptyConditionIsSentAsUndefined_RFC6120_4_9_3_21(t *testing.T) {
	el := (&Error{}).Element()
	if got := el.FirstChild(); got == nil || got.Local != string(UndefinedCondition) || got.Space != NSError {
		t.Errorf("Element() = %s", el)
	}
}
