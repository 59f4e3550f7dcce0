package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// userFlags are the flags of `switchboard user <action>`. The settings the
// server shares (--data-dir, --domain, --digest-md5) also come from the same
// environment variables as the server's, so both open the same database.
type userFlags struct {
	fs           *flag.FlagSet
	dataDir      string
	domain       string
	digestMD5    bool
	passwordFile string
	rosterGRPC   string         // a cluster's roster service instead of the data directory
	tls          grpcx.TLSFiles // client certificate for rosterGRPC
	log          logOptions
	envNames     []string
}

func newUserFlags() *userFlags {
	d := app.DefaultConfig()
	u := &userFlags{dataDir: d.DataDir, domain: d.Domain}
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&u.dataDir, "data-dir", u.dataDir, "data directory of the server")
	fs.StringVar(&u.domain, "domain", u.domain, "domain(s) the server serves, comma-separated; the account's JID must be in one of them")
	fs.BoolVar(&u.digestMD5, "digest-md5", false, "also store the DIGEST-MD5 hash (only useful with the server's --digest-md5)")
	fs.StringVar(&u.passwordFile, "password-file", "", `read the password from this file ("-": standard input) instead of the argument`)
	fs.StringVar(&u.rosterGRPC, "roster-grpc", "", "host:port of a cluster's roster service (AccountService): manage the account there instead of in --data-dir")
	fs.StringVar(&u.tls.Cert, "grpc-tls-cert", "", "with --roster-grpc: PEM client certificate, for a cluster with mutual TLS")
	fs.StringVar(&u.tls.Key, "grpc-tls-key", "", "with --roster-grpc: PEM private key of --grpc-tls-cert")
	fs.StringVar(&u.tls.CA, "grpc-tls-ca", "", "with --roster-grpc: PEM CA bundle that signs the roster service's certificate")
	u.log.level = slog.LevelWarn // the command prints its own result
	u.log.register(fs)
	u.envNames = []string{"data-dir", "domain", "digest-md5", "roster-grpc", "grpc-tls-cert", "grpc-tls-key", "grpc-tls-ca", "log-level", "log-format"}
	u.fs = fs
	return u
}

func (u *userFlags) usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  switchboard user add <jid> [<password>] [flags]
  switchboard user passwd <jid> [<password>] [flags]
  switchboard user delete <jid> [flags]

Manages the accounts in the server's database; works while the server runs.
With --roster-grpc, manages them through a cluster's roster service instead.
The JID must be localpart@domain with the domain the server serves (--domain),
since the server would never find an account of another domain. A password
given as an argument is visible to other local users in the process list;
--password-file avoids that. Flags may come before or after the arguments.

Flags:
`)
	env := map[string]bool{}
	for _, n := range u.envNames {
		env[n] = true
	}
	describe(w, u.fs, env)
}

func user(ctx context.Context, args []string, env lookupEnv, stdin io.Reader, stdout, stderr io.Writer) error {
	// One flag set for every action, so that flags may also come before
	// the action: `switchboard user --data-dir /srv/sb add alice@localhost`.
	u := newUserFlags()
	pos, err := parseArgs(u.fs, args)
	if errors.Is(err, flag.ErrHelp) || len(pos) > 0 && pos[0] == "help" {
		u.usage(stdout)
		return flag.ErrHelp
	}
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("user needs an action: add, passwd or delete")
	}
	action := pos[0]
	pos = pos[1:]
	withPassword := false
	switch action {
	case "add", "passwd":
		withPassword = true
	case "delete":
	default:
		return usagef("unknown user action %q (want add, passwd or delete)", action)
	}
	if _, err := applyEnv(u.fs, u.envNames, env); err != nil {
		return err
	}

	var addr, password string
	switch {
	case len(pos) == 0:
		return usagef("user %s: missing <jid>", action)
	case !withPassword && len(pos) > 1:
		return usagef("user %s takes one argument, the JID", action)
	case withPassword && len(pos) > 2:
		return usagef("user %s: too many arguments (want <jid> [<password>])", action)
	}
	addr = pos[0]
	if withPassword {
		switch {
		case len(pos) == 2 && u.passwordFile != "":
			return usagef("user %s: give the password as an argument or with --password-file, not both", action)
		case len(pos) == 2:
			password = pos[1]
		case u.passwordFile != "":
			password, err = readPassword(u.passwordFile, stdin)
			if err != nil {
				return err
			}
		default:
			return usagef("user %s: missing <password> (or --password-file)", action)
		}
	} else if u.passwordFile != "" {
		return usagef("user %s takes no password", action)
	}

	bare, err := checkAccountJID(addr, u.domain)
	if err != nil {
		return err
	}

	var accts accountAdmin
	if u.rosterGRPC != "" {
		if err := u.tls.Check(); err != nil {
			return usagef("--grpc-tls-cert, --grpc-tls-key and --grpc-tls-ca go together")
		}
		r, err := dialRoster(u.rosterGRPC, u.tls)
		if err != nil {
			return err
		}
		defer r.Close()
		accts = r
	} else {
		a, err := app.OpenAccounts(u.dataDir, u.digestMD5, u.log.logger(stderr))
		if err != nil {
			return err
		}
		defer a.Close()
		accts = a
	}

	switch action {
	case "add":
		err = accts.CreateAccount(ctx, bare, password)
	case "passwd":
		err = accts.ChangePassword(ctx, bare, password)
	case "delete":
		err = accts.DeleteAccount(ctx, bare)
	}
	switch {
	case err == nil:
	case errors.Is(err, roster.ErrAccountExists):
		return fmt.Errorf("%s already has an account", bare)
	case errors.Is(err, roster.ErrAccountNotFound):
		return fmt.Errorf("%s has no account", bare)
	case errors.Is(err, roster.ErrInvalidPassword), errors.Is(err, roster.ErrInvalidJID):
		return usageError{err}
	default:
		return err
	}
	switch action {
	case "add":
		fmt.Fprintf(stdout, "created %s\n", bare)
	case "passwd":
		fmt.Fprintf(stdout, "changed the password of %s\n", bare)
	case "delete":
		fmt.Fprintf(stdout, "deleted %s\n", bare)
	}
	return nil
}

// checkAccountJID parses addr as an account address in one of domains
// (comma-separated) and returns it normalised. An account of another
// domain is refused rather than created with a warning: the server only
// looks accounts up in its own domains, so it could never be used, and a
// typo would go unnoticed.
func checkAccountJID(addr, domains string) (string, error) {
	var served []string
	for _, d := range strings.Split(domains, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		n, err := app.CheckDomain(d)
		if err != nil {
			return "", usagef("--domain %q: %v", d, err)
		}
		served = append(served, n)
	}
	if len(served) == 0 {
		return "", usagef("--domain names no domain")
	}
	j, err := jid.Parse(addr)
	if err != nil {
		return "", usagef("%q is not a valid JID: %v", addr, err)
	}
	if j.Localpart() == "" || j.Resourcepart() != "" {
		return "", usagef("%q is not an account address (want localpart@domain)", addr)
	}
	if !slices.Contains(served, j.Domainpart()) {
		return "", usagef("%q is not in a served domain (%s; set --domain or SWITCHBOARD_DOMAIN to the server's domains)", addr, strings.Join(served, ", "))
	}
	return j.String(), nil
}

// readPassword reads a password from a file or, for "-", from stdin. One
// trailing line break is dropped, so `echo secret > file` works; anything
// else, spaces included, is part of the password.
func readPassword(path string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("--password-file %q: %w", path, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", usagef("--password-file %q: empty password", path)
	}
	return string(b), nil
}

// accountAdmin is what the user command does with accounts: in the data
// directory's database, or through a cluster's roster service.
type accountAdmin interface {
	CreateAccount(ctx context.Context, addr, password string) error
	ChangePassword(ctx context.Context, addr, password string) error
	DeleteAccount(ctx context.Context, addr string) error
}

// remoteRoster is a cluster's roster service reached over gRPC. Its errors
// are the roster package's, as the local store's are, so the command
// reports both alike.
type remoteRoster struct {
	cc   *grpc.ClientConn
	api  rosterv1.AccountServiceClient
	addr string
}

func dialRoster(addr string, f grpcx.TLSFiles) (*remoteRoster, error) {
	cc, err := grpcx.NewClient(addr, f)
	if err != nil {
		return nil, fmt.Errorf("--roster-grpc %q: %w", addr, err)
	}
	return &remoteRoster{cc: cc, api: rosterv1.NewAccountServiceClient(cc), addr: addr}, nil
}

func (r *remoteRoster) Close() error { return r.cc.Close() }

// rosterCallTimeout bounds one call to a cluster's roster service.
const rosterCallTimeout = 10 * time.Second

func (r *remoteRoster) CreateAccount(ctx context.Context, addr, password string) error {
	ctx, cancel := context.WithTimeout(ctx, rosterCallTimeout)
	defer cancel()
	_, err := r.api.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: addr, Password: password})
	return r.err(err)
}

func (r *remoteRoster) ChangePassword(ctx context.Context, addr, password string) error {
	ctx, cancel := context.WithTimeout(ctx, rosterCallTimeout)
	defer cancel()
	_, err := r.api.ChangePassword(ctx, &rosterv1.ChangePasswordRequest{Jid: addr, Password: password})
	return r.err(err)
}

func (r *remoteRoster) DeleteAccount(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, rosterCallTimeout)
	defer cancel()
	_, err := r.api.DeleteAccount(ctx, &rosterv1.DeleteAccountRequest{Jid: addr})
	return r.err(err)
}

// err maps the service's status codes back to the roster package's
// errors.
func (r *remoteRoster) err(err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.AlreadyExists:
		return roster.ErrAccountExists
	case codes.NotFound:
		return roster.ErrAccountNotFound
	case codes.InvalidArgument:
		return fmt.Errorf("%w: %s", roster.ErrInvalidPassword, st.Message())
	}
	return fmt.Errorf("roster service at %s: %s: %s", r.addr, st.Code(), st.Message())
}
