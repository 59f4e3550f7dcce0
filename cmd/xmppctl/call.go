package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/switchboard-xmpp/switchboard/proto/admin/v1"
)

// call is one run of a command.
type call struct {
	*globals
	env    lookupEnv
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	args   []string
	f      cmdFlags
	api    adminv1.AdminServiceClient
}

// connectError is a failure to reach the server or to be let in.
type connectError struct{ err error }

func (e connectError) Error() string { return e.err.Error() }
func (e connectError) Unwrap() error { return e.err }

// exec prepares what the command needs (the password first, so that a
// prompt does not wait behind a connection), connects, checks the server
// answers, and runs the command.
func (c *call) exec(ctx context.Context, cmd *command) error {
	if cmd.prepare != nil {
		if err := cmd.prepare(c); err != nil {
			return err
		}
	}
	token, err := c.token()
	if err != nil {
		return err
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	// The health service needs no token: it tells an unreachable server
	// or a TLS failure (exit 3) from a failed request (exit 1).
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		return connectError{fmt.Errorf("cannot reach the admin API at %s: %s", c.server, status.Convert(err).Message())}
	}
	c.api = adminv1.NewAdminServiceClient(conn)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	return cmd.run(ctx, c)
}

// token reads the bearer token: XMPPCTL_TOKEN, else the token file, whose
// first line that is not blank or a comment is the token, or a name and
// the token (the server's token file format).
func (c *call) token() (string, error) {
	if v, ok := c.env(envToken); ok && strings.TrimSpace(v) != "" && c.tokenFile == "" {
		return strings.TrimSpace(v), nil
	}
	if c.tokenFile == "" {
		return "", usagef("no token: set --token-file, %s or %s", envTokenFile, envToken)
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", usagef("--token-file: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		return f[len(f)-1], nil
	}
	return "", usagef("--token-file %s holds no token", c.tokenFile)
}

func (c *call) dial() (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(c.server)
	if err != nil {
		return nil, usagef("--server %q: %v", c.server, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if c.serverName != "" {
		conf.ServerName = c.serverName
	}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, usagef("--ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca-file %s: no PEM certificate", c.caFile)
		}
		conf.RootCAs = pool
	}
	if c.insecure {
		conf.InsecureSkipVerify = true
	}
	conn, err := grpc.NewClient(c.server, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		return nil, usagef("--server %q: %v", c.server, err)
	}
	return conn, nil
}

// report prints err and returns the exit status.
func report(w io.Writer, name string, err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ce connectError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(w, "xmppctl %s: %v\n", name, err)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(w, "xmppctl: %v\n", err)
		return exitConnect
	}
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(w, "xmppctl %s: %v\n", name, err)
		return exitServer
	}
	if st.Code() == codes.Unauthenticated {
		fmt.Fprintf(w, "xmppctl: the server refused the token: %s\n", st.Message())
		return exitConnect
	}
	fmt.Fprintf(w, "xmppctl %s: %s: %s\n", name, codeName(st.Code()), st.Message())
	return exitServer
}

// codeName is the gRPC code as the admin API's documentation writes it.
func codeName(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	}
	return strings.ToUpper(c.String())
}

// printJSON writes m as indented JSON with the proto field names and
// every field, set or not, so that scripts find them all.
func (c *call) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}
