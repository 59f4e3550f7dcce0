package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/roster"
)

// The claim contract (XEP-0160 delivery by several routers at once): a
// message is handed to one claimant while its claim lives, and handed out
// again once the claim ends without the message having been deleted.

func storeN(t *testing.T, s roster.Store, owner string, n int) []int64 {
	t.Helper()
	q := roster.Quota{Messages: 1000, Bytes: 1 << 20}
	var ids []int64
	for i := range n {
		id, err := s.StoreOffline(ctx(t), owner, roster.OfflineMessage{
			Stanza: fmt.Appendf(nil, "<message id='c%d'/>", i), Stamp: time.Now(),
		}, q)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func idsOf(msgs []roster.OfflineMessage) []int64 {
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

func mustClaim(t *testing.T, s roster.Store, owner string, now, until time.Time) []int64 {
	t.Helper()
	msgs, err := s.ClaimOffline(ctx(t), owner, now, until)
	if err != nil {
		t.Fatalf("ClaimOffline(%s): %v", owner, err)
	}
	return idsOf(msgs)
}

func testOfflineClaim(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	mustCreate(t, s, account(romeo, 2))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lease := time.Minute
	if got := mustClaim(t, s, juliet, t0, t0.Add(lease)); len(got) != 0 {
		t.Errorf("claim of an empty box = %v", got)
	}
	first := storeN(t, s, juliet, 3)
	storeN(t, s, romeo, 2)
	msgs, err := s.ClaimOffline(ctx(t), juliet, t0, t0.Add(lease))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idsOf(msgs), first) {
		t.Fatalf("first claim = %v, want %v, oldest first", idsOf(msgs), first)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("<message id='c%d'/>", i); string(m.Stanza) != want {
			t.Errorf("claimed message %d = %q, want %q", i, m.Stanza, want)
		}
	}
	// While the claim lives, nobody else gets those; a message stored
	// meanwhile is free.
	later := storeN(t, s, juliet, 1)
	if got := mustClaim(t, s, juliet, t0.Add(lease-time.Second), t0.Add(2*lease)); !slices.Equal(got, later) {
		t.Errorf("second claim within the first's lease = %v, want only the new %v", got, later)
	}
	if got := mustClaim(t, s, juliet, t0.Add(lease-time.Second), t0.Add(2*lease)); len(got) != 0 {
		t.Errorf("third claim = %v, want nothing left", got)
	}
	// Claims hide nothing from FetchOffline and touch no other box.
	if all, _ := s.FetchOffline(ctx(t), juliet); len(all) != 4 {
		t.Errorf("FetchOffline sees %d messages, want 4 (claimed ones included)", len(all))
	}
	if got := mustClaim(t, s, romeo, t0, t0.Add(lease)); len(got) != 2 {
		t.Errorf("romeo's claim = %v, want his 2 messages", got)
	}
	// The first claimant died: once its claim ends, what it did not
	// delete is handed out again; the second claimant deleted its one.
	if n, err := s.DeleteOfflineIDs(ctx(t), juliet, later); err != nil || n != 1 {
		t.Errorf("DeleteOfflineIDs(%v) = %d, %v; want 1", later, n, err)
	}
	if got := mustClaim(t, s, juliet, t0.Add(lease), t0.Add(2*lease)); !slices.Equal(got, first) {
		t.Errorf("claim once the first lease ended = %v, want %v again", got, first)
	}
	if n, err := s.DeleteOfflineIDs(ctx(t), juliet, first); err != nil || n != 3 {
		t.Errorf("DeleteOfflineIDs(%v) = %d, %v; want 3", first, n, err)
	}
	if all, _ := s.FetchOffline(ctx(t), juliet); len(all) != 0 {
		t.Errorf("%d messages left after every delete", len(all))
	}
}

func testOfflineClaimConcurrent(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	const (
		claimants = 8
		messages  = 20
	)
	stored := storeN(t, s, juliet, messages)
	now := time.Now()
	got := make([][]int64, claimants)
	var wg sync.WaitGroup
	for i := range claimants {
		wg.Go(func() {
			msgs, err := s.ClaimOffline(ctx(t), juliet, now, now.Add(time.Minute))
			if err != nil {
				t.Errorf("ClaimOffline #%d: %v", i, err)
			}
			got[i] = idsOf(msgs)
		})
	}
	wg.Wait()
	var all []int64
	for _, g := range got {
		all = append(all, g...)
	}
	slices.Sort(all)
	if !slices.Equal(all, stored) {
		t.Errorf("%d concurrent claims handed out %v, want each of %v exactly once", claimants, all, stored)
	}
}

func testOfflineDeleteIDs(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	mustCreate(t, s, account(romeo, 2))
	ids := storeN(t, s, juliet, 4)
	theirs := storeN(t, s, romeo, 1)
	// Another account's ID and IDs already gone are skipped.
	n, err := s.DeleteOfflineIDs(ctx(t), juliet, []int64{ids[0], ids[2], theirs[0], ids[3] + 1000})
	if err != nil || n != 2 {
		t.Errorf("DeleteOfflineIDs = %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteOfflineIDs(ctx(t), juliet, []int64{ids[0]}); err != nil || n != 0 {
		t.Errorf("deleting again = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteOfflineIDs(ctx(t), juliet, nil); err != nil || n != 0 {
		t.Errorf("deleting no IDs = %d, %v; want 0", n, err)
	}
	left, _ := s.FetchOffline(ctx(t), juliet)
	if got := idsOf(left); !slices.Equal(got, []int64{ids[1], ids[3]}) {
		t.Errorf("left %v, want %v", got, []int64{ids[1], ids[3]})
	}
	if others, _ := s.FetchOffline(ctx(t), romeo); len(others) != 1 {
		t.Errorf("romeo has %d messages, want 1", len(others))
	}
}
