#!/usr/bin/env bash
# Installs the Debian packages the checks need, only those that are missing:
#   protobuf-compiler  protoc, for the proto-check
#   python3-slixmpp    a real XMPP client library, for interoperability tests
#   go-sendxmpp        a real XMPP command-line client, for interoperability tests
# Nothing is done when all are present. Needs root or sudo otherwise.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# slixmpp must be importable by Debian's python, which the tests call by
# full path so that a pyenv or venv python on PATH does not hide it.
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || missing+=(python3-slixmpp)
command -v go-sendxmpp >/dev/null 2>&1 || missing+=(go-sendxmpp)

"$(dirname "$0")/services.sh" # Postgres, Redis, NATS for the integration tests; before the early exit below, so it always runs
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: protoc, slixmpp and go-sendxmpp are present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps: missing ${missing[*]}: run as root or install sudo" >&2
		exit 1
	fi
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
