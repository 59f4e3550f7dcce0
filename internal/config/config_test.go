package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/config"
)

type settings struct {
	nats    string
	workers int
	grace   time.Duration
	tls     bool
	node    string
	log     config.Log
}

func declare(s *settings) *config.Set {
	set := config.New("test", "test command")
	set.String(&s.nats, "nats-url", "nats://127.0.0.1:4222", "NATS server").Check(func() error {
		if !strings.HasPrefix(s.nats, "nats://") {
			return errors.New("must start with nats://")
		}
		return nil
	})
	set.Int(&s.workers, "workers", 4, "workers")
	set.Duration(&s.grace, "shutdown-timeout", 10*time.Second, "grace")
	set.Bool(&s.tls, "tls", false, "TLS")
	set.NodeID(&s.node)
	set.Logging(&s.log, "json")
	return set
}

func env(m map[string]string) config.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsApplyWhenNothingIsSet(t *testing.T) {
	var s settings
	if _, err := declare(&s).Parse(nil, env(nil)); err != nil {
		t.Fatal(err)
	}
	if s.nats != "nats://127.0.0.1:4222" || s.workers != 4 || s.grace != 10*time.Second || s.tls || s.log.Format != "json" {
		t.Errorf("defaults not applied: %+v", s)
	}
	if s.node != config.DefaultNodeID() || config.CheckNodeID(s.node) != nil {
		t.Errorf("node id %q, want the host name %q", s.node, config.DefaultNodeID())
	}
}

func TestEnvironmentSetsWhatNoFlagSets(t *testing.T) {
	var s settings
	_, err := declare(&s).Parse([]string{"--workers", "9"}, env(map[string]string{
		"SWITCHBOARD_NATS_URL":         "nats://10.0.0.1:4222",
		"SWITCHBOARD_WORKERS":          "2",
		"SWITCHBOARD_SHUTDOWN_TIMEOUT": "3s",
		"SWITCHBOARD_TLS":              "on",
		"SWITCHBOARD_NODE_ID":          "c2s-7",
		"SWITCHBOARD_LOG_FORMAT":       "text",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.workers != 9 {
		t.Errorf("workers = %d: the flag (9) must win over the environment (2)", s.workers)
	}
	if s.nats != "nats://10.0.0.1:4222" || s.grace != 3*time.Second || !s.tls || s.node != "c2s-7" || s.log.Format != "text" {
		t.Errorf("environment not applied: %+v", s)
	}
}

func TestEmptyVariableCountsAsUnset(t *testing.T) {
	var s settings
	if _, err := declare(&s).Parse(nil, env(map[string]string{"SWITCHBOARD_WORKERS": ""})); err != nil {
		t.Fatal(err)
	}
	if s.workers != 4 {
		t.Errorf("workers = %d, want the default 4", s.workers)
	}
}

func TestErrorNamesTheFlagOrVariableTheValueCameFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		setting string
	}{
		{"bad flag value", []string{"--workers=many"}, nil, "--workers"},
		{"bad variable value", nil, map[string]string{"SWITCHBOARD_WORKERS": "many"}, "SWITCHBOARD_WORKERS"},
		{"check fails on a flag", []string{"--nats-url", "http://x"}, nil, "--nats-url"},
		{"check fails on a variable", nil, map[string]string{"SWITCHBOARD_NATS_URL": "http://x"}, "SWITCHBOARD_NATS_URL"},
		{"bad node id", nil, map[string]string{"SWITCHBOARD_NODE_ID": "a.b"}, "SWITCHBOARD_NODE_ID"},
		{"bad duration", []string{"--shutdown-timeout", "soon"}, nil, "--shutdown-timeout"},
		{"bad boolean variable", nil, map[string]string{"SWITCHBOARD_TLS": "maybe"}, "SWITCHBOARD_TLS"},
		{"bad log level", []string{"--log-level=loud"}, nil, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s settings
			_, err := declare(&s).Parse(tc.args, env(tc.env))
			var se *config.SettingError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SettingError", err)
			}
			if se.Setting != tc.setting || !strings.HasPrefix(err.Error(), tc.setting+" ") {
				t.Errorf("error %q names %q, want %q", err, se.Setting, tc.setting)
			}
		})
	}
}

func TestPositionalArgumentsMayComeBetweenFlags(t *testing.T) {
	var s settings
	pos, err := declare(&s).Parse([]string{"migrate", "--workers", "1", "now", "--", "--tls"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "migrate now --tls" || s.workers != 1 || s.tls {
		t.Errorf("pos = %q, workers = %d, tls = %v", pos, s.workers, s.tls)
	}
}

func TestUnknownFlagIsAnError(t *testing.T) {
	var s settings
	if _, err := declare(&s).Parse([]string{"--nope"}, env(nil)); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v, want one naming --nope", err)
	}
}

func TestErrorfNamesTheSourceOfAValueCheckedLater(t *testing.T) {
	var s settings
	set := declare(&s)
	if _, err := set.Parse(nil, env(map[string]string{"SWITCHBOARD_NATS_URL": "nats://down:4222"})); err != nil {
		t.Fatal(err)
	}
	err := set.Errorf("nats-url", "unreachable")
	if got, want := err.Error(), `SWITCHBOARD_NATS_URL "nats://down:4222": unreachable`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := set.Errorf("workers", "too many").Error(); !strings.HasPrefix(got, "--workers ") {
		t.Errorf("a default is reported under its flag, got %q", got)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var s settings
	var b strings.Builder
	declare(&s).Usage(&b)
	for _, v := range []string{"SWITCHBOARD_NATS_URL", "SWITCHBOARD_NODE_ID", "SWITCHBOARD_LOG_FORMAT", "--shutdown-timeout"} {
		if !strings.Contains(b.String(), v) {
			t.Errorf("usage lacks %s:\n%s", v, b.String())
		}
	}
}
