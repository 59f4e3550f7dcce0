package admin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MinTokenLength is the shortest token a token file may hold.
const MinTokenLength = 16

// reloadCheck is how often, at most, a file is checked for changes.
const reloadCheck = time.Second

// Tokens holds the bearer tokens that may call the admin API, read from a
// file: one token per line, optionally preceded by a name and whitespace
// ("ops-alice 3f9c..."), which the logs show instead of the token's line
// number. Blank lines and lines starting with '#' are skipped. The file
// is read again when its modification time or size changes (a mounted
// Kubernetes Secret changes that way), at most once a second. Tokens are
// compared in constant time and never logged.
type Tokens struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	mod     time.Time
	size    int64
	tokens  []token
}

type token struct {
	name string
	sum  [32]byte // SHA-256 of the token, so that comparisons take the same time whatever its length
}

// LoadTokens reads path. A file that cannot be read or holds no token is
// an error; later reloads that fail keep the tokens in use and log why.
func LoadTokens(path string, log *slog.Logger) (*Tokens, error) {
	if log == nil {
		log = slog.Default()
	}
	t := &Tokens{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	toks, err := readTokens(path)
	if err != nil {
		return nil, err
	}
	t.tokens, t.mod, t.size, t.checked = toks, fi.ModTime(), fi.Size(), time.Now()
	return t, nil
}

func readTokens(path string) ([]token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []token
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.FieldsFunc(line, unicode.IsSpace)
		var name, tok string
		switch len(fields) {
		case 1:
			name, tok = "token-"+strconv.Itoa(n), fields[0]
		case 2:
			name, tok = fields[0], fields[1]
		default:
			return nil, fmt.Errorf("%s line %d: want a token, or a name and a token", path, n)
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("%s line %d: token shorter than %d characters", path, n, MinTokenLength)
		}
		out = append(out, token{name: name, sum: sha256.Sum256([]byte(tok))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return out, nil
}

// current returns the tokens, reloading the file when it changed.
func (t *Tokens) current() []token {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checked) < reloadCheck {
		return t.tokens
	}
	t.checked = time.Now()
	fi, err := os.Stat(t.path)
	if err != nil {
		t.log.Warn("admin: token file unreadable; keeping the tokens in use", "path", t.path, "err", err)
		return t.tokens
	}
	if fi.ModTime().Equal(t.mod) && fi.Size() == t.size {
		return t.tokens
	}
	toks, err := readTokens(t.path)
	if err != nil {
		t.log.Warn("admin: token file changed but is not valid; keeping the tokens in use", "path", t.path, "err", err)
		return t.tokens
	}
	t.tokens, t.mod, t.size = toks, fi.ModTime(), fi.Size()
	t.log.Info("admin: token file reloaded", "path", t.path, "tokens", len(toks))
	return toks
}

// Check returns the name of the token presented, or false. Every token
// is compared, so the time taken does not tell which one nearly matched.
func (t *Tokens) Check(presented string) (string, bool) {
	sum := sha256.Sum256([]byte(presented))
	name, ok := "", false
	for _, tok := range t.current() {
		if subtle.ConstantTimeCompare(sum[:], tok.sum[:]) == 1 && !ok {
			name, ok = tok.name, true
		}
	}
	return name, ok
}

type callerKey struct{}

// Caller is the name of the token a call was made with.
func Caller(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}

// open reports whether method is served without a token: the standard
// health service only. Server reflection needs a token like the API.
func open(method string) bool {
	return strings.HasPrefix(method, "/"+healthpb.Health_ServiceDesc.ServiceName+"/")
}

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or wrong bearer token (metadata authorization: Bearer <token>)")

func (t *Tokens) authenticate(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			continue
		}
		if name, ok := t.Check(strings.TrimSpace(tok)); ok {
			return context.WithValue(ctx, callerKey{}, name), nil
		}
	}
	return ctx, errUnauthenticated
}

// UnaryInterceptor refuses calls without a valid token (health excepted)
// and logs every call that changes something.
func (t *Tokens) UnaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if open(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, err := t.authenticate(ctx)
		if err != nil {
			log.Info("admin: call refused", "method", info.FullMethod, "reason", "missing or wrong token")
			return nil, err
		}
		resp, err := handler(ctx, req)
		if mutating(info.FullMethod) {
			attrs := []any{"method", shortMethod(info.FullMethod), "caller", Caller(ctx), "code", status.Code(err).String()}
			attrs = append(attrs, target(req)...)
			if err != nil {
				attrs = append(attrs, "err", status.Convert(err).Message())
			}
			log.Info("admin: call", attrs...)
		}
		return resp, err
	}
}

// StreamInterceptor refuses streams without a valid token (health's
// Watch excepted); reflection is a stream.
func (t *Tokens) StreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if open(info.FullMethod) {
			return handler(srv, ss)
		}
		if _, err := t.authenticate(ss.Context()); err != nil {
			log.Info("admin: call refused", "method", info.FullMethod, "reason", "missing or wrong token")
			return err
		}
		return handler(srv, ss)
	}
}

func shortMethod(m string) string { return m[strings.LastIndexByte(m, '/')+1:] }

// mutating reports whether an AdminService method changes something.
func mutating(m string) bool {
	if !strings.HasPrefix(m, "/switchboard.admin.v1.AdminService/") {
		return false
	}
	switch shortMethod(m) {
	case "ListAccounts", "ListSessions", "CountSessions", "GetRoster", "ClusterStatus":
		return false
	}
	return true
}

// target describes what a call is about, for its log line: the JIDs,
// node or domain it names; never passwords or bodies.
func target(req any) []any {
	var out []any
	if r, ok := req.(interface{ GetJid() string }); ok && r.GetJid() != "" {
		out = append(out, "jid", r.GetJid())
	}
	if r, ok := req.(interface{ GetUser() string }); ok && r.GetUser() != "" {
		out = append(out, "user", r.GetUser())
	}
	if r, ok := req.(interface{ GetTo() string }); ok && r.GetTo() != "" {
		out = append(out, "to", r.GetTo())
	}
	if r, ok := req.(interface{ GetNode() string }); ok && r.GetNode() != "" {
		out = append(out, "node", r.GetNode())
	}
	if r, ok := req.(interface{ GetDomain() string }); ok && r.GetDomain() != "" {
		out = append(out, "domain", r.GetDomain())
	}
	if r, ok := req.(interface{ GetDisabled() bool }); ok {
		out = append(out, "disabled", r.GetDisabled())
	}
	return out
}
