package roster_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore"
)

type fixture struct {
	svc     *roster.Service
	store   *sqlitestore.Store
	dbPath  string
	account rosterv1.AccountServiceClient
	creds   rosterv1.CredentialServiceClient
	roster  rosterv1.RosterServiceClient
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(testContext(t), path)
	if err != nil {
		t.Fatalf("sqlitestore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// start runs a roster service on a real gRPC server reached in process.
// A nil cfg.Store gets a fresh SQLite store.
func start(t *testing.T, cfg roster.Config) *fixture {
	t.Helper()
	f := &fixture{}
	if cfg.Store == nil {
		f.dbPath = filepath.Join(t.TempDir(), "switchboard.db")
		f.store = openStore(t, f.dbPath)
		cfg.Store = f.store
	}
	svc, err := roster.New(cfg)
	if err != nil {
		t.Fatalf("roster.New: %v", err)
	}
	f.svc = svc
	srv := grpc.NewServer()
	svc.Register(srv)
	l := grpcx.Listen()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpcx.Dial(l)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	f.account = rosterv1.NewAccountServiceClient(cc)
	f.creds = rosterv1.NewCredentialServiceClient(cc)
	f.roster = rosterv1.NewRosterServiceClient(cc)
	return f
}

func (f *fixture) create(t *testing.T, jid, password string) {
	t.Helper()
	if _, err := f.account.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: jid, Password: password}); err != nil {
		t.Fatalf("CreateAccount(%s): %v", jid, err)
	}
}

func (f *fixture) get(t *testing.T, jid string) *rosterv1.GetCredentialsResponse {
	t.Helper()
	resp, err := f.creds.GetCredentials(testContext(t), &rosterv1.GetCredentialsRequest{Jid: jid})
	if err != nil {
		t.Fatalf("GetCredentials(%s): %v", jid, err)
	}
	return resp
}

func (f *fixture) exists(t *testing.T, jid string) bool {
	t.Helper()
	resp, err := f.account.AccountExists(testContext(t), &rosterv1.AccountExistsRequest{Jid: jid})
	if err != nil {
		t.Fatalf("AccountExists(%s): %v", jid, err)
	}
	return resp.Exists
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v, want code %v", what, err, want)
	}
}

// scramMatches recomputes the RFC 5802 section 3 keys from password and
// reports whether c holds them.
func scramMatches(t *testing.T, c *rosterv1.ScramCredential, password string) bool {
	t.Helper()
	var h func() hash.Hash
	switch c.Hash {
	case "SHA-1":
		h = sha1.New
	case "SHA-256":
		h = sha256.New
	default:
		t.Fatalf("unexpected SCRAM hash %q", c.Hash)
	}
	salted, err := pbkdf2.Key(h, password, c.Salt, int(c.Iterations), h().Size())
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	d := h()
	d.Write(mac(salted, "Client Key"))
	return bytes.Equal(d.Sum(nil), c.StoredKey) && bytes.Equal(mac(salted, "Server Key"), c.ServerKey)
}

func TestCreatedAccountHasScramKeysOfBothHashesDerivedFromThePassword_RFC5802_3(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "r0m30-myR0m30")
	resp := f.get(t, "juliet@example.com")
	if len(resp.Scram) != 2 || resp.Scram[0].Hash != "SHA-1" || resp.Scram[1].Hash != "SHA-256" {
		t.Fatalf("SCRAM credentials %v, want SHA-1 and SHA-256", resp.Scram)
	}
	for _, c := range resp.Scram {
		if c.Iterations != roster.DefaultIterations {
			t.Errorf("%s iterations %d, want %d", c.Hash, c.Iterations, roster.DefaultIterations)
		}
		if len(c.Salt) < 16 {
			t.Errorf("%s salt of %d bytes, want at least 16", c.Hash, len(c.Salt))
		}
		if !scramMatches(t, c, "r0m30-myR0m30") {
			t.Errorf("%s keys do not match the password", c.Hash)
		}
	}
	if resp.Scram[0].Salt != nil && bytes.Equal(resp.Scram[0].Salt, resp.Scram[1].Salt) {
		t.Error("both hashes share one salt; each key set gets its own")
	}
	if resp.DigestMd5 != nil || resp.DigestMd5Realm != "" || resp.Disabled {
		t.Errorf("digest %x, realm %q, disabled %v; want none, none, false", resp.DigestMd5, resp.DigestMd5Realm, resp.Disabled)
	}
}

func TestAccountJIDIsNormalisedBeforeItIsStored_RFC7622(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "Juliet@Example.COM", "secret-1")
	for _, addr := range []string{"juliet@example.com", "JULIET@example.com", "juliet@EXAMPLE.com"} {
		if !f.exists(t, addr) {
			t.Errorf("AccountExists(%s) = false, want true", addr)
		}
	}
	_, err := f.account.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: "juliet@example.com", Password: "other"})
	wantCode(t, "CreateAccount of the same account in another case", err, codes.AlreadyExists)
	a, err := f.svc.Account(testContext(t), "juliet@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a.JID != "juliet@example.com" {
		t.Errorf("stored JID %q, want juliet@example.com", a.JID)
	}
}

func TestAddressesThatAreNotBareAccountJIDsAreInvalidArgument(t *testing.T) {
	f := start(t, roster.Config{})
	for _, addr := range []string{
		"",
		"example.com",                // no localpart: a domain, not an account
		"juliet@example.com/balcony", // full JID
		"@example.com",
		"juliet@",
		"juliet@example.com/",
	} {
		ctx := testContext(t)
		_, err := f.account.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: addr, Password: "secret"})
		wantCode(t, "CreateAccount("+addr+")", err, codes.InvalidArgument)
		_, err = f.account.ChangePassword(ctx, &rosterv1.ChangePasswordRequest{Jid: addr, Password: "secret"})
		wantCode(t, "ChangePassword("+addr+")", err, codes.InvalidArgument)
		_, err = f.account.DeleteAccount(ctx, &rosterv1.DeleteAccountRequest{Jid: addr})
		wantCode(t, "DeleteAccount("+addr+")", err, codes.InvalidArgument)
		_, err = f.account.AccountExists(ctx, &rosterv1.AccountExistsRequest{Jid: addr})
		wantCode(t, "AccountExists("+addr+")", err, codes.InvalidArgument)
		_, err = f.creds.GetCredentials(ctx, &rosterv1.GetCredentialsRequest{Jid: addr})
		wantCode(t, "GetCredentials("+addr+")", err, codes.InvalidArgument)
	}
}

func TestEmptyOrUnpreparablePasswordIsInvalidArgument_RFC8265(t *testing.T) {
	f := start(t, roster.Config{})
	// A control character is not allowed by the OpaqueString profile that
	// SCRAM prepares passwords with.
	for _, pw := range []string{"", "bell\x07"} {
		_, err := f.account.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: "juliet@example.com", Password: pw})
		wantCode(t, fmt.Sprintf("CreateAccount with password %q", pw), err, codes.InvalidArgument)
	}
	if f.exists(t, "juliet@example.com") {
		t.Error("account created without a usable password")
	}
	f.create(t, "juliet@example.com", "secret")
	_, err := f.account.ChangePassword(testContext(t), &rosterv1.ChangePasswordRequest{Jid: "juliet@example.com"})
	wantCode(t, "ChangePassword to empty", err, codes.InvalidArgument)
	for _, c := range f.get(t, "juliet@example.com").Scram {
		if !scramMatches(t, c, "secret") {
			t.Errorf("%s keys changed by a refused password change", c.Hash)
		}
	}
}

func TestCreatingAnExistingAccountIsAlreadyExistsAndKeepsItsPassword(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "first")
	_, err := f.account.CreateAccount(testContext(t), &rosterv1.CreateAccountRequest{Jid: "juliet@example.com", Password: "second"})
	wantCode(t, "second CreateAccount", err, codes.AlreadyExists)
	for _, c := range f.get(t, "juliet@example.com").Scram {
		if !scramMatches(t, c, "first") {
			t.Errorf("%s keys no longer match the first password", c.Hash)
		}
	}
}

func TestOperationsOnAMissingAccountAreNotFound(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "secret")
	ctx := testContext(t)
	_, err := f.account.ChangePassword(ctx, &rosterv1.ChangePasswordRequest{Jid: "romeo@example.com", Password: "x"})
	wantCode(t, "ChangePassword", err, codes.NotFound)
	_, err = f.account.DeleteAccount(ctx, &rosterv1.DeleteAccountRequest{Jid: "romeo@example.com"})
	wantCode(t, "DeleteAccount", err, codes.NotFound)
	_, err = f.creds.GetCredentials(ctx, &rosterv1.GetCredentialsRequest{Jid: "romeo@example.com"})
	wantCode(t, "GetCredentials", err, codes.NotFound)
	if f.exists(t, "romeo@example.com") {
		t.Error("AccountExists(romeo) = true, want false")
	}
}

func TestChangePasswordReplacesKeysWithFreshSalt(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "old-password")
	before := f.get(t, "juliet@example.com")
	if _, err := f.account.ChangePassword(testContext(t), &rosterv1.ChangePasswordRequest{Jid: "Juliet@example.com", Password: "new-password"}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	after := f.get(t, "juliet@example.com")
	if len(after.Scram) != 2 {
		t.Fatalf("%d SCRAM credentials after the change, want 2", len(after.Scram))
	}
	for i, c := range after.Scram {
		if !scramMatches(t, c, "new-password") || scramMatches(t, c, "old-password") {
			t.Errorf("%s keys do not match only the new password", c.Hash)
		}
		if bytes.Equal(c.Salt, before.Scram[i].Salt) {
			t.Errorf("%s salt reused across passwords", c.Hash)
		}
	}
}

func TestDigestMD5HashIsStoredOnlyWhileEnabled_RFC2831(t *testing.T) {
	on := start(t, roster.Config{DigestMD5: true})
	on.create(t, "Juliet@Example.com", "secret")
	resp := on.get(t, "juliet@example.com")
	want := md5.Sum([]byte("juliet:example.com:secret"))
	if !bytes.Equal(resp.DigestMd5, want[:]) || resp.DigestMd5Realm != "example.com" {
		t.Errorf("with DIGEST-MD5 on: hash %x realm %q, want %x and example.com", resp.DigestMd5, resp.DigestMd5Realm, want)
	}

	off := start(t, roster.Config{})
	off.create(t, "juliet@example.com", "secret")
	if resp := off.get(t, "juliet@example.com"); resp.DigestMd5 != nil || resp.DigestMd5Realm != "" {
		t.Errorf("with DIGEST-MD5 off: hash %x realm %q, want none", resp.DigestMd5, resp.DigestMd5Realm)
	}
}

func TestPasswordChangeWithDigestMD5OffDropsTheOldHash(t *testing.T) {
	// The same database before and after an operator turned the option off.
	before := start(t, roster.Config{DigestMD5: true})
	before.create(t, "juliet@example.com", "secret")
	if before.get(t, "juliet@example.com").DigestMd5 == nil {
		t.Fatal("no DIGEST-MD5 hash stored while enabled")
	}
	after := start(t, roster.Config{Store: before.store})
	if _, err := after.account.ChangePassword(testContext(t), &rosterv1.ChangePasswordRequest{Jid: "juliet@example.com", Password: "fresh"}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if resp := after.get(t, "juliet@example.com"); resp.DigestMd5 != nil || resp.DigestMd5Realm != "" {
		t.Errorf("after the change: hash %x realm %q, want none", resp.DigestMd5, resp.DigestMd5Realm)
	}
}

func TestDeletedAccountNoLongerExists(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "secret")
	f.create(t, "romeo@example.com", "secret")
	if _, err := f.account.DeleteAccount(testContext(t), &rosterv1.DeleteAccountRequest{Jid: "juliet@example.com"}); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if f.exists(t, "juliet@example.com") {
		t.Error("deleted account still exists")
	}
	if !f.exists(t, "romeo@example.com") {
		t.Error("another account went with it")
	}
}

func TestDisabledAccountIsReportedDisabledWithItsKeys(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "secret")
	if err := f.svc.SetDisabled(testContext(t), "juliet@example.com", true); err != nil {
		t.Fatalf("SetDisabled: %v", err)
	}
	resp := f.get(t, "juliet@example.com")
	if !resp.Disabled || len(resp.Scram) != 2 {
		t.Errorf("disabled %v with %d SCRAM credentials, want true with 2", resp.Disabled, len(resp.Scram))
	}
}

func TestStoreTroubleIsUnavailable(t *testing.T) {
	f := start(t, roster.Config{})
	f.store.Close()
	ctx := testContext(t)
	_, err := f.account.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: "juliet@example.com", Password: "secret"})
	wantCode(t, "CreateAccount", err, codes.Unavailable)
	_, err = f.account.AccountExists(ctx, &rosterv1.AccountExistsRequest{Jid: "juliet@example.com"})
	wantCode(t, "AccountExists", err, codes.Unavailable)
	_, err = f.creds.GetCredentials(ctx, &rosterv1.GetCredentialsRequest{Jid: "juliet@example.com"})
	wantCode(t, "GetCredentials", err, codes.Unavailable)
}

func TestIterationsDefaultToTheMinimumAndLowerCountsAreRefused(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "switchboard.db"))
	if _, err := roster.New(roster.Config{Store: st, Iterations: 4095}); err == nil {
		t.Error("New accepted 4095 iterations, want an error")
	}
	f := start(t, roster.Config{Iterations: 5000})
	f.create(t, "juliet@example.com", "secret")
	for _, c := range f.get(t, "juliet@example.com").Scram {
		if c.Iterations != 5000 || !scramMatches(t, c, "secret") {
			t.Errorf("%s: %d iterations, want 5000 and keys matching", c.Hash, c.Iterations)
		}
	}
}

func TestNewRequiresAStore(t *testing.T) {
	if _, err := roster.New(roster.Config{}); err == nil {
		t.Fatal("New without a store succeeded, want an error")
	}
}

func TestDirectCallsReportSentinelErrors(t *testing.T) {
	f := start(t, roster.Config{})
	ctx := testContext(t)
	if err := f.svc.CreateAccount(ctx, "juliet@example.com", "secret"); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := f.svc.CreateAccount(ctx, "juliet@example.com", "secret"); !errors.Is(err, roster.ErrAccountExists) {
		t.Errorf("second CreateAccount = %v, want ErrAccountExists", err)
	}
	if err := f.svc.CreateAccount(ctx, "juliet@example.com/balcony", "secret"); !errors.Is(err, roster.ErrInvalidJID) {
		t.Errorf("CreateAccount of a full JID = %v, want ErrInvalidJID", err)
	}
	if err := f.svc.CreateAccount(ctx, "romeo@example.com", ""); !errors.Is(err, roster.ErrInvalidPassword) {
		t.Errorf("CreateAccount without password = %v, want ErrInvalidPassword", err)
	}
	if err := f.svc.DeleteAccount(ctx, "romeo@example.com"); !errors.Is(err, roster.ErrAccountNotFound) {
		t.Errorf("DeleteAccount of a missing account = %v, want ErrAccountNotFound", err)
	}
}

func TestPasswordNeverReachesTheDatabaseFile(t *testing.T) {
	const first, second = "Plaintext-Canary-One", "Plaintext-Canary-Two"
	f := start(t, roster.Config{DigestMD5: true})
	f.create(t, "juliet@example.com", first)
	if _, err := f.account.ChangePassword(testContext(t), &rosterv1.ChangePasswordRequest{Jid: "juliet@example.com", Password: second}); err != nil {
		t.Fatal(err)
	}
	// The WAL holds recent writes until a checkpoint, so read it too.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(f.dbPath + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{first, second} {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("password %q found in %s", pw, filepath.Base(f.dbPath+suffix))
			}
		}
	}
}

// listPages pages through ListAccounts and returns the JIDs of every page.
func (f *fixture) listPages(t *testing.T, domain string, size int32) [][]string {
	t.Helper()
	var (
		pages [][]string
		token string
	)
	for range 100 {
		resp, err := f.account.ListAccounts(testContext(t), &rosterv1.ListAccountsRequest{Domain: domain, PageSize: size, PageToken: token})
		if err != nil {
			t.Fatalf("ListAccounts(%q, %d, %q): %v", domain, size, token, err)
		}
		var page []string
		for _, a := range resp.Accounts {
			page = append(page, a.Jid)
		}
		pages = append(pages, page)
		if token = resp.NextPageToken; token == "" {
			return pages
		}
	}
	t.Fatal("ListAccounts never returned an empty next_page_token")
	return nil
}

func TestListAccountsPagesInJIDOrderAndEndsWithAnEmptyToken(t *testing.T) {
	f := start(t, roster.Config{})
	for _, j := range []string{"romeo@example.com", "Juliet@Example.com", "tybalt@example.org", "benvolio@example.com",
		"nurse@example.com", "paris@example.org"} {
		f.create(t, j, "secret")
	}
	got := f.listPages(t, "", 4)
	want := [][]string{
		{"benvolio@example.com", "juliet@example.com", "nurse@example.com", "paris@example.org"},
		{"romeo@example.com", "tybalt@example.org"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages of 4: %q, want %q", got, want)
	}
	// A last page that is exactly full has no token after it: no empty
	// page to fetch.
	if got := f.listPages(t, "", 3); len(got) != 2 || len(got[1]) != 3 {
		t.Errorf("pages of 3: %q, want two full pages", got)
	}
	// The domain is normalised like a JID's.
	got = f.listPages(t, "EXAMPLE.org", 0)
	if fmt.Sprint(got) != fmt.Sprint([][]string{{"paris@example.org", "tybalt@example.org"}}) {
		t.Errorf("domain example.org: %q", got)
	}
}

func TestListAccountsReportsDisabledAndCreated(t *testing.T) {
	f := start(t, roster.Config{})
	before := time.Now().Add(-time.Second)
	f.create(t, "juliet@example.com", "secret")
	f.create(t, "romeo@example.com", "secret")
	if _, err := f.account.SetAccountDisabled(testContext(t), &rosterv1.SetAccountDisabledRequest{Jid: "romeo@example.com", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := f.account.ListAccounts(testContext(t), &rosterv1.ListAccountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Accounts) != 2 || resp.Accounts[0].Disabled || !resp.Accounts[1].Disabled {
		t.Fatalf("accounts %v, want juliet enabled and romeo disabled", resp.Accounts)
	}
	for _, a := range resp.Accounts {
		if c := time.UnixMilli(a.CreatedUnixMs); c.Before(before) || c.After(time.Now().Add(time.Second)) {
			t.Errorf("%s created %v, want about now", a.Jid, c)
		}
	}
}

func TestListAccountsDefaultsTo100AndAllowsUpTo1000(t *testing.T) {
	f := start(t, roster.Config{})
	// Straight into the store: deriving keys for each would only cost time.
	for i := range 1001 {
		a := roster.Account{JID: fmt.Sprintf("user%04d@example.com", i), Created: time.Now()}
		if err := f.store.CreateAccount(testContext(t), a); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		size     int32
		want     int
		nextPage bool
	}{{0, 100, true}, {1000, 1000, true}} {
		resp, err := f.account.ListAccounts(testContext(t), &rosterv1.ListAccountsRequest{PageSize: tc.size})
		if err != nil {
			t.Fatalf("page_size %d: %v", tc.size, err)
		}
		if len(resp.Accounts) != tc.want || (resp.NextPageToken != "") != tc.nextPage {
			t.Errorf("page_size %d: %d accounts, next %q; want %d and a token", tc.size, len(resp.Accounts), resp.NextPageToken, tc.want)
		}
	}
	if got := f.listPages(t, "", 1000); len(got) != 2 || len(got[1]) != 1 || got[1][0] != "user1000@example.com" {
		t.Errorf("second page of 1000: %d pages, last %q", len(got), got[len(got)-1])
	}
}

func TestListAccountsRefusesBadPageSizesTokensAndDomains(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "secret")
	for name, req := range map[string]*rosterv1.ListAccountsRequest{
		"page size over 1000":   {PageSize: 1001},
		"negative page size":    {PageSize: -1},
		"token not base64":      {PageToken: "not a token!"},
		"token of another kind": {PageToken: "anVsaWV0QGV4YW1wbGUuY29t"}, // plain base64 of a JID
		"domain with localpart": {Domain: "juliet@example.com"},
		"domain with resource":  {Domain: "example.com/desk"},
		"malformed domain":      {Domain: "exa mple.com"},
	} {
		_, err := f.account.ListAccounts(testContext(t), req)
		wantCode(t, name, err, codes.InvalidArgument)
	}
}

func TestSetAccountDisabledTogglesTheFlagAndNeedsAnAccount(t *testing.T) {
	f := start(t, roster.Config{})
	f.create(t, "juliet@example.com", "secret")
	for _, disabled := range []bool{true, false} {
		if _, err := f.account.SetAccountDisabled(testContext(t), &rosterv1.SetAccountDisabledRequest{Jid: "Juliet@example.com", Disabled: disabled}); err != nil {
			t.Fatalf("SetAccountDisabled(%v): %v", disabled, err)
		}
		if got := f.get(t, "juliet@example.com"); got.Disabled != disabled || len(got.Scram) != 2 {
			t.Errorf("after SetAccountDisabled(%v): disabled %v with %d SCRAM keys", disabled, got.Disabled, len(got.Scram))
		}
	}
	_, err := f.account.SetAccountDisabled(testContext(t), &rosterv1.SetAccountDisabledRequest{Jid: "romeo@example.com", Disabled: true})
	wantCode(t, "unknown account", err, codes.NotFound)
	_, err = f.account.SetAccountDisabled(testContext(t), &rosterv1.SetAccountDisabledRequest{Jid: "juliet@example.com/desk", Disabled: true})
	wantCode(t, "full JID", err, codes.InvalidArgument)
}

func TestListAccountsStoreTroubleIsUnavailable(t *testing.T) {
	f := start(t, roster.Config{})
	f.store.Close()
	_, err := f.account.ListAccounts(testContext(t), &rosterv1.ListAccountsRequest{})
	wantCode(t, "ListAccounts", err, codes.Unavailable)
	_, err = f.account.SetAccountDisabled(testContext(t), &rosterv1.SetAccountDisabledRequest{Jid: "juliet@example.com", Disabled: true})
	wantCode(t, "SetAccountDisabled", err, codes.Unavailable)
}
