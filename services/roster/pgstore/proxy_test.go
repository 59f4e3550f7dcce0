package pgstore

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP proxy between a store and the test Postgres, owned by one
// test, that fails the way networks and servers do without touching the
// shared server:
//   - cut: every connection is closed and new ones are closed on accept, as
//     when Postgres goes down or refuses (the client learns at once);
//   - stalled: bytes are held, on open and new connections alike, as when a
//     network partition drops packets (the client learns nothing);
//   - restored: forwarding again; held bytes flow on.
type proxy struct {
	ln              net.Listener
	network, target string

	mu      sync.Mutex
	changed *sync.Cond // signalled when state changes
	state   proxyState
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

type proxyState int

const (
	forwarding proxyState = iota
	stalled
	cut
	closed
)

func startProxy(t testing.TB) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, conns: map[net.Conn]struct{}{}}
	p.network, p.target = upstream(t)
	p.changed = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// addr is where clients connect.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track registers c unless connections are being refused.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == cut || p.state == closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *proxy) serve(client net.Conn) {
	// A stalled network does not even let the connection through.
	if !p.pass() {
		p.untrack(client)
		return
	}
	server, err := net.Dial(p.network, p.target)
	if err != nil {
		p.untrack(client)
		return
	}
	if !p.track(server) {
		server.Close()
		p.untrack(client)
		return
	}
	var both sync.WaitGroup
	both.Go(func() { p.pipe(server, client) })
	both.Go(func() { p.pipe(client, server) })
	both.Wait()
}

// pipe copies src to dst while the proxy lets bytes pass, then closes both,
// which ends the pipe of the other direction too.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.untrack(dst, src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the proxy is stalled and reports whether bytes may pass.
func (p *proxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.state == stalled {
		p.changed.Wait()
	}
	return p.state == forwarding
}

func (p *proxy) set(s proxyState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == closed {
		return
	}
	p.state = s
	if s == cut || s == closed {
		for c := range p.conns {
			c.Close()
		}
	}
	p.changed.Broadcast()
}

func (p *proxy) cut()     { p.set(cut) }
func (p *proxy) stall()   { p.set(stalled) }
func (p *proxy) restore() { p.set(forwarding) }

func (p *proxy) close() {
	p.set(closed)
	if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		panic(err)
	}
	p.wg.Wait()
}
