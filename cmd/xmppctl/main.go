// Command xmppctl drives a Switchboard deployment through its admin API
// (proto/admin/v1): accounts, sessions, messages, rosters, the cluster's
// nodes. It talks to one address, the admin port of any router (one
// Kubernetes Service in front of them) or of the one-process binary.
//
//	xmppctl [flags] <resource> <verb> [arguments] [flags]
//
// Run `xmppctl help` for the commands. Exit status: 0 success, 1 the
// server refused or failed the request (its message is printed), 2 usage
// error, 3 the server could not be reached or did not accept the token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK      = 0
	exitServer  = 1
	exitUsage   = 2
	exitConnect = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}

// lookupEnv reads one environment variable; os.LookupEnv is one.
type lookupEnv func(string) (string, bool)

// globals are the flags every command takes.
type globals struct {
	server     string
	tokenFile  string
	caFile     string
	insecure   bool
	output     string
	timeout    time.Duration
	serverName string
}

// Environment variables of the global settings.
const (
	envServer    = "XMPPCTL_SERVER"
	envToken     = "XMPPCTL_TOKEN"
	envTokenFile = "XMPPCTL_TOKEN_FILE"
	envCAFile    = "XMPPCTL_CA_FILE"
)

// DefaultServer is the one-process binary's admin address.
const DefaultServer = "127.0.0.1:9600"

func (g *globals) register(fs *flag.FlagSet, env lookupEnv) {
	def := func(name, d string) string {
		if v, ok := env(name); ok && v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&g.server, "server", def(envServer, DefaultServer), "admin API address, host:port (env "+envServer+")")
	fs.StringVar(&g.tokenFile, "token-file", def(envTokenFile, ""), "file holding the bearer token (env "+envTokenFile+"; or the token itself in "+envToken+")")
	fs.StringVar(&g.caFile, "ca-file", def(envCAFile, ""), "PEM certificate(s) to verify the server with, instead of the system roots (env "+envCAFile+")")
	fs.BoolVar(&g.insecure, "insecure-skip-verify", false, "do not verify the server's certificate (a self-signed one made at start)")
	fs.StringVar(&g.serverName, "tls-server-name", "", "name to verify the server's certificate against; default: the --server host")
	fs.StringVar(&g.output, "o", "table", "output format: table or json")
	fs.StringVar(&g.output, "output", "table", "output format: table or json")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long the whole command may take")
}

// globalValueFlags are the global flags that take a value, for finding the
// command words among the arguments.
var globalValueFlags = map[string]bool{"server": true, "token-file": true, "ca-file": true, "tls-server-name": true, "o": true, "output": true, "timeout": true}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, env lookupEnv, stdin io.Reader, stdout, stderr io.Writer) int {
	words, rest := splitCommand(args)
	switch {
	case len(words) > 0 && words[0] == "help", len(words) == 0 && hasHelp(args):
		usage(stdout, words)
		return exitOK
	case len(words) == 0:
		fmt.Fprint(stderr, "xmppctl: no command\n\n")
		usage(stderr, nil)
		return exitUsage
	}
	cmd, used := findCommand(words)
	if cmd == nil {
		fmt.Fprintf(stderr, "xmppctl: unknown command %q\n\n", strings.Join(words, " "))
		usage(stderr, nil)
		return exitUsage
	}
	// Words after the command's are its positional arguments.
	pos := words[used:]
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var g globals
	g.register(fs, env)
	c := &call{globals: &g, env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	more, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "xmppctl %s: %v\n", cmd.name, err)
		return exitUsage
	}
	pos = append(pos, more...)
	if len(pos) != len(cmd.args) {
		fmt.Fprintf(stderr, "xmppctl %s: want %d argument(s) (%s), got %d\n", cmd.name, len(cmd.args), strings.Join(cmd.args, " "), len(pos))
		return exitUsage
	}
	if g.output != "table" && g.output != "json" {
		fmt.Fprintf(stderr, "xmppctl: -o %q: want table or json\n", g.output)
		return exitUsage
	}
	c.args = pos
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	err = c.exec(ctx, cmd)
	return report(stderr, cmd.name, err)
}

// splitCommand returns the words (non-flag arguments) in order, and the
// arguments without them. A global flag's value is not a word.
func splitCommand(args []string) (words, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			rest = append(rest, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && (globalValueFlags[name] || commandValueFlags[name]) && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		words = append(words, a)
	}
	return words, rest
}

func hasHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// parseInterspersed parses flags anywhere among args and returns the
// other arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usage(w io.Writer, _ []string) {
	fmt.Fprint(w, `Usage: xmppctl [flags] <command> [arguments] [flags]

Drives a Switchboard deployment through its admin API.

Commands:
`)
	names := make([]string, 0, len(commands))
	width := 0
	for _, c := range commands {
		s := c.name
		if len(c.args) > 0 {
			s += " <" + strings.Join(c.args, "> <") + ">"
		}
		names = append(names, s)
		width = max(width, len(s))
	}
	for i, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, names[i], c.summary)
	}
	fmt.Fprintf(w, `
Global flags (any command):
  --server host:port        admin API address (%s; default %s)
  --token-file path         file holding the bearer token (%s),
                            or the token itself in %s
  --ca-file path            PEM roots to verify the server with (%s)
  --insecure-skip-verify    do not verify the server's certificate
  --tls-server-name name    name to verify the certificate against
  -o, --output table|json   output format (table)
  --timeout 30s             how long the command may take

Passwords come from --password-file (a path, or "-" for standard input) or
are asked for on the terminal; never from an argument.

Exit status: 0 done; 1 the server refused or failed the request (NOT_FOUND,
ALREADY_EXISTS, INVALID_ARGUMENT...: its message is printed); 2 usage error;
3 the server cannot be reached, or refused the token.

Run 'xmppctl <command> --help' for a command's flags.
`, envServer, DefaultServer, envTokenFile, envToken, envCAFile)
}

func commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	s := "xmppctl " + cmd.name
	if len(cmd.args) > 0 {
		s += " <" + strings.Join(cmd.args, "> <") + ">"
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n\nFlags:\n", s, cmd.summary)
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		lines = append(lines, fmt.Sprintf("  --%s\t%s (default %q)", f.Name, f.Usage, f.DefValue))
	})
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
