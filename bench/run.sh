#!/bin/sh
# bench/run.sh - build a release build dir (build-bench) and run every
# benchmark, printing the machine, the date and all figures. Idempotent:
# sets the build dir up only when it is missing, else just rebuilds.
set -eu
cd "$(dirname "$0")/.."
B=build-bench
if [ ! -f "$B/build.ninja" ]; then
    meson setup "$B" --buildtype=release >/dev/null
else
    meson configure "$B" --buildtype=release >/dev/null
fi
ninja -C "$B" bench/bench_local bench/bench_remote bench/bench_mesh bench/bench_dataconn \
    cmd/aemp >/dev/null
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$B/bench/bench_local"
"$B/bench/bench_remote"
"$B/bench/bench_mesh"
"$B/bench/bench_dataconn" "$B/cmd/aemp"
