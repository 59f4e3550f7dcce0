package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// BenchmarkGetRoster1000 is a roster get of a 1,000-item roster (two
// groups each, mixed subscriptions) through the roster service's gRPC
// handler (in-process transport) and sqlitestore.
func BenchmarkGetRoster1000(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.CreateAccount(ctx, account("juliet@example.com")); err != nil {
		b.Fatal(err)
	}
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
