package s2s

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/dialback"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Namespaces of the negotiation (RFC 6120).
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// writeTimeout bounds one write to a peer.
const writeTimeout = 30 * time.Second

// xconn is one server-to-server stream: the socket, the reader and the
// writer, which is safe for concurrent use.
type xconn struct {
	nc  net.Conn
	r   *stream.Reader
	wmu sync.Mutex
	w   *stream.Writer
	tls *tls.ConnectionState // after STARTTLS or direct TLS
}

func newXConn(nc net.Conn, lim stream.Limits) *xconn {
	return &xconn{nc: nc, r: stream.NewReader(nc, lim), w: stream.NewWriter(nc, stream.NSServer)}
}

// header writes our stream header: jabber:server with the db prefix
// declared (XEP-0220 section 2.1).
func (x *xconn) header(h stream.Header) error {
	h.NS = stream.NSServer
	h.Version = "1.0"
	h.Prefixes = map[string]string{dialback.Prefix: dialback.NS}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := x.w.WriteHeader(h); err != nil {
		return err
	}
	return x.w.Flush()
}

// send writes one element and flushes.
func (x *xconn) send(el *dom.Element) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := x.w.WriteElement(el); err != nil {
		return err
	}
	return x.w.Flush()
}

// fail sends a stream error and closes the socket.
func (x *xconn) fail(e *stream.Error) {
	x.wmu.Lock()
	x.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	x.w.WriteError(e)
	x.wmu.Unlock()
	x.nc.Close()
}

// close ends our stream and the socket.
func (x *xconn) close() {
	x.wmu.Lock()
	x.nc.SetWriteDeadline(time.Now().Add(time.Second))
	x.w.Close()
	x.wmu.Unlock()
	x.nc.Close()
}

// readHeader reads the peer's header by deadline: the first, or a new one
// after a restart (RFC 6120 sections 5.4.3.3 and 6.4.6).
func (x *xconn) readHeader(deadline time.Time) (stream.Header, error) {
	x.nc.SetReadDeadline(deadline)
	x.r.Reset(x.nc)
	return x.r.ReadHeader()
}

// next reads the next element by deadline (none when zero).
func (x *xconn) next(deadline time.Time) (*dom.Element, error) {
	x.nc.SetReadDeadline(deadline)
	return x.r.Next()
}

// upgrade replaces the socket by its TLS form after <proceed/> and
// handshakes by deadline; the stream restarts on it.
func (x *xconn) upgrade(c *tls.Conn, deadline time.Time) error {
	c.SetDeadline(deadline)
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	c.SetDeadline(time.Time{})
	cs := c.ConnectionState()
	x.wmu.Lock()
	x.nc = c
	x.tls = &cs
	x.r.Reset(c)
	x.w.Reset(c)
	x.wmu.Unlock()
	return nil
}

// newStreamID returns a fresh unpredictable stream id (RFC 6120 section
// 4.7.3 asks for one; dialback keys depend on it).
func newStreamID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errNoCertificate is the peer presenting no certificate.
var errNoCertificate = errors.New("s2s: the peer presented no certificate")

// checkCertificate tells whether the peer's certificate chain is valid for
// domain at now: signed by roots, in its validity period, with domain as a
// DNS-ID (RFC 6125 section 6.4, a wildcard only as the whole left-most
// label, which crypto/x509 applies). The XmppAddr and SRV-ID identifiers of
// RFC 6120 section 13.7.1.2 are not checked, so a certificate that names
// the domain only that way falls back to dialback.
func checkCertificate(cs *tls.ConnectionState, roots *x509.CertPool, domain string) error {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return errNoCertificate
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       domain,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// features returns the child of a <stream:features/> element.
func feature(feats *dom.Element, space, local string) *dom.Element {
	if feats == nil {
		return nil
	}
	return feats.Child(space, local)
}

// isElem reports whether el is space:local.
func isElem(el *dom.Element, space, local string) bool {
	return el != nil && el.Space == space && el.Local == local
}
