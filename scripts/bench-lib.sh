#!/usr/bin/env bash
# Shared part of the scripts/bench-*.sh scripts: the measurements of
# docs/performance.md, run against whatever server the calling script
# starts. Source it after defining:
#
#   NAME                 the server's name in the table
#   server_start MODE    start the server on 127.0.0.1:$PORT and set
#                        server_pid; MODE is plain (clients may skip TLS),
#                        tls, login (PLAIN and SCRAM-SHA-1 offered) or
#                        idle (a fresh server, long idle timeout)
#   server_stop          stop it
#   IDLE_MECH, LOGIN_MECHS, PASSWORD, xb (the xmppbench binary)
#   TLS_MECH             SASL mechanism of the STARTTLS chat runs (the
#                        -PLUS forms are avoided: ejabberd 23.01 refuses
#                        the client's channel binding)
#
# then call run_measurements. Settings (environment): RUNS (3), DURATION
# (10s), WARMUP (2s), IDLE_CONNS ("1000 10000"), IDLE_HOLD (20s), LOGINS
# (2000), TOOL_CPU (1), ONLY (subset of: chat chattls rate login idle), OUT.

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
IDLE_CONNS=${IDLE_CONNS:-"1000 10000"}
IDLE_HOLD=${IDLE_HOLD:-20s}
LOGINS=${LOGINS:-2000}
TOOL_CPU=${TOOL_CPU:-1}
ONLY=${ONLY:-"chat chattls rate login idle"}

say() { printf '== %s\n' "$*" >&2; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }

# accounts_needed: how many accounts the measurements log in with.
accounts_needed() {
	local max=0 n
	for n in $IDLE_CONNS; do ((n > max)) && max=$n; done
	echo $((max > 200 ? max : 200))
}

# tool runs xmppbench on one core with GOMAXPROCS=1.
tool() {
	local pin=()
	if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
		pin=(taskset -c "$TOOL_CPU")
	fi
	GOMAXPROCS=1 "${pin[@]}" "$xb" "$@"
}

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
row() { rows+=("| $NAME | $1 | $2 | $3 | $4 |"); }

run_measurements() {
	local common=(--addr "127.0.0.1:$PORT" --password "$PASSWORD" --insecure --progress 0)
	local i n mech p

	if wants chat; then
		server_start plain
		for i in $(seq "$RUNS"); do
			tool chat "${common[@]}" --tls none --pairs 50 --window 10 --warmup "$WARMUP" --duration "$DURATION" \
				--server-pid "$server_pid" --out "$OUT/chat-$i.json" || true
		done
		server_stop
		p=$OUT/chat
		row "chat, 50 pairs, window 10, no TLS: delivered msgs/s" "$(median "$p" .results.delivered_per_s 0)" \
			"p50 $(median "$p" .results.latency.p50_ms 2) ms, p99 $(median "$p" .results.latency.p99_ms 2) ms; tool $(median "$p" .tool.cpu_cores 2) cores" "$(loads "$p")"
		row "server CPU per delivered message (µs), same runs" "$(median "$p" .server.cpu_per_op_us)" \
			"server $(median "$p" .server.cpu_cores 2) cores" "$(loads "$p")"
	fi

	if wants chattls; then
		server_start tls
		for i in $(seq "$RUNS"); do
			tool chat "${common[@]}" --tls starttls --mechanism "$TLS_MECH" --pairs 50 --window 10 --warmup "$WARMUP" --duration "$DURATION" \
				--server-pid "$server_pid" --out "$OUT/chattls-$i.json" || true
		done
		server_stop
		p=$OUT/chattls
		row "same over STARTTLS: delivered msgs/s" "$(median "$p" .results.delivered_per_s 0)" \
			"CPU/msg $(median "$p" .server.cpu_per_op_us) µs; p99 $(median "$p" .results.latency.p99_ms 2) ms" "$(loads "$p")"
	fi

	if wants rate; then
		server_start plain
		for i in $(seq "$RUNS"); do
			tool chat "${common[@]}" --tls none --pairs 50 --window 0 --rate 2000 --warmup "$WARMUP" --duration "$DURATION" \
				--server-pid "$server_pid" --out "$OUT/rate-$i.json" || true
		done
		server_stop
		p=$OUT/rate
		row "p99 latency at a steady 2,000 msgs/s, no TLS (ms)" "$(median "$p" .results.latency.p99_ms 2)" \
			"p50 $(median "$p" .results.latency.p50_ms 2) ms, p99.9 $(median "$p" .results.latency.p999_ms 2) ms; server $(median "$p" .server.cpu_cores 2) cores" "$(loads "$p")"
	fi

	if wants login; then
		server_start login
		for mech in $LOGIN_MECHS; do
			for i in $(seq "$RUNS"); do
				tool login "${common[@]}" --tls starttls --mechanism "$mech" --logins "$LOGINS" --accounts 200 --concurrency 50 \
					--server-pid "$server_pid" --out "$OUT/login-$mech-$i.json" || true
			done
			p=$OUT/login-$mech
			row "logins/s, $mech over STARTTLS, 50 at a time" "$(median "$p" .results.logins_per_s 0)" \
				"p50 $(median "$p" .results.latency.p50_ms 2) ms, p99 $(median "$p" .results.latency.p99_ms 2) ms; server $(median "$p" .server.cpu_per_op_us 0) µs CPU/login; tool $(median "$p" .tool.cpu_cores 2) cores" "$(loads "$p")"
		done
		server_stop
	fi

	if wants idle; then
		for n in $IDLE_CONNS; do
			for i in $(seq "$RUNS"); do
				# A fresh server each time, so that RSS grows from a known start.
				server_start idle
				tool idle "${common[@]}" --tls none --mechanism "$IDLE_MECH" --conns "$n" --concurrency 50 --duration "$IDLE_HOLD" \
					--server-pid "$server_pid" --out "$OUT/idle$n-$i.json" || true
				server_stop
			done
			p=$OUT/idle$n
			row "RSS per idle authenticated connection, $n connections (KiB)" "$(median "$p" .results.server_rss_per_conn_kib)" \
				"still up $(median "$p" .results.still_up 0) of $n after $IDLE_HOLD" "$(loads "$p")"
		done
	fi

	{
		echo "$NAME $VERSION, $(nproc) cores, $(date -u +%Y-%m-%d), medians of $RUNS runs"
		echo
		echo "| server | measurement | median | detail (medians) | load avg before each run |"
		echo "|---|---|---|---|---|"
		printf '%s\n' "${rows[@]}"
	} | tee "$OUT/summary.md"
	say "results in $OUT"
}
