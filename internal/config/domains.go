package config

import (
	"errors"
	"strings"
)

// Domains declares --domain: the XMPP domains served, comma-separated. The
// first is the default one, used where nothing names a domain (a client
// stream header without 'to'). The services check each name.
func (s *Set) Domains(p *[]string) Setting {
	*p = []string{"localhost"}
	return s.Func("domain", "localhost", "XMPP domain(s) served, comma-separated; the first is the default", func(v string) error {
		d := SplitList(v)
		if len(d) == 0 {
			return errors.New("names no domain")
		}
		*p = d
		return nil
	}).Required()
}

// SplitList splits a comma-separated value, trimming spaces and dropping
// empty items.
func SplitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
