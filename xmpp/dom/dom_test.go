package dom

import "testing"

func TestMarshalDeclaresNamespacesOnlyWhereTheyChange(t *testing.T) {
	m := New("jabber:client", "message", "to", "juliet@example.com", "type", "chat")
	m.SetAttrNS(NSXML, "lang", "en")
	m.Append(New("jabber:client", "body").AppendText("hi"))
	m.Append(New("urn:example:x", "x").Append(New("urn:example:x", "y")))
	got := m.String()
	want := "<message xmlns='jabber:client' to='juliet@example.com' type='chat' xml:lang='en'><body>hi</body><x xmlns='urn:example:x'><y/></x></message>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(m.AppendXML(nil, "jabber:client")); got[:9] != "<message " || got[9:14] == "xmlns" {
		t.Fatalf("in a jabber:client stream the stanza must not redeclare its namespace: %s", got)
	}
}

func TestElementWithoutNamespaceInsideNamespacedParentUndeclaresDefault(t *testing.T) {
	p := New("urn:a", "p").Append(New("", "c"))
	if got, want := p.String(), "<p xmlns='urn:a'><c xmlns=''/></p>"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestQualifiedAttributesGetAPrefix(t *testing.T) {
	e := New("urn:a", "e")
	e.SetAttrNS("urn:b", "k", "v")
	if got, want := e.String(), "<e xmlns='urn:a' xmlns:ns1='urn:b' ns1:k='v'/>"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestEscapingNeverEmitsMarkupOrInvalidCharacters(t *testing.T) {
	for _, tc := range []struct {
		in       string
		attr     bool
		expected string
	}{
		{"a<b>&c", false, "a&lt;b&gt;&amp;c"},
		{`'"`, true, "&apos;&quot;"},
		{`'"`, false, `'"`},
		{"line\nbreak\ttab\r", true, "line&#xA;break&#x9;tab&#xD;"},
		{"line\nbreak\r", false, "line\nbreak&#xD;"},
		{"nul\x00bell\x07", false, "nul\uFFFDbell\uFFFD"},
		{"bad\xffutf8", false, "bad\uFFFDutf8"},
		{"\uFFFE", false, "\uFFFD"},
		{"héllo ☃ 𝄞", false, "héllo ☃ 𝄞"},
		{"<!-- x --><?pi?><!DOCTYPE x>&ent;", false, "&lt;!-- x --&gt;&lt;?pi?&gt;&lt;!DOCTYPE x&gt;&amp;ent;"},
	} {
		if got := string(AppendEscaped(nil, tc.in, tc.attr)); got != tc.expected {
			t.Errorf("AppendEscaped(%q, attr=%v) = %q, want %q", tc.in, tc.attr, got, tc.expected)
		}
	}
}

func TestAttrHelpers(t *testing.T) {
	e := New("", "iq", "id", "1", "type", "get")
	e.SetAttr("type", "set")
	e.SetAttr("to", "a@b")
	e.SetAttr("id", "")
	if e.Attr("type") != "set" || e.Attr("to") != "a@b" {
		t.Fatalf("attributes not set: %+v", e.Attrs)
	}
	if _, ok := e.LookupAttr("", "id"); ok {
		t.Fatal("empty value must remove the attribute")
	}
}

func TestCloneIsDeep(t *testing.T) {
	a := New("urn:a", "a").Append(New("urn:a", "b").AppendText("t"))
	c := a.Clone()
	c.Child("urn:a", "b").Nodes[0].Text = "changed"
	c.SetAttr("x", "y")
	if a.Child("", "b").Text() != "t" || a.Attr("x") != "" {
		t.Fatal("clone shares state with the original")
	}
}

func TestChildAccessors(t *testing.T) {
	e := New("jabber:client", "message").AppendText(" ").
		Append(New("jabber:client", "body").AppendText("x"), New("urn:t", "thread"))
	if e.ChildCount() != 2 || len(e.Children()) != 2 || e.FirstChild().Local != "body" {
		t.Fatalf("children: %d", e.ChildCount())
	}
	if e.ChildText("jabber:client", "body") != "x" || e.Child("urn:other", "thread") != nil || e.Child("", "thread") == nil {
		t.Fatal("child lookup by namespace is wrong")
	}
}

func BenchmarkMarshalChatMessage(b *testing.B) {
	m := New("jabber:client", "message", "from", "romeo@example.net/orchard", "to", "juliet@example.com/balcony", "type", "chat", "id", "ktx72v49")
	m.Append(New("jabber:client", "body").AppendText("Art thou not Romeo, and a Montague?"))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendXML(buf[:0], "jabber:client")
	}
}
