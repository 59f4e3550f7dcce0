// Package roster is the roster service: it owns accounts, rosters,
// subscription states and pending requests (RFC 6121 sections 2 and 3) and
// offline messages (XEP-0160). It serves the AccountService admin API, the
// CredentialService that c2s uses for SASL and the RosterService the
// routers use for the IM rules, and offers the same operations as methods
// for in-process callers such as the `switchboard user` command.
//
// The subscription rules are one pure function, Apply, tested cell by cell
// against RFC 6121 Appendix A; the service runs it inside a store
// transaction per (user, contact) entry.
//
// Passwords only pass through: the service derives SCRAM-SHA-1 and
// SCRAM-SHA-256 keys (RFC 5802 section 3), plus the DIGEST-MD5 hash when
// that legacy option is on, and stores those.
package roster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
)

// scramHashes are the SCRAM hashes keys are derived for, in the order the
// stores return them.
var scramHashes = []string{"SHA-1", "SHA-256"}

// Service is the roster service. It is safe for concurrent use.
type Service struct {
	store      Store
	iterations int
	digestMD5  bool
	log        *slog.Logger
	now        func() time.Time
	quota      Quota
	limits     Limits
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		cfg.Store = measuredStore{cfg.Store, cfg.Metrics.Store}
	}
	return &Service{
		store:      cfg.Store,
		iterations: cfg.Iterations,
		digestMD5:  cfg.DigestMD5,
		log:        cfg.Logger,
		now:        time.Now,
		quota:      Quota{Messages: cfg.OfflineMessages, Bytes: cfg.OfflineBytes},
		limits:     cfg.Limits,
	}, nil
}

// Register registers AccountService, CredentialService and RosterService
// on srv. The last two belong on the cluster's internal network only.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	rosterv1.RegisterAccountServiceServer(srv, accountHandler{s: s})
	rosterv1.RegisterCredentialServiceServer(srv, credentialHandler{s: s})
	rosterv1.RegisterRosterServiceServer(srv, rosterHandler{s: s})
}

// CreateAccount creates the account addr (a bare JID, normalised before it
// is stored) with keys derived from password. It returns ErrInvalidJID,
// ErrInvalidPassword, ErrAccountExists or a store error.
func (s *Service) CreateAccount(ctx context.Context, addr, password string) error {
	j, err := parseAccountJID(addr)
	if err != nil {
		return err
	}
	creds, err := s.deriveCredentials(j, password)
	if err != nil {
		return err
	}
	a := Account{JID: j.String(), Credentials: creds, Created: s.now()}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "account created", "jid", a.JID, "digest_md5", creds.DigestMD5 != nil)
	return nil
}

// ChangePassword replaces all keys of addr with ones derived from password.
// With DIGEST-MD5 off, this also drops a DIGEST-MD5 hash stored earlier.
func (s *Service) ChangePassword(ctx context.Context, addr, password string) error {
	j, err := parseAccountJID(addr)
	if err != nil {
		return err
	}
	creds, err := s.deriveCredentials(j, password)
	if err != nil {
		return err
	}
	if err := s.store.SetCredentials(ctx, j.String(), creds); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed", "jid", j.String(), "digest_md5", creds.DigestMD5 != nil)
	return nil
}

// DeleteAccount removes addr and its keys.
func (s *Service) DeleteAccount(ctx context.Context, addr string) error {
	j, err := parseAccountJID(addr)
	if err != nil {
		return err
	}
	if err := s.store.DeleteAccount(ctx, j.String()); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "account deleted", "jid", j.String())
	return nil
}

// SetDisabled disables or re-enables addr; a disabled account keeps its
// keys but cannot log in.
func (s *Service) SetDisabled(ctx context.Context, addr string, disabled bool) error {
	j, err := parseAccountJID(addr)
	if err != nil {
		return err
	}
	if err := s.store.SetDisabled(ctx, j.String(), disabled); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "account disabled flag set", "jid", j.String(), "disabled", disabled)
	return nil
}

// Page sizes of ListAccounts.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// AccountPage is one page of ListAccounts.
type AccountPage struct {
	Accounts  []Account // JID, Disabled and Created only
	NextToken string    // "" on the last page
}

// ListAccounts returns a page of accounts in JID order (byte order of the
// normalised JIDs). domain, when not empty, keeps only that domain's
// accounts; pageSize 0 means DefaultPageSize, and more than MaxPageSize or
// less than 0 is ErrInvalidPage; token is "" for the first page or the
// NextToken of the page before. The token is the last JID listed, so a
// listing goes on correctly past accounts created or deleted between
// pages: it never repeats one, and lists every account that existed the
// whole time.
func (s *Service) ListAccounts(ctx context.Context, domain string, pageSize int, token string) (AccountPage, error) {
	switch {
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize < 0 || pageSize > MaxPageSize:
		return AccountPage{}, fmt.Errorf("%w: page_size %d, want 0 to %d", ErrInvalidPage, pageSize, MaxPageSize)
	}
	if domain != "" {
		d, err := jid.Parse(domain)
		if err != nil || d.Localpart() != "" || !d.IsBare() {
			return AccountPage{}, fmt.Errorf("%w: domain %q is not a domainpart", ErrInvalidJID, domain)
		}
		domain = d.Domainpart()
	}
	after, err := decodePageToken(token)
	if err != nil {
		return AccountPage{}, err
	}
	// One more than asked tells whether another page follows.
	as, err := s.store.ListAccounts(ctx, AccountQuery{Domain: domain, After: after, Limit: pageSize + 1})
	if err != nil {
		return AccountPage{}, err
	}
	page := AccountPage{Accounts: as}
	if len(as) > pageSize {
		page.Accounts = as[:pageSize]
		page.NextToken = encodePageToken(as[pageSize-1].JID)
	}
	return page, nil
}

// pageTokenPrefix marks tokens of this format, so that a later format can
// tell old tokens apart.
const pageTokenPrefix = "a1:"

func encodePageToken(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + last))
}

func decodePageToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	after, ok := strings.CutPrefix(string(b), pageTokenPrefix)
	if err != nil || !ok || after == "" || !utf8.ValidString(after) {
		return "", fmt.Errorf("%w: page_token is not one this service returned", ErrInvalidPage)
	}
	return after, nil
}

// AccountExists reports whether addr has an account.
func (s *Service) AccountExists(ctx context.Context, addr string) (bool, error) {
	_, err := s.Account(ctx, addr)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrAccountNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Account returns the stored account of addr, keys included.
func (s *Service) Account(ctx context.Context, addr string) (Account, error) {
	j, err := parseAccountJID(addr)
	if err != nil {
		return Account{}, err
	}
	return s.store.Account(ctx, j.String())
}

// parseAccountJID accepts only localpart@domainpart and returns it
// normalised.
func parseAccountJID(addr string) (jid.JID, error) {
	j, err := jid.Parse(addr)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrInvalidJID, err)
	}
	if !j.IsBare() {
		return jid.JID{}, fmt.Errorf("%w: %q has a resourcepart", ErrInvalidJID, addr)
	}
	if j.Localpart() == "" {
		return jid.JID{}, fmt.Errorf("%w: %q has no localpart", ErrInvalidJID, addr)
	}
	return j, nil
}

// deriveCredentials computes every key the configuration asks for.
func (s *Service) deriveCredentials(j jid.JID, password string) (Credentials, error) {
	if password == "" {
		return Credentials{}, fmt.Errorf("%w: empty", ErrInvalidPassword)
	}
	var c Credentials
	for _, h := range scramHashes {
		k, err := sasl.NewScramKeys(h, password, s.iterations)
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: %w", ErrInvalidPassword, err)
		}
		c.Scram = append(c.Scram, k)
	}
	if s.digestMD5 {
		// RFC 2831: the realm is the served domain, the username the
		// (prepared) localpart.
		c.DigestMD5 = sasl.DigestMD5Hash(j.Localpart(), j.Domainpart(), password)
		c.DigestRealm = j.Domainpart()
	}
	return c, nil
}
