package config

import (
	"slices"
	"testing"
)

func TestDomainsTakesAListAndKeepsTheDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{nil, nil, []string{"localhost"}},
		{[]string{"--domain", "a.test"}, nil, []string{"a.test"}},
		{[]string{"--domain", " a.test, b.test ,"}, nil, []string{"a.test", "b.test"}},
		{nil, map[string]string{"SWITCHBOARD_DOMAIN": "x.test,y.test"}, []string{"x.test", "y.test"}},
	} {
		var d []string
		set := New("t", "")
		set.Domains(&d)
		env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if _, err := set.Parse(tc.args, env); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !slices.Equal(d, tc.want) {
			t.Fatalf("%v %v: domains %v, want %v", tc.args, tc.env, d, tc.want)
		}
	}
	var d []string
	set := New("t", "")
	set.Domains(&d)
	if _, err := set.Parse([]string{"--domain", " , "}, func(string) (string, bool) { return "", false }); err == nil {
		t.Fatal("a list without a domain was accepted")
	}
}
