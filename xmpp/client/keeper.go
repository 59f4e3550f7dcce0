package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Keeper keeps a session up: it dials, hands each new session to
// OnSession, and when the session ends dials again after an exponential
// backoff with jitter. Every attempt resolves the domain afresh, since the
// old server may be gone (RFC 6120 section 3.3).
//
// A server that ends the stream with <see-other-host/> (RFC 6120 section
// 4.9.3.19, a node being drained) is followed at once: the next attempt
// goes to the host it named, over STARTTLS, with the same JID, TLS
// policy and certificate identity; the one after that, if that attempt
// fails or its session ends too, uses the normal resolution again. At
// most maxRedirects redirects are followed in a row. <system-shutdown/>
// is retried like any other failure: after the backoff, at the normal
// address(es).
type Keeper struct {
	// Config of every session.
	Config Config
	// OnSession is called with each new session, from Run's goroutine.
	// It should return soon (start goroutines for long work); the Keeper
	// then waits for the session to end. Use ctx or c.Done to stop work.
	OnSession func(ctx context.Context, c *Client)
	// MinDelay is the backoff after the first failure; default 1s.
	MinDelay time.Duration
	// MaxDelay caps the backoff; default 60s. A session that lasted at
	// least MaxDelay resets the backoff to MinDelay.
	MaxDelay time.Duration
	// Retry decides whether an error is worth another attempt; default
	// Retryable.
	Retry func(err error) bool

	// Test hooks; nil means the real clock and randomness.
	after func(time.Duration) <-chan time.Time
	now   func() time.Time
	rand  func() float64

	mu      sync.Mutex
	current *Client
}

// Run keeps sessions up until ctx ends (it then closes the session and
// returns ctx's error), until Retry refuses an error (returned), or until
// a session is ended with Close (returns nil).
func (k *Keeper) Run(ctx context.Context) error {
	after, now, random := k.after, k.now, k.rand
	if after == nil {
		after = time.After
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Float64
	}
	retry := k.Retry
	if retry == nil {
		retry = Retryable
	}
	minDelay, maxDelay := k.delays()
	log := k.Config.Logger
	if log == nil {
		log = k.Config.withDefaults().Logger
	}
	attempt, redirects := 0, 0
	redirect := ""
	for {
		cfg := k.Config
		if redirect != "" {
			cfg.Addr, cfg.DirectTLS = redirect, false
			log.Info("xmpp client: connecting to the host the server redirected to", "addr", redirect)
			redirect = ""
		}
		c, err := Dial(ctx, cfg)
		if err == nil {
			start := now()
			k.setCurrent(c)
			if k.OnSession != nil {
				k.OnSession(ctx, c)
			}
			select {
			case <-c.Done():
				err = c.Err()
			case <-ctx.Done():
				closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CloseTimeout)
				_ = c.Close(closeCtx)
				cancel()
				k.setCurrent(nil)
				return ctx.Err()
			}
			k.setCurrent(nil)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if now().Sub(start) >= maxDelay {
				attempt, redirects = 0, 0
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retry(err) {
			log.Warn("xmpp client: giving up reconnecting", "err", err)
			return err
		}
		if addr, ok := RedirectAddr(err); ok && redirects < maxRedirects {
			// The server spreads its redirects itself: no wait.
			redirects++
			redirect = addr
			log.Info("xmpp client: redirected by the server", "to", addr, "err", err)
			continue
		}
		d := backoff(attempt, minDelay, maxDelay, random())
		attempt++
		log.Info("xmpp client: reconnecting", "in", d, "attempt", attempt, "err", err)
		select {
		case <-after(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// maxRedirects is how many <see-other-host/> redirects the Keeper follows
// in a row (RFC 6120 section 4.9.3.19 asks clients to bound them).
const maxRedirects = 3

// RedirectAddr returns the host:port that a <see-other-host/> stream error
// in err names (RFC 6120 section 4.9.3.19), with the client port 5222 when
// it names none; ok is false for any other error or an unusable value.
func RedirectAddr(err error) (addr string, ok bool) {
	var se *stream.Error
	if !errors.As(err, &se) || se.Condition != stream.SeeOtherHost {
		return "", false
	}
	h := strings.TrimSpace(se.Host)
	port := defaultClientPort
	if host, p, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", false
		}
		h, port = host, p
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1] // an IPv6 address without a port
	}
	if !redirectHost(h) {
		return "", false
	}
	return net.JoinHostPort(h, port), true
}

// redirectHost reports whether h is an IP address or looks like a domain
// name.
func redirectHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Client returns the current session, or nil between sessions.
func (k *Keeper) Client() *Client {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current
}

func (k *Keeper) setCurrent(c *Client) {
	k.mu.Lock()
	k.current = c
	k.mu.Unlock()
}

func (k *Keeper) delays() (time.Duration, time.Duration) {
	lo, hi := k.MinDelay, k.MaxDelay
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = time.Minute
	}
	return lo, max(lo, hi)
}

// backoff returns the wait before attempt n (from 0): the base doubles
// from lo up to hi, and the wait is uniform in [base/2, base) so that
// clients cut off together do not come back together.
func backoff(n int, lo, hi time.Duration, r float64) time.Duration {
	base := lo
	for i := 0; i < n && base < hi; i++ {
		base *= 2
	}
	base = min(base, hi)
	return base/2 + time.Duration(r*float64(base/2))
}

// Retryable is the Keeper's default policy. It gives up on what another
// attempt cannot fix: SASL failures other than temporary-auth-failure, a
// server signature that did not verify, a certificate that did not verify,
// a server without TLS or without an acceptable mechanism, a domain
// without client service, and the stream errors conflict (another session
// took our resource: coming back would evict it in turn), host-unknown and
// not-authorized. Everything else (I/O, other stream errors) is retried.
func Retryable(err error) bool {
	var f *sasl.Failure
	if errors.As(err, &f) {
		return f.Condition == sasl.TemporaryAuthFailure
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return false
	case errors.Is(err, ErrTLSRequired), errors.Is(err, ErrNoMechanism),
		errors.Is(err, ErrServerSignature), errors.Is(err, ErrNoService):
		return false
	case errors.Is(err, stream.Conflict), errors.Is(err, stream.HostUnknown), errors.Is(err, stream.NotAuthorized):
		return false
	}
	return true
}

// isSASLFailure reports whether err carries a *sasl.Failure.
func isSASLFailure(err error) bool {
	var f *sasl.Failure
	return errors.As(err, &f)
}
