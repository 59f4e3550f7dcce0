package stream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// fuzzLimits are small so that the fuzzer reaches them.
var fuzzLimits = Limits{MaxStanzaBytes: 2048, MaxDepth: 8, MaxAttrs: 8, MaxHeaderBytes: 1024}

// FuzzReader feeds arbitrary bytes after a valid header. Every element that
// reads must respect the limits, and must read back the same after being
// written by a Writer and after dom's Marshal; every error must be an I/O
// error of the source or a stream error with a defined condition.
//
// CI runs it with -fuzztime=10s:
//
//	cd xmpp && go test ./stream/ -run '^$' -fuzz FuzzReader -fuzztime=10s
func FuzzReader(f *testing.F) {
	for _, ex := range rfcExamples {
		f.Add([]byte(ex.xml))
	}
	for _, s := range []string{
		"",
		"</stream:stream>",
		" \r\n<presence/>\t<presence/></stream:stream>",
		chatStanza + chatStanza,
		"<db:result from='a.example' to='b.example'>0a1b2c</db:result>",
		"<message xmlns:x='urn:x'><body x:k='v' xml:lang='fr'>&lt;&#233;&#x1F600;<![CDATA[<&]]></body><c xmlns=''/></message>",
		"<message>\r\n<body>a\rb</body></message>",
		"<message><!-- c --></message>",
		"<message><body>&nbsp;</body></message>",
		"<message><body>\xff</body></message>",
		"<a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a>",
		"text",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(io.MultiReader(bytes.NewReader([]byte(serverHeader)), bytes.NewReader(data)), fuzzLimits)
		if _, err := r.ReadHeader(); err != nil {
			t.Fatalf("ReadHeader: %v", err)
		}
		for range 64 {
			el, err := r.Next()
			if err != nil {
				var se *Error
				switch {
				case err == ErrClosed, err == io.EOF:
				case errors.As(err, &se) && se.Condition.Known():
				default:
					t.Fatalf("Next: unexpected error %#v", err)
				}
				if cap(r.data) > fuzzLimits.MaxStanzaBytes+2*readBufSize {
					t.Fatalf("buffered %d bytes", cap(r.data))
				}
				return
			}
			if n := r.pos() - r.unitStart; n > int64(fuzzLimits.MaxStanzaBytes) {
				t.Fatalf("element of %d bytes accepted", n)
			}
			checkShape(t, el, 1)
			want := canon(el)

			back, err := reparse(t, el, NSServer)
			if err != nil {
				t.Fatalf("written by Writer, %s does not read back: %v", want, err)
			}
			if got := canon(back); got != want {
				t.Fatalf("written by Writer and read back:\n%s\nwant\n%s", got, want)
			}

			// Marshal is self-contained: it reads back on a stream without
			// a content namespace.
			raw := el.Marshal()
			r2 := NewReader(bytes.NewReader(append([]byte("<stream:stream xmlns:stream='"+NS+"'>"), raw...)), Limits{})
			if _, err := r2.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			back, err = r2.Next()
			if err != nil {
				t.Fatalf("Marshal output %q does not read back: %v", raw, err)
			}
			if got := canon(back); got != want {
				t.Fatalf("Marshal output %q read back as\n%s\nwant\n%s", raw, got, want)
			}
		}
	})
}

// checkShape checks the depth and attribute limits on a tree, and that text
// nodes come merged and non-empty as the reader promises.
func checkShape(t *testing.T, e *dom.Element, depth int) {
	t.Helper()
	if depth > fuzzLimits.MaxDepth {
		t.Fatalf("element at depth %d accepted", depth)
	}
	if len(e.Attrs) > fuzzLimits.MaxAttrs {
		t.Fatalf("element with %d attributes accepted", len(e.Attrs))
	}
	text := false
	for _, n := range e.Nodes {
		if n.Elem != nil {
			checkShape(t, n.Elem, depth+1)
			text = false
			continue
		}
		if n.Text == "" || text {
			t.Fatalf("empty or split text node in %s", canon(e))
		}
		text = true
	}
}
