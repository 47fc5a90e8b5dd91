#!/bin/sh
# bench/run.sh - build a release build dir (build-bench) and run every
# benchmark, printing the machine, the date and all figures. Idempotent:
# sets the build dir up only when it is missing, else just rebuilds.
#
# Every figure is printed beside its baseline from the same run (raw TCP,
# building the message alone), with page faults and system time per
# message where it matters; before each benchmark a line says how busy the
# machine is (load average, CPU steal over one second) and warns when it
# looks busy: on shared machines absolute figures vary by 4x from day to
# day, so compare the ratios of one run.
set -eu
cd "$(dirname "$0")/.."
B=build-bench
if [ ! -f "$B/build.ninja" ]; then
    meson setup "$B" --buildtype=release >/dev/null
else
    meson configure "$B" --buildtype=release >/dev/null
fi
ninja -C "$B" bench/bench_local bench/bench_remote bench/bench_mesh bench/bench_dataconn bench/bench_scrape \
    cmd/aemp >/dev/null

NCPU=$(nproc)

# cpu_ticks: "STEAL TOTAL" from the first line of /proc/stat.
cpu_ticks() {
    awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit }' /proc/stat
}

# machine_note WHAT: load and steal now; a warning when the machine looks
# busy (load above the CPU count, or more than 5% of the time stolen).
machine_note() {
    t0=$(cpu_ticks)
    sleep 1
    t1=$(cpu_ticks)
    steal=$(echo "$t0 $t1" | awk '{ d = $4 - $2; printf "%.1f", (d > 0 ? 100 * ($3 - $1) / d : 0) }')
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(awk -v l="$load" -v n="$NCPU" -v s="$steal" 'BEGIN { print (l > n || s > 5) ? 1 : 0 }')
    if [ "$busy" = 1 ]; then
        echo "machine before $1: load $load on $NCPU cpus, steal $steal% - BUSY: absolute figures are low and noisy, read the ratios"
    else
        echo "machine before $1: load $load on $NCPU cpus, steal $steal%"
    fi
}

echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $NCPU cpus, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
machine_note bench_local
"$B/bench/bench_local"
machine_note bench_remote
"$B/bench/bench_remote"
machine_note bench_mesh
"$B/bench/bench_mesh"
machine_note bench_dataconn
"$B/bench/bench_dataconn" "$B/cmd/aemp"
machine_note bench_scrape
"$B/bench/bench_scrape"
machine_note "the end"
