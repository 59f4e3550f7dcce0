#!/usr/bin/env bash
# Installs the Debian packages the checks need, only those that are missing:
#   protobuf-compiler  protoc, for the proto-check
#   python3-slixmpp    a real XMPP client library, for interoperability tests
#   go-sendxmpp        a real XMPP command-line client, for interoperability tests
#   prosody            a real XMPP server, for federation tests (run by the
#                      tests as a child process; the system service is kept
#                      from starting during the install)
# Nothing is done when all are present. Needs root or sudo otherwise.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# slixmpp must be importable by Debian's python, which the tests call by
# full path so that a pyenv or venv python on PATH does not hide it.
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || missing+=(python3-slixmpp)
command -v go-sendxmpp >/dev/null 2>&1 || missing+=(go-sendxmpp)
command -v prosodyctl >/dev/null 2>&1 || missing+=(prosody)

"$(dirname "$0")/services.sh" # Postgres, Redis, NATS for the integration tests; before the early exit below, so it always runs
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: protoc, slixmpp, go-sendxmpp and prosody are present"
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
# Packages that ship a daemon (prosody) must not start it: the tests run
# their own instances on loopback ports. policy-rc.d is Debian's switch for
# that; it is removed again unless it was there before.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
	"${sudo[@]}" chmod +x "$policy"
	own_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
[ "$own_policy" = 1 ] && "${sudo[@]}" rm -f "$policy"
exit "$status"
