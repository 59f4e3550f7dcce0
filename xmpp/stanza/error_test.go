package stanza

import (
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// decode reads one XML element into a dom tree with encoding/xml, so that
// tests can check what Marshal writes by reading it back independently.
func decode(t *testing.T, b []byte) *dom.Element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(b)))
	var stack []*dom.Element
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			el := &dom.Element{Space: tok.Name.Space, Local: tok.Name.Local}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				el.Attrs = append(el.Attrs, dom.Attr{Space: a.Name.Space, Local: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				stack[len(stack)-1].Append(el)
			}
			stack = append(stack, el)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].AppendText(string(tok))
			}
		case xml.EndElement:
			el := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return el
			}
		}
	}
}

func TestIsStanzaRecognisesTheThreeKinds_RFC6120_8(t *testing.T) {
	tests := []struct {
		el   *dom.Element
		want bool
	}{
		{dom.New(NSClient, Message), true},
		{dom.New(NSClient, Presence), true},
		{dom.New(NSClient, IQ), true},
		{dom.New(NSServer, Message), true},
		{dom.New(NSServer, Presence), true},
		{dom.New(NSServer, IQ), true},
		{dom.New("jabber:component:accept", Message), false},
		{dom.New("", Message), false},
		{dom.New(NSClient, "error"), false},
		{dom.New(NSClient, "Message"), false},
		{dom.New("urn:ietf:params:xml:ns:xmpp-sasl", "auth"), false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := IsStanza(tc.el); got != tc.want {
			t.Errorf("IsStanza(%v) = %v, want %v", tc.el, got, tc.want)
		}
	}
}

func TestEveryConditionHasTheRFCDefaultType_RFC6120_8_3_3(t *testing.T) {
	want := []struct {
		c   Condition
		typ ErrorType
	}{
		{"bad-request", Modify},
		{"conflict", Cancel},
		{"feature-not-implemented", Cancel},
		{"forbidden", Auth},
		{"gone", Cancel},
		{"internal-server-error", Cancel},
		{"item-not-found", Cancel},
		{"jid-malformed", Modify},
		{"not-acceptable", Modify},
		{"not-allowed", Cancel},
		{"not-authorized", Auth},
		{"policy-violation", Modify},
		{"recipient-unavailable", Wait},
		{"redirect", Modify},
		{"registration-required", Auth},
		{"remote-server-not-found", Cancel},
		{"remote-server-timeout", Wait},
		{"resource-constraint", Wait},
		{"service-unavailable", Cancel},
		{"subscription-required", Auth},
		{"undefined-condition", Cancel},
		{"unexpected-request", Wait},
	}
	all := Conditions()
	if len(all) != len(want) {
		t.Fatalf("Conditions() has %d conditions, want %d", len(all), len(want))
	}
	for i, w := range want {
		if all[i] != w.c {
			t.Errorf("Conditions()[%d] = %q, want %q", i, all[i], w.c)
		}
		if !w.c.Known() {
			t.Errorf("%q is not Known", w.c)
		}
		if got := w.c.DefaultType(); got != w.typ {
			t.Errorf("%q.DefaultType() = %q, want %q", w.c, got, w.typ)
		}
	}
	if Condition("payment-required").Known() {
		t.Error("payment-required (dropped by RFC 6120) is Known")
	}
}

func TestErrorTypeValid_RFC6120_8_3_2(t *testing.T) {
	for _, typ := range []ErrorType{Auth, Cancel, Continue, Modify, Wait} {
		if !typ.Valid() {
			t.Errorf("%q is not Valid", typ)
		}
	}
	for _, typ := range []ErrorType{"", "Cancel", "retry"} {
		if typ.Valid() {
			t.Errorf("%q is Valid", typ)
		}
	}
}

func TestErrorElementWritesTheRFCForm_RFC6120_8_3_2(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		ns   string
		want string
	}{{
		name: "condition only, default type",
		err:  &Error{Condition: ServiceUnavailable},
		ns:   NSClient,
		want: `<error xmlns='jabber:client' type='cancel'>` +
			`<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
	}, {
		name: "by, text with language, application condition",
		err: &Error{
			Type: Cancel, Condition: ItemNotFound, By: "example.net",
			Text: "no such node", Lang: "en",
			App: dom.New("http://example.org/ns", "special"),
		},
		ns: NSClient,
		want: `<error xmlns='jabber:client' type='cancel' by='example.net'>` +
			`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
			`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no such node</text>` +
			`<special xmlns='http://example.org/ns'/></error>`,
	}, {
		name: "explicit type overrides the default",
		err:  &Error{Type: Wait, Condition: PolicyViolation},
		ns:   NSServer,
		want: `<error xmlns='jabber:server' type='wait'>` +
			`<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
	}, {
		name: "invalid type falls back to the default",
		err:  &Error{Type: "later", Condition: Forbidden},
		ns:   NSClient,
		want: `<error xmlns='jabber:client' type='auth'>` +
			`<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
	}, {
		name: "text is escaped",
		err:  &Error{Condition: BadRequest, Text: "<b> & 'c'"},
		ns:   NSClient,
		want: `<error xmlns='jabber:client' type='modify'>` +
			`<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
			`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>&lt;b&gt; &amp; 'c'</text></error>`,
	}}
	for _, tc := range tests {
		if got := string(tc.err.Element(tc.ns).Marshal()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestErrorElementCarriesURIForGoneAndRedirect_RFC6120_8_3_3_5_And_8_3_3_14(t *testing.T) {
	gone := &Error{Condition: Gone, By: "im.example.com", Redirect: "xmpp:juliet@new.example"}
	want := `<error xmlns='jabber:client' type='cancel' by='im.example.com'>` +
		`<gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:juliet@new.example</gone></error>`
	if got := gone.Element(NSClient).String(); got != want {
		t.Errorf("gone:\n got %s\nwant %s", got, want)
	}
	redirect := &Error{Condition: Redirect, Redirect: "xmpp:room@chat.example.org?join"}
	want = `<error xmlns='jabber:client' type='modify'>` +
		`<redirect xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:room@chat.example.org?join</redirect></error>`
	if got := redirect.Element(NSClient).String(); got != want {
		t.Errorf("redirect:\n got %s\nwant %s", got, want)
	}
	// Other conditions have no place for a URI.
	other := &Error{Condition: ItemNotFound, Redirect: "xmpp:elsewhere.example"}
	if got := other.Element(NSClient).String(); strings.Contains(got, "elsewhere") {
		t.Errorf("item-not-found carries the URI: %s", got)
	}
}

func TestErrorElementWritesUnknownConditionAsUndefined_RFC6120_8_3_3_21(t *testing.T) {
	for _, c := range []Condition{"", "payment-required", "made-up"} {
		e := &Error{Condition: c, App: dom.New("urn:example:errors", "too-busy")}
		want := `<error xmlns='jabber:client' type='cancel'>` +
			`<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
			`<too-busy xmlns='urn:example:errors'/></error>`
		if got := e.Element(NSClient).String(); got != want {
			t.Errorf("condition %q:\n got %s\nwant %s", c, got, want)
		}
	}
}

func TestErrorElementCopiesApplicationCondition(t *testing.T) {
	app := dom.New("urn:example:errors", "quota", "max", "10")
	e := &Error{Condition: ResourceConstraint, App: app}
	el := e.Element(NSClient)
	el.Child("urn:example:errors", "quota").SetAttr("max", "99")
	if app.Attr("max") != "10" {
		t.Error("changing the rendered element changed Error.App")
	}
}

func TestErrorMatchesItsConditionWithErrorsIs(t *testing.T) {
	var err error = &Error{Condition: ItemNotFound, Text: "gone fishing"}
	wrapped := fmt.Errorf("roster get: %w", err)
	for _, target := range []error{ItemNotFound, &Error{Condition: ItemNotFound}} {
		if !errors.Is(err, target) || !errors.Is(wrapped, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	for _, target := range []error{Forbidden, &Error{Condition: Forbidden}, (*Error)(nil), errors.New("item-not-found")} {
		if errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %#v) = true", err, target)
		}
	}
	var se *Error
	if !errors.As(wrapped, &se) || se.Text != "gone fishing" {
		t.Errorf("errors.As = %v", se)
	}
	if err.Error() != "stanza error: item-not-found" || ItemNotFound.Error() != "item-not-found" {
		t.Errorf("messages: %q, %q", err.Error(), ItemNotFound.Error())
	}
}

// rfcErrorIQ builds by hand an IQ error shaped like the example of RFC 6120
// section 8.3.2: a defined condition, a text with a language, and an
// application-specific condition.
func rfcErrorIQ() *dom.Element {
	errEl := dom.New(NSClient, "error", "by", "example.net", "type", "cancel")
	errEl.Append(dom.New(NS, "item-not-found"))
	text := dom.New(NS, "text")
	text.SetAttrNS(dom.NSXML, "lang", "en")
	errEl.Append(text.AppendText("node lookup failed"))
	errEl.Append(dom.New("http://example.org/ns", "special"))
	iq := dom.New(NSClient, IQ,
		"from", "example.net", "id", "z94nb37h", "to", "juliet@example.com/balcony", "type", "error")
	return iq.Append(errEl)
}

func TestParseErrorReadsTheRFCExample_RFC6120_8_3_2(t *testing.T) {
	e, ok := ParseError(rfcErrorIQ())
	if !ok {
		t.Fatal("ParseError found no error")
	}
	if e.Type != Cancel || e.Condition != ItemNotFound || e.By != "example.net" ||
		e.Text != "node lookup failed" || e.Lang != "en" || e.Redirect != "" {
		t.Errorf("ParseError = %+v", e)
	}
	if e.App == nil || e.App.Space != "http://example.org/ns" || e.App.Local != "special" {
		t.Errorf("App = %v", e.App)
	}
	if !errors.Is(e, ItemNotFound) {
		t.Error("parsed error does not match item-not-found")
	}
}

func TestParseErrorReadsGoneAndRedirectURIs_RFC6120_8_3_3_5_And_8_3_3_14(t *testing.T) {
	for _, c := range []Condition{Gone, Redirect} {
		cond := dom.New(NS, string(c)).AppendText(" xmpp:juliet@new.example\n")
		st := dom.New(NSClient, Message, "type", "error").Append(
			dom.New(NSClient, "error", "type", "cancel").Append(cond))
		e, ok := ParseError(st)
		if !ok || e.Condition != c || e.Redirect != "xmpp:juliet@new.example" {
			t.Errorf("%s: ParseError = %+v, %v", c, e, ok)
		}
	}
}

func TestParseErrorTreatsUnknownOrMissingConditionAsUndefined_RFC6120_8_3_3_21(t *testing.T) {
	for name, errEl := range map[string]*dom.Element{
		"unknown": dom.New(NSClient, "error", "type", "cancel").Append(dom.New(NS, "payment-required")),
		"missing": dom.New(NSClient, "error", "type", "cancel").Append(dom.New("urn:example", "oops")),
		"empty":   dom.New(NSClient, "error"),
	} {
		st := dom.New(NSClient, IQ, "type", "error", "id", "1").Append(errEl)
		e, ok := ParseError(st)
		if !ok || e.Condition != UndefinedCondition {
			t.Errorf("%s: ParseError = %+v, %v; want undefined-condition", name, e, ok)
		}
	}
}

func TestParseErrorLeavesBadTypeEmpty_RFC6120_8_3_2(t *testing.T) {
	st := dom.New(NSClient, IQ, "type", "error").Append(
		dom.New(NSClient, "error", "type", "retry").Append(dom.New(NS, "conflict")))
	e, ok := ParseError(st)
	if !ok || e.Type != "" || e.EffectiveType() != Cancel {
		t.Errorf("ParseError = %+v, %v; want empty Type, effective cancel", e, ok)
	}
}

func TestParseErrorIgnoresStanzasThatAreNotErrors_RFC6120_8_3_1(t *testing.T) {
	withError := func(typ string) *dom.Element {
		return dom.New(NSClient, IQ, "type", typ).Append(
			dom.New(NSClient, "error", "type", "cancel").Append(dom.New(NS, "conflict")))
	}
	for name, st := range map[string]*dom.Element{
		"nil":                  nil,
		"type result":          withError("result"),
		"no type":              withError(""),
		"type error, no child": dom.New(NSClient, Message, "type", "error"),
		"error child in other namespace": dom.New(NSClient, Message, "type", "error").Append(
			dom.New("urn:example", "error")),
	} {
		if e, ok := ParseError(st); ok || e != nil {
			t.Errorf("%s: ParseError = %+v, %v", name, e, ok)
		}
	}
}

func TestErrorRoundTripsThroughMarshal_RFC6120_8_3_2(t *testing.T) {
	var errs []*Error
	for _, c := range Conditions() {
		errs = append(errs,
			&Error{Condition: c},
			&Error{Type: Continue, Condition: c, By: "example.com", Text: "why & how", Lang: "fr",
				App: dom.New("urn:example:errors", "detail", "code", "42").AppendText("x")})
	}
	errs = append(errs,
		&Error{Condition: Gone, Redirect: "xmpp:juliet@new.example"},
		&Error{Condition: Redirect, Type: Modify, Redirect: "xmpp:room@chat.example", Text: "moved"})
	for _, e := range errs {
		for _, ns := range []string{NSClient, NSServer} {
			st := dom.New(ns, Message, "from", "a@example.com/r", "to", "b@example.net", "type", "error", "id", "m1")
			st.Append(e.Element(ns))
			wire := st.Marshal()

			// Build the same stanza back from its wire form, independently of
			// this package, and read the error from it.
			back := decode(t, wire)
			got, ok := ParseError(back)
			if !ok {
				t.Fatalf("ParseError(%s) found nothing", wire)
			}
			want := *e
			want.Type = e.EffectiveType()
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip of %s:\n got %+v\nwant %+v", wire, got, &want)
			}
			if again := string(got.Element(ns).Marshal()); again != string(e.Element(ns).Marshal()) {
				t.Errorf("re-rendered %s, first rendered %s", again, e.Element(ns).Marshal())
			}
		}
	}
}

func TestErrorReplySwapsAddressesAndKeepsID_RFC6120_8_3_1(t *testing.T) {
	for _, kind := range []string{Message, Presence, IQ} {
		st := dom.New(NSClient, kind, "from", "juliet@example.com/balcony", "id", "x1",
			"to", "romeo@example.net", "type", "get")
		r := ErrorReply(st, &Error{Condition: ServiceUnavailable})
		if r == nil {
			t.Fatalf("%s: no reply", kind)
		}
		if r.Space != NSClient || r.Local != kind {
			t.Errorf("%s: reply is {%s}%s", kind, r.Space, r.Local)
		}
		if r.Attr("from") != "romeo@example.net" || r.Attr("to") != "juliet@example.com/balcony" ||
			r.Attr("id") != "x1" || r.Attr("type") != "error" {
			t.Errorf("%s: reply attributes %v", kind, r.Attrs)
		}
		e, ok := ParseError(r)
		if !ok || e.Condition != ServiceUnavailable || e.Type != Cancel {
			t.Errorf("%s: reply carries %+v, %v", kind, e, ok)
		}
	}
}

func TestErrorReplyWritesTheRFCForm_RFC6120_8_3_1(t *testing.T) {
	st := dom.New(NSClient, IQ, "from", "juliet@example.com/balcony", "id", "ixs7a9",
		"to", "romeo@example.net", "type", "get")
	st.Append(dom.New("jabber:iq:roster", "query"))
	r := ErrorReply(st, &Error{Condition: ServiceUnavailable})
	want := `<iq xmlns='jabber:client' from='romeo@example.net' id='ixs7a9' to='juliet@example.com/balcony' type='error'>` +
		`<query xmlns='jabber:iq:roster'/>` +
		`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	if got := r.String(); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// On the stream the stanza namespace is the default, and the <error/>
	// declares nothing of its own.
	onStream := string(r.AppendXML(nil, NSClient))
	if !strings.HasPrefix(onStream, "<iq from=") || strings.Contains(onStream, "<error xmlns") {
		t.Errorf("on a jabber:client stream: %s", onStream)
	}
}

func TestErrorReplyKeepsOriginalChildrenAndLanguage_RFC6120_8_3_1(t *testing.T) {
	st := dom.New(NSServer, Message, "from", "a@example.com/r", "to", "b@example.net", "type", "chat")
	st.SetAttrNS(dom.NSXML, "lang", "de")
	st.Append(dom.New(NSServer, "body").AppendText("hallo"))
	st.Append(dom.New("urn:xmpp:receipts", "request"))
	r := ErrorReply(st, &Error{Condition: RecipientUnavailable})
	kids := r.Children()
	if len(kids) != 3 || kids[0].Local != "body" || kids[0].Text() != "hallo" ||
		kids[1].Local != "request" || kids[2].Local != "error" || kids[2].Space != NSServer {
		t.Fatalf("reply children: %s", r)
	}
	if r.Lang() != "de" {
		t.Errorf("reply xml:lang = %q", r.Lang())
	}
}

func TestErrorReplyDoesNotChangeTheOriginal_RFC6120_8_3_1(t *testing.T) {
	st := dom.New(NSClient, IQ, "from", "a@example.com/r", "to", "example.com", "id", "1", "type", "set")
	st.Append(dom.New("urn:example", "q"))
	before := st.String()
	app := dom.New("urn:example:errors", "detail")
	r := ErrorReply(st, &Error{Condition: NotAllowed, App: app})
	if st.String() != before {
		t.Errorf("original changed:\n%s\n%s", before, st)
	}
	r.Children()[0].SetAttr("x", "y")
	r.Child(NSClient, "error").Child("urn:example:errors", "detail").SetAttr("x", "y")
	if st.String() != before || app.Attr("x") != "" {
		t.Error("the reply shares elements with the original or the Error")
	}
}

func TestErrorReplyDropsMissingAddresses_RFC6120_8_3_1(t *testing.T) {
	// A stanza to the sender's own account has no 'to'; the reply then has
	// no 'from'.
	st := dom.New(NSClient, IQ, "from", "juliet@example.com/balcony", "id", "r1", "type", "get")
	r := ErrorReply(st, &Error{Condition: FeatureNotImplemented})
	if v, ok := r.LookupAttr("", "from"); ok {
		t.Errorf("reply has from=%q", v)
	}
	if r.Attr("to") != "juliet@example.com/balcony" {
		t.Errorf("reply to=%q", r.Attr("to"))
	}
}

func TestErrorReplyNeverAnswersAnError_RFC6120_8_3_1(t *testing.T) {
	st := rfcErrorIQ()
	if r := ErrorReply(st, &Error{Condition: BadRequest}); r != nil {
		t.Errorf("reply to an error: %s", r)
	}
	if r := ErrorReply(nil, &Error{Condition: BadRequest}); r != nil {
		t.Errorf("reply to nil: %s", r)
	}
}

func TestErrorReplyWithNilErrorIsInternalServerError_RFC6120_8_3_3_6(t *testing.T) {
	st := dom.New(NSClient, Message, "from", "a@example.com/r", "to", "b@example.com")
	e, ok := ParseError(ErrorReply(st, nil))
	if !ok || e.Condition != InternalServerError {
		t.Errorf("ParseError = %+v, %v", e, ok)
	}
}
