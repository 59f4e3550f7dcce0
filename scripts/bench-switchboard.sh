#!/usr/bin/env bash
# Reproduces the Switchboard figures of docs/performance.md: builds
# bin/switchboard and xmppbench, provisions accounts, runs the one-process
# server on loopback ports, and runs each measurement RUNS times (default
# 3), printing a table of medians. Every JSON result is kept in OUT.
#
#   scripts/bench-switchboard.sh                 # everything, about 10 minutes
#   RUNS=1 IDLE_CONNS=1000 scripts/bench-switchboard.sh
#
# Settings (environment): RUNS, DURATION (measured window of a chat run,
# default 10s), WARMUP (2s), IDLE_CONNS ("1000 10000"), IDLE_HOLD (20s),
# LOGINS (2000), PORT (25222; PORT+1 is direct TLS), OUT (results
# directory, default under /tmp), SRC (the source tree to build, default
# this checkout; e.g. a `git archive HEAD` export), REV (the revision
# named in the table, default SRC's HEAD), TOOL_CPU (the core the tool is pinned
# to, default 1), ONLY (space-separated subset of: chat chattls rate login
# idle).
#
# The tool runs with GOMAXPROCS=1 pinned to one core (taskset); the server
# is not pinned. Other work on the machine disturbs the figures: the load
# average is recorded with each result and printed in the table.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
IDLE_CONNS=${IDLE_CONNS:-"1000 10000"}
IDLE_HOLD=${IDLE_HOLD:-20s}
LOGINS=${LOGINS:-2000}
PORT=${PORT:-25222}
TOOL_CPU=${TOOL_CPU:-1}
ONLY=${ONLY:-"chat chattls rate login idle"}
OUT=${OUT:-/tmp/xmppbench-$(date -u +%Y%m%dT%H%M%SZ)}
PASSWORD=bench-secret

work=$(mktemp -d)
server_pid=
stop_server() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$OUT"

say() { printf '== %s\n' "$*" >&2; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }

SRC=${SRC:-$root}
REV=${REV:-$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "export of unknown revision")}
say "building $SRC into $work/bin"
(cd "$SRC" && go build -o "$work/bin/switchboard" ./cmd/switchboard && go build -o "$work/bin/xmppbench" ./cmd/xmppbench)
sb=$work/bin/switchboard
xb=$work/bin/xmppbench
data=$work/data
mkdir -p "$data"

pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
	pin=(taskset -c "$TOOL_CPU")
fi
tool() { GOMAXPROCS=1 "${pin[@]}" "$xb" "$@"; }

max_idle=0
for n in $IDLE_CONNS; do ((n > max_idle)) && max_idle=$n; done
accounts=$((max_idle > 200 ? max_idle : 200))
say "provisioning $accounts accounts (switchboard user add, two at a time)"
"$xb" provision --server switchboard --count "$accounts" --password "$PASSWORD" \
	--switchboard "$sb" --args "--data-dir $data --log-level error" >"$work/provision.sh"
split -n l/2 "$work/provision.sh" "$work/provision-part-"
for part in "$work"/provision-part-*; do sh "$part" >/dev/null & done
wait

start_server() {
	say "starting switchboard on 127.0.0.1:$PORT $*"
	"$sb" --data-dir "$data" --c2s-listen "127.0.0.1:$PORT" --c2s-direct-tls-listen "127.0.0.1:$((PORT + 1))" \
		--log-level warn "$@" >>"$OUT/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "server did not listen on $PORT" >&2
	exit 1
}
common=(--addr "127.0.0.1:$PORT" --password "$PASSWORD" --insecure)
notls=(--tls-optional --allow-plaintext-auth)

# median FILEPREFIX JQ-EXPRESSION [DIGITS]: the median over the runs' JSON
# files, rounded to DIGITS decimals (default 1).
median() {
	jq -s "map($2) | sort | .[(length - 1) / 2 | floor] | . * pow(10; ${3:-1}) | round / pow(10; ${3:-1})" "$1"-*.json
}
# loads FILEPREFIX: the 1-minute load averages before each run.
loads() {
	jq -s -r 'map(.load_avg_before[0]) | map(tostring) | join("/")' "$1"-*.json
}

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }

if wants chat; then
	start_server "${notls[@]}"
	for i in $(seq "$RUNS"); do
		tool chat "${common[@]}" --tls none --pairs 50 --window 10 --warmup "$WARMUP" --duration "$DURATION" \
			--server-pid "$server_pid" --progress 0 --out "$OUT/chat-$i.json"
	done
	stop_server
	row "chat, 50 pairs, window 10, no TLS: delivered msgs/s" "$(median "$OUT/chat" .results.delivered_per_s 0)" \
		"p50 $(median "$OUT/chat" .results.latency.p50_ms 2) ms, p99 $(median "$OUT/chat" .results.latency.p99_ms 2) ms; tool $(median "$OUT/chat" .tool.cpu_cores 2) cores" "$(loads "$OUT/chat")"
	row "server CPU per delivered message (µs), same runs" "$(median "$OUT/chat" .server.cpu_per_op_us)" \
		"server $(median "$OUT/chat" .server.cpu_cores 2) cores" "$(loads "$OUT/chat")"
fi

if wants chattls; then
	start_server
	for i in $(seq "$RUNS"); do
		tool chat "${common[@]}" --tls starttls --pairs 50 --window 10 --warmup "$WARMUP" --duration "$DURATION" \
			--server-pid "$server_pid" --progress 0 --out "$OUT/chattls-$i.json"
	done
	stop_server
	row "same over STARTTLS: delivered msgs/s" "$(median "$OUT/chattls" .results.delivered_per_s 0)" \
		"CPU/msg $(median "$OUT/chattls" .server.cpu_per_op_us) µs; p99 $(median "$OUT/chattls" .results.latency.p99_ms 2) ms" "$(loads "$OUT/chattls")"
fi

if wants rate; then
	start_server "${notls[@]}"
	for i in $(seq "$RUNS"); do
		tool chat "${common[@]}" --tls none --pairs 50 --window 0 --rate 2000 --warmup "$WARMUP" --duration "$DURATION" \
			--server-pid "$server_pid" --progress 0 --out "$OUT/rate-$i.json"
	done
	stop_server
	row "p99 latency at a steady 2,000 msgs/s, no TLS (ms)" "$(median "$OUT/rate" .results.latency.p99_ms 2)" \
		"p50 $(median "$OUT/rate" .results.latency.p50_ms 2) ms, p99.9 $(median "$OUT/rate" .results.latency.p999_ms 2) ms" "$(loads "$OUT/rate")"
fi

if wants login; then
	start_server --mechanisms SCRAM-SHA-256,SCRAM-SHA-1,PLAIN
	for mech in PLAIN SCRAM-SHA-1; do
		for i in $(seq "$RUNS"); do
			tool login "${common[@]}" --tls starttls --mechanism "$mech" --logins "$LOGINS" --accounts 200 --concurrency 50 \
				--server-pid "$server_pid" --progress 0 --out "$OUT/login-$mech-$i.json"
		done
		row "logins/s, $mech over STARTTLS, 50 at a time" "$(median "$OUT/login-$mech" .results.logins_per_s 0)" \
			"p50 $(median "$OUT/login-$mech" .results.latency.p50_ms 2) ms, p99 $(median "$OUT/login-$mech" .results.latency.p99_ms 2) ms; server $(median "$OUT/login-$mech" .server.cpu_per_op_us) µs CPU/login" "$(loads "$OUT/login-$mech")"
	done
	stop_server
fi

if wants idle; then
	for n in $IDLE_CONNS; do
		for i in $(seq "$RUNS"); do
			# A fresh server each time, so that RSS grows from a known start.
			start_server "${notls[@]}" --idle-timeout 10m
			tool idle "${common[@]}" --tls none --mechanism SCRAM-SHA-256 --conns "$n" --concurrency 50 --duration "$IDLE_HOLD" \
				--server-pid "$server_pid" --progress 0 --out "$OUT/idle$n-$i.json" || true
			stop_server
		done
		row "RSS per idle authenticated connection, $n connections (KiB)" "$(median "$OUT/idle$n" .results.server_rss_per_conn_kib)" \
			"still up $(median "$OUT/idle$n" .results.still_up) of $n after $IDLE_HOLD" "$(loads "$OUT/idle$n")"
	done
fi

{
	echo "Switchboard $REV (built from $SRC), $(go version | cut -d' ' -f3), $(nproc) cores, $(date -u +%Y-%m-%d), medians of $RUNS runs"
	echo
	echo "| measurement | median | detail (medians) | load avg before each run |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} | tee "$OUT/summary.md"
say "results in $OUT"
