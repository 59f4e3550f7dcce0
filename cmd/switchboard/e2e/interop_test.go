package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/cmd/switchboard/app"
	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// Third-party clients, from Debian packages (scripts/test.sh installs them).
const (
	pythonPath     = "/usr/bin/python3" // Debian's, which has python3-slixmpp
	goSendxmppPath = "go-sendxmpp"
	procTimeout    = 60 * time.Second // hard stop of a child process
)

// proc is a child process whose standard output is read line by line as it
// comes.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string // closed at the end of standard output

	mu     sync.Mutex
	output bytes.Buffer // everything it wrote, both streams, for failures

	done chan struct{} // closed when it exited; err is then set
	err  error
}

// startProc starts path with args; a missing program fails the test with
// the package to install. The process is killed (if still running) when
// the test ends, and its output is logged when the test failed.
func startProc(t *testing.T, pkg string, env []string, stdin string, path string, args ...string) *proc {
	t.Helper()
	bin, err := exec.LookPath(path)
	if err != nil {
		t.Fatalf("%s is not installed (%v): run `apt-get install -y %s` (scripts/test.sh does)", path, err, pkg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	p := &proc{name: path, cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{&p.mu, &p.output}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", path, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.output.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default: // nobody is reading that far; the output keeps it
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", path, strings.Join(redact(args), " "), p.out())
		}
	})
	return p
}

// redact hides the value after a password flag in logged command lines.
func redact(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-p" || out[i] == "--password" {
			out[i+1] = "***"
		}
	}
	return out
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// waitLine returns the first line of standard output, from where the last
// call stopped, that contains substr.
func (p *proc) waitLine(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.After(procTimeout / 2)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("%s ended (%v) without printing a line with %q", p.name, p.err, substr)
			}
			if strings.Contains(line, substr) {
				return line
			}
		case <-deadline:
			t.Fatalf("%s printed no line with %q within %v", p.name, substr, procTimeout/2)
		}
	}
}

// state describes whether the process still runs, or how it ended.
func (p *proc) state() string {
	select {
	case <-p.done:
		if p.err != nil {
			return "exited: " + p.err.Error()
		}
		return "exited 0"
	default:
		return "still running"
	}
}

// wait waits for the process to exit and fails the test unless it exited 0.
func (p *proc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procTimeout / 2):
		t.Fatalf("%s still running after %v", p.name, procTimeout/2)
	}
	if p.err != nil {
		t.Fatalf("%s failed: %v", p.name, p.err)
	}
}

// waitBound waits for the server's log line of a resource bound for local
// and returns the full JID; it fails at once if p exits first.
func (s *server) waitBound(t *testing.T, p *proc, local string) jid.JID {
	t.Helper()
	j, err := s.waitBoundErr(p, local)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (s *server) waitBoundErr(p *proc, local string) (jid.JID, error) {
	prefix := bare(local).String() + "/"
	r, err := s.logs.waitErr(procTimeout/2, p.done, func(r logRecord) bool {
		return r.Msg == "resource bound" && strings.HasPrefix(r.Attrs["jid"], prefix)
	})
	if err != nil {
		return jid.JID{}, fmt.Errorf("%s did not bind a resource of %s: %v (%s)", p.name, bare(local), err, p.state())
	}
	return jid.Parse(r.Attrs["jid"])
}

// checkMechanismLogged checks the server's log line for a successful login
// of local. When the line names the SASL mechanism, it must be want; c2s
// currently logs only the user, so the mechanism is then proved by the
// server offering nothing else (checked by the caller) and by what the
// client reports.
func (s *server) checkMechanismLogged(t *testing.T, local, want string) {
	t.Helper()
	r := s.logs.wait(t, ioTimeout, "authenticated "+local, msgIs("authenticated", "user", local))
	m, ok := r.Attrs["mechanism"]
	switch {
	case !ok:
		t.Logf("the server's %q line for %s does not name the SASL mechanism (expected %s): checked by what the server offered and the client reported instead", r.Msg, local, want)
	case m != want:
		t.Errorf("server logged mechanism %q for %s, want %s", m, local, want)
	}
}

// TestThirdPartyClientsChatOverSTARTTLS_RFC6120_5_and_6 logs real Debian
// clients in over STARTTLS, each trusting the server's self-signed
// certificate as its only CA with verification on, and has each send a
// message to a user of the project's Go client and receive one from it.
// The server offers SCRAM-SHA-256 alone, checked on the wire; slixmpp
// reports that it used it. go-sendxmpp 0.5.6 cannot do SCRAM at all: the
// test checks that it does not get in there (no downgrade to PLAIN), and
// runs its exchange on a server that also offers PLAIN over TLS.
func TestThirdPartyClientsChatOverSTARTTLS_RFC6120_5_and_6(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *app.Config) { c.Mechanisms = []string{sasl.ScramSHA256} })
	s.createAccounts(t, "gc", "sx", "gs")
	_, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}

	// The server offers SCRAM-SHA-256 and nothing else over TLS.
	r := s.rawDial(t)
	r.open()
	if got := mechanisms(r.startTLS()); !slices.Equal(got, []string{sasl.ScramSHA256}) {
		t.Fatalf("mechanisms offered: %v, want only SCRAM-SHA-256", got)
	}
	r.send("</stream:stream>")

	gc := s.dial(t, "gc", "desk")
	available(t, gc, 0)

	t.Run("slixmpp", func(t *testing.T) {
		toSx, fromSx := "hello slixmpp, this is Go", "hello Go, this is slixmpp"
		sx := startProc(t, "python3-slixmpp", nil, "", pythonPath, "testdata/slixmpp_chat.py",
			"--jid", bare("sx").String()+"/py", "--password", password("sx"),
			"--host", "127.0.0.1", "--port", port, "--cafile", s.caFile,
			"--expect-from", bare("gc").String(), "--expect-body", toSx,
			"--send-to", gc.JID().String(), "--send-body", fromSx,
			"--timeout", "30")
		ready := strings.Fields(sx.waitLine(t, "READY"))
		if len(ready) != 3 || ready[1] != full("sx", "py").String() || ready[2] != sasl.ScramSHA256 {
			t.Fatalf("slixmpp says %q, want READY %s %s", strings.Join(ready, " "), full("sx", "py"), sasl.ScramSHA256)
		}
		s.checkMechanismLogged(t, "sx", sasl.ScramSHA256)

		send(t, gc, client.Message{To: full("sx", "py"), Type: client.MessageChat, Body: toSx})
		if got, want := sx.waitLine(t, "RECEIVED"), "RECEIVED "+gc.JID().String()+" "+toSx; got != want {
			t.Fatalf("slixmpp printed %q, want %q", got, want)
		}
		m := nextMessage(t, gc)
		if m.From != full("sx", "py") || m.Body != fromSx || m.Type != client.MessageChat {
			t.Fatalf("Go client received %+v, want a chat message %q from %s", m, fromSx, full("sx", "py"))
		}
		sx.wait(t)
	})

	t.Run("go-sendxmpp", func(t *testing.T) {
		// Debian 12's go-sendxmpp 0.5.6 (mattn/go-xmpp of 2022) knows
		// PLAIN, DIGEST-MD5 and X-OAUTH2 only. If it cannot log in to
		// the SCRAM-SHA-256-only server without even trying (it refuses
		// on its side, the server sees no <auth/>), the exchange runs on
		// a second server that offers SCRAM-SHA-256 and PLAIN, over TLS.
		probe := startGoSendxmpp(t, s, "", "-l")
		srv, mech := s, sasl.ScramSHA256
		bound, err := s.waitBoundErr(probe, "gs")
		if err != nil {
			if _, tried := s.logs.first(func(r logRecord) bool {
				return r.Msg == "authenticated" && r.Attrs["user"] == "gs" || r.Msg == "authentication failed"
			}); tried {
				t.Fatalf("go-sendxmpp tried to authenticate and failed (%v); output:\n%s", err, probe.out())
			}
			t.Logf("go-sendxmpp does not log in where only SCRAM-SHA-256 is offered (%s; it said %q); going on with a server offering SCRAM-SHA-256 and PLAIN",
				probe.state(), strings.TrimSpace(probe.out()))
			srv, mech = startServer(t, func(c *app.Config) { c.Mechanisms = []string{sasl.ScramSHA256, sasl.Plain} }), sasl.Plain
			srv.createAccounts(t, "gc", "gs")
		}
		goSendxmppChat(t, srv, probe, bound, mech)
	})
}

// startGoSendxmpp runs go-sendxmpp as gs against srv over STARTTLS, with
// extra arguments and stdin. It has no CA option; Go's crypto/x509 takes
// its roots from SSL_CERT_FILE and SSL_CERT_DIR, so the server's
// certificate is made its only root. Verification stays on, for the name
// localhost, which the certificate holds.
func startGoSendxmpp(t *testing.T, srv *server, stdin string, args ...string) *proc {
	_, port, err := net.SplitHostPort(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + t.TempDir(), "SSL_CERT_FILE=" + srv.caFile, "SSL_CERT_DIR=" + t.TempDir()}
	login := []string{"-u", bare("gs").String(), "-p", password("gs"), "-j", "localhost:" + port}
	return startProc(t, "go-sendxmpp", env, stdin, goSendxmppPath, append(login, args...)...)
}

// goSendxmppChat has go-sendxmpp receive a message from a Go client user
// and send one to it, on srv, and checks the mechanism the server logged.
// listener is go-sendxmpp in listen mode on srv already, bound to bound,
// or nil to start one.
func goSendxmppChat(t *testing.T, srv *server, listener *proc, bound jid.JID, mech string) {
	if listener == nil || bound.IsZero() {
		listener = startGoSendxmpp(t, srv, "", "-l")
		bound = srv.waitBound(t, listener, "gs")
	}
	srv.checkMechanismLogged(t, "gs", mech)
	gc := srv.dial(t, "gc", "desk")
	available(t, gc, 0)

	// Receiving: listen mode prints the messages that arrive.
	toGs := "hello go-sendxmpp, this is Go"
	send(t, gc, client.Message{To: bound, Type: client.MessageChat, Body: toGs})
	if line := listener.waitLine(t, toGs); !strings.Contains(line, bare("gc").String()) {
		t.Fatalf("go-sendxmpp printed %q, want the message with its sender %s", line, bare("gc"))
	}

	// Sending: one message from standard input to the Go user's bare JID.
	fromGs := "hello Go, this is go-sendxmpp"
	startGoSendxmpp(t, srv, fromGs+"\n", bare("gc").String()).wait(t)
	m := nextMessage(t, gc)
	if m.From.Bare() != bare("gs") || m.From == bound || strings.TrimSpace(m.Body) != fromGs {
		t.Fatalf("Go client received %+v, want %q from a second resource of %s", m, fromGs, bare("gs"))
	}
}
