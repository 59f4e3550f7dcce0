package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/switchboard-xmpp/switchboard/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// envPrefix starts the environment variable of every setting: the flag
// --c2s-listen is SWITCHBOARD_C2S_LISTEN.
const envPrefix = "SWITCHBOARD_"

// lookupEnv is os.LookupEnv, replaced in tests.
type lookupEnv func(string) (string, bool)

// usageError is a mistake on the command line or in the environment; it
// exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const mainUsage = `Usage:
  switchboard [serve] [flags]              run the server until SIGINT or SIGTERM
  switchboard user add <jid> [<password>]  create an account
  switchboard user passwd <jid> [<password>]
                                           set an account's password
  switchboard user delete <jid>            delete an account
  switchboard version                      print the version
  switchboard help [serve|user]            print help

Every flag can also be set with an environment variable: --c2s-listen is
SWITCHBOARD_C2S_LISTEN, or in the YAML file that --config (SWITCHBOARD_CONFIG)
names, as "c2s-listen: :5222". A flag wins over the environment, which wins
over the file; an empty variable or file value counts as unset.
`

// run is the whole command; main only adds the process around it.
func run(ctx context.Context, args []string, env lookupEnv, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, env, stdin, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "switchboard: %v\nRun 'switchboard help' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitRuntime
	}
}

func dispatch(ctx context.Context, args []string, env lookupEnv, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return serve(ctx, args, env, stdout, stderr)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env, stdout, stderr)
	case "user":
		return user(ctx, args[1:], env, stdin, stdout, stderr)
	case "version":
		if len(args) > 1 {
			return usagef("version takes no arguments")
		}
		fmt.Fprintf(stdout, "switchboard %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help":
		return help(args[1:], stdout)
	default:
		return usagef("unknown command %q", args[0])
	}
}

func help(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, mainUsage)
		return nil
	}
	switch args[0] {
	case "serve":
		s := newServeFlags()
		s.usage(stdout)
	case "user":
		u := newUserFlags()
		u.usage(stdout)
	default:
		return usagef("no help for %q", args[0])
	}
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseArgs parses args into fs, allowing flags before, between and after
// the positional arguments (the flag package alone stops at the first
// positional one). A "--" ends the flags: everything after it is
// positional. It returns the positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		rest := fs.Args()
		used := len(args) - len(rest)
		if used > 0 && args[used-1] == "--" && !isFlagValue(fs, args[:used]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isFlagValue reports whether the last of consumed was the value of a
// flag written as two arguments ("--domain --"), not the terminator.
func isFlagValue(fs *flag.FlagSet, consumed []string) bool {
	if len(consumed) < 2 {
		return false
	}
	prev := strings.TrimLeft(consumed[len(consumed)-2], "-")
	if prev == "" || strings.Contains(prev, "=") || consumed[len(consumed)-2][0] != '-' {
		return false
	}
	f := fs.Lookup(prev)
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// applyEnv sets every flag named in names that the command line left alone
// from its environment variable. It returns, for each flag, where its value
// came from ("--flag", "SWITCHBOARD_FLAG" or "default"), so that errors can
// name what the user wrote.
func applyEnv(fs *flag.FlagSet, names []string, env lookupEnv) (map[string]string, error) {
	source := map[string]string{}
	fs.Visit(func(f *flag.Flag) { source[f.Name] = "--" + f.Name })
	for _, name := range names {
		if _, ok := source[name]; ok {
			continue
		}
		source[name] = "--" + name
		v, ok := env(envName(name))
		if !ok || v == "" {
			continue
		}
		f := fs.Lookup(name)
		if err := setFlag(f, v); err != nil {
			return nil, usagef("%s %q: %v", envName(name), v, err)
		}
		source[name] = envName(name)
	}
	return source, nil
}

// applyConfigFile sets, from the YAML file at path (see internal/config),
// every flag that neither the command line nor the environment set, and
// records in source where each value came from. Every key of the file must
// name a flag of fs, whether or not its value is used.
func applyConfigFile(fs *flag.FlagSet, path string, source map[string]string, env lookupEnv) error {
	f, err := config.LoadFile(path)
	if err != nil {
		return usageError{err}
	}
	setBefore := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { setBefore[fl.Name] = true })
	for _, e := range f.Entries() {
		switch {
		case e.Key == config.ConfigSetting:
			return usageError{&config.FileError{Path: f.Path, Line: e.Line, Key: e.Key, Err: errors.New("a config file cannot name another one")}}
		case fs.Lookup(e.Key) == nil:
			return usageError{&config.FileError{Path: f.Path, Line: e.Line, Key: e.Key, Err: errors.New("no such setting (see switchboard help serve)")}}
		}
	}
	for _, e := range f.Entries() {
		if setBefore[e.Key] || e.Value == "" {
			continue
		}
		if v, ok := env(envName(e.Key)); ok && v != "" {
			continue
		}
		if err := setFlag(fs.Lookup(e.Key), e.Value); err != nil {
			return usagef("%s %q: %v", f.Where(e), e.Value, err)
		}
		source[e.Key] = f.Where(e)
	}
	return nil
}

func setFlag(f *flag.Flag, v string) error {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		switch strings.ToLower(v) {
		case "1", "t", "true", "yes", "on", "0", "f", "false", "no", "off":
		default:
			return errors.New("not a boolean (use true or false)")
		}
		l := strings.ToLower(v)
		if l == "yes" || l == "on" {
			v = "true"
		} else if l == "no" || l == "off" {
			v = "false"
		}
	}
	return f.Value.Set(v)
}

// logOptions choose the logger.
type logOptions struct {
	level  slog.Level
	format string
}

func (o *logOptions) register(fs *flag.FlagSet) {
	o.format = "text"
	fs.Var(levelValue{&o.level}, "log-level", "log level: debug, info, warn or error")
	fs.Func("log-format", "log format: text or json (default text)", func(s string) error {
		if s != "text" && s != "json" {
			return errors.New("must be text or json")
		}
		o.format = s
		return nil
	})
}

func (o logOptions) logger(w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.level}
	if o.format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

type levelValue struct{ l *slog.Level }

func (v levelValue) String() string {
	if v.l == nil {
		return "info"
	}
	return strings.ToLower(v.l.String())
}

func (v levelValue) Set(s string) error {
	if err := v.l.UnmarshalText([]byte(s)); err != nil {
		return errors.New("must be debug, info, warn or error")
	}
	return nil
}

// listValue is a comma-separated list flag.
type listValue struct{ l *[]string }

func (v listValue) String() string {
	if v.l == nil {
		return ""
	}
	return strings.Join(*v.l, ",")
}

func (v listValue) Set(s string) error {
	*v.l = nil
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*v.l = append(*v.l, x)
		}
	}
	return nil
}

// describe writes fs's flags with their environment variables.
func describe(w io.Writer, fs *flag.FlagSet, withEnv map[string]bool) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		if withEnv[f.Name] {
			fmt.Fprintf(w, "  (env %s)", envName(f.Name))
		}
		fmt.Fprintf(w, "\n      %s", usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
