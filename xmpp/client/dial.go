package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
)

// target is one place to connect to.
type target struct {
	addr   string // host:port
	direct bool   // TLS from the first byte (XEP-0368)
}

// srvRecord is an SRV record with the connection method its service implies.
type srvRecord struct {
	net.SRV
	direct bool
}

// lookupTargets returns the places to try for domain, in order (RFC 6120
// section 3.2.1, XEP-0368). intn returns a uniform integer in [0, n); it is
// a parameter so that tests can fix the weighted choice.
func lookupTargets(ctx context.Context, r Resolver, domain string, directTLS bool, intn func(int) int, log *slog.Logger) ([]target, error) {
	var records []srvRecord
	noStartTLS, anyAnswer := false, false

	lookup := func(service string, direct bool) (none bool) {
		_, addrs, err := r.LookupSRV(ctx, service, "tcp", domain)
		if err != nil && len(addrs) == 0 {
			// No records (or no DNS): a normal case, the fallback follows.
			log.Debug("xmpp client: SRV lookup found nothing", "service", service, "domain", domain, "err", err)
			return false
		}
		anyAnswer = true
		if len(addrs) == 1 && (addrs[0].Target == "." || addrs[0].Target == "") {
			log.Debug("xmpp client: SRV says the service is not offered", "service", service, "domain", domain)
			return true
		}
		for _, a := range addrs {
			if a == nil || a.Target == "." || a.Target == "" {
				continue
			}
			records = append(records, srvRecord{SRV: *a, direct: direct})
		}
		return false
	}

	noStartTLS = lookup("xmpp-client", false)
	if directTLS {
		// A "." here only means no direct TLS (XEP-0368 section 5).
		lookup("xmpps-client", true)
	}
	if len(records) == 0 {
		if noStartTLS {
			return nil, ErrNoService
		}
		if anyAnswer {
			// Records were published but none is usable: the domain uses
			// SRV, so the A/AAAA fallback would be a guess (XEP-0368).
			return nil, fmt.Errorf("client: SRV records of %s have no usable target", domain)
		}
		// RFC 6120 section 3.2.2: no SRV, so the domain itself on 5222.
		return []target{{addr: net.JoinHostPort(domain, defaultClientPort)}}, nil
	}
	ordered := orderSRV(records, intn)
	out := make([]target, len(ordered))
	for i, rec := range ordered {
		host := strings.TrimSuffix(rec.Target, ".")
		out[i] = target{addr: net.JoinHostPort(host, strconv.Itoa(int(rec.Port))), direct: rec.direct}
	}
	return out, nil
}

// orderSRV sorts records by priority and, within one priority, by the
// weighted random selection of RFC 2782: records of weight 0 first, then
// repeatedly a uniform number in [0, sum of weights] picks the first record
// whose running sum reaches it. Both services (xmpp- and xmpps-) are mixed
// as one set, as XEP-0368 asks.
func orderSRV(records []srvRecord, intn func(int) int) []srvRecord {
	recs := slices.Clone(records)
	slices.SortStableFunc(recs, func(a, b srvRecord) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		// Zero weights first inside a priority.
		return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1))
	})
	out := make([]srvRecord, 0, len(recs))
	for start := 0; start < len(recs); {
		end := start
		for end < len(recs) && recs[end].Priority == recs[start].Priority {
			end++
		}
		group := recs[start:end]
		for len(group) > 0 {
			total := 0
			for _, r := range group {
				total += int(r.Weight)
			}
			pick := 0
			if total > 0 {
				n := intn(total + 1)
				running := 0
				for i, r := range group {
					running += int(r.Weight)
					if running >= n {
						pick = i
						break
					}
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		start = end
	}
	return out
}

// connect opens a connection to the first target that answers. A direct TLS
// target is returned after its handshake.
func connect(ctx context.Context, cfg *Config, intn func(int) int) (net.Conn, target, error) {
	var targets []target
	if cfg.Addr != "" {
		targets = []target{{addr: cfg.Addr, direct: cfg.DirectTLS}}
	} else {
		var err error
		targets, err = lookupTargets(ctx, cfg.Resolver, cfg.JID.Domainpart(), cfg.DirectTLS, intn, cfg.Logger)
		if err != nil {
			return nil, target{}, err
		}
	}
	var errs []error
	for _, t := range targets {
		conn, err := cfg.Dialer.DialContext(ctx, "tcp", t.addr)
		if err == nil && t.direct {
			tc := tls.Client(conn, cfg.tlsConfig("xmpp-client"))
			if err = tc.HandshakeContext(ctx); err != nil {
				conn.Close()
			} else {
				conn = tc
			}
		}
		if err != nil {
			cfg.Logger.Info("xmpp client: connect failed", "addr", t.addr, "direct_tls", t.direct, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", t.addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		cfg.Logger.Debug("xmpp client: connected", "addr", t.addr, "direct_tls", t.direct)
		return conn, t, nil
	}
	if ctx.Err() != nil && len(errs) < len(targets) {
		errs = append(errs, ctx.Err())
	}
	return nil, target{}, fmt.Errorf("client: could not connect to %s: %w", cfg.JID.Domainpart(), errors.Join(errs...))
}
