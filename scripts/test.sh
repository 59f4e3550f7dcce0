#!/usr/bin/env bash
# Everything CI checks, in the order a failure is cheapest to find:
# missing Debian packages, gofmt and go vet, builds (workspace and
# GOWORK=off), generated code, `go test -race` of every module, then each
# fuzz target briefly. Exits non-zero when any step fails; every step runs
# anyway, so one run shows all failures.
#
# Environment: FUZZTIME (default 10s; 0 skips fuzzing).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
start=$SECONDS

failed=()
run_step() {
	local name="$1"
	shift
	if ! "$@"; then
		failed+=("$name")
	fi
}

step "dependencies"
# Without the packages the later steps cannot run: stop here.
"$root/scripts/deps.sh" || { echo "test.sh: could not install the dependencies" >&2; exit 1; }

run_step lint "$root/scripts/lint.sh"
run_step build "$root/scripts/build.sh"
step "proto-check"
run_step proto-check "$root/scripts/proto-check.sh"
run_step helm-check "$root/scripts/helm-check.sh"

for m in $(modules); do
	step "go test -race ($m)"
	run_step "test $m" bash -c "cd '$m' && go test -race -count=1 ./..."
done

step "fuzz"
run_step fuzz "$root/scripts/fuzz.sh"

echo
if [ ${#failed[@]} -gt 0 ]; then
	printf 'test.sh: FAILED after %ds:' $((SECONDS - start))
	printf ' [%s]' "${failed[@]}"
	echo
	exit 1
fi
echo "test.sh: every step passed in $((SECONDS - start))s"
