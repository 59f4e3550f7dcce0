package jid

import "testing"

var sink JID

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"full-ascii", "juliet@example.com/balcony-4f9a"},
		{"full-ascii-mixed-case", "Juliet@Example.COM/balcony-4f9a"},
		{"bare-ascii", "juliet@example.com"},
		{"domain", "example.com"},
		{"full-unicode", "Σπύρος@bücher.example/♚"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				j, err := Parse(bc.in)
				if err != nil {
					b.Fatal(err)
				}
				sink = j
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	j := MustParse("juliet@example.com/balcony-4f9a")
	b.ReportAllocs()
	for b.Loop() {
		_ = j.String()
	}
}
