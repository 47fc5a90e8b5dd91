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
trap 'rm -rf "$tmp"' EXIT
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

# ------------------------------------------------------- real nodes: TODO
# LATER STEPS GO HERE: start real nodes from the configuration above (e.g.
# `aemp run profile seed` in the background, then nodes seeding from it),
# talk to them with `aemp snd/cal/mon/trace`, and stop them again (kill by
# the PIDs started here, wait for them). Keep every process bounded in time
# and reaped by the EXIT trap.

step "demo finished: all steps succeeded"
