package admin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

const (
	tokA = "aaaaaaaaaaaaaaaaaaaaaaaa"
	tokB = "bbbbbbbbbbbbbbbbbbbbbbbb"
)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTokenFileNamesCommentsAndChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# ops tokens\n\n"+tokA+"\nops-bob  "+tokB+"\n")
	toks, err := LoadTokens(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := toks.Check(tokA); !ok || name != "token-3" {
		t.Errorf("token A: %q %v, want token-3 (its line)", name, ok)
	}
	if name, ok := toks.Check(tokB); !ok || name != "ops-bob" {
		t.Errorf("token B: %q %v, want ops-bob", name, ok)
	}
	for _, bad := range []string{"", tokA[:10], tokA + "a", "ops-bob", strings.ToUpper(tokA)} {
		if _, ok := toks.Check(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTokenFileRefusedWhenEmptyOrWeak(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"empty":      "# nothing\n\n",
		"short":      "short-token\n",
		"three":      "a b " + tokA + "\n",
		"short pair": "ops short\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		writeFile(t, path, body)
		if _, err := LoadTokens(path, nil); err == nil {
			t.Errorf("%s file accepted", name)
		} else if strings.Contains(err.Error(), tokA) {
			t.Errorf("error %q shows a token", err)
		}
	}
	if _, err := LoadTokens(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("missing file accepted")
	}
}

// A changed file is read again (a rotated Secret); a broken change keeps
// the tokens in use.
func TestTokenFileReloadedWhenItChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, tokA+"\n")
	toks, err := LoadTokens(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, tokB+"\n")
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(path, later, later)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, okA := toks.Check(tokA)
		_, okB := toks.Check(tokB)
		if !okA && okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the change: A %v, B %v; want only B", okA, okB)
		}
		time.Sleep(50 * time.Millisecond)
	}
	writeFile(t, path, "short\n")
	later = later.Add(2 * time.Second)
	os.Chtimes(path, later, later)
	time.Sleep(reloadCheck + 100*time.Millisecond)
	if _, ok := toks.Check(tokB); !ok {
		t.Error("a broken token file replaced the tokens in use")
	}
}

func TestInterceptorRefusesAllButHealth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "alice "+tokA+"\n")
	toks, err := LoadTokens(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	icpt := toks.UnaryInterceptor(discard())
	var caller string
	handler := func(ctx context.Context, _ any) (any, error) { caller = Caller(ctx); return "ok", nil }
	call := func(method string, md ...string) error {
		ctx := context.Background()
		if len(md) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(md...))
		}
		_, err := icpt(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		return err
	}
	const m = "/switchboard.admin.v1.AdminService/DeleteAccount"
	for _, md := range [][]string{nil, {"authorization", "Bearer " + tokB}, {"authorization", tokA}, {"authorization", "Basic " + tokA}} {
		if err := call(m, md...); status.Code(err) != codes.Unauthenticated {
			t.Errorf("metadata %q: %v, want Unauthenticated", md, err)
		}
	}
	if err := call(m, "authorization", "bearer "+tokA); err != nil || caller != "alice" {
		t.Errorf("good token: %v, caller %q", err, caller)
	}
	if err := call("/grpc.health.v1.Health/Check"); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	if err := call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without a token: %v", err)
	}
}

func TestEnsureTokenFileMakesOnePrivateTokenOnce(t *testing.T) {
	dir := t.TempDir()
	file, created, err := EnsureTokenFile("", dir)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if _, err := LoadTokens(file, nil); err != nil {
		t.Fatalf("the made file does not load: %v", err)
	}
	before, _ := os.ReadFile(file)
	if _, created, _ := EnsureTokenFile("", dir); created {
		t.Error("made again")
	}
	after, _ := os.ReadFile(file)
	if string(before) != string(after) {
		t.Error("token changed on the second start")
	}
	if f, created, _ := EnsureTokenFile("/etc/tokens", dir); f != "/etc/tokens" || created {
		t.Errorf("configured file: %q %v", f, created)
	}
}

func TestErrorCondition(t *testing.T) {
	raw := `<iq xmlns='jabber:client' type='error' id='x'><query xmlns='jabber:iq:roster'/>` +
		`<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
		`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no &lt;such&gt; item</text></error></iq>`
	cond, text := errorCondition([]byte(raw))
	if cond != stanza.ItemNotFound || text != "no <such> item" {
		t.Errorf("got %q %q", cond, text)
	}
	if c := status.Code(stanzaStatus(cond, text)); c != codes.NotFound {
		t.Errorf("item-not-found -> %v", c)
	}
	if cond, _ := errorCondition([]byte("<iq type='result'/>")); cond != "" {
		t.Errorf("result has condition %q", cond)
	}
}

func TestCheckRedirect(t *testing.T) {
	for _, ok := range []string{"c2s.example.net", "c2s.example.net:5222", "[2001:db8::1]:5222", "10.0.0.1"} {
		if err := checkRedirect(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "host:0", "host:99999", "host:x", "a b", "<x>", "h/p"} {
		if err := checkRedirect(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzErrorCondition(f *testing.F) {
	f.Add([]byte(`<iq type='error'><error><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`))
	f.Add([]byte(`<message><error><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cond, _ := errorCondition(raw)
		if strings.ContainsAny(string(cond), "<> ") {
			t.Fatalf("condition %q is not an element name", cond)
		}
	})
}

func FuzzTokenFile(f *testing.F) {
	f.Add("# c\n" + tokA + "\nname " + tokB + "\n")
	f.Add("a b c\n")
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(t.TempDir(), "tokens")
		writeFile(t, path, body)
		toks, err := LoadTokens(path, nil)
		if err != nil {
			return
		}
		// Whatever loaded, a token made of the file's whole text with
		// a prefix nobody wrote is not accepted.
		if _, ok := toks.Check("\x00" + body); ok {
			t.Fatal("an unlisted token was accepted")
		}
	})
}
