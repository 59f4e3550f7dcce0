# Shared by the scripts in this folder; source it, do not run it.
#
# The module list lives in one place, go.work: modules() reads its "use"
# lines, so adding a module there is all it takes for the scripts to build,
# vet, test and fuzz it.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# modules prints the directories of the workspace's modules, relative to the
# repository root, one a line.
modules() {
	(cd "$root" && go work edit -json) | sed -n 's/^[[:space:]]*"DiskPath": "\(.*\)",\{0,1\}$/\1/p' | sed 's#^\./##'
}

# step prints a heading that stands out in CI logs.
step() {
	printf '\n==> %s\n' "$*"
}
