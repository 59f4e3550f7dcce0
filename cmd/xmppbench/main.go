// Command xmppbench is a load tool for XMPP servers, Switchboard or any
// other: it logs accounts in over the client protocol (RFC 6120) and
// measures logins, idle connections, chat throughput and latency, and
// presence fan-out. Run "xmppbench help" for the scenarios and flags;
// docs/performance.md says how the project's figures were made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // the run went wrong (server unreachable, errors)
	exitUsage       = 2
	exitUnsupported = 3 // the server lacks what the scenario needs
)

// errUnsupported marks a scenario the server under test cannot serve.
var errUnsupported = errors.New("not supported by the server under test")

const usage = `xmppbench: load tool for XMPP servers

Usage:
  xmppbench login     [flags]   N logins at concurrency C
  xmppbench idle      [flags]   hold N authenticated connections for --duration
  xmppbench chat      [flags]   P pairs exchanging messages (window or rate)
  xmppbench presence  [flags]   presence fan-out to R subscribed contacts
  xmppbench provision [flags]   print the commands that create the accounts
  xmppbench help [scenario]     flags of a scenario

Results are JSON on standard output (or --out FILE); a progress line goes
to standard error every --progress. Accounts are --users with its number replaced
by --first, --first+1, ...; they must exist (see provision).
Exit status: 0 done, 1 the run failed, 2 usage error, 3 the server lacks
what the scenario needs (e.g. rosters for presence).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// scenario is one subcommand.
type scenario struct {
	flags func(fs *flag.FlagSet) // its own flags
	run   func(ctx context.Context, r *runner) (results any, err error)
	conns bool // it logs in, so it takes the connection flags
}

func scenarios() map[string]*scenario {
	return map[string]*scenario{
		"login":     loginScenario(),
		"idle":      idleScenario(),
		"chat":      chatScenario(),
		"presence":  presenceScenario(),
		"provision": provisionScenario(),
	}
}

// run is main with its streams, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	all := scenarios()
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		if len(args) > 1 && all[args[1]] != nil {
			fs, _ := newFlagSet(args[1], all[args[1]], stdout)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	sc := all[name]
	if sc == nil {
		fmt.Fprintf(stderr, "xmppbench: unknown scenario %q\n\n%s", name, usage)
		return exitUsage
	}
	fs, r := newFlagSet(name, sc, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xmppbench %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage
	}
	if sc.conns {
		if err := r.target.check(); err != nil {
			fmt.Fprintf(stderr, "xmppbench %s: %v\n", name, err)
			return exitUsage
		}
	}
	r.name, r.stdout, r.stderr = name, stdout, stderr
	raiseFileLimit()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return r.execute(ctx, sc)
}

// newFlagSet declares the common flags and the scenario's own.
func newFlagSet(name string, sc *scenario, out io.Writer) (*flag.FlagSet, *runner) {
	fs := flag.NewFlagSet("xmppbench "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	r := &runner{}
	if sc.conns {
		t := &r.target
		fs.StringVar(&t.addr, "addr", "127.0.0.1:5222", "server host:port (the direct TLS port with --tls direct)")
		fs.StringVar(&t.domain, "domain", "localhost", "XMPP domain of the accounts")
		fs.StringVar(&t.users, "users", "user%d", "account localpart pattern, one %d")
		fs.IntVar(&t.first, "first", 1, "number of the first account")
		fs.StringVar(&t.password, "password", "secret", "password of every account (%d, if present, is the account number)")
		fs.StringVar(&t.tlsMode, "tls", "starttls", "starttls, none (the server must not require TLS) or direct (XEP-0368)")
		fs.BoolVar(&t.insecure, "insecure", false, "do not verify the server's certificate")
		fs.StringVar(&t.caFile, "ca", "", "PEM file of the certificate(s) to trust instead of the system roots")
		fs.StringVar(&t.mechanism, "mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (default: the best offered)")
		fs.StringVar(&t.resource, "resource", "bench", "resource to bind")
		fs.DurationVar(&t.timeout, "timeout", 30*time.Second, "bound of one login")
		fs.IntVar(&r.concurrency, "concurrency", 50, "logins in flight at once")
		fs.IntVar(&r.serverPID, "server-pid", 0, "pid of the server, on this machine: report its CPU and RSS from /proc")
		fs.DurationVar(&r.progressEvery, "progress", time.Second, "interval of the progress line on stderr (0: none)")
		fs.StringVar(&r.out, "out", "", "write the JSON results to this file instead of stdout")
	}
	if sc.flags != nil {
		sc.flags(fs)
	}
	return fs, r
}

// runner holds what every scenario shares and measures around it.
type runner struct {
	name          string
	target        target
	concurrency   int
	serverPID     int
	progressEvery time.Duration
	out           string
	stdout        io.Writer
	stderr        io.Writer
	errs          *errorLog

	// The measured window, set by begin and end.
	t0, t1   time.Time
	ru0, ru1 rusage
	p0, p1   procSample
	measured bool
	perOp    float64 // server CPU is divided by this, when > 0
	perConn  float64 // server RSS growth is divided by this, when > 0
}

// begin starts the measured window: tool and server usage are counted
// from here.
func (r *runner) begin() {
	r.t0, r.ru0, r.p0 = time.Now(), getRusage(), sampleProc(r.serverPID)
}

// end closes the measured window.
func (r *runner) end() {
	r.t1, r.ru1, r.p1, r.measured = time.Now(), getRusage(), sampleProc(r.serverPID), true
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "xmppbench %s: "+format+"\n", append([]any{r.name}, args...)...)
}

// execute runs the scenario and writes its report.
func (r *runner) execute(ctx context.Context, sc *scenario) int {
	r.errs = newErrorLog()
	if !sc.conns {
		if _, err := sc.run(ctx, r); err != nil {
			fmt.Fprintf(r.stderr, "xmppbench %s: %v\n", r.name, err)
			return exitFailed
		}
		return exitOK
	}
	rep := &Report{Scenario: r.name, Started: time.Now().UTC(), LoadAvg: loadAvg()}
	rep.Target = map[string]any{
		"addr": r.target.addr, "domain": r.target.domain, "tls": r.target.tlsMode,
		"mechanism": r.target.mechanism, "users": r.target.users, "first": r.target.first,
	}
	res, err := sc.run(ctx, r)
	if errors.Is(err, errUnsupported) {
		r.logf("%v", err)
		return exitUnsupported
	}
	if err != nil {
		r.logf("%v", err)
		if res == nil {
			return exitFailed
		}
	}
	if !r.measured {
		r.end()
	}
	wall := r.t1.Sub(r.t0)
	rep.Results = res
	rep.Errors = r.errs.first()
	rep.Tool = toolUsage(r.ru0, r.ru1, wall)
	rep.Server = serverUsage(r.serverPID, r.p0, r.p1, wall)
	if rep.Server != nil && r.perOp > 0 {
		rep.Server.CPUPerOpUs = round3(rep.Server.CPUS * 1e6 / r.perOp)
	}
	if rep.Server != nil && r.perConn > 0 {
		rep.Server.RSSPerConnKiB = round3(float64(rep.Server.RSSAfterKiB-rep.Server.RSSBeforeKiB) / r.perConn)
	}
	rep.LoadAfter = loadAvg()

	fmt.Fprintf(r.stderr, "xmppbench %s: tool CPU %.2fs user + %.2fs sys = %.2f cores of GOMAXPROCS=%d over %.1fs",
		r.name, rep.Tool.UserS, rep.Tool.SysS, rep.Tool.Cores, rep.Tool.GOMAXPROCS, wall.Seconds())
	if rep.Server != nil {
		fmt.Fprintf(r.stderr, "; server CPU %.2fs = %.2f cores", rep.Server.CPUS, rep.Server.Cores)
	}
	fmt.Fprintln(r.stderr)
	if rep.Tool.Cores > 0.9*float64(rep.Tool.GOMAXPROCS) {
		r.logf("warning: the tool used %.2f of its %d cores: it may have been the limit, not the server", rep.Tool.Cores, rep.Tool.GOMAXPROCS)
	}

	w := r.stdout
	if r.out != "" {
		f, ferr := os.Create(r.out)
		if ferr != nil {
			r.logf("%v", ferr)
			return exitFailed
		}
		defer f.Close()
		w = f
	}
	if werr := rep.write(w); werr != nil {
		r.logf("writing results: %v", werr)
		return exitFailed
	}
	if err != nil {
		return exitFailed
	}
	return exitOK
}

// result makes a scenario's typed results an any that is nil when they
// are: a nil *T in an interface would not compare equal to nil.
func result[T any](r *T, err error) (any, error) {
	if r == nil {
		return nil, err
	}
	return r, err
}

// raiseFileLimit lifts the soft open-file limit to the hard one: the idle
// scenario holds one socket per connection.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
