package pgstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// storeCalls are one call of each kind a store makes, on accounts the
// test created beforehand; n keeps created JIDs apart between rounds.
func storeCalls(s *Store, n *int) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Account": func(ctx context.Context) error {
			_, err := s.Account(ctx, "juliet@example.com")
			return err
		},
		"CreateAccount": func(ctx context.Context) error {
			*n++
			return s.CreateAccount(ctx, account(fmt.Sprintf("user%d@example.com", *n)))
		},
		"SetCredentials": func(ctx context.Context) error {
			return s.SetCredentials(ctx, "juliet@example.com", account("juliet@example.com").Credentials)
		},
		"SetDisabled": func(ctx context.Context) error { return s.SetDisabled(ctx, "juliet@example.com", false) },
		"Ping":        s.Ping,
	}
}

// wantFailuresWithin runs every call while Postgres cannot be reached and
// checks that each fails with a store error, not an account error, within
// limit. It returns the errors by call.
func wantFailuresWithin(t *testing.T, calls map[string]func(context.Context) error, limit time.Duration) map[string]error {
	t.Helper()
	errs := map[string]error{}
	for name, call := range calls {
		start := time.Now()
		err := call(context.Background())
		elapsed := time.Since(start)
		switch {
		case err == nil:
			t.Errorf("%s succeeded while Postgres is unreachable", name)
		case errors.Is(err, roster.ErrAccountNotFound), errors.Is(err, roster.ErrAccountExists):
			t.Errorf("%s = %v, want a store error", name, err)
		}
		if elapsed > limit {
			t.Errorf("%s took %v to fail, want at most %v", name, elapsed, limit)
		}
		errs[name] = err
	}
	return errs
}

// wantSuccess checks that every call succeeds at its first attempt: the
// pool replaces dead connections by itself.
func wantSuccess(t *testing.T, calls map[string]func(context.Context) error) {
	t.Helper()
	for name, call := range calls {
		if err := call(context.Background()); err != nil {
			t.Errorf("%s after Postgres is back: %v", name, err)
		}
	}
}

// warm uses several connections at once, so that the pool holds more than
// one when the failure comes.
func warm(t *testing.T, s *Store) {
	t.Helper()
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			_, err := s.Account(testContext(t), "juliet@example.com")
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatalf("Account before the failure: %v", err)
		}
	}
}

// A server that is down (or refuses) closes connections: calls learn it at
// once, without waiting for their deadline. When it is back, the same store
// serves again.
func TestCallsFailFastWhileConnectionsAreCutAndSucceedAfterRestoreWithoutReopening(t *testing.T) {
	const timeout = 3 * time.Second
	p := startProxy(t)
	s := openStore(t, dsnVia(t, p.addr()), newSchema(t), WithQueryTimeout(timeout))
	mustCreate(t, s, account("juliet@example.com"))
	warm(t, s)
	n := 0
	calls := storeCalls(s, &n)

	for round := range 2 {
		p.cut()
		// Well under the timeout: nothing here waits for a deadline.
		wantFailuresWithin(t, calls, timeout/2)
		p.restore()
		wantSuccess(t, calls)
		if t.Failed() {
			t.Fatalf("round %d failed", round+1)
		}
	}
}

// A network that drops packets tells the client nothing: calls end at the
// store's query timeout with a deadline error, although the callers set no
// deadline. Once the network is back, the same store serves again.
func TestCallsFailAtTheirDeadlineWhileTheNetworkStallsAndSucceedAfterRestore(t *testing.T) {
	const timeout = 400 * time.Millisecond
	p := startProxy(t)
	s := openStore(t, dsnVia(t, p.addr()), newSchema(t), WithQueryTimeout(timeout))
	mustCreate(t, s, account("juliet@example.com"))
	warm(t, s)
	n := 0
	calls := storeCalls(s, &n)

	p.stall()
	// Slack for a loaded machine.
	for name, err := range wantFailuresWithin(t, calls, timeout+2*time.Second) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while stalled = %v, want a deadline error", name, err)
		}
	}
	p.restore()
	wantSuccess(t, calls)
}

func TestOpenFailsWhenPostgresIsUnreachable(t *testing.T) {
	const timeout = 400 * time.Millisecond
	for name, fail := range map[string]func(*proxy){"cut": (*proxy).cut, "stalled": (*proxy).stall} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t)
			schema := newSchema(t)
			fail(p)
			for _, opts := range [][]Option{{}, {SkipMigrations()}} {
				opts = append(opts, WithSchema(schema), WithQueryTimeout(timeout))
				start := time.Now()
				s, err := Open(testContext(t), dsnVia(t, p.addr()), opts...)
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded with Postgres unreachable")
				}
				if elapsed := time.Since(start); elapsed > timeout+2*time.Second {
					t.Errorf("Open took %v to fail, want about the connect timeout %v", elapsed, timeout)
				}
			}
			if err := Migrate(testContext(t), dsnVia(t, p.addr()), WithSchema(schema), WithQueryTimeout(timeout)); err == nil {
				t.Error("Migrate succeeded with Postgres unreachable")
			}
		})
	}
}

// Through the roster service, an unreachable Postgres is codes.Unavailable,
// which c2s answers with <temporary-auth-failure/>, never NotFound (which
// would read as a wrong password); and the service recovers by itself.
func TestServiceAnswersUnavailableWhilePostgresIsUnreachableAndRecovers(t *testing.T) {
	p := startProxy(t)
	s := openStore(t, dsnVia(t, p.addr()), newSchema(t), WithQueryTimeout(time.Second))
	svc, err := roster.New(roster.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	accounts := rosterv1.NewAccountServiceClient(cc)
	creds := rosterv1.NewCredentialServiceClient(cc)

	if _, err := accounts.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: "juliet@example.com", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	get := func() error {
		_, err := creds.GetCredentials(testContext(t), &rosterv1.GetCredentialsRequest{Jid: "juliet@example.com"})
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	for _, fail := range []func(){p.cut, p.stall} {
		fail()
		if err := get(); status.Code(err) != codes.Unavailable {
			t.Errorf("GetCredentials while unreachable = %v, want Unavailable", err)
		}
		_, err := accounts.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: "romeo@example.com", Password: "secret"})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("CreateAccount while unreachable = %v, want Unavailable", err)
		}
		p.restore()
		if err := get(); err != nil {
			t.Errorf("GetCredentials after restore: %v", err)
		}
	}
}

// When Postgres restarts between calls, every pooled connection is dead but
// nobody knows until one is used. The first call that finds one must not
// fail for it, nor for the dead ones behind it: a login right after a
// restart succeeds.
func TestConnectionsDroppedWhileIdleAreReplacedWithoutFailingACall(t *testing.T) {
	p := startProxy(t)
	s := openStore(t, dsnVia(t, p.addr()), newSchema(t))
	mustCreate(t, s, account("juliet@example.com"))
	n := 0
	for name, call := range storeCalls(s, &n) {
		warm(t, s)
		p.cut()
		p.restore()
		if err := call(context.Background()); err != nil {
			t.Errorf("%s after the connections were dropped: %v", name, err)
		}
	}
}
