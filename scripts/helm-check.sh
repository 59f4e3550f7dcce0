#!/usr/bin/env bash
# Checks the Helm chart in deploy/helm/switchboard: builds the pinned helm
# from its Go module into bin/tools (once; later runs reuse it), then runs
# `helm lint` and `helm template` on the default values and on every file in
# the chart's ci/ folder, and checks that each file in
# deploy/helm/testdata/bad-values/ is refused by values.schema.json.
#
# Usage: scripts/helm-check.sh            build helm if needed, then check
#        scripts/helm-check.sh --install  only build helm; print its path
#
# Environment: HELM (a helm binary to use instead of building one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The one place the helm version is pinned.
helm_version=v3.22.0
chart="$root/deploy/helm/switchboard"
bad="$root/deploy/helm/testdata/bad-values"
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion); helm
# renders for an old default version otherwise.
kube_version=1.30.0

# install_helm builds helm into bin/tools unless the binary there was already
# built from the pinned module version.
install_helm() {
	local bin="$root/bin/tools/helm"
	if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$helm_version([[:space:]]|$)"; then
		echo "$bin"
		return
	fi
	echo "helm-check: building helm $helm_version into bin/tools (takes a few minutes, done once)" >&2
	mkdir -p "$root/bin/tools"
	(cd "$root" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$root/bin/tools" \
		go install -trimpath "helm.sh/helm/v3/cmd/helm@$helm_version") >&2
	echo "$bin"
}

helm="${HELM:-}"
if [ -z "$helm" ]; then
	helm="$(install_helm)"
fi
if [ "${1:-}" = "--install" ]; then
	echo "$helm"
	exit 0
fi

step "helm lint and template ($chart)"
status=0
check_values() {
	local name="$1"
	shift
	if "$helm" lint --strict --kube-version "$kube_version" "$chart" "$@" >/tmp/helm-check.$$ 2>&1 &&
		"$helm" template sb "$chart" --namespace switchboard --kube-version "$kube_version" "$@" >>/tmp/helm-check.$$ 2>&1; then
		echo "ok   $name"
	else
		echo "FAIL $name" >&2
		cat /tmp/helm-check.$$ >&2
		status=1
	fi
}
check_values "default values"
for f in "$chart"/ci/*.yaml; do
	check_values "${f#"$root"/}" -f "$f"
done
# Each bad values file names, in a "# want:" line, the text helm's error
# must contain, so a file refused for another reason fails the check.
for f in "$bad"/*.yaml; do
	want="$(sed -n 's/^# want: //p' "$f")"
	if "$helm" template sb "$chart" --kube-version "$kube_version" -f "$f" >/tmp/helm-check.$$ 2>&1; then
		echo "FAIL ${f#"$root"/}: rendered, the chart should refuse it" >&2
		status=1
	elif [ -z "$want" ] || ! grep -qF -- "$want" /tmp/helm-check.$$; then
		echo "FAIL ${f#"$root"/}: refused, but the error does not contain \"$want\":" >&2
		cat /tmp/helm-check.$$ >&2
		status=1
	else
		echo "ok   ${f#"$root"/} refused"
	fi
done
rm -f /tmp/helm-check.$$
exit $status
