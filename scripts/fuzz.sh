#!/usr/bin/env bash
# Runs every fuzz target of every module for FUZZTIME (default 10s) each.
# Targets are found with `go test -list '^Fuzz'`, so a new one is picked up
# without touching this script. FUZZTIME=0 skips fuzzing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"

fuzztime="${FUZZTIME:-10s}"
if [ "$fuzztime" = "0" ]; then
	echo "fuzz: skipped (FUZZTIME=0)"
	exit 0
fi

fail=0
count=0
for m in $(modules); do
	# `go test -list` prints the matching names of a package, then its
	# "ok <package>" line.
	list="$(cd "$m" && go test -list '^Fuzz' ./... 2>&1)" || { echo "$list"; fail=1; continue; }
	names=()
	while IFS= read -r line; do
		case "$line" in
		Fuzz*)
			names+=("$line")
			;;
		"ok "*)
			pkg="$(echo "$line" | awk '{print $2}')"
			for n in "${names[@]}"; do
				step "fuzz $pkg $n for $fuzztime"
				count=$((count + 1))
				(cd "$m" && go test -run '^$' -fuzz "^${n}\$" -fuzztime "$fuzztime" "$pkg") || fail=1
			done
			names=()
			;;
		esac
	done <<<"$list"
done
echo "fuzz: ran $count targets"
exit $fail
