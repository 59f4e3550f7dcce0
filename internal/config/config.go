// Package config declares the settings of a Switchboard binary once, with
// a flag, an environment variable, a default and a usage line each, and
// reads them from the command line and the environment: a flag wins over
// its variable, and an empty variable counts as unset. Errors name the flag
// or the variable the bad value came from, so an operator knows what to
// fix, whether it was typed or set by a Helm chart.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every setting's environment variable: the setting
// nats-url is SWITCHBOARD_NATS_URL.
const EnvPrefix = "SWITCHBOARD_"

// LookupEnv reads one environment variable; os.LookupEnv is one.
type LookupEnv func(string) (string, bool)

// EnvName is the environment variable of the setting name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// SettingError is a bad value of one setting. Setting is the flag
// ("--nats-url") or the variable ("SWITCHBOARD_NATS_URL") it came from.
type SettingError struct {
	Setting string
	Value   string
	Err     error
}

func (e *SettingError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", e.Setting, e.Err)
	}
	return fmt.Sprintf("%s %q: %v", e.Setting, e.Value, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// ErrHelp is returned by Parse when -h or --help was asked for; the usage
// has been written to the Set's output.
var ErrHelp = flag.ErrHelp

// Set is the settings of one command.
type Set struct {
	name     string
	summary  string
	fs       *flag.FlagSet
	settings []*setting
	byName   map[string]*setting
	parsed   bool
}

type setting struct {
	name     string
	usage    string
	def      string
	required bool
	check    func() error
	source   string // "--name", the variable, or "" for the default
}

// New returns an empty Set for the command name; summary heads its usage.
func New(name, summary string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Set{name: name, summary: summary, fs: fs, byName: map[string]*setting{}}
}

func (s *Set) add(name, usage string, v flag.Value) *setting {
	if _, dup := s.byName[name]; dup {
		panic("config: setting " + name + " declared twice")
	}
	st := &setting{name: name, usage: usage, def: v.String()}
	s.fs.Var(v, name, usage)
	s.settings = append(s.settings, st)
	s.byName[name] = st
	return st
}

// Setting lets a declaration be refined.
type Setting struct{ st *setting }

// Required makes an empty value an error.
func (d Setting) Required() Setting { d.st.required = true; return d }

// Check adds a validation run after parsing; its error is reported as a
// SettingError naming where the value came from.
func (d Setting) Check(fn func() error) Setting { d.st.check = fn; return d }

// String declares a string setting stored in *p, with default def.
func (s *Set) String(p *string, name, def, usage string) Setting {
	*p = def
	return Setting{s.add(name, usage, (*stringValue)(p))}
}

// Bool declares a boolean setting. Its variable takes true/false, 1/0,
// yes/no or on/off.
func (s *Set) Bool(p *bool, name string, def bool, usage string) Setting {
	*p = def
	return Setting{s.add(name, usage, (*boolValue)(p))}
}

// Int declares an integer setting.
func (s *Set) Int(p *int, name string, def int, usage string) Setting {
	*p = def
	return Setting{s.add(name, usage, (*intValue)(p))}
}

// Duration declares a duration setting ("30s", "1m").
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, usage string) Setting {
	*p = def
	return Setting{s.add(name, usage, (*durationValue)(p))}
}

// Func declares a setting parsed by set, whose default is shown as def.
func (s *Set) Func(name, def, usage string, set func(string) error) Setting {
	return Setting{s.add(name, usage, &funcValue{cur: def, set: set})}
}

// Parse reads args, then the environment for every setting no flag set,
// then checks every setting. It returns the positional arguments. Flags may
// come before or after them; "--" ends the flags. A bad value gives a
// *SettingError.
func (s *Set) Parse(args []string, env LookupEnv) ([]string, error) {
	if env == nil {
		env = os.LookupEnv
	}
	pos, err := s.parseArgs(args)
	if err != nil {
		return nil, err
	}
	s.fs.Visit(func(f *flag.Flag) { s.byName[f.Name].source = "--" + f.Name })
	for _, st := range s.settings {
		if st.source != "" {
			continue
		}
		v, ok := env(EnvName(st.name))
		if !ok || v == "" {
			continue
		}
		st.source = EnvName(st.name)
		if err := s.fs.Set(st.name, v); err != nil {
			return nil, &SettingError{st.source, v, unwrapFlagErr(err)}
		}
	}
	for _, st := range s.settings {
		v := s.fs.Lookup(st.name).Value.String()
		if st.required && v == "" {
			return nil, &SettingError{Setting: s.Source(st.name), Err: errors.New("required")}
		}
		if st.check != nil {
			if err := st.check(); err != nil {
				return nil, &SettingError{s.Source(st.name), v, err}
			}
		}
	}
	s.parsed = true
	return pos, nil
}

func (s *Set) parseArgs(args []string) ([]string, error) {
	var pos []string
	for {
		before := args
		if err := s.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ErrHelp
			}
			return nil, s.flagError(err)
		}
		args = s.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		// flag stops at the first argument, or after a "--" it consumes:
		// after an argument, keep reading flags; after "--", stop.
		if n := len(before) - len(args); n > 0 && before[n-1] == "--" {
			return append(pos, args...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (s *Set) flagError(err error) error {
	msg := err.Error()
	// The flag package says "invalid value "x" for flag -name: reason".
	for _, st := range s.settings {
		if strings.Contains(msg, " flag -"+st.name+":") {
			v := ""
			if i := strings.Index(msg, `value "`); i >= 0 {
				rest := msg[i+len(`value "`):]
				if j := strings.Index(rest, `"`); j >= 0 {
					v = rest[:j]
				}
			}
			return &SettingError{"--" + st.name, v, unwrapFlagErr(err)}
		}
	}
	return fmt.Errorf("%s: %v", s.name, msg)
}

func unwrapFlagErr(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "invalid") {
		return errors.New(msg[i+2:])
	}
	return err
}

// Source names where setting name got its value: "--name" for a flag, its
// environment variable, or "--name" for a default, so that an error about
// a default points to the flag that changes it.
func (s *Set) Source(name string) string {
	st, ok := s.byName[name]
	if !ok {
		panic("config: no setting " + name)
	}
	if st.source == "" {
		return "--" + name
	}
	return st.source
}

// Errorf returns a SettingError about setting name's current value, for
// checks made after Parse (a listener that cannot bind, a server that is
// unreachable).
func (s *Set) Errorf(name, format string, args ...any) error {
	return &SettingError{s.Source(name), s.fs.Lookup(name).Value.String(), fmt.Errorf(format, args...)}
}

// Wrap returns err as a SettingError about setting name.
func (s *Set) Wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return &SettingError{s.Source(name), s.fs.Lookup(name).Value.String(), err}
}

// Usage writes the command's help: the summary and every setting with its
// variable and default, sorted by name.
func (s *Set) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nSettings (a flag wins over its environment variable):\n", s.summary)
	sts := append([]*setting(nil), s.settings...)
	sort.Slice(sts, func(i, j int) bool { return sts[i].name < sts[j].name })
	for _, st := range sts {
		fmt.Fprintf(w, "  --%s  (env %s)\n      %s", st.name, EnvName(st.name), st.usage)
		if st.def != "" && st.def != "false" && st.def != "0" && st.def != "0s" {
			fmt.Fprintf(w, " (default %q)", st.def)
		}
		fmt.Fprintln(w)
	}
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

type boolValue bool

func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "on":
		*v = true
	case "0", "f", "false", "no", "off":
		*v = false
	default:
		return errors.New("not a boolean (use true or false)")
	}
	return nil
}

type intValue int

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not an integer")
	}
	*v = intValue(n)
	return nil
}

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`not a duration (such as "30s" or "1m")`)
	}
	*v = durationValue(d)
	return nil
}

type funcValue struct {
	cur string
	set func(string) error
}

func (v *funcValue) String() string { return v.cur }
func (v *funcValue) Set(s string) error {
	if err := v.set(s); err != nil {
		return err
	}
	v.cur = s
	return nil
}
