#!/usr/bin/env bash
# demo.sh - build aemp and show it working, in a throw-away configuration.
#
# Idempotent and runnable from any directory. It never touches the user's
# real configuration file: HOME and PERL_ANYEVENT_MP_RC point into a
# temporary directory that is removed on exit. Exits non-zero when any step
# fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

step() { printf '\n=== %s\n' "$*"; }

# ------------------------------------------------------------------ build
step "build (meson + ninja in $repo/build)"
if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build

aemp=$repo/build/cmd/aemp
local_ports=$repo/build/examples/local_ports

# ----------------------------------------------- a temporary configuration
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aemp-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT  # replaced below once nodes run
export HOME=$tmp/home
mkdir -p "$HOME"
export PERL_ANYEVENT_MP_RC=$tmp/perl-anyevent-mp
unset AEMP_RC
export AEMP_PROFILE_DIR=$repo/profiles

step "configure: a shared secret and a seed profile listening on *:4040"
echo "\$ aemp gensecret profile seed binds '*:4040'"
"$aemp" gensecret profile seed binds '*:4040'

step "the effective configuration of profile seed"
echo "\$ aemp showconfig seed"
"$aemp" showconfig seed

# ------------------------------------------------- the library on one node
step "the local API on one node (examples/local_ports)"
"$local_ports"

# --------------------------------------------------------------- real nodes
# The seed listens on *:4040 as configured above (another free port if 4040
# is taken on this machine); everything else finds it through `seeds`.
port=4040
if ! python3 -c 'import socket,sys; s=socket.socket(); s.bind(("0.0.0.0",4040))' 2>/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "(port 4040 is in use here: the demo seed uses $port)"
    "$aemp" profile seed binds "*:$port"
fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

step "seeds of every node: 127.0.0.1:$port"
echo "\$ aemp seeds 127.0.0.1:$port"
"$aemp" seeds "127.0.0.1:$port"

step "start the seed node and a worker node"
echo "\$ aemp run profile seed &"
"$aemp" run profile seed 2>"$tmp/seed.log" &
pids+=($!)
echo "\$ aemp run nodeid worker binds 127.0.0.1:0 &"
"$aemp" run nodeid worker binds 127.0.0.1:0 2>"$tmp/worker.log" &
pids+=($!)
for _ in $(seq 50); do
    "$aemp" cal --timeout 1 seed info >/dev/null 2>&1 && break
    sleep 0.2
done

step "talk to them"
echo "\$ aemp cal seed info"
"$aemp" cal seed info
echo "\$ aemp cal seed time"
"$aemp" cal seed time
echo "\$ aemp snd seed devnull hello      # proves delivery"
"$aemp" snd seed devnull hello
for _ in $(seq 50); do
    "$aemp" trace --timeout 1 seed 2>/dev/null | grep -q '^worker: .*seed' && break
    sleep 0.2
done
echo "\$ aemp trace seed                  # the mesh, node by node"
"$aemp" trace seed
echo "\$ aemp snd seed#no-such-port x     # not delivered: exit status 1"
if "$aemp" snd seed#no-such-port x; then echo "expected a failure"; exit 1; fi

step "stop the nodes (SIGTERM: clean shutdown)"
for p in "${pids[@]}"; do kill "$p"; wait "$p"; done
pids=()

step "demo finished: all steps succeeded"
