// Package storetest is the contract every roster.Store must meet. A store's
// own test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// Run runs the contract suite. open must return an empty store and arrange
// its cleanup with t.Cleanup; it is called once per subtest.
func Run(t *testing.T, open func(t *testing.T) roster.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s roster.Store)
	}{
		{"CreatedAccountReadsBackWithEveryField", testCreatedAccountReadsBack},
		{"ScramKeysComeBackSortedByHash", testScramKeysSortedByHash},
		{"AccountWithoutDigestHasNoDigestOrRealm", testNoDigestNoRealm},
		{"CreatingATakenJIDFailsAndKeepsTheOriginal", testCreateTakenJID},
		{"MissingAccountIsNotFoundForEveryOperation", testMissingAccount},
		{"SetCredentialsReplacesEveryKeyAndCanDropTheDigest", testSetCredentialsReplaces},
		{"SetDisabledTogglesOnlyTheFlag", testSetDisabled},
		{"ListAccountsPagesInByteOrderWithoutKeys", testListAccountsPages},
		{"ListAccountsOfADomainMatchesTheWholeDomainpart", testListAccountsDomain},
		{"ListAccountsOfAnEmptyStoreIsEmpty", testListAccountsEmpty},
		{"DeletedAccountLeavesNoKeysBehindForItsSuccessor", testDeleteThenRecreate},
		{"AccountsAreIndependent", testAccountsIndependent},
		{"StoreKeepsNoReferenceToCallerSlices", testNoAliasing},
		{"ConcurrentCreatesOfOneJIDLetExactlyOneWin", testConcurrentCreates},
		{"CanceledContextFailsTheCall", testCanceledContext},
		{"CreatedIsKeptToTheMillisecond", testCreatedToTheMillisecond},
		{"ConcurrentSetCredentialsLeaveOneWholeSet", testConcurrentSetCredentials},
		{"NewRosterIsEmptyAtTheZeroVersion", testNewRosterEmpty},
		{"RosterCallsForAMissingAccountAreNotFound", testRosterMissingAccount},
		{"UpdatedItemReadsBackWithEveryField", testItemReadsBack},
		{"UnchangedItemKeepsTheVersion", testUnchangedItemKeepsVersion},
		{"RequestWithoutItemIsKeptWholeOutsideTheRoster", testRequestWithoutItem},
		{"RequestsComeBackInArrivalOrder", testRequestsInOrder},
		{"ChangesSinceAVersionListItemsAndRemovalsInOrder", testChangesSince},
		{"ChangesFromAnUnknownVersionAreRefused", testChangesUnknownVersion},
		{"RemovalsPastTheChangeLogLimitNeedTheWholeRoster", testChangeLogLimit},
		{"FailedUpdateStoresNothing", testFailedUpdate},
		{"DeletedAccountTakesItsRosterAndMessages", testDeleteAccountTakesRoster},
		{"ConcurrentUpdatesOfOneRosterGetOneVersionEach", testConcurrentRosterUpdates},
		{"UpdateEntryKeepsNoReferenceToCallerSlices", testEntryNoAliasing},
		{"OfflineMessagesComeBackInOrderAndDeleteUpToAnID", testOfflineOrder},
		{"OfflineQuotaCountsMessagesAndBytes", testOfflineQuota},
		{"ConcurrentOfflineStoresNeverPassTheQuota", testOfflineQuotaConcurrent},
		{"OfflineClaimHandsEachMessageOutOnceWhileItLives", testOfflineClaim},
		{"ConcurrentOfflineClaimsNeverShareAMessage", testOfflineClaimConcurrent},
		{"OfflineDeleteByIDs", testOfflineDeleteIDs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// keys returns distinct, recognisable SCRAM keys for hash; seed varies them.
func keys(hash string, seed byte) sasl.ScramKeys {
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	size := 20
	if hash == "SHA-256" {
		size = 32
	}
	return sasl.ScramKeys{
		Hash:       hash,
		Salt:       fill(16, seed),
		Iterations: 4096 + int(seed),
		StoredKey:  fill(size, seed+1),
		ServerKey:  fill(size, seed+2),
	}
}

func account(jid string, seed byte) roster.Account {
	return roster.Account{
		JID: jid,
		Credentials: roster.Credentials{
			Scram:       []sasl.ScramKeys{keys("SHA-1", seed), keys("SHA-256", seed)},
			DigestMD5:   bytes.Repeat([]byte{seed + 3}, 16),
			DigestRealm: "example.com",
		},
		Created: time.UnixMilli(1_700_000_000_000 + int64(seed)),
	}
}

func mustCreate(t *testing.T, s roster.Store, a roster.Account) {
	t.Helper()
	if err := s.CreateAccount(ctx(t), a); err != nil {
		t.Fatalf("CreateAccount(%s): %v", a.JID, err)
	}
}

func mustGet(t *testing.T, s roster.Store, jid string) roster.Account {
	t.Helper()
	a, err := s.Account(ctx(t), jid)
	if err != nil {
		t.Fatalf("Account(%s): %v", jid, err)
	}
	return a
}

// diff describes how got differs from want, or returns "".
func diff(got, want roster.Account) string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if got.JID != want.JID {
		add("JID %q, want %q", got.JID, want.JID)
	}
	if got.Disabled != want.Disabled {
		add("Disabled %v, want %v", got.Disabled, want.Disabled)
	}
	if !got.Created.Equal(want.Created) {
		add("Created %v, want %v", got.Created, want.Created)
	}
	if !bytes.Equal(got.DigestMD5, want.DigestMD5) {
		add("DigestMD5 %x, want %x", got.DigestMD5, want.DigestMD5)
	}
	if got.DigestRealm != want.DigestRealm {
		add("DigestRealm %q, want %q", got.DigestRealm, want.DigestRealm)
	}
	if len(got.Scram) != len(want.Scram) {
		add("%d SCRAM entries, want %d", len(got.Scram), len(want.Scram))
	} else {
		for i := range got.Scram {
			g, w := got.Scram[i], want.Scram[i]
			if g.Hash != w.Hash || g.Iterations != w.Iterations || !bytes.Equal(g.Salt, w.Salt) ||
				!bytes.Equal(g.StoredKey, w.StoredKey) || !bytes.Equal(g.ServerKey, w.ServerKey) {
				add("SCRAM[%d] = %+v, want %+v", i, g, w)
			}
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func testCreatedAccountReadsBack(t *testing.T, s roster.Store) {
	want := account("juliet@example.com", 1)
	mustCreate(t, s, want)
	if d := diff(mustGet(t, s, want.JID), want); d != "" {
		t.Error(d)
	}
	disabled := account("romeo@example.com", 2)
	disabled.Disabled = true
	mustCreate(t, s, disabled)
	if d := diff(mustGet(t, s, disabled.JID), disabled); d != "" {
		t.Error(d)
	}
}

func testScramKeysSortedByHash(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	a.Scram = []sasl.ScramKeys{keys("SHA-256", 1), keys("SHA-1", 1)}
	mustCreate(t, s, a)
	got := mustGet(t, s, a.JID)
	if len(got.Scram) != 2 || got.Scram[0].Hash != "SHA-1" || got.Scram[1].Hash != "SHA-256" {
		t.Fatalf("SCRAM entries %+v, want SHA-1 then SHA-256", got.Scram)
	}
}

func testNoDigestNoRealm(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	a.DigestMD5 = nil
	// A realm without its hash is meaningless and must not be kept.
	a.DigestRealm = "example.com"
	mustCreate(t, s, a)
	got := mustGet(t, s, a.JID)
	if got.DigestMD5 != nil || got.DigestRealm != "" {
		t.Errorf("DigestMD5 %x, DigestRealm %q; want none", got.DigestMD5, got.DigestRealm)
	}
}

func testCreateTakenJID(t *testing.T, s roster.Store) {
	first := account("juliet@example.com", 1)
	mustCreate(t, s, first)
	second := account("juliet@example.com", 7)
	second.Disabled = true
	if err := s.CreateAccount(ctx(t), second); !errors.Is(err, roster.ErrAccountExists) {
		t.Fatalf("second CreateAccount = %v, want ErrAccountExists", err)
	}
	if d := diff(mustGet(t, s, first.JID), first); d != "" {
		t.Errorf("original account changed: %s", d)
	}
}

func testMissingAccount(t *testing.T, s roster.Store) {
	mustCreate(t, s, account("juliet@example.com", 1))
	const missing = "romeo@example.com"
	if _, err := s.Account(ctx(t), missing); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Account = %v, want ErrAccountNotFound", err)
	}
	if err := s.SetCredentials(ctx(t), missing, account(missing, 2).Credentials); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("SetCredentials = %v, want ErrAccountNotFound", err)
	}
	if err := s.SetDisabled(ctx(t), missing, true); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("SetDisabled = %v, want ErrAccountNotFound", err)
	}
	if err := s.DeleteAccount(ctx(t), missing); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("DeleteAccount = %v, want ErrAccountNotFound", err)
	}
	// None of them may have created the account on the way.
	if _, err := s.Account(ctx(t), missing); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("Account after failed updates = %v, want ErrAccountNotFound", err)
	}
}

func testSetCredentialsReplaces(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	a.Disabled = true
	mustCreate(t, s, a)

	// New keys for one hash only and no digest: everything old must go.
	next := roster.Credentials{Scram: []sasl.ScramKeys{keys("SHA-256", 9)}}
	if err := s.SetCredentials(ctx(t), a.JID, next); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	want := a
	want.Credentials = next
	if d := diff(mustGet(t, s, a.JID), want); d != "" {
		t.Errorf("after dropping the digest: %s", d)
	}

	// And a digest can come back.
	again := account(a.JID, 11).Credentials
	if err := s.SetCredentials(ctx(t), a.JID, again); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	want.Credentials = again
	if d := diff(mustGet(t, s, a.JID), want); d != "" {
		t.Errorf("after adding a digest: %s", d)
	}
}

func testSetDisabled(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	mustCreate(t, s, a)
	for _, disabled := range []bool{true, false} {
		if err := s.SetDisabled(ctx(t), a.JID, disabled); err != nil {
			t.Fatalf("SetDisabled(%v): %v", disabled, err)
		}
		want := a
		want.Disabled = disabled
		if d := diff(mustGet(t, s, a.JID), want); d != "" {
			t.Errorf("after SetDisabled(%v): %s", disabled, d)
		}
	}
}

func testDeleteThenRecreate(t *testing.T, s roster.Store) {
	old := account("juliet@example.com", 1)
	mustCreate(t, s, old)
	if err := s.DeleteAccount(ctx(t), old.JID); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if _, err := s.Account(ctx(t), old.JID); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Fatalf("Account after delete = %v, want ErrAccountNotFound", err)
	}
	if err := s.DeleteAccount(ctx(t), old.JID); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("second DeleteAccount = %v, want ErrAccountNotFound", err)
	}
	successor := roster.Account{
		JID:         old.JID,
		Credentials: roster.Credentials{Scram: []sasl.ScramKeys{keys("SHA-1", 5)}},
		Created:     old.Created.Add(time.Hour),
	}
	mustCreate(t, s, successor)
	if d := diff(mustGet(t, s, old.JID), successor); d != "" {
		t.Errorf("recreated account: %s", d)
	}
}

func testAccountsIndependent(t *testing.T, s roster.Store) {
	juliet, romeo := account("juliet@example.com", 1), account("romeo@example.com", 2)
	mustCreate(t, s, juliet)
	mustCreate(t, s, romeo)
	if err := s.SetDisabled(ctx(t), juliet.JID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCredentials(ctx(t), juliet.JID, roster.Credentials{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx(t), juliet.JID); err != nil {
		t.Fatal(err)
	}
	if d := diff(mustGet(t, s, romeo.JID), romeo); d != "" {
		t.Errorf("other account changed: %s", d)
	}
}

func testNoAliasing(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	want := account("juliet@example.com", 1)
	mustCreate(t, s, a)
	a.Scram[0].StoredKey[0] ^= 0xff
	a.DigestMD5[0] ^= 0xff
	a.Scram = a.Scram[:1]

	got := mustGet(t, s, want.JID)
	if d := diff(got, want); d != "" {
		t.Fatalf("after changing the caller's account: %s", d)
	}
	got.Scram[0].Salt[0] ^= 0xff
	got.DigestMD5[0] ^= 0xff
	if d := diff(mustGet(t, s, want.JID), want); d != "" {
		t.Errorf("after changing a returned account: %s", d)
	}
}

func testConcurrentCreates(t *testing.T, s roster.Store) {
	const racers = 8
	var (
		wg   sync.WaitGroup
		errs = make(chan error, racers)
	)
	for i := range racers {
		wg.Go(func() { errs <- s.CreateAccount(ctx(t), account("juliet@example.com", byte(i))) })
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, roster.ErrAccountExists):
			t.Errorf("CreateAccount = %v, want nil or ErrAccountExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", won)
	}
	// The winner's account is whole: its keys are its own.
	got := mustGet(t, s, "juliet@example.com")
	seed := byte(got.Created.UnixMilli() - 1_700_000_000_000)
	if d := diff(got, account("juliet@example.com", seed)); d != "" {
		t.Errorf("winning account is mixed up: %s", d)
	}
}

func testCanceledContext(t *testing.T, s roster.Store) {
	mustCreate(t, s, account("juliet@example.com", 1))
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Account(c, "juliet@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Account with canceled context = %v, want context.Canceled", err)
	}
	if err := s.CreateAccount(c, account("romeo@example.com", 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateAccount with canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Account(ctx(t), "romeo@example.com"); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("account created despite canceled context: %v", err)
	}
}

func testCreatedToTheMillisecond(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	a.Created = time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.FixedZone("UTC+1", 3600))
	mustCreate(t, s, a)
	want := a
	want.Created = time.UnixMilli(a.Created.UnixMilli())
	if d := diff(mustGet(t, s, a.JID), want); d != "" {
		t.Error(d)
	}
}

func testConcurrentSetCredentials(t *testing.T, s roster.Store) {
	a := account("juliet@example.com", 1)
	mustCreate(t, s, a)
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := s.SetCredentials(ctx(t), a.JID, account(a.JID, byte(10*(i+1))).Credentials); err != nil {
				t.Errorf("SetCredentials #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	// The keys read back are all one writer's: none mixed, none doubled.
	got := mustGet(t, s, a.JID)
	if len(got.Scram) == 0 || len(got.Scram[0].Salt) == 0 {
		t.Fatalf("no SCRAM keys after the writes: %+v", got.Scram)
	}
	want := a
	want.Credentials = account(a.JID, got.Scram[0].Salt[0]).Credentials
	if d := diff(got, want); d != "" {
		t.Errorf("keys are not one writer's whole set: %s", d)
	}
}

// listAll pages through ListAccounts with pages of limit and returns every
// JID in the order given, checking each listed account against want.
func listAll(t *testing.T, s roster.Store, domain string, limit int, want map[string]roster.Account) []string {
	t.Helper()
	var (
		got   []string
		after string
	)
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatalf("ListAccounts never reached the end; listed %q", got)
		}
		as, err := s.ListAccounts(ctx(t), roster.AccountQuery{Domain: domain, After: after, Limit: limit})
		if err != nil {
			t.Fatalf("ListAccounts(%q, after %q): %v", domain, after, err)
		}
		if len(as) > limit {
			t.Fatalf("ListAccounts returned %d accounts, limit %d", len(as), limit)
		}
		for _, a := range as {
			w, ok := want[a.JID]
			switch {
			case !ok:
				t.Errorf("listed %q, which was not created", a.JID)
			case a.Disabled != w.Disabled || !a.Created.Equal(w.Created):
				t.Errorf("listed %s disabled=%v created=%v, want %v and %v", a.JID, a.Disabled, a.Created, w.Disabled, w.Created)
			}
			if a.Scram != nil || a.DigestMD5 != nil || a.DigestRealm != "" {
				t.Errorf("listed %s with keys: %+v", a.JID, a.Credentials)
			}
			got = append(got, a.JID)
		}
		if len(as) < limit {
			return got
		}
		after = as[len(as)-1].JID
	}
}

func testListAccountsPages(t *testing.T, s roster.Store) {
	// Created out of order; "é" (U+00E9) sorts after every ASCII letter in
	// byte order, where a locale would put it next to "e".
	jids := []string{"mercutio@example.com", "\u00e9mile@example.com", "benvolio@example.org",
		"zed@example.com", "juliet@example.com", "eve@example.com", "romeo@example.net"}
	want := map[string]roster.Account{}
	for i, j := range jids {
		a := account(j, byte(i))
		a.Disabled = i%3 == 0
		mustCreate(t, s, a)
		want[j] = a
	}
	sorted := slices.Clone(jids)
	slices.Sort(sorted) // Go compares strings byte by byte
	for _, limit := range []int{1, 2, 3, len(jids), len(jids) + 5} {
		if got := listAll(t, s, "", limit, want); !slices.Equal(got, sorted) {
			t.Errorf("pages of %d listed %q, want %q", limit, got, sorted)
		}
	}
	// A page starts strictly after its cursor, also when the cursor is no
	// account (deleted since).
	as, err := s.ListAccounts(ctx(t), roster.AccountQuery{After: "f", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].JID != "juliet@example.com" || as[1].JID != "mercutio@example.com" {
		t.Errorf("page after %q = %+v, want juliet then mercutio", "f", as)
	}
}

func testListAccountsDomain(t *testing.T, s roster.Store) {
	want := map[string]roster.Account{}
	for i, j := range []string{
		"b@example.com", "a@example.com", "c@sub.example.com", "d@xexample.com",
		"e@example.com.evil", "f@example.org", "example.com@other.net", "g@example.com",
	} {
		a := account(j, byte(i))
		mustCreate(t, s, a)
		want[j] = a
	}
	for domain, exp := range map[string][]string{
		"example.com":     {"a@example.com", "b@example.com", "g@example.com"},
		"sub.example.com": {"c@sub.example.com"},
		"example.org":     {"f@example.org"},
		"nowhere.test":    nil,
	} {
		for _, limit := range []int{1, 2, 10} {
			if got := listAll(t, s, domain, limit, want); !slices.Equal(got, exp) {
				t.Errorf("domain %s in pages of %d: listed %q, want %q", domain, limit, got, exp)
			}
		}
	}
}

func testListAccountsEmpty(t *testing.T, s roster.Store) {
	as, err := s.ListAccounts(ctx(t), roster.AccountQuery{Limit: 10})
	if err != nil || len(as) != 0 {
		t.Fatalf("ListAccounts = %+v, %v; want none", as, err)
	}
	mustCreate(t, s, account("juliet@example.com", 1))
	as, err = s.ListAccounts(ctx(t), roster.AccountQuery{After: "juliet@example.com", Limit: 10})
	if err != nil || len(as) != 0 {
		t.Fatalf("ListAccounts after the last = %+v, %v; want none", as, err)
	}
}
