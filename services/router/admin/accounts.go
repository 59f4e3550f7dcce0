package admin

import (
	"context"

	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
)

func (s *Server) CreateAccount(ctx context.Context, in *adminv1.CreateAccountRequest) (*adminv1.CreateAccountResponse, error) {
	j, err := s.account("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if in.GetPassword() == "" {
		return nil, invalid("password", "empty")
	}
	if _, err := s.cfg.Accounts.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: j.String(), Password: in.GetPassword()}); err != nil {
		return nil, backend("roster service", err)
	}
	return &adminv1.CreateAccountResponse{}, nil
}

// DeleteAccount deletes the account, then closes its sessions: once it is
// gone no new login can succeed, so none slips in after the kick.
func (s *Server) DeleteAccount(ctx context.Context, in *adminv1.DeleteAccountRequest) (*adminv1.DeleteAccountResponse, error) {
	j, err := s.account("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.Accounts.DeleteAccount(ctx, &rosterv1.DeleteAccountRequest{Jid: j.String()}); err != nil {
		return nil, backend("roster service", err)
	}
	n, err := s.kickAccount(ctx, j.String(), "account deleted")
	return &adminv1.DeleteAccountResponse{SessionsClosed: n}, err
}

func (s *Server) ListAccounts(ctx context.Context, in *adminv1.ListAccountsRequest) (*adminv1.ListAccountsResponse, error) {
	domain := in.GetDomain()
	if domain != "" {
		j, err := parseJID("domain", domain)
		if err != nil {
			return nil, err
		}
		if j.Localpart() != "" || !j.IsBare() {
			return nil, invalid("domain", "%q is not a domain", domain)
		}
		domain = j.Domainpart()
	}
	if in.GetPageSize() < 0 || in.GetPageSize() > 1000 {
		return nil, invalid("page_size", "%d is not between 0 and 1000", in.GetPageSize())
	}
	resp, err := s.cfg.Accounts.ListAccounts(ctx, &rosterv1.ListAccountsRequest{
		Domain: domain, PageSize: in.GetPageSize(), PageToken: in.GetPageToken(),
	})
	if err != nil {
		return nil, backend("roster service", err)
	}
	out := &adminv1.ListAccountsResponse{NextPageToken: resp.GetNextPageToken()}
	for _, a := range resp.GetAccounts() {
		out.Accounts = append(out.Accounts, &adminv1.Account{Jid: a.GetJid(), Disabled: a.GetDisabled(), CreatedUnixMs: a.GetCreatedUnixMs()})
	}
	return out, nil
}

func (s *Server) ChangePassword(ctx context.Context, in *adminv1.ChangePasswordRequest) (*adminv1.ChangePasswordResponse, error) {
	j, err := s.account("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if in.GetPassword() == "" {
		return nil, invalid("password", "empty")
	}
	if _, err := s.cfg.Accounts.ChangePassword(ctx, &rosterv1.ChangePasswordRequest{Jid: j.String(), Password: in.GetPassword()}); err != nil {
		return nil, backend("roster service", err)
	}
	return &adminv1.ChangePasswordResponse{}, nil
}

// SetAccountDisabled sets the flag, then (when disabling) closes the
// account's sessions, as for DeleteAccount.
func (s *Server) SetAccountDisabled(ctx context.Context, in *adminv1.SetAccountDisabledRequest) (*adminv1.SetAccountDisabledResponse, error) {
	j, err := s.account("jid", in.GetJid())
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.Accounts.SetAccountDisabled(ctx, &rosterv1.SetAccountDisabledRequest{Jid: j.String(), Disabled: in.GetDisabled()}); err != nil {
		return nil, backend("roster service", err)
	}
	if !in.GetDisabled() {
		return &adminv1.SetAccountDisabledResponse{}, nil
	}
	reason := in.GetReason()
	if reason == "" {
		reason = "account disabled"
	}
	n, err := s.kickAccount(ctx, j.String(), reason)
	return &adminv1.SetAccountDisabledResponse{SessionsClosed: n}, err
}

// kickAccount closes every session of the bare JID bare.
func (s *Server) kickAccount(ctx context.Context, bare, reason string) (int32, error) {
	resp, err := s.cfg.Sessions.Lookup(ctx, &presencev1.LookupRequest{Jid: bare})
	if err != nil {
		return 0, backend("presence service", err)
	}
	if len(resp.GetSessions()) == 0 {
		return 0, nil
	}
	return s.kickSessions(ctx, bare, resp.GetSessions(), reason)
}
