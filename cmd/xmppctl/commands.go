package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
)

// command is one xmppctl command.
type command struct {
	name    string   // "account create"
	args    []string // names of the positional arguments
	summary string
	flags   func(fs *flag.FlagSet, c *call)
	prepare func(c *call) error // before connecting: read a password
	run     func(ctx context.Context, c *call) error
}

// commandValueFlags are the command flags that take a value, for
// splitCommand.
var commandValueFlags = map[string]bool{
	"password-file": true, "domain": true, "page-size": true, "page-token": true, "reason": true,
	"from": true, "type": true, "subject": true, "body": true, "name": true, "group": true,
	"mode": true, "redirect": true, "deadline": true,
}

// findCommand returns the command named by the first words and how many
// words its name has.
func findCommand(words []string) (*command, int) {
	for n := min(2, len(words)); n > 0; n-- {
		name := strings.Join(words[:n], " ")
		for i := range commands {
			if commands[i].name == name {
				return &commands[i], n
			}
		}
	}
	return nil, 0
}

// cmdFlags holds the flags of the command that runs, in its call.
type cmdFlags struct {
	passwordFile string
	password     string
	domain       string
	pageSize     int
	pageToken    string
	all          bool
	reason       string
	from         string
	typ          string
	subject      string
	body         string
	availOnly    bool
	name         string
	groups       listFlag
	mode         string
	redirect     string
	deadline     time.Duration
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func passwordFlags(fs *flag.FlagSet, c *call) {
	fs.StringVar(&c.f.passwordFile, "password-file", "", `read the password from this file ("-": standard input); default: ask on the terminal`)
}

func readPassword(c *call) error {
	p, err := c.password(c.f.passwordFile, c.args[0])
	c.f.password = p
	return err
}

func messageFlags(fs *flag.FlagSet, c *call) {
	fs.StringVar(&c.f.typ, "type", "normal", "message type: normal, chat or headline")
	fs.StringVar(&c.f.subject, "subject", "", "subject")
	fs.StringVar(&c.f.body, "body", "", "text of the message")
}

func messageType(t string) (adminv1.MessageType, error) {
	switch t {
	case "", "normal":
		return adminv1.MessageType_MESSAGE_TYPE_NORMAL, nil
	case "chat":
		return adminv1.MessageType_MESSAGE_TYPE_CHAT, nil
	case "headline":
		return adminv1.MessageType_MESSAGE_TYPE_HEADLINE, nil
	}
	return 0, usagef("--type %q: want normal, chat or headline", t)
}

var commands = []command{
	{
		name: "account create", args: []string{"jid"}, summary: "create an account",
		flags: passwordFlags, prepare: readPassword,
		run: func(ctx context.Context, c *call) error {
			if _, err := c.api.CreateAccount(ctx, &adminv1.CreateAccountRequest{Jid: c.args[0], Password: c.f.password}); err != nil {
				return err
			}
			return c.done("created " + c.args[0])
		},
	},
	{
		name: "account delete", args: []string{"jid"}, summary: "delete an account and close its sessions",
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.DeleteAccount(ctx, &adminv1.DeleteAccountRequest{Jid: c.args[0]})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			return c.done(fmt.Sprintf("deleted %s (%d session(s) closed)", c.args[0], r.SessionsClosed))
		},
	},
	{
		name: "account list", summary: "list accounts in JID order",
		flags: func(fs *flag.FlagSet, c *call) {
			fs.StringVar(&c.f.domain, "domain", "", "only this domain")
			fs.IntVar(&c.f.pageSize, "page-size", 0, "accounts per page (server default 100, at most 1000)")
			fs.StringVar(&c.f.pageToken, "page-token", "", "continue after a previous page (its next_page_token)")
			fs.BoolVar(&c.f.all, "all", false, "fetch every page")
		},
		run: func(ctx context.Context, c *call) error {
			out := &adminv1.ListAccountsResponse{}
			tok := c.f.pageToken
			for {
				r, err := c.api.ListAccounts(ctx, &adminv1.ListAccountsRequest{Domain: c.f.domain, PageSize: int32(c.f.pageSize), PageToken: tok})
				if err != nil {
					return err
				}
				out.Accounts = append(out.Accounts, r.Accounts...)
				out.NextPageToken = r.NextPageToken
				if !c.f.all || r.NextPageToken == "" {
					break
				}
				tok = r.NextPageToken
			}
			if c.output == "json" {
				return c.printJSON(out)
			}
			w := c.table("JID", "DISABLED", "CREATED")
			for _, a := range out.Accounts {
				fmt.Fprintf(w, "%s\t%t\t%s\n", a.Jid, a.Disabled, stamp(a.CreatedUnixMs))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if out.NextPageToken != "" {
				fmt.Fprintf(c.stderr, "more: --page-token %s (or --all)\n", out.NextPageToken)
			}
			return nil
		},
	},
	{
		name: "account passwd", args: []string{"jid"}, summary: "change an account's password",
		flags: passwordFlags, prepare: readPassword,
		run: func(ctx context.Context, c *call) error {
			if _, err := c.api.ChangePassword(ctx, &adminv1.ChangePasswordRequest{Jid: c.args[0], Password: c.f.password}); err != nil {
				return err
			}
			return c.done("changed the password of " + c.args[0])
		},
	},
	{
		name: "account disable", args: []string{"jid"}, summary: "disable an account (no login) and close its sessions",
		flags: func(fs *flag.FlagSet, c *call) {
			fs.StringVar(&c.f.reason, "reason", "", "text of the stream error the sessions are closed with")
		},
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.SetAccountDisabled(ctx, &adminv1.SetAccountDisabledRequest{Jid: c.args[0], Disabled: true, Reason: c.f.reason})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			return c.done(fmt.Sprintf("disabled %s (%d session(s) closed)", c.args[0], r.SessionsClosed))
		},
	},
	{
		name: "account enable", args: []string{"jid"}, summary: "enable a disabled account",
		run: func(ctx context.Context, c *call) error {
			if _, err := c.api.SetAccountDisabled(ctx, &adminv1.SetAccountDisabledRequest{Jid: c.args[0]}); err != nil {
				return err
			}
			return c.done("enabled " + c.args[0])
		},
	},
	{
		name: "session list", args: []string{"jid"}, summary: "sessions of a bare JID, or the one of a full JID",
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.ListSessions(ctx, &adminv1.ListSessionsRequest{Jid: c.args[0]})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			w := c.table("JID", "NODE", "AVAILABLE", "PRIORITY", "BOUND")
			for _, s := range r.Sessions {
				fmt.Fprintf(w, "%s\t%s\t%t\t%d\t%s\n", s.Jid, s.Node, s.Available, s.Priority, stamp(s.BoundUnixMs))
			}
			return w.Flush()
		},
	},
	{
		name: "session count", summary: "sessions per c2s node",
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.CountSessions(ctx, &adminv1.CountSessionsRequest{})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			w := c.table("NODE", "SESSIONS")
			for _, n := range r.Nodes {
				fmt.Fprintf(w, "%s\t%d\n", n.Node, n.Sessions)
			}
			fmt.Fprintf(w, "TOTAL\t%d\n", r.Total)
			return w.Flush()
		},
	},
	{
		name: "session kick", args: []string{"full-jid"}, summary: "close one session with <policy-violation/>",
		flags: func(fs *flag.FlagSet, c *call) {
			fs.StringVar(&c.f.reason, "reason", "", "text of the stream error")
		},
		run: func(ctx context.Context, c *call) error {
			if _, err := c.api.KickSession(ctx, &adminv1.KickSessionRequest{Jid: c.args[0], Reason: c.f.reason}); err != nil {
				return err
			}
			return c.done("kicked " + c.args[0])
		},
	},
	{
		name: "message send", args: []string{"to"}, summary: "send a message to a user (from the server's domain unless --from)",
		flags: func(fs *flag.FlagSet, c *call) {
			messageFlags(fs, c)
			fs.StringVar(&c.f.from, "from", "", "sender: a served domain or a full JID of it; default the domain of <to>")
		},
		run: func(ctx context.Context, c *call) error {
			t, err := messageType(c.f.typ)
			if err != nil {
				return err
			}
			r, err := c.api.SendMessage(ctx, &adminv1.SendMessageRequest{To: c.args[0], From: c.f.from, Type: t, Subject: c.f.subject, Body: c.f.body})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			return c.done("sent " + r.Id)
		},
	},
	{
		name: "broadcast", summary: "send a message to every online session of a domain",
		flags: func(fs *flag.FlagSet, c *call) {
			messageFlags(fs, c)
			fs.StringVar(&c.f.domain, "domain", "", "domain; default the first served")
			fs.BoolVar(&c.f.availOnly, "available-only", false, "only sessions that sent available presence")
		},
		run: func(ctx context.Context, c *call) error {
			t, err := messageType(c.f.typ)
			if err != nil {
				return err
			}
			r, err := c.api.Broadcast(ctx, &adminv1.BroadcastRequest{Domain: c.f.domain, Type: t, Subject: c.f.subject, Body: c.f.body, AvailableOnly: c.f.availOnly})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			if err := c.done(fmt.Sprintf("delivered to %d session(s)", r.Delivered)); err != nil {
				return err
			}
			if len(r.FailedNodes) > 0 {
				fmt.Fprintf(c.stderr, "nodes that did not answer: %s\n", strings.Join(r.FailedNodes, ", "))
			}
			return nil
		},
	},
	{
		name: "roster get", args: []string{"user"}, summary: "a user's roster",
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.GetRoster(ctx, &adminv1.GetRosterRequest{User: c.args[0]})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			w := c.table("JID", "NAME", "SUBSCRIPTION", "ASK", "GROUPS")
			for _, it := range r.Items {
				ask := ""
				if it.Ask {
					ask = "subscribe"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", it.Jid, it.Name, it.Subscription, ask, strings.Join(it.Groups, ","))
			}
			return w.Flush()
		},
	},
	{
		name: "roster add", args: []string{"user", "contact"}, summary: "add or update a roster item (pushed to the user's clients)",
		flags: func(fs *flag.FlagSet, c *call) {
			fs.StringVar(&c.f.name, "name", "", "the item's name")
			fs.Var(&c.f.groups, "group", "a group of the item (repeat for several)")
		},
		run: func(ctx context.Context, c *call) error {
			_, err := c.api.AddRosterItem(ctx, &adminv1.AddRosterItemRequest{User: c.args[0], Item: &adminv1.RosterItem{Jid: c.args[1], Name: c.f.name, Groups: c.f.groups}})
			if err != nil {
				return err
			}
			return c.done("added " + c.args[1] + " to the roster of " + c.args[0])
		},
	},
	{
		name: "roster remove", args: []string{"user", "contact"}, summary: "remove a roster item (and its subscriptions)",
		run: func(ctx context.Context, c *call) error {
			if _, err := c.api.RemoveRosterItem(ctx, &adminv1.RemoveRosterItemRequest{User: c.args[0], Jid: c.args[1]}); err != nil {
				return err
			}
			return c.done("removed " + c.args[1] + " from the roster of " + c.args[0])
		},
	},
	{
		name: "cluster status", summary: "every process of the deployment",
		run: func(ctx context.Context, c *call) error {
			r, err := c.api.ClusterStatus(ctx, &adminv1.ClusterStatusRequest{})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			w := c.table("SERVICE", "NODE", "VERSION", "READY", "DRAINING", "CONNECTIONS", "UP", "DETAIL")
			for _, n := range r.Nodes {
				up := ""
				if n.StartedUnixMs > 0 {
					up = time.Since(time.UnixMilli(n.StartedUnixMs)).Round(time.Second).String()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%t\t%d\t%s\t%s\n", n.Service, n.Node, n.Version, n.Ready, n.Draining, n.Connections, up, n.Detail)
			}
			return w.Flush()
		},
	},
	{
		name: "node drain", args: []string{"node"}, summary: "drain a c2s node: no new clients, ask its clients to reconnect elsewhere, exit when empty",
		flags: func(fs *flag.FlagSet, c *call) {
			fs.StringVar(&c.f.mode, "mode", "", "see-other-host or system-shutdown; default see-other-host when --redirect is set")
			fs.StringVar(&c.f.redirect, "redirect", "", "host[:port] for <see-other-host/>")
			fs.DurationVar(&c.f.deadline, "deadline", 0, "close what is left after this long; 0: the node's default")
		},
		run: func(ctx context.Context, c *call) error {
			var mode adminv1.DrainMode
			switch c.f.mode {
			case "":
			case "see-other-host":
				mode = adminv1.DrainMode_DRAIN_MODE_SEE_OTHER_HOST
			case "system-shutdown":
				mode = adminv1.DrainMode_DRAIN_MODE_SYSTEM_SHUTDOWN
			default:
				return usagef("--mode %q: want see-other-host or system-shutdown", c.f.mode)
			}
			r, err := c.api.DrainNode(ctx, &adminv1.DrainNodeRequest{Node: c.args[0], Mode: mode, Redirect: c.f.redirect, DeadlineSeconds: int64(c.f.deadline / time.Second)})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(r)
			}
			return c.done(fmt.Sprintf("draining %s (%d session(s) when it began)", c.args[0], r.Sessions))
		},
	},
}

// done prints a one-line result (table output) or {} (json).
func (c *call) done(msg string) error {
	if c.output == "json" {
		_, err := fmt.Fprintln(c.stdout, "{}")
		return err
	}
	_, err := fmt.Fprintln(c.stdout, msg)
	return err
}

func (c *call) table(cols ...string) *tabwriter.Writer {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(cols, "\t"))
	return w
}

// stamp formats a Unix millisecond time in UTC, or "-" for none.
func stamp(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
