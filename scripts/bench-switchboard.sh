#!/usr/bin/env bash
# Reproduces the Switchboard figures of docs/performance.md: builds
# switchboard and xmppbench, provisions accounts, runs the one-process
# server on loopback ports, and runs each measurement RUNS times (default
# 3), printing a table of medians. Every JSON result is kept in OUT.
#
#   scripts/bench-switchboard.sh                 # everything, about 10 minutes
#   RUNS=1 IDLE_CONNS=1000 scripts/bench-switchboard.sh
#
# Settings (environment), besides those of scripts/bench-lib.sh: PORT
# (25222; PORT+1 is direct TLS), OUT (results directory, default under
# /tmp), SRC (the source tree to build, default this checkout; e.g. a
# `git archive HEAD` export), REV (the revision named in the table,
# default SRC's HEAD).
#
# The tool runs with GOMAXPROCS=1 pinned to one core (taskset); the server
# is not pinned. Other work on the machine disturbs the figures: the load
# average is recorded with each result and printed in the table.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-lib.sh"
PORT=${PORT:-25222}
OUT=${OUT:-/tmp/xmppbench-switchboard-$(date -u +%Y%m%dT%H%M%SZ)}
SRC=${SRC:-$root}
REV=${REV:-$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "export of unknown revision")}
PASSWORD=bench-secret
NAME=Switchboard
TLS_MECH=SCRAM-SHA-256
IDLE_MECH=SCRAM-SHA-256
LOGIN_MECHS="PLAIN SCRAM-SHA-1"

work=$(mktemp -d)
server_pid=
server_stop() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}
trap 'server_stop; rm -rf "$work"' EXIT
mkdir -p "$OUT"

say "building $SRC into $work/bin"
(cd "$SRC" && go build -o "$work/bin/switchboard" ./cmd/switchboard && go build -o "$work/bin/xmppbench" ./cmd/xmppbench)
sb=$work/bin/switchboard
xb=$work/bin/xmppbench
data=$work/data
mkdir -p "$data"
VERSION="$REV (one process, built from $SRC, $(go version | cut -d' ' -f3))"

accounts=$(accounts_needed)
say "provisioning $accounts accounts (switchboard user add, two at a time)"
"$xb" provision --server switchboard --count "$accounts" --password "$PASSWORD" \
	--switchboard "$sb" --args "--data-dir $data --log-level error" >"$work/provision.sh"
split -n l/2 "$work/provision.sh" "$work/provision-part-"
for part in "$work"/provision-part-*; do sh "$part" >/dev/null & done
wait

# Client throttling off, as for the peers (docs/performance.md, method):
# the per-session stanza and byte limits, in revisions that have them.
limits_off=()
if "$sb" --help 2>&1 | grep -q -- --c2s-stanza-rate; then
	limits_off=(--c2s-stanza-rate 0 --c2s-byte-rate 0)
fi

server_start() {
	local args=("${limits_off[@]}")
	case $1 in
	plain) args+=(--tls-optional --allow-plaintext-auth) ;;
	login) args+=(--mechanisms SCRAM-SHA-256,SCRAM-SHA-1,PLAIN) ;;
	idle) args+=(--tls-optional --allow-plaintext-auth --idle-timeout 10m) ;;
	esac
	say "starting switchboard on 127.0.0.1:$PORT ${args[*]}"
	"$sb" --data-dir "$data" --c2s-listen "127.0.0.1:$PORT" --c2s-direct-tls-listen "127.0.0.1:$((PORT + 1))" \
		--log-level warn "${args[@]}" >>"$OUT/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "switchboard did not listen on $PORT" >&2
	exit 1
}

run_measurements
