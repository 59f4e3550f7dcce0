package roster

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
)

// accountHandler serves AccountService. Handlers only translate: messages to
// Service calls and errors to status codes.
type accountHandler struct {
	rosterv1.UnimplementedAccountServiceServer
	s *Service
}

func (h accountHandler) CreateAccount(ctx context.Context, req *rosterv1.CreateAccountRequest) (*rosterv1.CreateAccountResponse, error) {
	if err := h.s.CreateAccount(ctx, req.GetJid(), req.GetPassword()); err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.CreateAccountResponse{}, nil
}

func (h accountHandler) DeleteAccount(ctx context.Context, req *rosterv1.DeleteAccountRequest) (*rosterv1.DeleteAccountResponse, error) {
	if err := h.s.DeleteAccount(ctx, req.GetJid()); err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.DeleteAccountResponse{}, nil
}

func (h accountHandler) ChangePassword(ctx context.Context, req *rosterv1.ChangePasswordRequest) (*rosterv1.ChangePasswordResponse, error) {
	if err := h.s.ChangePassword(ctx, req.GetJid(), req.GetPassword()); err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.ChangePasswordResponse{}, nil
}

func (h accountHandler) AccountExists(ctx context.Context, req *rosterv1.AccountExistsRequest) (*rosterv1.AccountExistsResponse, error) {
	ok, err := h.s.AccountExists(ctx, req.GetJid())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.AccountExistsResponse{Exists: ok}, nil
}

func (h accountHandler) ListAccounts(ctx context.Context, req *rosterv1.ListAccountsRequest) (*rosterv1.ListAccountsResponse, error) {
	page, err := h.s.ListAccounts(ctx, req.GetDomain(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.ListAccountsResponse{NextPageToken: page.NextToken}
	for _, a := range page.Accounts {
		resp.Accounts = append(resp.Accounts, &rosterv1.Account{
			Jid:           a.JID,
			Disabled:      a.Disabled,
			CreatedUnixMs: a.Created.UnixMilli(),
		})
	}
	return resp, nil
}

func (h accountHandler) SetAccountDisabled(ctx context.Context, req *rosterv1.SetAccountDisabledRequest) (*rosterv1.SetAccountDisabledResponse, error) {
	if err := h.s.SetDisabled(ctx, req.GetJid(), req.GetDisabled()); err != nil {
		return nil, h.s.status(ctx, err)
	}
	return &rosterv1.SetAccountDisabledResponse{}, nil
}

// credentialHandler serves CredentialService.
type credentialHandler struct {
	rosterv1.UnimplementedCredentialServiceServer
	s *Service
}

func (h credentialHandler) GetCredentials(ctx context.Context, req *rosterv1.GetCredentialsRequest) (*rosterv1.GetCredentialsResponse, error) {
	a, err := h.s.Account(ctx, req.GetJid())
	if err != nil {
		return nil, h.s.status(ctx, err)
	}
	resp := &rosterv1.GetCredentialsResponse{
		DigestMd5:      a.DigestMD5,
		DigestMd5Realm: a.DigestRealm,
		Disabled:       a.Disabled,
	}
	for _, k := range a.Scram {
		resp.Scram = append(resp.Scram, &rosterv1.ScramCredential{
			Hash:       k.Hash,
			Salt:       k.Salt,
			Iterations: uint32(k.Iterations),
			StoredKey:  k.StoredKey,
			ServerKey:  k.ServerKey,
		})
	}
	return resp, nil
}

// status turns an error of the Service into a gRPC status. Validation and
// account errors name the problem, and carry an ErrorInfo (domain "xmpp")
// whose reason is the stanza error condition for the router; anything else
// is store trouble, which is logged here and reported as Unavailable
// without its details, since a client can only retry.
func (s *Service) status(ctx context.Context, err error) error {
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrOfflineFull):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, ErrItemNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrNotAcceptable), errors.Is(err, ErrJIDMalformed),
		errors.Is(err, ErrBadSubscription):
		code = codes.InvalidArgument
	}
	if code != codes.Unknown {
		st, derr := status.New(code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: Condition(err), Domain: "xmpp"})
		if derr != nil {
			return status.Error(code, err.Error())
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, ErrInvalidJID), errors.Is(err, ErrInvalidPassword), errors.Is(err, ErrInvalidPage):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrAccountExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrAccountNotFound):
		return status.Error(codes.NotFound, err.Error())
	case ctx.Err() != nil:
		// The caller gave up or ran out of time; the store is not at fault.
		return status.FromContextError(ctx.Err()).Err()
	default:
		s.log.ErrorContext(ctx, "roster store failed", "err", err)
		return status.Error(codes.Unavailable, "roster: store unavailable")
	}
}
