#!/usr/bin/env bash
# Runs scripts/bench-switchboard.sh, bench-ejabberd.sh and bench-prosody.sh
# one after the other with the same settings (those of scripts/bench-lib.sh;
# SERVERS picks and orders them) and prints their tables together. The
# servers take turns in one run so that they meet the same machine, but a
# shared machine's load still changes between them: compare the load
# averages printed beside each figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/xmppbench-all-$(date -u +%Y%m%dT%H%M%SZ)}
SERVERS=${SERVERS:-"switchboard ejabberd prosody"}
mkdir -p "$OUT"
for s in $SERVERS; do
	OUT=$OUT/$s PORT= "$root/scripts/bench-$s.sh"
done
for s in $SERVERS; do
	echo
	cat "$OUT/$s/summary.md"
done | tee "$OUT/summary.md"
