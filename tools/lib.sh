# lib.sh - what the tools/ scripts that run nodes share (mesh-page.sh,
# mesh-picture.sh, http-attack.sh). Source it after `set -euo pipefail`:
#   repo            the source tree (this script's parent folder)
#   tool_build      builds build/ (set up if missing); aemp: the built binary
#   tool_tmp NAME   a throw-away directory tmp (aemp-NAME.XXXXXX), HOME and
#                   the configuration file in it; every PID put into the
#                   array pids is ended and reaped on exit, then tmp removed
#   free_port       prints a TCP port of 127.0.0.1 that is free right now
# shellcheck shell=bash disable=SC2034 # aemp, tmp: for the scripts that source this

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tool_build() {
    [ -f "$repo/build/build.ninja" ] || meson setup "$repo/build" >/dev/null
    ninja -C "$repo/build" >/dev/null
    aemp=$repo/build/cmd/aemp
}

tool_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}

tool_tmp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/aemp-$1.XXXXXX")
    pids=()
    trap tool_cleanup EXIT
    export HOME=$tmp PERL_ANYEVENT_MP_RC=$tmp/aemp.json AEMP_PROFILE_DIR=$repo/profiles
    unset AEMP_RC
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
