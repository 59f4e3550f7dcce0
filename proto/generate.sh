#!/usr/bin/env bash
# Regenerates the Go code from the .proto files. Needs protoc (Debian:
# protobuf-compiler) and the two plugins at the versions pinned below.
set -euo pipefail
cd "$(dirname "$0")"
# Plugins are pinned and installed into ../bin/protoc-plugins so that the
# output does not depend on what happens to be on PATH.
bin="$(cd .. && pwd)/bin/protoc-plugins"
mkdir -p "$bin"
[ -x "$bin/protoc-gen-go" ] || GOBIN="$bin" GOWORK=off go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$bin/protoc-gen-go-grpc" ] || GOBIN="$bin" GOWORK=off go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
export PATH="$bin:$PATH"
protoc --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  bus/v1/*.proto roster/v1/*.proto presence/v1/*.proto admin/v1/*.proto
