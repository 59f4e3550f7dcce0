package main

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitCommandSkipsFlagValues(t *testing.T) {
	words, rest := splitCommand([]string{"-o", "json", "account", "--server=h:1", "create", "a@b", "--password-file", "-", "--all"})
	if !slices.Equal(words, []string{"account", "create", "a@b"}) {
		t.Errorf("words %q", words)
	}
	if !slices.Equal(rest, []string{"-o", "json", "--server=h:1", "--password-file", "-", "--all"}) {
		t.Errorf("rest %q", rest)
	}
	words, _ = splitCommand([]string{"message", "send", "--", "-odd@localhost"})
	if !slices.Equal(words, []string{"message", "send", "-odd@localhost"}) {
		t.Errorf("after --: %q", words)
	}
}

func FuzzSplitCommand(f *testing.F) {
	f.Add("-o json account list --all")
	f.Add("roster add a@b c@d --group x --group")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		words, rest := splitCommand(args)
		if len(words)+len(rest) > len(args) {
			t.Fatalf("%q: %d words and %d others from %d arguments", args, len(words), len(rest), len(args))
		}
		findCommand(words)
	})
}
