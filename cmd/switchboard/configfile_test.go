package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFileSetsWhatNoFlagOrVariableSets(t *testing.T) {
	path := writeConfig(t, `domain: file.example
data-dir: /from/file
c2s-listen: "127.0.0.1:15222"
mechanisms: [SCRAM-SHA-256, SCRAM-SHA-1]
max-stanza-bytes: 65536
tls-optional: true
`)
	cfg, _, err := parseServe([]string{"--domain", "flag.example"}, envOf(map[string]string{
		"SWITCHBOARD_CONFIG":   path,
		"SWITCHBOARD_DATA_DIR": "/from/env",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "flag.example" || cfg.DataDir != "/from/env" {
		t.Errorf("domain %q, data dir %q: the flag and the variable must win over the file", cfg.Domain, cfg.DataDir)
	}
	if cfg.C2SListen != "127.0.0.1:15222" || cfg.MaxStanzaBytes != 65536 || !cfg.TLSOptional ||
		strings.Join(cfg.Mechanisms, ",") != "SCRAM-SHA-256,SCRAM-SHA-1" {
		t.Errorf("file not applied: listen %q, stanza bytes %d, tls optional %v, mechanisms %q",
			cfg.C2SListen, cfg.MaxStanzaBytes, cfg.TLSOptional, cfg.Mechanisms)
	}
}

// Mistakes in the file are usage errors naming the file, the line and the
// key.
func TestConfigFileErrorsNameTheFileLineAndKey(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"unknown key":   {"domain: a.example\nc2s-port: 5222\n", "line 2: c2s-port: no such setting"},
		"bad value":     {"\nmax-stanza-bytes: lots\n", `line 2: max-stanza-bytes "lots"`},
		"checked value": {"c2s-listen: foo\n", `line 1: c2s-listen "foo": missing port`},
		"bad domain":    {"domain: a..b\n", `line 1: domain "a..b"`},
		"syntax":        {"domain: [\n", "not valid YAML"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, tc.content)
			r := runCmd(t, nil, "", "serve", "--config", path)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, "config file "+path) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to name %s and say %q", r.stderr, path, tc.want)
			}
		})
	}
}
