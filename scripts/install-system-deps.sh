#!/usr/bin/env bash
# Debian packages fleetpatch's local default needs: Go and govmomi to build vcsim (the local
# vCenter), curl for the startup scripts, gpgv and gpg that they verify the SSM agent packages with
# (as a VM does), openssl and shellcheck for the tests' cross-checks,
# postgresql (15) whose binaries the estate store's tests and `make bench` start throwaway clusters from.
# chromium drives the dashboard's browser tests (Playwright; never a downloaded browser). Idempotent:
# installs only what is missing.
set -euo pipefail

packages=(golang-go golang-github-vmware-govmomi-dev curl ca-certificates openssl shellcheck gpgv gpg postgresql chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing Debian packages (${missing[*]}) and no apt-get: install them by hand" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
