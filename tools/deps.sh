#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages aemp needs, only those that are
# missing (idempotent; needs root or sudo).
#
#   bash tools/deps.sh           what building and running need (README command 1)
#   bash tools/deps.sh --tests   that, plus what the tests need (command 2:
#                                tests/run.sh, .ci/run): clang and its
#                                sanitizer/libFuzzer runtimes, procps, iproute2,
#                                the static analysers (tools/analyze.sh),
#                                gdb (tests/msgpath.sh),
#                                prometheus, chromium and curl (the tests of
#                                the "http" monitoring listener)
#
# When another package manager holds the dpkg/apt lock (unattended-upgrades
# after boot, a second apt-get), it waits for it (up to 15 minutes) instead
# of failing.
set -eu
build_pkgs="build-essential meson ninja-build pkg-config libevent-dev libcjson-dev
            libgnutls28-dev libsodium-dev libsystemd-dev python3"
test_pkgs="clang libclang-rt-14-dev procps iproute2 clang-tools-14 cppcheck shellcheck gdb
           prometheus chromium curl"

pkgs=$build_pkgs
case "${1:-}" in
"") ;;
--tests) pkgs="$build_pkgs $test_pkgs" ;;
*) echo "usage: deps.sh [--tests]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# apt_get ARGS...: apt-get that waits while another package manager holds
# the lock. DPkg::Lock::Timeout covers the dpkg lock of `install`; the lists
# lock of `update` has no such option, so that error is retried here too.
apt_get() {
    local deadline=$((SECONDS + 900)) log rc
    log=$(mktemp)
    while :; do
        rc=0
        $SUDO apt-get -o DPkg::Lock::Timeout=60 "$@" >"$log" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then rm -f "$log"; return 0; fi
        if grep -qiE 'could not get lock|unable to (acquire|lock)|is another process using it' "$log" &&
           [ "$SECONDS" -lt "$deadline" ]; then
            echo "deps.sh: another package manager is running; waiting for it to finish" >&2
            sleep 10
            continue
        fi
        cat "$log" >&2
        rm -f "$log"
        return "$rc"
    done
}

apt_get update -qq
# shellcheck disable=SC2086
apt_get install -y -qq --no-install-recommends $missing
