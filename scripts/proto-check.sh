#!/usr/bin/env bash
# Regenerates the protobuf code into a temporary copy of proto/ and fails
# when it differs from the committed code (someone changed a .proto file
# without running `make proto`, or edited generated code by hand).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v protoc >/dev/null || { echo "proto-check: protoc not found (Debian: protobuf-compiler; scripts/deps.sh installs it)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/proto" "$tmp/proto"
# generate.sh keeps its pinned plugins in ../bin/protoc-plugins: share the
# repository's, so they are built once.
mkdir -p "$root/bin"
ln -s "$root/bin" "$tmp/bin"
"$tmp/proto/generate.sh"
if ! diff -ru "$root/proto" "$tmp/proto"; then
	echo "proto-check: generated code is stale: run 'make proto' and commit the result" >&2
	exit 1
fi
echo "proto-check: generated code is up to date"
