package c2s

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/limits"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Abuse controls (issue 6, item 5). What a client sees when one bites, and
// why:
//
//   - Too many connections from one address, or new connections coming
//     faster than allowed (from one address or to the whole node): on the
//     STARTTLS port the client's stream header is read (within
//     CloseTimeout), answered with ours, and the stream is closed with
//     <policy-violation/> and a text naming the limit (RFC 6120 section
//     4.9.3.13: the limit is local policy; a stream error needs an open
//     stream, section 4.9.1.2). On the direct TLS port the TCP connection
//     is closed at once: there the stream only starts after a TLS
//     handshake, and that handshake is the expensive thing the limit
//     protects against. The STARTTLS port likewise closes at once, without
//     a stream, when more than maxRejecting refused connections are still
//     waiting for their headers.
//   - Bytes per second of one session are shaped: once the session's
//     budget is spent the server stops reading from it until the budget
//     refills (what ejabberd's shaper does). Nothing is lost; TCP flow
//     control slows the client down. Bytes are counted as read from the
//     socket, TLS records included.
//   - Stanzas per second of one session: a stanza over the limit is not
//     routed and is answered with a <policy-violation/> stanza error of
//     type wait (RFC 6120 section 8.3.3.13): the stanza is refused because
//     of our policy, not because the server lacks resources
//     (resource-constraint, section 8.3.3.18, would say the latter), and
//     "wait" tells the client it may retry later. An error stanza is not
//     answered (section 8.3.1) and is dropped. A session that keeps going
//     at more than FloodFactor times the rate (it empties a second bucket
//     of FloodFactor times the rate and burst) is closed with the
//     <policy-violation/> stream error.
//   - Failed logins: after AuthFailuresPerIP failures (not-authorized, that
//     is a wrong password or an unknown account) from one address within
//     AuthWindow, every <auth/> from that address fails with
//     <temporary-auth-failure/> and a text for AuthLockout; likewise per
//     account after AuthFailuresPerAccount, whatever the address, when the
//     mechanism names the account. RFC 6120 section 6.5.11's condition
//     says "try again later", which is the truth; it keeps the stream (the
//     client can show the reason) and counts towards MaxAuthFailures, so a
//     client that insists is closed with <policy-violation/> as usual
//     (section 6.4.5). During a lockout even the right password is
//     refused, and an unknown account is counted and locked like a known
//     one, so a lockout tells nothing about which accounts exist. A
//     successful login clears its account's count (not its address's).
//     The counts live in each c2s node: an attacker spreading attempts over
//     N nodes gets N times the budget. A per-account lockout is also a way
//     for anyone to keep an account out: AuthFailuresPerAccount < 0 turns
//     it off.
//
// Per-address limits count IPv4 addresses one by one and IPv6 addresses
// per /64 (limits.IPv6Prefix). Addresses in Exempt are not limited per
// address (the node-wide connection rate, the session limits and the
// per-account lockout still apply); by default loopback is exempt.
//
// Every time a limit bites it is counted (LimitHits, and the
// switchboard_c2s_limit_hits_total metric by limit) and logged at Warn
// with the address and the limit, at most once per limit per logEvery with
// the number of hits the line stands for.

// Limit names, as they appear in logs and metrics.
const (
	LimitConnsPerIP       = "conns_per_ip"
	LimitConnRate         = "conn_rate"
	LimitConnRatePerIP    = "conn_rate_per_ip"
	LimitStanzaRate       = "stanza_rate"
	LimitStanzaFlood      = "stanza_flood"
	LimitByteRate         = "byte_rate"
	LimitAuthLockoutIP    = "auth_lockout_ip"
	LimitAuthLockoutAcct  = "auth_lockout_account"
	limitRejectOverloaded = "rejects_in_flight"
)

type limitKind int

const (
	kindConnsPerIP limitKind = iota
	kindConnRate
	kindConnRatePerIP
	kindStanzaRate
	kindStanzaFlood
	kindByteRate
	kindAuthIP
	kindAuthAccount
	kindRejectOverloaded
	numLimitKinds
)

var limitNames = [numLimitKinds]string{
	LimitConnsPerIP, LimitConnRate, LimitConnRatePerIP, LimitStanzaRate, LimitStanzaFlood,
	LimitByteRate, LimitAuthLockoutIP, LimitAuthLockoutAcct, limitRejectOverloaded,
}

// Defaults of AbuseLimits. A client used by a person never comes near
// them; see docs/operations.md for when to change them.
const (
	DefaultMaxConnsPerIP          = 500
	DefaultConnRatePerIP          = 20
	DefaultConnBurstPerIP         = 100
	DefaultStanzaRate             = 1000
	DefaultStanzaBurst            = 2000
	DefaultFloodFactor            = 4
	DefaultByteRate               = 128 << 10
	DefaultByteBurst              = 512 << 10
	DefaultAuthFailuresPerIP      = 30
	DefaultAuthFailuresPerAccount = 10
	DefaultAuthWindow             = 10 * time.Minute
	DefaultAuthLockout            = 10 * time.Minute
)

// maxRejecting bounds the refused connections that wait for their stream
// header to get a stream error; past it they are closed at once.
const maxRejecting = 256

// logEvery is the shortest interval between two log lines about one limit.
const logEvery = time.Second

// AbuseLimits are the abuse controls of a node. In every integer field
// zero means the default and a negative value turns the limit off, except
// ConnRate, which is off unless set (a good figure depends on the node's
// CPU: measure logins per second with xmppbench and stay under it).
// Rates are per second.
type AbuseLimits struct {
	// MaxConnsPerIP bounds the open connections from one address.
	MaxConnsPerIP int
	// ConnRate and ConnBurst bound new connections to the node.
	ConnRate, ConnBurst int
	// ConnRatePerIP and ConnBurstPerIP bound new connections from one
	// address.
	ConnRatePerIP, ConnBurstPerIP int
	// StanzaRate and StanzaBurst bound the stanzas of one session.
	StanzaRate, StanzaBurst int
	// FloodFactor: a session going faster than FloodFactor times
	// StanzaRate (beyond FloodFactor times StanzaBurst) is closed.
	FloodFactor int
	// ByteRate and ByteBurst shape what one connection reads.
	ByteRate, ByteBurst int
	// AuthFailuresPerIP and AuthFailuresPerAccount failed logins within
	// AuthWindow lock the address or the account out for AuthLockout.
	AuthFailuresPerIP, AuthFailuresPerAccount int
	AuthWindow, AuthLockout                   time.Duration
	// Exempt are networks whose addresses the per-address limits skip;
	// nil means loopback (127.0.0.0/8 and ::1), an empty slice none.
	Exempt []netip.Prefix
}

// LimitSetting describes one field of AbuseLimits for a command's flags;
// both binaries declare their flags from LimitSettings, so that they have
// the same names and meaning. Exactly one of Int and Duration is set.
type LimitSetting struct {
	Name     string // flag name without dashes, e.g. "c2s-stanza-rate"
	Usage    string
	Int      *int
	Duration *time.Duration
	Default  int           // for Int: the effective default (0 means off on a flag)
	DefaultD time.Duration // for Duration
	// Check validates the value parsed from a flag (before FlagsDone).
	Check func() error
}

// LimitSettings returns the settings of a, pointing into it. On a flag, 0
// turns an integer limit off; FlagsDone maps that to AbuseLimits' "negative
// is off" once the flags are parsed.
func (a *AbuseLimits) LimitSettings() []LimitSetting {
	i := func(p *int, name string, def int, usage string) LimitSetting {
		return LimitSetting{Name: name, Usage: usage, Int: p, Default: def, Check: func() error {
			if *p < 0 {
				return errors.New("negative (0 turns the limit off)")
			}
			return nil
		}}
	}
	d := func(p *time.Duration, name string, def time.Duration, usage string) LimitSetting {
		return LimitSetting{Name: name, Usage: usage, Duration: p, DefaultD: def, Check: func() error {
			if *p <= 0 {
				return errors.New("must be positive")
			}
			return nil
		}}
	}
	s := []LimitSetting{
		i(&a.MaxConnsPerIP, "c2s-max-conns-per-ip", DefaultMaxConnsPerIP, "open client connections per IPv4 address or IPv6 /64; 0: no limit"),
		i(&a.ConnRate, "c2s-conn-rate", 0, "new client connections per second to this node; 0: no limit"),
		i(&a.ConnBurst, "c2s-conn-burst", 0, "burst of --c2s-conn-rate; 0: 5 seconds' worth"),
		i(&a.ConnRatePerIP, "c2s-conn-rate-per-ip", DefaultConnRatePerIP, "new client connections per second per IPv4 address or IPv6 /64; 0: no limit"),
		i(&a.ConnBurstPerIP, "c2s-conn-burst-per-ip", DefaultConnBurstPerIP, "burst of --c2s-conn-rate-per-ip"),
		i(&a.StanzaRate, "c2s-stanza-rate", DefaultStanzaRate, "stanzas per second per session; over it a stanza gets a policy-violation error; 0: no limit"),
		i(&a.StanzaBurst, "c2s-stanza-burst", DefaultStanzaBurst, "burst of --c2s-stanza-rate"),
		i(&a.FloodFactor, "c2s-flood-factor", DefaultFloodFactor, "a session sending more than this many times --c2s-stanza-rate is closed with policy-violation; 0: never"),
		i(&a.ByteRate, "c2s-byte-rate", DefaultByteRate, "bytes per second read from one client connection (shaped, nothing lost); 0: no limit"),
		i(&a.ByteBurst, "c2s-byte-burst", DefaultByteBurst, "burst of --c2s-byte-rate, in bytes"),
		i(&a.AuthFailuresPerIP, "c2s-auth-failures-per-ip", DefaultAuthFailuresPerIP, "failed logins per address within --c2s-auth-window that lock the address out; 0: never"),
		i(&a.AuthFailuresPerAccount, "c2s-auth-failures-per-account", DefaultAuthFailuresPerAccount, "failed logins per account within --c2s-auth-window that lock the account out (on this node); 0: never"),
		d(&a.AuthWindow, "c2s-auth-window", DefaultAuthWindow, "window in which failed logins are counted"),
		d(&a.AuthLockout, "c2s-auth-lockout", DefaultAuthLockout, "how long a lockout lasts"),
	}
	for k := range s {
		if s[k].Int == &a.FloodFactor {
			s[k].Check = func() error {
				if a.FloodFactor < 0 || a.FloodFactor == 1 {
					return errors.New("must be 0 (never) or at least 2")
				}
				return nil
			}
		}
	}
	return s
}

// FlagsDone turns the flag convention (0 is off) into AbuseLimits' (zero
// is the default, negative is off) for the integer fields, once flags set
// by LimitSettings have been parsed.
func (a *AbuseLimits) FlagsDone() {
	for _, s := range a.LimitSettings() {
		if s.Int != nil && *s.Int == 0 {
			*s.Int = -1
		}
	}
}

// ParseExempt reads a comma-separated list of networks (CIDR prefixes or
// single addresses) for AbuseLimits.Exempt; "none" is the empty list.
func ParseExempt(v string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	if v == "none" {
		return out, nil
	}
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// DefaultExempt is the value of Exempt when it is nil, as a flag shows it.
const DefaultExempt = "127.0.0.0/8,::1/128"

// withDefaults fills in defaults and checks a; errors name the field.
func (a AbuseLimits) withDefaults() (AbuseLimits, error) {
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxConnsPerIP", &a.MaxConnsPerIP, DefaultMaxConnsPerIP},
		{"ConnRatePerIP", &a.ConnRatePerIP, DefaultConnRatePerIP},
		{"ConnBurstPerIP", &a.ConnBurstPerIP, DefaultConnBurstPerIP},
		{"StanzaRate", &a.StanzaRate, DefaultStanzaRate},
		{"StanzaBurst", &a.StanzaBurst, DefaultStanzaBurst},
		{"FloodFactor", &a.FloodFactor, DefaultFloodFactor},
		{"ByteRate", &a.ByteRate, DefaultByteRate},
		{"ByteBurst", &a.ByteBurst, DefaultByteBurst},
		{"AuthFailuresPerIP", &a.AuthFailuresPerIP, DefaultAuthFailuresPerIP},
		{"AuthFailuresPerAccount", &a.AuthFailuresPerAccount, DefaultAuthFailuresPerAccount},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if a.ConnRate > 0 && a.ConnBurst <= 0 {
		a.ConnBurst = 5 * a.ConnRate
	}
	if a.FloodFactor > 0 && a.FloodFactor < 2 {
		return a, fmt.Errorf("c2s: Config.Abuse.FloodFactor %d: must be at least 2 (or negative: off)", a.FloodFactor)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"AuthWindow", &a.AuthWindow, DefaultAuthWindow},
		{"AuthLockout", &a.AuthLockout, DefaultAuthLockout},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return a, fmt.Errorf("c2s: Config.Abuse.%s is negative", d.name)
		}
	}
	if a.Exempt == nil {
		a.Exempt, _ = ParseExempt(DefaultExempt)
	}
	return a, nil
}

// guard holds the node-wide state of the abuse controls.
type guard struct {
	cfg        AbuseLimits
	perIP      *limits.Counter[netip.Addr]
	connRate   *limits.Shared
	connRateIP *limits.Keyed[netip.Addr]
	authIP     *limits.Failures[netip.Addr]
	authAcct   *limits.Failures[string]
	rejecting  chan struct{} // a slot per refused connection waiting for its header
	hits       [numLimitKinds]atomic.Uint64
	gates      [numLimitKinds]*limits.Gate
}

func newGuard(a AbuseLimits) *guard {
	g := &guard{
		cfg:        a,
		perIP:      limits.NewCounter[netip.Addr](),
		connRate:   limits.NewShared(float64(a.ConnRate), a.ConnBurst),
		connRateIP: limits.NewKeyed[netip.Addr](float64(a.ConnRatePerIP), a.ConnBurstPerIP),
		authIP:     limits.NewFailures[netip.Addr](a.AuthFailuresPerIP, a.AuthWindow, a.AuthLockout),
		authAcct:   limits.NewFailures[string](a.AuthFailuresPerAccount, a.AuthWindow, a.AuthLockout),
		rejecting:  make(chan struct{}, maxRejecting),
	}
	for i := range g.gates {
		g.gates[i] = limits.NewGate(logEvery)
	}
	return g
}

func (g *guard) exempt(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	for _, p := range g.cfg.Exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// hit counts a limit that bit and logs it, at most once per logEvery per
// limit.
func (s *Server) hit(k limitKind, peer string, attrs ...any) {
	s.guard.hits[k].Add(1)
	s.onLimitHit(limitNames[k])
	ok, held := s.guard.gates[k].Pass(time.Now())
	if !ok {
		return
	}
	args := append([]any{"limit", limitNames[k], "peer", peer}, attrs...)
	if held > 0 {
		args = append(args, "more_hits_not_logged", held)
	}
	s.log.Warn("abuse limit hit", args...)
}

// onLimitHit reports a hit to the metrics.
func (s *Server) onLimitHit(limit string) { s.cfg.Metrics.LimitHit(limit) }

// LimitHits returns how often each limit bit since the node started, by
// limit name.
func (s *Server) LimitHits() map[string]uint64 {
	out := make(map[string]uint64, numLimitKinds)
	for i := range s.guard.hits {
		out[limitNames[i]] = s.guard.hits[i].Load()
	}
	return out
}

// admit applies the connection limits to a new connection. It returns
// false when the connection was closed outright; a connection refused with
// a stream error is admitted with c.reject set and a short negotiation
// deadline.
func (s *Server) admit(c *conn) bool {
	g := s.guard
	c.ip = limits.IPKey(c.raw.RemoteAddr())
	c.exempt = g.exempt(c.ip)
	now := time.Now()
	var (
		kind limitKind
		text string
	)
	switch {
	case !g.connRate.Allow(now):
		kind, text = kindConnRate, fmt.Sprintf("too many new connections to this server (limit %d per second); try again later", g.cfg.ConnRate)
	case !c.exempt && !g.connRateIP.Allow(c.ip, now):
		kind, text = kindConnRatePerIP, fmt.Sprintf("too many new connections from your address (limit %d per second)", g.cfg.ConnRatePerIP)
	case !c.exempt && !g.perIP.Acquire(c.ip, g.cfg.MaxConnsPerIP):
		kind, text = kindConnsPerIP, fmt.Sprintf("too many connections from your address (limit %d)", g.cfg.MaxConnsPerIP)
	default:
		c.holdsIP = !c.exempt
		return true
	}
	if c.directTLS {
		s.hit(kind, c.peer, "action", "closed before TLS")
		c.raw.Close()
		return false
	}
	select {
	case g.rejecting <- struct{}{}:
	default:
		s.hit(kind, c.peer, "action", "closed at once: too many refused connections waiting")
		s.hit(kindRejectOverloaded, c.peer)
		c.raw.Close()
		return false
	}
	s.hit(kind, c.peer, "action", "policy-violation")
	c.reject = &stream.Error{Condition: stream.PolicyViolation, Text: text}
	c.dl.negotiation = now.Add(s.cfg.CloseTimeout)
	return true
}

// release gives back what admit took; forget calls it once per admitted
// connection.
func (s *Server) release(c *conn) {
	if c.holdsIP {
		c.holdsIP = false
		s.guard.perIP.Release(c.ip)
	}
	if c.reject != nil && !c.rejectReleased {
		c.rejectReleased = true
		<-s.guard.rejecting
	}
}

// sessionLimits are the per-connection buckets; only the reader goroutine
// touches them.
type sessionLimits struct {
	stanzas, flood, bytes limits.Bucket
	shapeUntil            time.Time
	shapeTimer            *time.Timer
}

func (g *guard) newSessionLimits() sessionLimits {
	a := g.cfg
	var l sessionLimits
	l.stanzas = limits.NewBucket(float64(a.StanzaRate), a.StanzaBurst)
	if a.StanzaRate > 0 && a.FloodFactor > 0 {
		l.flood = limits.NewBucket(float64(a.StanzaRate*a.FloodFactor), max(a.StanzaBurst, 1)*a.FloodFactor)
	}
	l.bytes = limits.NewBucket(float64(a.ByteRate), a.ByteBurst)
	return l
}

// overRate applies the stanza limits to a top-level element of a bound
// session. It reports whether the element must not be processed, and the
// error (a stream error, or the failure to queue the stanza error) that
// ends the stream, if any.
func (c *conn) overRate(el *dom.Element) (bool, error) {
	l := &c.lim
	if l.stanzas.Off() || !isClientStanza(el) {
		// Anything else in a session ends it with a stream error anyway.
		return false, nil
	}
	now := time.Now()
	if !l.flood.Allow(now) {
		c.srv.hit(kindStanzaFlood, c.peer, "jid", c.jid.String())
		return true, &stream.Error{Condition: stream.PolicyViolation,
			Text: fmt.Sprintf("stanza rate far above the limit of %d per second", c.srv.guard.cfg.StanzaRate)}
	}
	if l.stanzas.Allow(now) {
		return false, nil
	}
	c.srv.hit(kindStanzaRate, c.peer, "jid", c.jid.String())
	return true, c.replyError(el, &stanza.Error{Type: stanza.Wait, Condition: stanza.PolicyViolation,
		Text: fmt.Sprintf("too many stanzas: the limit is %d per second; this one was not sent", c.srv.guard.cfg.StanzaRate)})
}

// shape runs before every read from the socket: it waits while the byte
// budget is in debt, unless the stream is closing (a close must not wait
// for the shaper).
func (c *conn) shape() {
	l := &c.lim
	if l.bytes.Off() || l.shapeUntil.IsZero() || c.closing.Load() {
		return
	}
	d := time.Until(l.shapeUntil)
	l.shapeUntil = time.Time{}
	if d <= 0 {
		return
	}
	if l.shapeTimer == nil {
		l.shapeTimer = time.NewTimer(d)
	} else {
		l.shapeTimer.Reset(d)
	}
	select {
	case <-l.shapeTimer.C:
	case <-c.closeReq:
		l.shapeTimer.Stop()
	}
}

// shaped counts n bytes just read.
func (c *conn) shaped(n int) {
	l := &c.lim
	if n <= 0 || l.bytes.Off() {
		return
	}
	now := time.Now()
	if wait := l.bytes.Spend(now, float64(n)); wait > 0 {
		l.shapeUntil = now.Add(wait)
		c.srv.hit(kindByteRate, c.peer, "wait", wait.String())
	}
}

// errLockedOut is what the lookup returns for a locked account; the sasl
// package turns it into temporary-auth-failure, and saslFail adds the
// reason.
var errLockedOut = errors.New("c2s: account locked out after failed logins")

// lookup is the credential lookup of this connection's SASL exchanges: it
// remembers the account tried and refuses a locked one.
func (c *conn) lookup(ctx context.Context, username string) (*sasl.Credentials, error) {
	c.authAccount = c.accountKey(username)
	if locked, until := c.srv.guard.authAcct.Locked(c.authAccount, time.Now()); locked {
		c.acctLockedUntil = until
		return nil, errLockedOut
	}
	return lookupFor(c.srv.cfg.Credentials, c.streamDomain())(ctx, username)
}

// accountKey names an account in the per-account failure counts.
func (c *conn) accountKey(username string) string { return username + "@" + c.streamDomain() }

// authLocked returns the failure for an <auth/> from a locked-out address,
// or nil.
func (c *conn) authLocked() *sasl.Failure {
	c.authAccount, c.acctLockedUntil = "", time.Time{}
	if c.exempt {
		return nil
	}
	locked, until := c.srv.guard.authIP.Locked(c.ip, time.Now())
	if !locked {
		return nil
	}
	c.srv.hit(kindAuthIP, c.peer, "until", until.UTC().Format(time.RFC3339))
	return &sasl.Failure{Condition: sasl.TemporaryAuthFailure,
		Text: "too many failed logins from your address; try again in " + roundUp(time.Until(until))}
}

// authFailed records a failed login and returns the failure the client
// gets: a lockout of the account replaces the sasl package's bare
// temporary-auth-failure with one that says why.
func (c *conn) authFailed(f *sasl.Failure) *sasl.Failure {
	now := time.Now()
	if !c.acctLockedUntil.IsZero() {
		until := c.acctLockedUntil
		c.acctLockedUntil = time.Time{}
		c.srv.hit(kindAuthAccount, c.peer, "account", c.authAccount, "until", until.UTC().Format(time.RFC3339))
		return &sasl.Failure{Condition: sasl.TemporaryAuthFailure,
			Text: "too many failed logins for this account; try again in " + roundUp(until.Sub(now))}
	}
	if f.Condition != sasl.NotAuthorized {
		return f
	}
	g := c.srv.guard
	if !c.exempt && g.authIP.Fail(c.ip, now) {
		c.logger().Warn("address locked out after failed logins", "limit", LimitAuthLockoutIP,
			"failures", g.cfg.AuthFailuresPerIP, "lockout", g.cfg.AuthLockout.String())
	}
	if c.authAccount != "" && g.authAcct.Fail(c.authAccount, now) {
		c.logger().Warn("account locked out after failed logins", "limit", LimitAuthLockoutAcct,
			"account", c.authAccount, "failures", g.cfg.AuthFailuresPerAccount, "lockout", g.cfg.AuthLockout.String())
	}
	return f
}

// authSucceeded clears the account's failure count.
func (c *conn) authSucceeded() {
	if c.authAccount != "" {
		c.srv.guard.authAcct.Forget(c.authAccount)
	}
}

// roundUp renders d in whole seconds, at least one.
func roundUp(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return (max(s, 1) * time.Second).String()
}
