package grpcx

import "github.com/switchboard-xmpp/switchboard/internal/config"

// DeclareTLS declares --grpc-tls-cert, --grpc-tls-key and --grpc-tls-ca
// into f: all three turn on mutual TLS for every gRPC server and client of
// the process, none leaves gRPC in the clear.
func DeclareTLS(set *config.Set, f *TLSFiles) {
	set.String(&f.Cert, "grpc-tls-cert", "", "PEM certificate this process presents on gRPC, as server and as client; with --grpc-tls-key and --grpc-tls-ca it turns on mutual TLS")
	set.String(&f.Key, "grpc-tls-key", "", "PEM private key of --grpc-tls-cert")
	set.String(&f.CA, "grpc-tls-ca", "", "PEM CA bundle that signs the gRPC peers' certificates (servers require client certificates signed by it)").
		Check(f.Check)
}
