package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
)

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// poll calls f every 20ms until it returns nil or within passes.
func poll(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, within)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func TestBinaryBecomesReadyAcceptsOnItsListenerAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "s2s")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ns, err := natsembed.Start(natsembed.Options{Listen: "127.0.0.1:0", JetStreamDir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()

	health, listen := freeAddr(t), freeAddr(t)
	const secret = "0123456789abcdef-never-logged"
	var stderr syncBuffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"SWITCHBOARD_NATS_URL="+ns.ClientURL(),
		"SWITCHBOARD_SUBJECT_PREFIX=s2sbin",
		"SWITCHBOARD_DOMAIN=a.test,b.test",
		"SWITCHBOARD_S2S_LISTEN="+listen,
		"SWITCHBOARD_HEALTH_LISTEN="+health,
		"SWITCHBOARD_DATA_DIR="+filepath.Join(dir, "data"),
		"SWITCHBOARD_DIALBACK_SECRET="+secret,
		"SWITCHBOARD_NODE_ID=s2s-bin-1",
		"SWITCHBOARD_HOST_MAP=c.test=127.0.0.1:1",
	)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	poll(t, 30*time.Second, "/readyz", func() error {
		select {
		case err := <-exited:
			t.Fatalf("exited before ready: %v\n%s", err, stderr.String())
		default:
		}
		r, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	})
	c, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		t.Fatalf("s2s listener: %v", err)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20s after SIGTERM\n%s", stderr.String())
	}
	logs := stderr.String()
	if strings.Contains(logs, secret) {
		t.Error("the dialback secret appears in the log")
	}
	for _, want := range []string{`"msg":"ready"`, `"msg":"s2s stopped"`, `"dialback_secret_from":"dialback-secret"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestMissingSecretIsGeneratedOnceIntoTheDataDir(t *testing.T) {
	dir := t.TempDir()
	s := &settings{dataDir: dir}
	first, where, err := loadSecret(s)
	if err != nil || where != "data-dir" || len(first) < 32 {
		t.Fatalf("loadSecret = %q, %q, %v", first, where, err)
	}
	again, _, err := loadSecret(s)
	if err != nil || again != first {
		t.Fatalf("second start read %q, %v; want the generated secret", again, err)
	}
	fi, err := os.Stat(filepath.Join(dir, secretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file %v, %v; want mode 0600", fi, err)
	}
}

func TestBadVerifySettingExitsWithUsageStatusNamingTheVariable(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "SWITCHBOARD_VERIFY" {
			return "maybe", true
		}
		return "", false
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, env, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `SWITCHBOARD_VERIFY "maybe"`) {
		t.Errorf("stderr %q does not name the variable", stderr.String())
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, func(string) (string, bool) { return "", false }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"SWITCHBOARD_DIALBACK_SECRET", "SWITCHBOARD_DIALBACK_SECRET_FILE", "SWITCHBOARD_HOST_MAP",
		"SWITCHBOARD_CA_FILE", "SWITCHBOARD_ALLOW", "SWITCHBOARD_DENY", "SWITCHBOARD_VERIFY", "SWITCHBOARD_LEASE_TTL", "SWITCHBOARD_S2S_LISTEN"} {
		if !strings.Contains(stdout.String(), v) {
			t.Errorf("--help lacks %s", v)
		}
	}
}
