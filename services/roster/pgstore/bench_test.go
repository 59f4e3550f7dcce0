package pgstore

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// benchStore is a store in a fresh schema with juliet's account (two SCRAM
// keys and a DIGEST-MD5 hash, like an account made with that option on).
func benchStore(b *testing.B) *Store {
	b.Helper()
	s := openStore(b, testDSN(), newSchema(b))
	a := account("juliet@example.com")
	a.DigestMD5, a.DigestRealm = make([]byte, 16), "example.com"
	mustCreate(b, s, a)
	return s
}

// BenchmarkAccount is the store's half of a login: the lookup behind
// CredentialService.GetCredentials, one call at a time.
func BenchmarkAccount(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Account(ctx, "juliet@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccountParallel is the same lookup from GOMAXPROCS goroutines
// sharing the pool, as concurrent logins do.
func BenchmarkAccountParallel(b *testing.B) {
	s := benchStore(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := s.Account(ctx, "juliet@example.com"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetCredentials is the whole call c2s makes per login, through
// the roster service's gRPC handler (in-process transport) and pgstore.
func BenchmarkGetCredentials(b *testing.B) {
	svc, err := roster.New(roster.Config{Store: benchStore(b)})
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	b.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	creds := rosterv1.NewCredentialServiceClient(cc)
	ctx := context.Background()
	req := &rosterv1.GetCredentialsRequest{Jid: "juliet@example.com"}
	for b.Loop() {
		if _, err := creds.GetCredentials(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetRoster1000 is a roster get of a 1,000-item roster (two
// groups each, mixed subscriptions) through the roster service's gRPC
// handler (in-process transport) and pgstore.
func BenchmarkGetRoster1000(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	for i := range 1000 {
		_, _, err := st.UpdateEntry(ctx, "juliet@example.com", fmt.Sprintf("contact%04d@example.net", i), func(e roster.Entry) (roster.Entry, error) {
			e.InRoster, e.Name, e.Groups = true, fmt.Sprintf("Contact %d", i), []string{"Friends", "Group " + fmt.Sprint(i%10)}
			e.To, e.From = i%2 == 0, i%3 == 0
			return e, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	svc, err := roster.New(roster.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	go srv.Serve(l)
	b.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(l)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	rc := rosterv1.NewRosterServiceClient(cc)
	req := &rosterv1.GetRosterRequest{User: "juliet@example.com"}
	for b.Loop() {
		resp, err := rc.GetRoster(ctx, req)
		if err != nil || len(resp.GetItems()) != 1000 {
			b.Fatalf("GetRoster: %d items, %v", len(resp.GetItems()), err)
		}
	}
}
