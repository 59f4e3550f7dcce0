#!/usr/bin/env bash
# Stops the local cluster that scripts/cluster-up.sh started: SIGTERM to
# every process, c2s nodes first, then SIGKILL to those still running after
# CLUSTER_STOP_TIMEOUT seconds (15). CLUSTER_DIR as for cluster-up.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${CLUSTER_DIR:-$root/.cluster}"
timeout="${CLUSTER_STOP_TIMEOUT:-15}"

# Edge first, so no new stanzas come in, then routers, then the state services.
order=(c2s-1 c2s-2 s2s-1 router-1 router-2 presence roster)
for f in "$dir"/pids/*.pid; do
	[[ -e "$f" ]] || continue
	n="$(basename "$f" .pid)"
	[[ " ${order[*]} " == *" $n "* ]] || order+=("$n")
done

stopped=0
for n in "${order[@]}"; do
	f="$dir/pids/$n.pid"
	[[ -e "$f" ]] || continue
	pid="$(cat "$f")"
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$f"
		continue
	fi
	kill -TERM "$pid" 2>/dev/null
	deadline=$((SECONDS + timeout))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "cluster-down: $n (pid $pid) did not stop within ${timeout}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$f"
	echo "stopped $n (pid $pid)"
	stopped=$((stopped + 1))
done
((stopped > 0)) || echo "cluster-down: nothing was running in $dir"
exit 0
