package roster_test

import (
	"strings"
	"testing"
	"time"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
)

func claimIDs(t *testing.T, f *fixture, user string, lease time.Duration) []int64 {
	t.Helper()
	resp, err := f.roster.ClaimOffline(testContext(t), &rosterv1.ClaimOfflineRequest{User: user, LeaseMs: lease.Milliseconds()})
	if err != nil {
		t.Fatalf("ClaimOffline(%s): %v", user, err)
	}
	var ids []int64
	for _, m := range resp.GetMessages() {
		if !strings.Contains(string(m.GetDelayed()), "urn:xmpp:delay") {
			t.Errorf("claimed message %d without a delay stamp: %s", m.GetId(), m.GetDelayed())
		}
		ids = append(ids, m.GetId())
	}
	return ids
}

// XEP-0160 through the RPCs the routers use: a claim hands each message
// to one caller while it lives, deleting by IDs settles it, and a claim
// nobody settles lapses.
func TestOfflineClaimAndDeleteByIDs_XEP0160(t *testing.T) {
	f := imFixture(t, roster.Config{})
	var ids []int64
	for range 3 {
		resp, err := f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: juliet,
			Raw: []byte("<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat'><body>x</body></message>")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetId())
	}
	if got := claimIDs(t, f, juliet, time.Minute); len(got) != 3 || got[0] != ids[0] || got[2] != ids[2] {
		t.Fatalf("first claim = %v, want %v", got, ids)
	}
	if got := claimIDs(t, f, juliet, time.Minute); len(got) != 0 {
		t.Errorf("second claim within the lease = %v, want none", got)
	}
	del, err := f.roster.DeleteOffline(testContext(t), &rosterv1.DeleteOfflineRequest{User: juliet, Ids: ids[:2]})
	if err != nil || del.GetDeleted() != 2 {
		t.Errorf("DeleteOffline(ids %v) = %v, %v; want 2", ids[:2], del, err)
	}
	left, err := f.roster.FetchOffline(testContext(t), &rosterv1.FetchOfflineRequest{User: juliet})
	if err != nil || len(left.GetMessages()) != 1 || left.GetMessages()[0].GetId() != ids[2] {
		t.Errorf("left = %v, %v; want only %d", left, err, ids[2])
	}
	// A claimant that never deletes: a claim of a millisecond lapses and
	// the message is handed out again.
	resp, err := f.roster.StoreOffline(testContext(t), &rosterv1.StoreOfflineRequest{User: romeo, Raw: []byte("<message/>")})
	if err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(t, f, romeo, time.Millisecond); len(got) != 1 {
		t.Fatalf("claim = %v, want romeo's message", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := claimIDs(t, f, romeo, time.Minute)
		if len(got) == 1 && got[0] == resp.GetId() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a lapsed claim never let the message be claimed again")
		}
		time.Sleep(time.Millisecond)
	}
}
