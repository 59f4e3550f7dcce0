#!/usr/bin/env bash
# Builds every module of go.work, in the workspace and alone (GOWORK=off),
# so that each module's go.mod is complete on its own.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"

fail=0
for m in $(modules); do
	step "go build ($m)"
	(cd "$m" && go build ./...) || fail=1
	step "GOWORK=off go build ($m)"
	(cd "$m" && GOWORK=off go build ./...) || fail=1
done
exit $fail
