package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/config"
)

// writeFile writes a configuration file in a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFileSetsWhatNeitherAFlagNorAVariableSets(t *testing.T) {
	path := writeFile(t, `# settings of the test command
nats-url: nats://file:4222
workers: 7
shutdown-timeout: 1m
tls: on
log-format: text
node-id: from-file
`)
	var s settings
	set := declare(&s)
	_, err := set.Parse([]string{"--config", path, "--shutdown-timeout", "5s"}, env(map[string]string{
		"SWITCHBOARD_WORKERS": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.grace != 5*time.Second || s.workers != 2 {
		t.Errorf("shutdown-timeout %v, workers %d: the flag (5s) and the variable (2) must win over the file", s.grace, s.workers)
	}
	if s.nats != "nats://file:4222" || !s.tls || s.log.Format != "text" || s.node != "from-file" {
		t.Errorf("file not applied: %+v", s)
	}
	for name, want := range map[string]string{
		"shutdown-timeout": config.OriginFlag, "workers": config.OriginEnv, "nats-url": config.OriginFile,
		"log-level": config.OriginDefault, "config": config.OriginFlag,
	} {
		if got := set.Origin(name); got != want {
			t.Errorf("Origin(%s) = %q, want %q", name, got, want)
		}
	}
	if got, want := set.Source("nats-url"), "config file "+path+" line 2: nats-url"; got != want {
		t.Errorf("Source(nats-url) = %q, want %q", got, want)
	}
	if got := set.Errorf("nats-url", "unreachable").Error(); !strings.HasPrefix(got, "config file "+path+" line 2: nats-url \"nats://file:4222\": unreachable") {
		t.Errorf("Errorf names %q", got)
	}
}

func TestConfigFileNamedByTheVariable(t *testing.T) {
	path := writeFile(t, "workers: 11\n")
	var s settings
	set := declare(&s)
	if _, err := set.Parse(nil, env(map[string]string{"SWITCHBOARD_CONFIG": path})); err != nil {
		t.Fatal(err)
	}
	if s.workers != 11 || set.Origin("workers") != config.OriginFile {
		t.Errorf("workers = %d from %s, want 11 from the file", s.workers, set.Origin("workers"))
	}
}

func TestConfigFileListsAndEmptyValues(t *testing.T) {
	var list string
	set := config.New("test", "test")
	set.String(&list, "mechanisms", "PLAIN", "mechanisms")
	var other string
	set.String(&other, "other", "default", "other")
	path := writeFile(t, "mechanisms: [SCRAM-SHA-256, SCRAM-SHA-1]\nother:\n")
	if _, err := set.Parse([]string{"--config=" + path}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if list != "SCRAM-SHA-256,SCRAM-SHA-1" {
		t.Errorf("a list reads as %q, want the comma-separated form", list)
	}
	if other != "default" || set.Origin("other") != config.OriginDefault {
		t.Errorf("an empty value set %q (%s), want it unset like an empty variable", other, set.Origin("other"))
	}
}

// Every problem with the file is an error that names the file and, when
// it is about one key, the key and its line.
func TestConfigFileErrorsNameTheFileTheKeyAndTheLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		line    int
		key     string
		say     string
	}{
		{"unknown key", "workers: 3\nwrokers: 4\n", 2, "wrokers", "no such setting"},
		{"bad integer", "tls: true\n\nworkers: many\n", 3, "workers", `"many": not an integer`},
		{"bad duration", "shutdown-timeout: soon\n", 1, "shutdown-timeout", "not a duration"},
		{"check fails", "nats-url: http://x\n", 1, "nats-url", "must start with nats://"},
		{"bad boolean", "tls: maybe\n", 1, "tls", "not a boolean"},
		{"key twice", "workers: 3\ntls: true\nworkers: 4\n", 3, "workers", "set twice (first on line 1)"},
		{"mapping value", "workers:\n  min: 1\n", 1, "workers", "not a mapping"},
		{"list of mappings", "workers: [{a: 1}]\n", 1, "workers", "single values"},
		{"comma in a list item", "nats-url: ['nats://a,b']\n", 1, "nats-url", "holds a comma"},
		{"another config file", "config: other.yaml\n", 1, "config", "cannot name another"},
		{"not a mapping", "- workers\n- tls\n", 1, "", "the top level must map"},
		{"syntax", "workers: 3\n  tls: [\n", 0, "", "not valid YAML: line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			var s settings
			_, err := declare(&s).Parse([]string{"--config", path}, env(nil))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			msg := err.Error()
			want := "config file " + path
			if tc.line > 0 {
				want += " line " + strconv.Itoa(tc.line)
			}
			if tc.key != "" {
				want += ": " + tc.key
			}
			if !strings.HasPrefix(msg, want) || !strings.Contains(msg, tc.say) {
				t.Errorf("error %q, want it to start %q and say %q", msg, want, tc.say)
			}
			var fe *config.FileError
			var se *config.SettingError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Errorf("error %T is neither a FileError nor a SettingError", err)
			}
		})
	}
}

func TestMissingConfigFileIsAnErrorNamingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	var s settings
	_, err := declare(&s).Parse(nil, env(map[string]string{"SWITCHBOARD_CONFIG": path}))
	if err == nil || !strings.Contains(err.Error(), "config file "+path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}

func TestEmptyConfigFileSetsNothing(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n", "---\n"} {
		var s settings
		set := declare(&s)
		if _, err := set.Parse([]string{"--config", writeFile(t, content)}, env(nil)); err != nil {
			t.Errorf("%q: %v", content, err)
		}
		if s.workers != 4 {
			t.Errorf("%q: workers %d", content, s.workers)
		}
	}
}

// secrets declares a command with a secret given as a value (with its
// -file variant) and one without a -file variant.
func secrets(dsn, token *string) *config.Set {
	set := config.New("test", "test")
	set.SecretString(dsn, "postgres-dsn", "postgres://localhost/db", "Postgres DSN")
	set.String(token, "token", "", "a token").Secret().Check(func() error {
		if *token != "" && len(*token) < 8 {
			return errors.New("too short")
		}
		return nil
	})
	return set
}

func TestSecretsAreRefusedInTheConfigFile(t *testing.T) {
	for key, hint := range map[string]string{
		"postgres-dsn": "set SWITCHBOARD_POSTGRES_DSN or --postgres-dsn-file",
		"token":        "set SWITCHBOARD_TOKEN",
	} {
		var dsn, token string
		path := writeFile(t, "# shared with the team\n"+key+": hunter2hunter2\n")
		_, err := secrets(&dsn, &token).Parse([]string{"--config", path}, env(nil))
		if err == nil {
			t.Fatalf("%s in the file was accepted", key)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "config file "+path+" line 2: "+key+": is a secret") || !strings.Contains(msg, hint) {
			t.Errorf("error %q, want it to name the line and key and say %q", msg, hint)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("error %q shows the secret", msg)
		}
	}
}

func TestSecretFileVariantReadsTheFileAndMayBeInTheConfigFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(secret, []byte("postgres://u:pw@db/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var dsn, token string
	set := secrets(&dsn, &token)
	if _, err := set.Parse([]string{"--config", writeFile(t, "postgres-dsn-file: "+secret+"\n")}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if dsn != "postgres://u:pw@db/x" {
		t.Errorf("dsn = %q, want the file's content without its line break", dsn)
	}
	if src := set.Source("postgres-dsn"); !strings.Contains(src, "postgres-dsn-file") {
		t.Errorf("Source(postgres-dsn) = %q, want the -file setting it came from", src)
	}

	// Both at once is a mistake worth stopping for.
	_, err := secrets(&dsn, &token).Parse([]string{"--postgres-dsn-file", secret}, env(map[string]string{"SWITCHBOARD_POSTGRES_DSN": "postgres://other"}))
	if err == nil || !strings.Contains(err.Error(), "not both") || strings.Contains(err.Error(), "postgres://other") {
		t.Errorf("both set: err = %v, want 'not both' without the secret", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := secrets(&dsn, &token).Parse([]string{"--postgres-dsn-file", empty}, env(nil)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: err = %v", err)
	}
}

func TestSecretsAreNeverShown(t *testing.T) {
	var dsn, token string
	set := secrets(&dsn, &token)
	var usage strings.Builder
	set.Usage(&usage)
	if strings.Contains(usage.String(), "postgres://localhost/db") {
		t.Errorf("usage shows the secret's default:\n%s", usage.String())
	}
	if !strings.Contains(usage.String(), "secret: not in --config") {
		t.Errorf("usage does not say which settings are secrets:\n%s", usage.String())
	}
	_, err := set.Parse(nil, env(map[string]string{"SWITCHBOARD_TOKEN": "short"}))
	if err == nil || !strings.HasPrefix(err.Error(), "SWITCHBOARD_TOKEN:") || strings.Contains(err.Error(), "short\"") {
		t.Errorf("err = %v, want it to name the variable without its value", err)
	}
	set = secrets(&dsn, &token)
	if _, err := set.Parse(nil, env(map[string]string{"SWITCHBOARD_POSTGRES_DSN": "postgres://u:pw@db"})); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{set.Errorf("postgres-dsn", "unreachable"), set.Wrap("postgres-dsn", errors.New("down"))} {
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("%q shows the secret", err)
		}
	}
}

func TestUsageListsTheConfigSetting(t *testing.T) {
	var s settings
	var b strings.Builder
	declare(&s).Usage(&b)
	if !strings.Contains(b.String(), "--config  (env SWITCHBOARD_CONFIG)") {
		t.Errorf("usage lacks --config:\n%s", b.String())
	}
}
