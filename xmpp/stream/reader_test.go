package stream

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

func TestClientHeaderFields_RFC6120_4_7(t *testing.T) {
	r := NewReader(strings.NewReader(clientHeader), Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	want := Header{From: "juliet@im.example.com", To: "im.example.com", Version: "1.0", Lang: "en", NS: NSClient}
	if h.To != want.To || h.From != want.From || h.Version != want.Version || h.Lang != want.Lang || h.NS != want.NS || h.ID != "" || h.Prefixes != nil {
		t.Errorf("header = %+v, want %+v", h, want)
	}
}

func TestServerHeaderIDAndExtraPrefixes_RFC6120_4_7_3(t *testing.T) {
	in := "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n" +
		`<stream:stream from="im.example.com" id="++TR84Sm6A3hnt3Q065SnAbbk3Y=" to="juliet@im.example.com" version="1.0" xml:lang="en" xmlns="jabber:server" xmlns:db="jabber:server:dialback" xmlns:stream="http://etherx.jabber.org/streams">`
	h, err := NewReader(strings.NewReader(in), Limits{}).ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != "++TR84Sm6A3hnt3Q065SnAbbk3Y=" || h.NS != NSServer || len(h.Prefixes) != 1 || h.Prefixes["db"] != "jabber:server:dialback" {
		t.Errorf("header = %+v", h)
	}
}

func TestUTF8ByteOrderMarkBeforeDeclarationIsSkipped_RFC6120_11_6(t *testing.T) {
	h, err := NewReader(strings.NewReader("\xEF\xBB\xBF"+clientHeader), Limits{}).ReadHeader()
	if err != nil || h.To != "im.example.com" {
		t.Errorf("ReadHeader = %+v, %v", h, err)
	}
}

func TestHeaderWithoutDeclarationOrDefaultNamespace_RFC6120_4_8_2(t *testing.T) {
	// Prefix-free canonicalization: no content namespace on the header,
	// each first-level child declares its own.
	in := "<stream:stream to='im.example.com' version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>" +
		"<message xmlns='jabber:client'><body>foo</body></message>"
	r := NewReader(strings.NewReader(in), Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.NS != "" {
		t.Errorf("NS = %q, want none", h.NS)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != NSClient || el.Child(NSClient, "body").Text() != "foo" {
		t.Errorf("element = %s", canon(el))
	}
}

func TestHeaderErrorConditions_RFC6120_4_9_3(t *testing.T) {
	const decl = "<?xml version='1.0'?>"
	const rest = " to='im.example.com' version='1.0'"
	for _, tc := range []struct {
		name string
		in   string
		want Condition
	}{
		{"encoding other than UTF-8 is unsupported-encoding (11.6)",
			"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns:stream='" + NS + "'>", UnsupportedEncoding},
		{"UTF-16 byte order mark is unsupported-encoding (11.6)",
			"\xFE\xFF\x00<", UnsupportedEncoding},
		{"invalid UTF-8 in the header is unsupported-encoding (4.9.3.22)",
			decl + "<stream:stream xmlns:stream='" + NS + "' to='\xC3\x28'>", UnsupportedEncoding},
		{"header in another namespace is invalid-namespace (4.8.1)",
			decl + "<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong.example/streams'" + rest + ">", InvalidNamespace},
		{"unprefixed header outside the stream namespace is invalid-namespace (4.8.1)",
			decl + "<stream xmlns='jabber:client'" + rest + ">", InvalidNamespace},
		{"stream namespace as default namespace is bad-namespace-prefix (4.9.3.2)",
			decl + "<stream xmlns='" + NS + "'" + rest + ">", BadNamespacePrefix},
		{"prefix other than stream is bad-namespace-prefix (4.9.3.2)",
			decl + "<foo:stream xmlns='jabber:client' xmlns:foo='" + NS + "'" + rest + ">", BadNamespacePrefix},
		{"undeclared stream prefix is bad-namespace-prefix (4.9.3.2)",
			decl + "<stream:stream xmlns='jabber:client'" + rest + ">", BadNamespacePrefix},
		{"header element not named stream is bad-format (4.9.3.1)",
			decl + "<stream:session xmlns='jabber:client' xmlns:stream='" + NS + "'" + rest + ">", BadFormat},
		{"comment before the header is restricted-xml (11.1)",
			decl + "<!-- hi --><stream:stream xmlns:stream='" + NS + "'>", RestrictedXML},
		{"processing instruction is restricted-xml (11.1)",
			"<?xml-stylesheet href='x'?><stream:stream xmlns:stream='" + NS + "'>", RestrictedXML},
		{"DOCTYPE is restricted-xml (11.1)",
			decl + "<!DOCTYPE stream:stream [<!ENTITY x 'y'>]><stream:stream xmlns:stream='" + NS + "'>", RestrictedXML},
		{"entity reference in the header is restricted-xml (11.1)",
			decl + "<stream:stream xmlns:stream='" + NS + "' to='&ent;'>", RestrictedXML},
		{"unquoted attribute is not-well-formed (4.9.3.13)",
			decl + "<stream:stream xmlns:stream='" + NS + "' to=im.example.com>", NotWellFormed},
		{"duplicate attribute is not-well-formed (4.9.3.13)",
			decl + "<stream:stream xmlns:stream='" + NS + "' to='a' to='b'>", NotWellFormed},
		{"XML version 2.0 is not-well-formed (11.8)",
			"<?xml version='2.0'?><stream:stream xmlns:stream='" + NS + "'>", NotWellFormed},
		{"text before the header is not-well-formed (4.9.3.13)",
			"hello<stream:stream xmlns:stream='" + NS + "'>", NotWellFormed},
		{"end tag before the header is not-well-formed (4.9.3.13)",
			"</stream:stream>", NotWellFormed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tc.in), Limits{}).ReadHeader()
			if got := condition(err); got != tc.want {
				t.Errorf("ReadHeader(%q) = %v, want %s", tc.in, err, tc.want)
			}
		})
	}
}

func TestHeaderLargerThanLimitIsPolicyViolation_RFC6120_4_9_3_14(t *testing.T) {
	in := "<stream:stream xmlns:stream='" + NS + "' to='" + strings.Repeat("a", 200) + "'>"
	_, err := NewReader(strings.NewReader(in), Limits{MaxHeaderBytes: 100}).ReadHeader()
	if condition(err) != PolicyViolation || !strings.Contains(err.Error(), "stream header larger than 100 bytes") {
		t.Errorf("ReadHeader = %v, want policy-violation naming the header limit", err)
	}
}

func TestEndlessHeaderStopsAtLimit_RFC6120_4_9_3_14(t *testing.T) {
	src := &repeatReader{prefix: []byte("<stream:stream xmlns:stream='" + NS + "' to='"), unit: []byte("a")}
	_, err := NewReader(src, Limits{}).ReadHeader()
	if condition(err) != PolicyViolation {
		t.Fatalf("ReadHeader = %v, want policy-violation", err)
	}
	if max := int64(DefaultLimits().MaxHeaderBytes + readBufSize); src.total > max {
		t.Errorf("read %d bytes from the peer, want at most %d", src.total, max)
	}
}

// rfcExamples are first-level elements from RFC 6120's examples; each must
// read and write back unchanged (the writer omits the content namespace and
// uses the stream: prefix, as the examples do).
var rfcExamples = []struct{ name, xml string }{
	{"features with STARTTLS required (5.4.1)",
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"},
	{"starttls command (5.4.2.1)",
		"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
	{"proceed (5.4.2.3)",
		"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
	{"TLS failure (5.4.2.2)",
		"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
	{"SASL mechanisms (6.4.1)",
		"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"},
	{"SASL auth with initial response (6.4.2)",
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>"},
	{"SASL challenge (6.4.3)",
		"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQWUxMjQ2OTViLTY5Y2UtNGE2YS05ODcyLTc0ZmJhYTA1MzRmNyxzPUFBQUFBQUFBQUFBPSxpPTQwOTY=</challenge>"},
	{"SASL success (6.4.6)",
		"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1wTk5ERlZFUXh1WHhDb1NFaVc4R0VaKzFSU289</success>"},
	{"SASL failure with text (6.4.5)",
		"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text xml:lang='en'>Wrong password</text></failure>"},
	{"resource binding request (7.6.1)",
		"<iq id='tn281v37' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"},
	{"resource binding result (7.6.1)",
		"<iq id='tn281v37' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@im.example.com/4db06f06-1ea4-11dc-aca3-000bcd821bfb</jid></bind></iq>"},
	{"message stanza (8.1)",
		"<message from='juliet@im.example.com/balcony' id='ju2ba41c' to='romeo@example.net' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>"},
	{"presence stanza (8.2.2)",
		"<presence from='juliet@im.example.com/balcony' xml:lang='en'><show>away</show></presence>"},
	{"roster get (8.2.3)",
		"<iq from='juliet@im.example.com/balcony' id='rg1' type='get'><query xmlns='jabber:iq:roster'/></iq>"},
	{"stanza error (8.3.2)",
		"<iq from='im.example.com' id='ix1' to='juliet@im.example.com/balcony' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
	{"stream error (4.9.1.1)",
		"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
	{"stream error with text and application condition (4.9.4)",
		"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Some special application diagnostic information!</text><escape-your-data xmlns='http://example.org/ns'/></stream:error>"},
	{"see-other-host (4.9.3.19)",
		"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:41D0:1:A49b::1]:9222</see-other-host></stream:error>"},
}

func TestRFCExamplesReadAndWriteBack_RFC6120(t *testing.T) {
	for _, tc := range rfcExamples {
		t.Run(tc.name, func(t *testing.T) {
			el, err := readOne(t, tc.xml)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			w := NewWriter(&buf, NSClient)
			if err := w.WriteHeader(Header{}); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			buf.Reset()
			if err := w.WriteElement(el); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.xml {
				t.Errorf("written back as\n%s\nwant\n%s", buf.String(), tc.xml)
			}
		})
	}
}

func TestMessageTreeFromRFCExample_RFC6120_8_1(t *testing.T) {
	el, err := readOne(t, rfcExamples[11].xml)
	if err != nil {
		t.Fatal(err)
	}
	want := `{jabber:client}message[ {}from="juliet@im.example.com/balcony" {}id="ju2ba41c" {}to="romeo@example.net" {}type="chat" {http://www.w3.org/XML/1998/namespace}lang="en"]({jabber:client}body[]("Art thou not Romeo, and a Montague?"))`
	if got := canon(el); got != want {
		t.Errorf("tree\n%s\nwant\n%s", got, want)
	}
}

func TestWhitespaceBetweenElementsIsSkipped_RFC6120_11_7(t *testing.T) {
	r := open(t, clientHeader, " \n\t\r\n<presence/>\r\n \n<presence/> </stream:stream>", Limits{})
	for i := range 2 {
		el, err := r.Next()
		if err != nil || el.Local != "presence" {
			t.Fatalf("element %d: %v, %v", i, el, err)
		}
	}
	if _, err := r.Next(); err != ErrClosed {
		t.Fatalf("Next = %v, want ErrClosed", err)
	}
}

func TestCloseTagEndsStream_RFC6120_4_4(t *testing.T) {
	r := open(t, clientHeader, "<presence/></stream:stream><garbage", Limits{})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.Next(); err != ErrClosed {
			t.Fatalf("Next = %v, want ErrClosed", err)
		}
	}
}

func TestSelfClosingHeaderIsAnEmptyStream_RFC6120_4_4(t *testing.T) {
	r := open(t, "<stream:stream xmlns:stream='"+NS+"'/>", "", Limits{})
	if _, err := r.Next(); err != ErrClosed {
		t.Fatalf("Next = %v, want ErrClosed", err)
	}
}

func TestConnectionEndingWithoutCloseTagIsEOF(t *testing.T) {
	for _, body := range []string{"", "<presence/>  ", "<message><body>half"} {
		r := open(t, clientHeader, body, Limits{})
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err != io.EOF {
			t.Errorf("after %q: Next = %v, want io.EOF", body, err)
		}
	}
}

type failReader struct{ err error }

func (f failReader) Read([]byte) (int, error) { return 0, f.err }

func TestIOErrorPassesThroughUnchanged(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader(clientHeader+"<message><bo"), failReader{boom}), Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != boom {
		t.Fatalf("Next = %v, want the source's error", err)
	}
	if _, err := r.Next(); err != boom {
		t.Fatalf("Next after a failure in an element = %v, want the same error", err)
	}
}

// deadlineReader returns a timeout once, as a connection with a read
// deadline does, then the rest of its data.
type deadlineReader struct {
	first, rest string
	n           int
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.n++
	switch d.n {
	case 1:
		return copy(p, d.first), nil
	case 2:
		return 0, os.ErrDeadlineExceeded
	}
	if d.rest == "" {
		return 0, io.EOF
	}
	n := copy(p, d.rest)
	d.rest = d.rest[n:]
	return n, nil
}

func TestReadDeadlineBetweenElementsCanBeRetried(t *testing.T) {
	r := NewReader(&deadlineReader{first: clientHeader + "<presence/> ", rest: "<message/>"}, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Next = %v, want the deadline error", err)
	}
	el, err := r.Next()
	if err != nil || el.Local != "message" {
		t.Fatalf("Next after the deadline = %v, %v; want <message/>", el, err)
	}
}

func TestRestrictedXMLConditions_RFC6120_11_1(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"comment between stanzas", "<!-- note --><presence/>"},
		{"comment inside a stanza", "<message><!-- note --></message>"},
		{"processing instruction inside a stanza", "<message><?php echo 1 ?></message>"},
		{"processing instruction at the top", "<?foo bar?>"},
		{"XML declaration in the middle of the stream", "<?xml version='1.0'?>"},
		{"DOCTYPE in the middle of the stream", "<!DOCTYPE message>"},
		{"ENTITY declaration inside a stanza", "<message><!ENTITY x 'y'></message>"},
		{"external entity reference in text", "<message><body>&xxe;</body></message>"},
		{"entity reference in an attribute value", "<message to='&nbsp;'/>"},
		{"entity reference at the top level", "&lol;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOne(t, tc.in)
			if condition(err) != RestrictedXML {
				t.Errorf("Next(%q) = %v, want restricted-xml", tc.in, err)
			}
		})
	}
}

func TestNotWellFormedConditions_RFC6120_4_9_3_13(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"mismatched end tag", "<message><body>hi</bodx></message>"},
		{"end tag with another prefix", "<db:result xmlns:db='jabber:server:dialback'></result>"},
		{"end tag of another element at the top", "</message>"},
		{"unquoted attribute", "<message to=romeo@example.net/>"},
		{"attribute without value", "<message to/>"},
		{"duplicate attribute", "<message to='a' to='b'/>"},
		{"duplicate attribute through two prefixes", "<message xmlns:a='urn:x' xmlns:b='urn:x' a:k='1' b:k='2'/>"},
		{"missing whitespace between attributes", "<message to='a'from='b'/>"},
		{"undeclared element prefix (XML-NAMES)", "<foo:message/>"},
		{"undeclared attribute prefix (XML-NAMES)", "<message foo:bar='1'/>"},
		{"two colons in a name", "<a:b:c xmlns:a='urn:x'/>"},
		{"name starting with a digit", "<1message/>"},
		{"prefix bound to the empty name", "<message xmlns:p=''/>"},
		{"xmlns prefix declared", "<message xmlns:xmlns='urn:x'/>"},
		{"xml prefix rebound", "<message xmlns:xml='urn:x'/>"},
		{"element with the xmlns prefix", "<xmlns:message/>"},
		{"'<' in an attribute value", "<message to='a<b'/>"},
		{"bare ampersand", "<message><body>a & b</body></message>"},
		{"entity reference without semicolon", "<message><body>&amp b</body></message>"},
		{"character reference to NUL", "<message><body>&#0;</body></message>"},
		{"character reference out of range", "<message><body>&#x110000;</body></message>"},
		{"malformed character reference", "<message><body>&#x12g;</body></message>"},
		{"control character in text", "<message><body>a\x01b</body></message>"},
		{"control character in an attribute", "<message id='a\x1bb'/>"},
		{"U+FFFE in text", "<message><body>\uFFFE</body></message>"},
		{"']]>' in text", "<message><body>a]]>b</body></message>"},
		{"malformed markup after '<!'", "<message><!x></message>"},
		{"CDATA keyword misspelt", "<message><![CDATX[x]]></message>"},
		{"'/' not followed by '>'", "<message/ >"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOne(t, tc.in)
			if condition(err) != NotWellFormed {
				t.Errorf("Next(%q) = %v, want not-well-formed", tc.in, err)
			}
		})
	}
}

func TestInvalidUTF8IsUnsupportedEncoding_RFC6120_4_9_3_22(t *testing.T) {
	for _, in := range []string{
		"<message><body>\xFF</body></message>",
		"<message><body>\xC3\x28</body></message>",
		"<message id='\xED\xA0\x80'/>", // an encoded surrogate
		"<message><body>\xE2\x82</body></message>",
	} {
		_, err := readOne(t, in)
		if condition(err) != UnsupportedEncoding {
			t.Errorf("Next(%q) = %v, want unsupported-encoding", in, err)
		}
	}
}

func TestTextBetweenStanzasIsBadFormat_RFC6120_11_7(t *testing.T) {
	for _, in := range []string{"hello<presence/>", "<presence/>x", "&amp;", "<![CDATA[x]]>"} {
		r := open(t, clientHeader, in, Limits{})
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if condition(err) != BadFormat {
			t.Errorf("stream %q: %v, want bad-format", in, err)
		}
	}
}

func TestElementInXMLNamespaceIsBadFormat(t *testing.T) {
	_, err := readOne(t, "<xml:message/>")
	if condition(err) != BadFormat {
		t.Errorf("Next = %v, want bad-format", err)
	}
}

func TestPredefinedEntitiesAndCharacterReferences_RFC6120_11_1(t *testing.T) {
	el, err := readOne(t, "<message id='&lt;&gt;&amp;&apos;&quot;&#65;&#x42;'><body>&lt;&gt;&amp;&apos;&quot;&#x1F600;&#233;</body></message>")
	if err != nil {
		t.Fatal(err)
	}
	if got := el.Attr("id"); got != `<>&'"AB` {
		t.Errorf("id = %q", got)
	}
	if got := el.ChildText("", "body"); got != `<>&'"😀é` {
		t.Errorf("body = %q", got)
	}
}

func TestCDATASectionIsReadAsText(t *testing.T) {
	el, err := readOne(t, "<message><body>a<![CDATA[<b>&amp;]]]]>c</body></message>")
	if err != nil {
		t.Fatal(err)
	}
	body := el.Child("", "body")
	if len(body.Nodes) != 1 || body.Text() != "a<b>&amp;]]c" {
		t.Errorf("body nodes = %#v, want one text node", body.Nodes)
	}
}

func TestLineEndsAndAttributeWhitespaceAreNormalised(t *testing.T) {
	// XML 1.0 sections 2.11 and 3.3.3; character references are kept.
	el, err := readOne(t, "<message id='a\tb\r\nc&#xA;d'><body>1\r\n2\r3&#xD;4</body></message>")
	if err != nil {
		t.Fatal(err)
	}
	if got := el.Attr("id"); got != "a b c\nd" {
		t.Errorf("id = %q", got)
	}
	if got := el.ChildText("", "body"); got != "1\n2\n3\r4" {
		t.Errorf("body = %q", got)
	}
}

func TestNamespacesAreResolved_RFC6120_4_8(t *testing.T) {
	r := open(t, serverHeader,
		"<db:result from='example.net' to='im.example.com'>abc</db:result>"+
			"<message xmlns:x='urn:x'><body x:k='v' xml:lang='fr'>salut</body><c xmlns='urn:c'><d/><e xmlns=''/></c></message>", Limits{})
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != "jabber:server:dialback" || el.Local != "result" || el.Text() != "abc" {
		t.Errorf("dialback = %s", canon(el))
	}
	el, err = r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := `{jabber:server}message[]({jabber:server}body[ {urn:x}k="v" {http://www.w3.org/XML/1998/namespace}lang="fr"]("salut"){urn:c}c[]({urn:c}d[](){}e[]()))`
	if got := canon(el); got != want {
		t.Errorf("tree\n%s\nwant\n%s", got, want)
	}
}

func TestElementSlicesDoNotShareCapacity(t *testing.T) {
	el, err := readOne(t, "<message to='a'><body id='b'>x</body><subject/></message>")
	if err != nil {
		t.Fatal(err)
	}
	body := el.Child("", "body")
	el.Attrs = append(el.Attrs, dom.Attr{Local: "from", Value: "c"})
	el.Nodes = append(el.Nodes, dom.Node{Text: "y"})
	if body.Attr("id") != "b" || body.Text() != "x" || el.Child("", "subject") == nil {
		t.Errorf("appending to one element changed another: %s", canon(el))
	}
}

func TestEveryBufferBoundaryReadsTheSame(t *testing.T) {
	in := clientHeader + "<message id='é&amp;x'>\r\n<body>héllo 😀 &lt; <![CDATA[a]]b]]></body></message></stream:stream>"
	want, err := readOne(t, in[len(clientHeader):])
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < 8; n++ {
		r := NewReader(&chunkReader{data: []byte(in), n: n}, Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatalf("chunks of %d: %v", n, err)
		}
		got, err := r.Next()
		if err != nil {
			t.Fatalf("chunks of %d: %v", n, err)
		}
		if canon(got) != canon(want) {
			t.Errorf("chunks of %d: %s, want %s", n, canon(got), canon(want))
		}
	}
}

func TestLimitsArePolicyViolations_RFC6120_4_9_3_14(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	attrs := func(n int) string {
		var b strings.Builder
		b.WriteString("<message")
		for i := range n {
			b.WriteString(" a" + strings.Repeat("x", i) + "='1'")
		}
		b.WriteString("/>")
		return b.String()
	}
	big := func(n int) string {
		return "<message><body>" + strings.Repeat("x", n-len("<message><body></body></message>")) + "</body></message>"
	}
	lim := Limits{MaxStanzaBytes: 1000, MaxDepth: 5, MaxAttrs: 4}
	for _, tc := range []struct {
		name, in string
		text     string // in the error text; "" when the element is within limits
	}{
		{"stanza at the byte limit", big(1000), ""},
		{"stanza one byte over the limit", big(1001), "stanza larger than 1000 bytes"},
		{"stanza over the limit in a later buffer", big(20000), "stanza larger than 1000 bytes"},
		{"depth at the limit", deep(5), ""},
		{"depth over the limit", deep(6), "elements nested deeper than 5"},
		{"attributes at the limit", attrs(4), ""},
		{"attributes over the limit", attrs(5), "more than 4 attributes on one element"},
		{"namespace declarations count as attributes", "<message a='1' b='2' c='3' xmlns='urn:x' xmlns:p='urn:y'/>", "more than 4 attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(t, clientHeader, tc.in, lim).Next()
			if tc.text == "" {
				if err != nil {
					t.Fatalf("Next = %v, want the element", err)
				}
				return
			}
			if condition(err) != PolicyViolation || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Next = %v, want policy-violation saying %q", err, tc.text)
			}
		})
	}
}

func TestEndlessElementIsCutOffAtTheLimit_RFC6120_4_9_3_14(t *testing.T) {
	for _, tc := range []struct{ name, start, unit string }{
		{"endless text", "<message><body>", "x"},
		{"endless attribute value", "<message to='", "x"},
		{"endless children", "<message>", "<a/>"},
		{"endless name", "<m", "m"},
		{"endless entity name", "<message>&", "a"},
		{"endless whitespace in a tag", "<message", " "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &repeatReader{prefix: []byte(clientHeader + tc.start), unit: []byte(tc.unit)}
			r := NewReader(src, Limits{MaxStanzaBytes: 64 << 10})
			if _, err := r.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			_, err := r.Next()
			if condition(err) != PolicyViolation {
				t.Fatalf("Next = %v, want policy-violation", err)
			}
			if max := int64(len(clientHeader) + 64<<10 + 2*readBufSize); src.total > max {
				t.Errorf("read %d bytes from the peer, want at most %d", src.total, max)
			}
			if cap(r.data) > 64<<10+2*readBufSize {
				t.Errorf("buffered %d bytes of text", cap(r.data))
			}
		})
	}
}

// stopReader serves data and then reports any further Read as a failure:
// after <starttls/> a client sends nothing until the server's <proceed/>.
type stopReader struct {
	data  []byte
	extra bool
}

func (s *stopReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		s.extra = true
		return 0, errors.New("read past the element")
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestReaderStopsAtTheEndOfStartTLS_RFC6120_5_4_3_3(t *testing.T) {
	for _, tc := range []string{
		"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
		"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>",
		"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\r</starttls>",
	} {
		src := &stopReader{data: []byte(clientHeader + tc)}
		r := NewReader(src, Limits{})
		if _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		el, err := r.Next()
		if err != nil || el.Local != "starttls" {
			t.Fatalf("Next = %v, %v", el, err)
		}
		if src.extra {
			t.Errorf("%s: the reader asked for bytes after the element", tc)
		}
		if r.Buffered() != 0 {
			t.Errorf("%s: Buffered = %d, want 0", tc, r.Buffered())
		}
	}
}

func TestResetOnNewSourceDiscardsPlaintext_RFC6120_5_4_3_3(t *testing.T) {
	// Bytes that arrived before TLS must not be read as if they came over TLS.
	r := open(t, clientHeader, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message><body>injected</body></message>", Limits{})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() == 0 {
		t.Fatal("Buffered = 0, want the injected bytes pending")
	}
	r.Reset(strings.NewReader(clientHeader + "<presence/>"))
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil || el.Local != "presence" {
		t.Fatalf("Next after Reset = %v, %v; want <presence/>", el, err)
	}
}

func TestResetOnSameSourceKeepsBufferedBytes_RFC6120_6_4_6(t *testing.T) {
	// After SASL success the new header may already be buffered.
	src := strings.NewReader(clientHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>" +
		clientHeader + "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	r := NewReader(src, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	r.Reset(src)
	if _, err := r.ReadHeader(); err != nil {
		t.Fatalf("ReadHeader after restart: %v", err)
	}
	el, err := r.Next()
	if err != nil || el.Local != "iq" {
		t.Fatalf("Next after restart = %v, %v", el, err)
	}
}

func TestResetClearsNamespacesOfTheOldStream_RFC6120_4_3_3(t *testing.T) {
	r := open(t, serverHeader, "", Limits{})
	r.Reset(strings.NewReader(clientHeader + "<db:result/>"))
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); condition(err) != NotWellFormed {
		t.Errorf("Next = %v, want not-well-formed for the prefix of the old stream", err)
	}
}

func TestCallsOutOfOrderAreErrors(t *testing.T) {
	r := NewReader(strings.NewReader(clientHeader), Limits{})
	if _, err := r.Next(); err != errNoHeader {
		t.Errorf("Next before ReadHeader = %v", err)
	}
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadHeader(); err != errHeaderRead {
		t.Errorf("second ReadHeader = %v", err)
	}
}

func TestStreamErrorStaysAfterFailure(t *testing.T) {
	r := open(t, clientHeader, "<!-- x --><presence/>", Limits{})
	_, err1 := r.Next()
	_, err2 := r.Next()
	if condition(err1) != RestrictedXML || err2 != err1 {
		t.Errorf("Next = %v then %v, want the same restricted-xml error", err1, err2)
	}
}

func TestReaderDoesNotHoldOnToLargeBuffers(t *testing.T) {
	r := open(t, clientHeader, "<message><body>"+strings.Repeat("x", 100<<10)+"</body></message><presence/>", Limits{})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if cap(r.data) > keepData {
		t.Errorf("scratch holds %d bytes after a large stanza", cap(r.data))
	}
}

func TestNextAllocatesOncePerKind(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	src := &repeatReader{prefix: []byte(clientHeader), unit: []byte(chatStanza)}
	r := NewReader(src, Limits{})
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil { // warms the name cache
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	// elements, attributes, nodes, strings
	if allocs > 4 {
		t.Errorf("Next allocates %v times per stanza, want at most 4", allocs)
	}
}

func TestDeclarationAfterWhitespaceOnRestartedStreamIsAccepted_RFC6120_4_3_3(t *testing.T) {
	in := "\n<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + NS + "' to='example.com' version='1.0'>"
	r := NewReader(strings.NewReader(in), Limits{})
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	if h.To != "example.com" {
		t.Fatalf("to = %q", h.To)
	}
}

func TestSecondDeclarationIsRestrictedXML_RFC6120_11_1(t *testing.T) {
	in := "<?xml version='1.0'?> <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + NS + "' version='1.0'>"
	r := NewReader(strings.NewReader(in), Limits{})
	if _, err := r.ReadHeader(); !errors.Is(err, RestrictedXML) {
		t.Fatalf("err = %v, want restricted-xml", err)
	}
}
