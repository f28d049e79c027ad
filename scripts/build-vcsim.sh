#!/usr/bin/env bash
# Build fleetpatch's local vCenter (localclouds/vcsim/main.go, govmomi's simulator) into a cache.
#
# Uses Debian's golang-go and golang-github-vmware-govmomi-dev in GOPATH mode: no module
# download, nothing fetched. Rebuilds only when main.go, the Go version or the govmomi version
# changed (a stamp file beside the binary records them). Prints the binary's path on stdout;
# progress and the measured build time go to stderr.
#
#   FLEETPATCH_CACHE   cache root (default ~/.cache/fleetpatch); the binary is $FLEETPATCH_CACHE/vcsim/vcsim
#   GOVMOMI_GOPATH     GOPATH root holding src/github.com/vmware/govmomi (default /usr/share/gocode)
#
# Exit codes: 0 built or up to date; 3 the Go toolchain or govmomi sources are missing
# (install golang-go golang-github-vmware-govmomi-dev); anything else: the build failed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$repo/localclouds/vcsim/main.go"
cache_root=${FLEETPATCH_CACHE:-${HOME:-/tmp}/.cache/fleetpatch}
out_dir="$cache_root/vcsim"
out="$out_dir/vcsim"
stamp="$out_dir/vcsim.stamp"
gocode=${GOVMOMI_GOPATH:-/usr/share/gocode}
govmomi="$gocode/src/github.com/vmware/govmomi"

if ! command -v go >/dev/null 2>&1; then
    echo "build-vcsim: go not found (apt-get install golang-go golang-github-vmware-govmomi-dev)" >&2
    exit 3
fi
if [ ! -d "$govmomi/simulator" ]; then
    echo "build-vcsim: govmomi sources not found in $govmomi (apt-get install golang-github-vmware-govmomi-dev)" >&2
    exit 3
fi

govmomi_version() {
    if command -v dpkg-query >/dev/null 2>&1 \
        && dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null; then
        return
    fi
    # Not installed by dpkg: fingerprint the simulator sources themselves.
    find "$govmomi/simulator" "$govmomi/vim25/types" -name '*.go' -type f -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

want=$(printf 'main.go %s\ngo %s\ngovmomi %s\n' \
    "$(sha256sum "$src" | cut -c1-64)" "$(go env GOVERSION)" "$(govmomi_version)")

mkdir -p "$out_dir"
# One build at a time (parallel test sessions, `fleetpatch up`): wait for the lock.
exec 9>"$out_dir/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "build-vcsim: up to date" >&2
    echo "$out"
    exit 0
fi

echo "build-vcsim: building $out (GOPATH mode, $(go env GOVERSION), govmomi $(govmomi_version))" >&2
start=$(date +%s%N)
tmp=$(mktemp "$out_dir/vcsim.XXXXXX")
trap 'rm -f "$tmp"' EXIT
GO111MODULE=off GOPATH="$out_dir/gopath:$gocode" GOFLAGS= CGO_ENABLED=0 \
    go build -trimpath -o "$tmp" "$src"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
printf '%s\n' "$want" >"$stamp"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'build-vcsim: built in %d.%01d s\n' $((ms / 1000)) $((ms % 1000 / 100)) >&2
echo "$out"
