package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
)

// provisionScenario prints the shell commands that create the accounts the
// other scenarios log in with, for Switchboard, Prosody or ejabberd. It
// prints rather than runs them: the server's tools need their own user,
// paths and privileges, which the operator knows better.
func provisionScenario() *scenario {
	var server, users, password, domain, sbCmd, extra string
	var first, count int
	return &scenario{
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&server, "server", "switchboard", "switchboard, prosody or ejabberd")
			fs.StringVar(&users, "users", "user%d", "account localpart pattern, one %d")
			fs.StringVar(&password, "password", "secret", "password (%d, if present, is the account number)")
			fs.StringVar(&domain, "domain", "localhost", "XMPP domain")
			fs.IntVar(&first, "first", 1, "number of the first account")
			fs.IntVar(&count, "count", 100, "number of accounts")
			fs.StringVar(&sbCmd, "switchboard", "switchboard", "the switchboard command (e.g. bin/switchboard)")
			fs.StringVar(&extra, "args", "", "extra arguments for the user command (e.g. --data-dir DIR, or --roster-grpc HOST:PORT for a cluster)")
		},
		run: func(_ context.Context, r *runner) (any, error) {
			if strings.Count(users, "%d") != 1 || count < 1 {
				return nil, fmt.Errorf("want --users with one %%d and a positive --count")
			}
			for n := first; n < first+count; n++ {
				u := fmt.Sprintf(users, n)
				pw := password
				if strings.Contains(pw, "%d") {
					pw = fmt.Sprintf(pw, n)
				}
				line, err := provisionLine(server, sbCmd, extra, u, domain, pw)
				if err != nil {
					return nil, err
				}
				fmt.Fprintln(r.stdout, line)
			}
			return nil, nil
		},
	}
}

// provisionLine is the command creating one account.
func provisionLine(server, sbCmd, extra, local, domain, pw string) (string, error) {
	q := shellQuote
	sp := ""
	if extra != "" {
		sp = " " + extra
	}
	switch server {
	case "switchboard":
		// The password goes through standard input, not the process list.
		return fmt.Sprintf("printf '%%s' %s | %s user add%s %s --password-file -", q(pw), sbCmd, sp, q(local+"@"+domain)), nil
	case "prosody":
		return fmt.Sprintf("prosodyctl%s register %s %s %s", sp, q(local), q(domain), q(pw)), nil
	case "ejabberd":
		return fmt.Sprintf("ejabberdctl%s register %s %s %s", sp, q(local), q(domain), q(pw)), nil
	}
	return "", fmt.Errorf("--server %q: want switchboard, prosody or ejabberd", server)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-%+=:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
