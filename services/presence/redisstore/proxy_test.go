package redisstore

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy a test puts between the store and Redis to take
// Redis away without touching the shared server. Cut closes every open
// connection and turns the proxy into a black hole: it accepts new
// connections and never answers, which is what a dead host behind a
// still-working network looks like and what only a deadline gets out of.
// Deafen forwards requests but drops Redis's replies: commands run and
// their callers never learn it. Restore makes it forward again.
type proxy struct {
	t      testing.TB
	l      net.Listener
	target string
	deaf   atomic.Bool

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{t: t, l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.l.Addr().String() }

func (p *proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

func (p *proxy) Deafen() { p.deaf.Store(true) }

func (p *proxy) Restore() {
	p.deaf.Store(false)
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	// Connections held in the black hole go too: a client still waiting
	// on one would wait forever.
	p.closeAll()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// track registers c to be closed by Cut, Restore and cleanup.
func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			// Swallow what the client sends until the test lets go.
			p.wg.Go(func() { io.Copy(io.Discard, c) })
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		p.wg.Go(func() { io.Copy(up, c); up.Close(); c.Close() })
		p.wg.Go(func() { io.Copy(deafWriter{p, c}, up); up.Close(); c.Close() })
	}
}

// deafWriter drops what it is given while the proxy is deaf.
type deafWriter struct {
	p *proxy
	w io.Writer
}

func (d deafWriter) Write(b []byte) (int, error) {
	if d.p.deaf.Load() {
		return len(b), nil
	}
	return d.w.Write(b)
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
