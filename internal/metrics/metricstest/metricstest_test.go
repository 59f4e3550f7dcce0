package metricstest

import (
	"strings"
	"testing"
)

func TestParseTextFormat(t *testing.T) {
	in := `# HELP x_total A counter.
# TYPE x_total counter
x_total{kind="message",outcome="delivered"} 3
x_total{kind="presence",outcome="a \"quoted\", value"} 1.5
y 7
z_bucket{le="+Inf"} 2
`
	ss, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ss.Sum("x_total"); !ok || v != 4.5 {
		t.Errorf("Sum(x_total) = %v, %v; want 4.5", v, ok)
	}
	if v, _ := ss.Sum("x_total", "outcome", `a "quoted", value`); v != 1.5 {
		t.Errorf("escaped label value not read: %v", v)
	}
	if v, _ := ss.Sum("y"); v != 7 {
		t.Errorf("y = %v", v)
	}
	if err := ss.Check(Positive("z_bucket", "le", "+Inf"), Present("y")); err != nil {
		t.Error(err)
	}
	if err := ss.Check(Positive("missing")); err == nil {
		t.Error("Check passed for a missing series")
	}
}

// FuzzParse: any input is parsed or refused without a panic, and every
// series parsed has a name.
func FuzzParse(f *testing.F) {
	f.Add("x_total{kind=\"message\"} 3\n# HELP y\ny 1e3\n")
	f.Add("z{a=\"\\\"\",b=\"\\n\"} +Inf")
	f.Add("w{")
	f.Fuzz(func(t *testing.T, in string) {
		ss, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range ss {
			if s.Name == "" {
				t.Errorf("a series without a name from %q", in)
			}
		}
	})
}
