#!/usr/bin/env bash
# gofmt and go vet over every module of go.work.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"

fail=0
step "gofmt -l"
unformatted="$(modules | xargs gofmt -l)"
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted (run gofmt -w on them):"
	echo "$unformatted"
	fail=1
fi
for m in $(modules); do
	step "go vet ($m)"
	(cd "$m" && go vet ./...) || fail=1
done
exit $fail
