#!/usr/bin/env bash
# Runs every benchmark of every module of go.work. BENCHTIME (default 1s)
# is passed to -benchtime; extra arguments go to go test (e.g. -count=6 for
# benchstat).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
for m in $(modules); do
	step "go test -bench ($m)"
	(cd "$m" && go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" "$@" ./...)
done
