package config

import (
	"fmt"
	"strconv"
	"testing"
)

// FuzzLoadFile feeds arbitrary bytes to the file parser: it must return a
// File or an error, never panic, and a File it returns must hold unique
// keys with lines, whose values read back the same once written out again.
func FuzzLoadFile(f *testing.F) {
	for _, seed := range []string{
		"", "# comment\n", "domain: example.org\nc2s-listen: \":5222\"\n",
		"mechanisms: [SCRAM-SHA-256, PLAIN]\n", "a: &x 1\nb: *x\n", "workers:\n  - 1\n  - 2\n",
		"- list\n", "a: {b: c}\n", "a: 1\na: 2\n", "? [a]\n: b\n", "a: !!binary aGk=\n", "a: |\n  two\n  lines\n",
		"a: [*y]\n", "<<: {a: 1}\n", "\xff\xfe", "a: 'unterminated\n", "---\na: 1\n---\nb: 2\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile("fuzz.yaml", data)
		if err != nil {
			if file != nil {
				t.Fatal("a File with an error")
			}
			return
		}
		values := map[string]string{}
		for _, e := range file.Entries() {
			if e.Line < 1 {
				t.Fatalf("entry %q has line %d", e.Key, e.Line)
			}
			if _, dup := values[e.Key]; dup {
				t.Fatalf("key %q twice", e.Key)
			}
			values[e.Key] = e.Value
			if got, ok := file.Lookup(e.Key); !ok || got != e {
				t.Fatalf("Lookup(%q) = %+v, %v; want %+v", e.Key, got, ok, e)
			}
		}
		// Written back with double-quoted keys and values, whose escapes
		// YAML shares with Go's.
		var out []byte
		for _, e := range file.Entries() {
			out = fmt.Appendf(out, "%s: %s\n", strconv.Quote(e.Key), strconv.Quote(e.Value))
		}
		again, err := ParseFile("again.yaml", out)
		if err != nil {
			t.Fatalf("written back as %q: %v", out, err)
		}
		for k, v := range values {
			if e, ok := again.Lookup(k); !ok || e.Value != v {
				t.Fatalf("key %q: %q read back as %+v from %q", k, v, e, out)
			}
		}
	})
}
