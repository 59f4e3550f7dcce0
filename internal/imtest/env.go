package imtest

import (
	"crypto/tls"
	"sync"
	"testing"
)

// Env is the server the scenarios run against.
type Env struct {
	Domain string
	// Addrs are the STARTTLS client listeners of the c2s nodes. The two
	// users of a scenario log in on different nodes when there are two.
	Addrs []string
	TLS   *tls.Config
	// Password is the password of an account made by CreateAccounts.
	Password func(local string) string
	// CreateAccounts creates local@Domain for each localpart.
	CreateAccounts func(t testing.TB, locals ...string)
	// Prefix starts every localpart the scenarios make, so that runs
	// sharing a server do not meet.
	Prefix string
	// Parallel is how many cells run at once (at least 1). Each cell has
	// its own accounts, so cells never see each other's stanzas.
	Parallel int
}

// Login logs local/resource in on node (an index into Addrs, modulo its
// length).
func (e *Env) Login(t testing.TB, local, resource string, node int) *Conn {
	t.Helper()
	return Dial(t, Login{
		Addr:     e.Addrs[node%len(e.Addrs)],
		Domain:   e.Domain,
		TLS:      e.TLS,
		Local:    local,
		Password: e.Password(local),
		Resource: resource,
	})
}

// run runs the subtests cells[name] with at most e.Parallel at once, and
// returns when all have ended. Subtests started from several goroutines
// run at once without t.Parallel, so the go test -parallel limit (the
// number of CPUs) does not apply: the cells mostly wait on the network.
func (e *Env) run(t *testing.T, names []string, cell func(t *testing.T, i int)) {
	sem := make(chan struct{}, max(e.Parallel, 1))
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.Run(name, func(t *testing.T) { cell(t, i) })
		}()
	}
	wg.Wait()
}
