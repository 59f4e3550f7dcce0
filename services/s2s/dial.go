package s2s

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dialback"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// target is one address to try for a remote domain.
type target struct {
	addr   string
	direct bool // XEP-0368 direct TLS
}

// resolve returns the addresses of a remote domain's server in the order
// to try them: the host map entry, or the SRV records of RFC 6120 section
// 3.2.1 (_xmpp-server._tcp) and XEP-0368 (_xmpps-server._tcp) merged by
// priority, direct TLS first among equals (the resolver already orders
// records of one priority by weight, RFC 2782), or the domain itself on
// port 5269 when there are no records.
func (s *Server) resolve(ctx context.Context, domain string) ([]target, error) {
	if a, ok := s.cfg.HostMap[domain]; ok {
		return []target{{addr: a}}, nil
	}
	type rec struct {
		target
		prio uint16
	}
	var recs []rec
	for _, svc := range []struct {
		name   string
		direct bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		_, srvs, err := s.cfg.Resolver.LookupSRV(ctx, svc.name, "tcp", domain)
		if err != nil {
			continue // no such record, or DNS trouble: the fallback decides
		}
		for _, r := range srvs {
			if r.Target == "." {
				// RFC 2782: the service is decidedly not available.
				if !svc.direct {
					return nil, fmt.Errorf("s2s: %s has no XMPP server (SRV target \".\")", domain)
				}
				continue
			}
			recs = append(recs, rec{target{net.JoinHostPort(r.Target, fmt.Sprint(r.Port)), svc.direct}, r.Priority})
		}
	}
	if len(recs) == 0 {
		return []target{{addr: net.JoinHostPort(domain, DefaultPort)}}, nil
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return cmp.Compare(a.prio, b.prio) })
	out := make([]target, len(recs))
	for i, r := range recs {
		out[i] = r.target
	}
	return out, nil
}

// peer is an outbound stream with TLS negotiated (or direct), the
// receiving server's header and features read.
type peer struct {
	*xconn
	local, remote string
	id            string       // the receiving server's stream id
	feats         *dom.Element // the latest <stream:features/>
	certErr       error        // why the peer's certificate is not valid for remote; nil when it is
}

// open connects to remote's server for local and negotiates TLS. ctx
// bounds the whole negotiation.
func (s *Server) open(ctx context.Context, local, remote string) (*peer, error) {
	targets, err := s.resolve(ctx, remote)
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	var tgt target
	var d net.Dialer
	for _, t := range targets {
		if nc, err = d.DialContext(ctx, "tcp", t.addr); err == nil {
			tgt = t
			break
		}
		s.log.Debug("s2s connect failed", "domain", remote, "addr", t.addr, "err", err)
	}
	if nc == nil {
		return nil, fmt.Errorf("s2s: connecting to %s: %w", remote, err)
	}
	deadline, _ := ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	p := &peer{xconn: newXConn(nc, s.cfg.Limits), local: local, remote: remote}
	if tgt.direct {
		if err := p.upgrade(tls.Client(nc, s.clientTLS(local, remote)), deadline); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if err := p.restart(deadline); err != nil {
		p.nc.Close()
		return nil, err
	}
	if p.tls == nil {
		if feature(p.feats, nsTLS, "starttls") == nil {
			p.fail(&stream.Error{Condition: stream.PolicyViolation, Text: "TLS is required"})
			return nil, fmt.Errorf("s2s: %s offers no STARTTLS", remote)
		}
		if err := p.send(dom.New(nsTLS, "starttls")); err != nil {
			p.nc.Close()
			return nil, err
		}
		el, err := p.next(deadline)
		if err != nil {
			p.nc.Close()
			return nil, err
		}
		if !isElem(el, nsTLS, "proceed") {
			p.nc.Close()
			return nil, fmt.Errorf("s2s: %s refused STARTTLS: <%s/>", remote, el.Local)
		}
		if err := p.upgrade(tls.Client(nc, s.clientTLS(local, remote)), deadline); err != nil {
			nc.Close()
			return nil, err
		}
		if err := p.restart(deadline); err != nil {
			p.nc.Close()
			return nil, err
		}
	}
	p.certErr = checkCertificate(p.tls, s.cfg.RootCAs, remote)
	if p.certErr != nil && s.cfg.Verification == VerifyRequired {
		p.fail(&stream.Error{Condition: stream.PolicyViolation, Text: "certificate not valid for " + remote})
		return nil, fmt.Errorf("s2s: certificate of %s: %w", remote, p.certErr)
	}
	p.nc.SetDeadline(time.Time{})
	return p, nil
}

// clientTLS is the TLS configuration of an outbound stream from local to
// remote. The chain is judged after the handshake (checkCertificate),
// because a certificate that is not valid for the domain still allows
// dialback. The certificate we present, when the peer asks for one (SASL
// EXTERNAL needs it), is local's.
func (s *Server) clientTLS(local, remote string) *tls.Config {
	c := s.cfg.TLS.Clone()
	c.ServerName = remote
	c.InsecureSkipVerify = true
	if get := c.GetCertificate; get != nil && c.GetClientCertificate == nil {
		// The server-side chooser, asked as if a client had named local
		// with the peer's accepted signature schemes.
		c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return get(&tls.ClientHelloInfo{
				ServerName:        local,
				SignatureSchemes:  cri.SignatureSchemes,
				SupportedVersions: []uint16{cri.Version},
			})
		}
	} else if len(c.Certificates) > 0 && c.GetClientCertificate == nil {
		cert := c.Certificates[0]
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

// restart sends our header and reads the peer's header and features.
func (p *peer) restart(deadline time.Time) error {
	if err := p.header(stream.Header{From: p.local, To: p.remote}); err != nil {
		return err
	}
	h, err := p.readHeader(deadline)
	if err != nil {
		return err
	}
	if h.NS != stream.NSServer {
		p.fail(&stream.Error{Condition: stream.InvalidNamespace})
		return fmt.Errorf("s2s: %s answered with namespace %q", p.remote, h.NS)
	}
	p.id = h.ID
	el, err := p.next(deadline)
	if err != nil {
		return err
	}
	if !isElem(el, stream.NS, "features") {
		if isElem(el, stream.NS, "error") {
			return stream.ParseError(el)
		}
		return fmt.Errorf("s2s: %s sent <%s/> instead of features", p.remote, el.Local)
	}
	p.feats = el
	return nil
}

// errRefused is a peer refusing to accept us.
var errRefused = errors.New("s2s: the peer refused to accept our domain")

// authenticate proves local to the peer: SASL EXTERNAL when the peer's
// certificate is valid and it offers the mechanism (RFC 6120 section
// 13.7.2, XEP-0178), dialback otherwise (XEP-0220). It returns the method.
func (s *Server) authenticate(ctx context.Context, p *peer) (string, error) {
	deadline, _ := ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { p.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer p.nc.SetDeadline(time.Time{})
	if p.certErr == nil && offersExternal(p.feats) {
		auth := dom.New(nsSASL, "auth", "mechanism", "EXTERNAL").AppendText(base64.StdEncoding.EncodeToString([]byte(p.local)))
		if err := p.send(auth); err != nil {
			return "", err
		}
		el, err := p.next(deadline)
		if err != nil {
			return "", err
		}
		switch {
		case isElem(el, nsSASL, "success"):
			if err := p.restart(deadline); err != nil {
				return "", err
			}
			return "EXTERNAL", nil
		case isElem(el, nsSASL, "failure"):
			s.log.Info("s2s SASL EXTERNAL refused; trying dialback", "domain", p.remote)
		default:
			return "", fmt.Errorf("s2s: %s answered <auth/> with <%s/>", p.remote, el.Local)
		}
	}
	if p.id == "" {
		// The key is bound to the stream id (XEP-0185).
		return "", fmt.Errorf("%w: the peer's header has no id, so dialback cannot work", errRefused)
	}
	req := dialback.Result{From: p.local, To: p.remote, Key: dialback.Key(s.cfg.Secret, p.remote, p.local, p.id)}
	if err := p.send(req.Element()); err != nil {
		return "", err
	}
	for {
		el, err := p.next(deadline)
		if err != nil {
			return "", err
		}
		if isElem(el, stream.NS, "error") {
			return "", stream.ParseError(el)
		}
		if !isElem(el, dialback.NS, "result") {
			continue
		}
		r, err := dialback.ParseResult(el)
		if err != nil || r.From != p.remote || r.To != p.local {
			continue
		}
		if r.Type != dialback.Valid {
			return "", fmt.Errorf("%w: dialback %s", errRefused, r.Type)
		}
		return "dialback", nil
	}
}

func offersExternal(feats *dom.Element) bool {
	m := feature(feats, nsSASL, "mechanisms")
	if m == nil {
		return false
	}
	for _, c := range m.Children() {
		if c.Local == "mechanism" && c.Text() == "EXTERNAL" {
			return true
		}
	}
	return false
}

// verifyKey plays the receiving server's part of XEP-0220 section 2.3: it
// asks the authoritative server of originating whether key is right for
// the stream streamID that originating opened to receiving (us).
func (s *Server) verifyKey(ctx context.Context, receiving, originating, streamID, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	p, err := s.open(ctx, receiving, originating)
	if err != nil {
		return false, err
	}
	defer p.close()
	stop := context.AfterFunc(ctx, func() { p.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, _ := ctx.Deadline()
	v := dialback.Verify{From: receiving, To: originating, ID: streamID, Key: key}
	if err := p.send(v.Element()); err != nil {
		return false, err
	}
	for {
		el, err := p.next(deadline)
		if err != nil {
			return false, err
		}
		if isElem(el, stream.NS, "error") {
			return false, stream.ParseError(el)
		}
		if !isElem(el, dialback.NS, "verify") {
			continue
		}
		a, err := dialback.ParseVerify(el)
		if err != nil || a.ID != streamID {
			continue
		}
		return a.Type == dialback.Valid, nil
	}
}
