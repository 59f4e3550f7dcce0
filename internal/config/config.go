// Package config declares the settings of a Switchboard binary once, with
// a flag, an environment variable, a default and a usage line each, and
// reads them from the command line, the environment and an optional YAML
// file (--config, or SWITCHBOARD_CONFIG): a flag wins over its variable,
// which wins over the file, which wins over the default; an empty variable
// or file value counts as unset. Errors name the flag, the variable or the
// file, line and key the bad value came from, so an operator knows what to
// fix, whether it was typed, set by a Helm chart or written in a file.
//
// # Secrets
//
// A setting marked Secret (a password, a token, a DSN that may hold one)
// is refused in the file, which tends to be shared, copied and kept in
// version control: it comes from its variable, a flag, or a file of its
// own (SecretString declares the "-file" variant). Its value is never
// written out: not in the usage, whose default it hides, nor in errors.
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

// ConfigSetting is the setting every Set has that names the configuration
// file; its variable is SWITCHBOARD_CONFIG.
const ConfigSetting = "config"

// Set is the settings of one command.
type Set struct {
	name       string
	summary    string
	fs         *flag.FlagSet
	settings   []*setting
	byName     map[string]*setting
	parsed     bool
	configPath string
}

type setting struct {
	name     string
	usage    string
	def      string
	required bool
	secret   bool
	check    func() error
	prepare  func() error // before any check: SecretString's file read
	source   string       // "--name", the variable, the file's "config file F line N: name", or "" for the default
	origin   string       // OriginFlag, OriginEnv, OriginFile, or "" for the default
}

// Where a setting's value came from, as Origin reports it.
const (
	OriginDefault = "default"
	OriginFlag    = "flag"
	OriginEnv     = "env"
	OriginFile    = "file"
)

// New returns an empty Set for the command name; summary heads its usage.
func New(name, summary string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	s := &Set{name: name, summary: summary, fs: fs, byName: map[string]*setting{}}
	s.String(&s.configPath, ConfigSetting, "", "YAML file of settings, one 'name: value' per line, names as the flags without '--'; flags and variables win over it")
	return s
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

// Secret marks the setting as a secret: it may not be set in the
// configuration file, and its value and default are never shown.
func (d Setting) Secret() Setting { d.st.secret = true; return d }

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
// then the configuration file, if --config or SWITCHBOARD_CONFIG names
// one, for every setting still unset, then checks every setting. It
// returns the positional arguments. Flags may come before or after them;
// "--" ends the flags. A bad value gives a *SettingError; a file that
// cannot be read or parsed, or that names an unknown setting or a secret,
// a *FileError.
func (s *Set) Parse(args []string, env LookupEnv) ([]string, error) {
	if env == nil {
		env = os.LookupEnv
	}
	pos, err := s.parseArgs(args)
	if err != nil {
		return nil, err
	}
	s.fs.Visit(func(f *flag.Flag) {
		st := s.byName[f.Name]
		st.source, st.origin = "--"+f.Name, OriginFlag
	})
	for _, st := range s.settings {
		if st.source != "" {
			continue
		}
		v, ok := env(EnvName(st.name))
		if !ok || v == "" {
			continue
		}
		st.source, st.origin = EnvName(st.name), OriginEnv
		if err := s.fs.Set(st.name, v); err != nil {
			return nil, &SettingError{st.source, s.shown(st, v), unwrapFlagErr(err)}
		}
	}
	if s.configPath != "" {
		if err := s.applyFile(s.configPath); err != nil {
			return nil, err
		}
	}
	for _, st := range s.settings {
		if st.prepare == nil {
			continue
		}
		if err := st.prepare(); err != nil {
			return nil, &SettingError{s.Source(st.name), s.fs.Lookup(st.name).Value.String(), err}
		}
	}
	for _, st := range s.settings {
		v := s.fs.Lookup(st.name).Value.String()
		if st.required && v == "" {
			return nil, &SettingError{Setting: s.Source(st.name), Err: errors.New("required")}
		}
		if st.check != nil {
			if err := st.check(); err != nil {
				return nil, &SettingError{s.Source(st.name), s.shown(st, v), err}
			}
		}
	}
	s.parsed = true
	return pos, nil
}

// applyFile sets, from the file at path, every setting that neither a flag
// nor a variable set. Every key must name a setting that is not a secret,
// whether or not its value is used.
func (s *Set) applyFile(path string) error {
	f, err := LoadFile(path)
	if err != nil {
		return err
	}
	for _, e := range f.entries {
		st, ok := s.byName[e.Key]
		switch {
		case e.Key == ConfigSetting:
			return &FileError{Path: f.Path, Line: e.Line, Key: e.Key, Err: errors.New("a config file cannot name another one")}
		case !ok:
			return &FileError{Path: f.Path, Line: e.Line, Key: e.Key, Err: fmt.Errorf("no such setting (see %s --help)", s.name)}
		case st.secret:
			return &FileError{Path: f.Path, Line: e.Line, Key: e.Key, Err: errors.New("is a secret and cannot be set in the config file: " + s.secretHint(st))}
		}
	}
	for _, e := range f.entries {
		st := s.byName[e.Key]
		if st.source != "" || e.Value == "" {
			continue
		}
		st.source, st.origin = f.Where(e), OriginFile
		if err := s.fs.Set(st.name, e.Value); err != nil {
			return &SettingError{st.source, e.Value, unwrapFlagErr(err)}
		}
	}
	return nil
}

// secretHint tells where a secret may come from instead of the file.
func (s *Set) secretHint(st *setting) string {
	hint := "set " + EnvName(st.name)
	if _, ok := s.byName[st.name+"-file"]; ok {
		hint += " or --" + st.name + "-file (a file holding only the secret)"
	}
	return hint
}

// shown is v as errors may show it: nothing for a secret.
func (s *Set) shown(st *setting, v string) string {
	if st.secret {
		return ""
	}
	return v
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

// Source names where setting name got its value, for error messages:
// "--name" for a flag, its environment variable, "config file F line N:
// name" for the configuration file, or "--name" for a default, so that an
// error about a default points to the flag that changes it.
func (s *Set) Source(name string) string {
	st := s.lookup(name)
	if st.source == "" {
		return "--" + name
	}
	return st.source
}

// Origin reports what kind of source setting name got its value from:
// OriginFlag, OriginEnv, OriginFile or OriginDefault.
func (s *Set) Origin(name string) string {
	st := s.lookup(name)
	if st.origin == "" {
		return OriginDefault
	}
	return st.origin
}

func (s *Set) lookup(name string) *setting {
	st, ok := s.byName[name]
	if !ok {
		panic("config: no setting " + name)
	}
	return st
}

// Errorf returns a SettingError about setting name's current value, for
// checks made after Parse (a listener that cannot bind, a server that is
// unreachable).
func (s *Set) Errorf(name, format string, args ...any) error {
	return &SettingError{s.Source(name), s.shown(s.lookup(name), s.fs.Lookup(name).Value.String()), fmt.Errorf(format, args...)}
}

// Wrap returns err as a SettingError about setting name.
func (s *Set) Wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return &SettingError{s.Source(name), s.shown(s.lookup(name), s.fs.Lookup(name).Value.String()), err}
}

// Usage writes the command's help: the summary and every setting with its
// variable and default, sorted by name. A secret's default is not shown.
func (s *Set) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nSettings (a flag wins over its environment variable, which wins over --%s):\n", s.summary, ConfigSetting)
	sts := append([]*setting(nil), s.settings...)
	sort.Slice(sts, func(i, j int) bool { return sts[i].name < sts[j].name })
	for _, st := range sts {
		fmt.Fprintf(w, "  --%s  (env %s)\n      %s", st.name, EnvName(st.name), st.usage)
		switch {
		case st.secret:
			fmt.Fprintf(w, " (secret: not in --%s; %s)", ConfigSetting, s.secretHint(st))
		case st.def != "" && st.def != "false" && st.def != "0" && st.def != "0s":
			fmt.Fprintf(w, " (default %q)", st.def)
		}
		fmt.Fprintln(w)
	}
}

// SecretString declares a secret string setting name, stored in *p, and
// name-file, the path of a file holding it (its content, without the
// trailing line break), which may be set anywhere, the configuration file
// included. Setting both is an error. Kubernetes mounts a Secret as such a
// file; a flag would show the secret in the process list.
func (s *Set) SecretString(p *string, name, def, usage string) Setting {
	d := s.String(p, name, def, usage).Secret()
	var path string
	f := s.String(&path, name+"-file", "", "file holding --"+name+", as a mounted Secret provides it")
	f.st.prepare = func() error {
		if path == "" {
			return nil
		}
		if s.Origin(name) != OriginDefault {
			return fmt.Errorf("set either %s or --%s-file, not both", s.Source(name), name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return errors.New("the file is empty")
		}
		*p = v
		// Errors about the value now point to the file it came from.
		d.st.source, d.st.origin = s.Source(name+"-file"), s.Origin(name+"-file")
		return nil
	}
	return d
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
