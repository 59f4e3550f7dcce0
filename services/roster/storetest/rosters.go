package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/roster"
)

const (
	juliet = "juliet@example.com"
	romeo  = "romeo@example.net"
	nurse  = "nurse@example.com"
)

// request is an inbound subscribe as a server receives it, with an
// extension child (XEP-0172 nick) that must come back byte for byte.
var request = []byte(`<presence from='romeo@example.net' to='juliet@example.com' type='subscribe' id='s1' xmlns='jabber:client'><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick><x xmlns='urn:example:odd' a="1">&lt;text&gt;</x></presence>`)

// set returns an update that puts the item in the roster with name,
// groups and state, keeping any request.
func set(name string, groups []string, st roster.State) func(roster.Entry) (roster.Entry, error) {
	return func(e roster.Entry) (roster.Entry, error) {
		e.InRoster = true
		e.Name, e.Groups = name, groups
		st.PendingIn = e.Request != nil
		e.State = st
		return e, nil
	}
}

func remove(e roster.Entry) (roster.Entry, error) {
	e.InRoster = false
	e.Name, e.Groups, e.State, e.Request = "", nil, roster.State{}, nil
	return e, nil
}

func withRequest(raw []byte) func(roster.Entry) (roster.Entry, error) {
	return func(e roster.Entry) (roster.Entry, error) {
		e.Request = raw
		e.PendingIn = true
		return e, nil
	}
}

func mustUpdate(t *testing.T, s roster.Store, owner, contact string, fn func(roster.Entry) (roster.Entry, error)) (roster.Entry, roster.Version) {
	t.Helper()
	e, v, err := s.UpdateEntry(ctx(t), owner, contact, fn)
	if err != nil {
		t.Fatalf("UpdateEntry(%s, %s): %v", owner, contact, err)
	}
	return e, v
}

func mustRoster(t *testing.T, s roster.Store, owner string) ([]roster.Item, roster.Version) {
	t.Helper()
	items, v, err := s.Roster(ctx(t), owner)
	if err != nil {
		t.Fatalf("Roster(%s): %v", owner, err)
	}
	return items, v
}

func itemDiff(got, want roster.Item) string {
	if got.Contact != want.Contact || got.Name != want.Name || !slices.Equal(got.Groups, want.Groups) || got.State != want.State {
		return fmt.Sprintf("item %+v, want %+v", got, want)
	}
	return ""
}

func testNewRosterEmpty(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	items, v := mustRoster(t, s, juliet)
	if len(items) != 0 || v != (roster.Version{}) {
		t.Errorf("new roster: %d items at %+v, want none at the zero version", len(items), v)
	}
	changes, cur, ok, err := s.Changes(ctx(t), juliet, roster.Version{})
	if err != nil || !ok || len(changes) != 0 || cur != (roster.Version{}) {
		t.Errorf("Changes(zero) = %v, %+v, %v, %v; want none, zero, ok", changes, cur, ok, err)
	}
	if reqs, err := s.Requests(ctx(t), juliet); err != nil || len(reqs) != 0 {
		t.Errorf("Requests = %v, %v; want none", reqs, err)
	}
}

func testRosterMissingAccount(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	c := ctx(t)
	if _, _, err := s.Roster(c, romeo); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Roster = %v, want ErrAccountNotFound", err)
	}
	if _, _, _, err := s.Changes(c, romeo, roster.Version{}); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Changes = %v, want ErrAccountNotFound", err)
	}
	if _, _, err := s.UpdateEntry(c, romeo, juliet, set("", nil, roster.State{})); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("UpdateEntry = %v, want ErrAccountNotFound", err)
	}
	if _, err := s.Requests(c, romeo); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Requests = %v, want ErrAccountNotFound", err)
	}
	q := roster.Quota{Messages: 10, Bytes: 1000}
	if _, err := s.StoreOffline(c, romeo, roster.OfflineMessage{Stanza: []byte("<message/>")}, q); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("StoreOffline = %v, want ErrAccountNotFound", err)
	}
	if _, err := s.FetchOffline(c, romeo); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("FetchOffline = %v, want ErrAccountNotFound", err)
	}
	if _, err := s.DeleteOffline(c, romeo, 10); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("DeleteOffline = %v, want ErrAccountNotFound", err)
	}
	if _, err := s.ClaimOffline(c, romeo, time.Now(), time.Now().Add(time.Minute)); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("ClaimOffline = %v, want ErrAccountNotFound", err)
	}
	if _, err := s.DeleteOfflineIDs(c, romeo, []int64{1}); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("DeleteOfflineIDs = %v, want ErrAccountNotFound", err)
	}
}

func testItemReadsBack(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	st := roster.State{To: true, PendingOut: false, From: false, Approved: true}
	e, v := mustUpdate(t, s, juliet, romeo, set("Romeo", []string{"Friends", "Verona", "Ämter"}, st))
	want := roster.Item{Contact: romeo, Name: "Romeo", Groups: []string{"Friends", "Verona", "Ämter"}, State: st}
	if d := itemDiff(e.Item, want); d != "" || !e.InRoster {
		t.Errorf("returned entry: %s (in roster %v)", d, e.InRoster)
	}
	if v.Epoch == "" || v.N != 1 {
		t.Errorf("version after the first change %+v, want a non-empty epoch and N 1", v)
	}
	mustUpdate(t, s, juliet, nurse, set("", nil, roster.State{PendingOut: true}))
	items, v2 := mustRoster(t, s, juliet)
	if v2 != (roster.Version{Epoch: v.Epoch, N: 2}) {
		t.Errorf("version %+v, want %s/2", v2, v.Epoch)
	}
	if len(items) != 2 {
		t.Fatalf("roster has %d items, want 2", len(items))
	}
	// Sorted by contact: nurse@example.com before romeo@example.net.
	if d := itemDiff(items[0], roster.Item{Contact: nurse, State: roster.State{PendingOut: true}}); d != "" {
		t.Error(d)
	}
	if d := itemDiff(items[1], want); d != "" {
		t.Error(d)
	}
}

func testUnchangedItemKeepsVersion(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	_, v1 := mustUpdate(t, s, juliet, romeo, set("Romeo", []string{"A"}, roster.State{To: true}))
	_, v2 := mustUpdate(t, s, juliet, romeo, set("Romeo", []string{"A"}, roster.State{To: true}))
	if v2 != v1 {
		t.Errorf("same item written again moved the version from %+v to %+v", v1, v2)
	}
	_, v3 := mustUpdate(t, s, juliet, romeo, set("Romeo", []string{"B"}, roster.State{To: true}))
	if v3.N != v1.N+1 {
		t.Errorf("changed groups: version %+v, want %d", v3, v1.N+1)
	}
}

func testRequestWithoutItem(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	e, v := mustUpdate(t, s, juliet, romeo, withRequest(request))
	if !e.PendingIn || e.InRoster {
		t.Errorf("entry after a request: pending in %v, in roster %v; want true, false", e.PendingIn, e.InRoster)
	}
	if v != (roster.Version{}) {
		t.Errorf("a request alone moved the version to %+v", v)
	}
	if items, _ := mustRoster(t, s, juliet); len(items) != 0 {
		t.Errorf("a request alone put %v in the roster", items)
	}
	reqs, err := s.Requests(ctx(t), juliet)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("Requests = %v, %v; want one", reqs, err)
	}
	if !bytes.Equal(reqs[0].Request, request) || reqs[0].Contact != romeo || !reqs[0].PendingIn {
		t.Errorf("stored request %q from %s, want %q from %s", reqs[0].Request, reqs[0].Contact, request, romeo)
	}
	// The request outlives later changes of the item (the user adds the
	// contact before answering), and goes when it is answered.
	mustUpdate(t, s, juliet, romeo, set("Romeo", nil, roster.State{}))
	if reqs, _ := s.Requests(ctx(t), juliet); len(reqs) != 1 || !bytes.Equal(reqs[0].Request, request) {
		t.Errorf("request after adding the item: %v", reqs)
	}
	mustUpdate(t, s, juliet, romeo, func(e roster.Entry) (roster.Entry, error) {
		e.Request, e.From = nil, true
		return e, nil
	})
	if reqs, _ := s.Requests(ctx(t), juliet); len(reqs) != 0 {
		t.Errorf("request still there after the answer: %v", reqs)
	}
	// A request answered with a denial, without an item, leaves nothing.
	mustUpdate(t, s, juliet, nurse, withRequest([]byte("<presence type='subscribe'/>")))
	e, _ = mustUpdate(t, s, juliet, nurse, func(e roster.Entry) (roster.Entry, error) {
		e.Request = nil
		return e, nil
	})
	if e.PendingIn {
		t.Error("entry still pending in after the request went")
	}
	if reqs, _ := s.Requests(ctx(t), juliet); len(reqs) != 0 {
		t.Errorf("denied request still there: %v", reqs)
	}
}

func testRequestsInOrder(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	contacts := []string{"zed@example.com", "amy@example.com", "mia@example.com"}
	for _, c := range contacts {
		mustUpdate(t, s, juliet, c, withRequest([]byte("<presence from='"+c+"' type='subscribe'/>")))
	}
	reqs, err := s.Requests(ctx(t), juliet)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reqs {
		got = append(got, r.Contact)
	}
	if !slices.Equal(got, contacts) {
		t.Errorf("requests from %v, want arrival order %v", got, contacts)
	}
}

func testChangesSince(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	mustUpdate(t, s, juliet, romeo, set("Romeo", nil, roster.State{}))
	_, v1 := mustUpdate(t, s, juliet, nurse, set("Nurse", nil, roster.State{}))
	mustUpdate(t, s, juliet, "benvolio@example.net", set("", nil, roster.State{}))
	mustUpdate(t, s, juliet, romeo, set("Romeo M.", []string{"Friends"}, roster.State{To: true}))
	mustUpdate(t, s, juliet, nurse, remove)
	_, last := mustUpdate(t, s, juliet, "mercutio@example.net", set("", nil, roster.State{}))

	changes, cur, ok, err := s.Changes(ctx(t), juliet, v1)
	if err != nil || !ok {
		t.Fatalf("Changes(%+v) = ok %v, %v", v1, ok, err)
	}
	if cur != last {
		t.Errorf("current version %+v, want %+v", cur, last)
	}
	type row struct {
		contact string
		removed bool
		ver     int64
	}
	var got []row
	for _, c := range changes {
		got = append(got, row{c.Item.Contact, c.Removed, c.Ver})
	}
	want := []row{
		{"benvolio@example.net", false, 3},
		{romeo, false, 4},
		{nurse, true, 5},
		{"mercutio@example.net", false, 6},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	if d := itemDiff(changes[1].Item, roster.Item{Contact: romeo, Name: "Romeo M.", Groups: []string{"Friends"}, State: roster.State{To: true}}); d != "" {
		t.Error(d)
	}
	// From the current version: nothing.
	changes, _, ok, err = s.Changes(ctx(t), juliet, last)
	if err != nil || !ok || len(changes) != 0 {
		t.Errorf("Changes(current) = %v, ok %v, %v; want none", changes, ok, err)
	}
	// A removed contact added back is a change, not a removal.
	_, v := mustUpdate(t, s, juliet, nurse, set("Nurse", nil, roster.State{}))
	changes, _, _, _ = s.Changes(ctx(t), juliet, last)
	if len(changes) != 1 || changes[0].Removed || changes[0].Ver != v.N {
		t.Errorf("changes after re-adding: %+v", changes)
	}
}

func testChangesUnknownVersion(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	_, v := mustUpdate(t, s, juliet, romeo, set("", nil, roster.State{}))
	for _, since := range []roster.Version{
		{Epoch: v.Epoch + "x", N: v.N},
		{Epoch: v.Epoch, N: v.N + 1},
		{},
	} {
		if _, cur, ok, err := s.Changes(ctx(t), juliet, since); err != nil || ok || cur != v {
			t.Errorf("Changes(%+v) = ok %v, current %+v, %v; want not ok at %+v", since, ok, cur, err, v)
		}
	}
}

func testChangeLogLimit(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	n := roster.ChangeLogLimit + 2
	for i := range n {
		mustUpdate(t, s, juliet, fmt.Sprintf("c%04d@example.com", i), set("", nil, roster.State{}))
	}
	_, start := mustRoster(t, s, juliet)
	for i := range n {
		mustUpdate(t, s, juliet, fmt.Sprintf("c%04d@example.com", i), remove)
	}
	// The first two removals' tombstones are gone: from before them the
	// store cannot tell, from after them it can.
	if _, _, ok, err := s.Changes(ctx(t), juliet, start); err != nil || ok {
		t.Errorf("Changes from before the dropped tombstones: ok %v, %v; want not ok", ok, err)
	}
	since := roster.Version{Epoch: start.Epoch, N: start.N + 2}
	changes, _, ok, err := s.Changes(ctx(t), juliet, since)
	if err != nil || !ok || len(changes) != roster.ChangeLogLimit {
		t.Errorf("Changes from the oldest kept tombstone: %d changes, ok %v, %v; want %d", len(changes), ok, err, roster.ChangeLogLimit)
	}
}

func testFailedUpdate(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	_, v := mustUpdate(t, s, juliet, romeo, set("Romeo", nil, roster.State{To: true}))
	boom := errors.New("boom")
	_, _, err := s.UpdateEntry(ctx(t), juliet, romeo, func(e roster.Entry) (roster.Entry, error) {
		return roster.Entry{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateEntry = %v, want fn's error", err)
	}
	items, v2 := mustRoster(t, s, juliet)
	if v2 != v || len(items) != 1 || items[0].Name != "Romeo" {
		t.Errorf("after a failed update: %v at %+v, want the old item at %+v", items, v2, v)
	}
}

func testDeleteAccountTakesRoster(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	_, v := mustUpdate(t, s, juliet, romeo, set("Romeo", nil, roster.State{}))
	mustUpdate(t, s, juliet, nurse, withRequest(request))
	if _, err := s.StoreOffline(ctx(t), juliet, roster.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}, roster.Quota{Messages: 5, Bytes: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx(t), juliet); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, account(juliet, 2))
	items, v2 := mustRoster(t, s, juliet)
	if len(items) != 0 || v2 != (roster.Version{}) {
		t.Errorf("successor account's roster: %v at %+v, want empty at zero", items, v2)
	}
	if reqs, _ := s.Requests(ctx(t), juliet); len(reqs) != 0 {
		t.Errorf("successor inherited requests %v", reqs)
	}
	if msgs, _ := s.FetchOffline(ctx(t), juliet); len(msgs) != 0 {
		t.Errorf("successor inherited %d offline messages", len(msgs))
	}
	_, v3 := mustUpdate(t, s, juliet, romeo, set("", nil, roster.State{}))
	if v3.Epoch == v.Epoch {
		t.Errorf("successor's roster reuses epoch %q: old clients' versions would match", v.Epoch)
	}
}

func testConcurrentRosterUpdates(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	const writers = 8
	vers := make(chan int64, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, v, err := s.UpdateEntry(ctx(t), juliet, fmt.Sprintf("c%d@example.com", i), set("", nil, roster.State{}))
			if err != nil {
				t.Errorf("UpdateEntry #%d: %v", i, err)
				return
			}
			vers <- v.N
		})
	}
	wg.Wait()
	close(vers)
	var got []int64
	for v := range vers {
		got = append(got, v)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("versions %v, want 1..%d once each", got, writers)
		}
	}
	if items, v := mustRoster(t, s, juliet); len(items) != writers || v.N != writers {
		t.Errorf("%d items at version %d, want %d at %d", len(items), v.N, writers, writers)
	}
}

func testEntryNoAliasing(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	groups := []string{"A", "B"}
	raw := bytes.Clone(request)
	e, _ := mustUpdate(t, s, juliet, romeo, func(e roster.Entry) (roster.Entry, error) {
		e.InRoster, e.Groups, e.Request = true, groups, raw
		return e, nil
	})
	groups[0] = "changed"
	raw[1] = 'X'
	e.Groups[1] = "changed too"
	items, _ := mustRoster(t, s, juliet)
	if len(items) != 1 || !slices.Equal(items[0].Groups, []string{"A", "B"}) {
		t.Errorf("stored groups %v, want [A B]", items)
	}
	if reqs, _ := s.Requests(ctx(t), juliet); len(reqs) != 1 || !bytes.Equal(reqs[0].Request, request) {
		t.Errorf("stored request changed with the caller's slice")
	}
}

func testOfflineOrder(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	mustCreate(t, s, account(romeo, 2))
	q := roster.Quota{Messages: 100, Bytes: 1 << 20}
	stamp := time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	var ids []int64
	for i := range 5 {
		m := roster.OfflineMessage{Stanza: fmt.Appendf(nil, "<message id='m%d'><body>%d</body></message>", i, i), Stamp: stamp.Add(time.Duration(i) * time.Second)}
		id, err := s.StoreOffline(ctx(t), juliet, m, q)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if _, err := s.StoreOffline(ctx(t), romeo, m, q); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.FetchOffline(ctx(t), juliet)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("FetchOffline = %d messages, %v; want 5", len(msgs), err)
	}
	for i, m := range msgs {
		want := fmt.Sprintf("<message id='m%d'><body>%d</body></message>", i, i)
		if m.ID != ids[i] || string(m.Stanza) != want || !m.Stamp.Equal(time.UnixMilli(stamp.Add(time.Duration(i)*time.Second).UnixMilli())) {
			t.Errorf("message %d = %d %q %v, want %d %q", i, m.ID, m.Stanza, m.Stamp, ids[i], want)
		}
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("IDs not increasing: %d after %d", m.ID, msgs[i-1].ID)
		}
	}
	// Deleting up to the third leaves the last two, and romeo's alone.
	n, err := s.DeleteOffline(ctx(t), juliet, ids[2])
	if err != nil || n != 3 {
		t.Errorf("DeleteOffline = %d, %v; want 3", n, err)
	}
	msgs, _ = s.FetchOffline(ctx(t), juliet)
	if len(msgs) != 2 || msgs[0].ID != ids[3] {
		t.Errorf("after the delete: %d messages starting at %v, want 2 from %d", len(msgs), msgs, ids[3])
	}
	if others, _ := s.FetchOffline(ctx(t), romeo); len(others) != 5 {
		t.Errorf("romeo has %d messages after juliet's delete, want 5", len(others))
	}
}

func testOfflineQuota(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	store := func(size int, q roster.Quota) error {
		_, err := s.StoreOffline(ctx(t), juliet, roster.OfflineMessage{Stanza: bytes.Repeat([]byte("x"), size), Stamp: time.Now()}, q)
		return err
	}
	byCount := roster.Quota{Messages: 3, Bytes: 1 << 20}
	for i := range 3 {
		if err := store(10, byCount); err != nil {
			t.Fatalf("message %d within the quota: %v", i+1, err)
		}
	}
	if err := store(10, byCount); !errors.Is(err, roster.ErrOfflineFull) {
		t.Errorf("fourth message of three allowed: %v, want ErrOfflineFull", err)
	}
	// 30 bytes stored; 100 allowed: 70 more fit, 71 do not.
	byBytes := roster.Quota{Messages: 100, Bytes: 100}
	if err := store(71, byBytes); !errors.Is(err, roster.ErrOfflineFull) {
		t.Errorf("message past the byte cap: %v, want ErrOfflineFull", err)
	}
	if err := store(70, byBytes); err != nil {
		t.Errorf("message filling the byte cap exactly: %v", err)
	}
	if msgs, _ := s.FetchOffline(ctx(t), juliet); len(msgs) != 4 {
		t.Errorf("%d messages stored, want 4 (refused ones are not kept)", len(msgs))
	}
}

func testOfflineQuotaConcurrent(t *testing.T, s roster.Store) {
	mustCreate(t, s, account(juliet, 1))
	q := roster.Quota{Messages: 5, Bytes: 1 << 20}
	const senders = 12
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			_, err := s.StoreOffline(ctx(t), juliet, roster.OfflineMessage{Stanza: fmt.Appendf(nil, "<message id='%d'/>", i), Stamp: time.Now()}, q)
			if err != nil && !errors.Is(err, roster.ErrOfflineFull) {
				t.Errorf("StoreOffline #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if msgs, _ := s.FetchOffline(ctx(t), juliet); len(msgs) != q.Messages {
		t.Errorf("%d messages stored by %d concurrent senders, want exactly the quota %d", len(msgs), senders, q.Messages)
	}
}
