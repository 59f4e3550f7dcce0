package c2s

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
)

// Fakes for the failures of the services; the tests otherwise run the real
// roster and presence services (see services in harness_test.go).

// errUnavailable is what a gRPC client returns when the service is down.
var errUnavailable = status.Error(codes.Unavailable, "connection refused")

// failingCredentials is a credential service that always fails.
type failingCredentials struct{ err error }

func (f failingCredentials) GetCredentials(context.Context, *rosterv1.GetCredentialsRequest, ...grpc.CallOption) (*rosterv1.GetCredentialsResponse, error) {
	return nil, f.err
}

// failingRegistry is a session registry whose Bind fails.
type failingRegistry struct{ err error }

func (f failingRegistry) Bind(context.Context, *presencev1.BindRequest, ...grpc.CallOption) (*presencev1.BindResponse, error) {
	return nil, f.err
}

func (f failingRegistry) Unbind(context.Context, *presencev1.UnbindRequest, ...grpc.CallOption) (*presencev1.UnbindResponse, error) {
	return &presencev1.UnbindResponse{}, nil
}
