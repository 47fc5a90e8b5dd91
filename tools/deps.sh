#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages aemp needs to build and test,
# only those that are missing (idempotent; needs root or sudo).
set -eu
pkgs="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
      libevent-dev libcjson-dev libgnutls28-dev libsodium-dev python3 procps iproute2"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
