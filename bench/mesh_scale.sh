#!/bin/bash
# bench/mesh_scale.sh - many `aemp run` nodes on one host (issue 15): start
# N nodes at once through one seed on 127.0.0.1, wait for the full mesh,
# let it idle, kill -9 a tenth of them, and print one table row:
#
#   | nodes | full mesh after | node downs while idle (none died) |
#   | idle CPU per node | a kill seen by all after | memory per connection |
#   | memory per node |
#
# "full mesh after": from the start of the last node to the moment the last
# node saw its N-1th peer come up. "node downs": node-down events and
# monitor firings (every node monitors every peer) from the start until the
# kill, while no node died. "idle CPU": user+system time of all nodes over
# the idle window, per node and second. "a kill seen by all": from the kill
# to the last survivor's node-down event for the last killed node. "memory
# per connection": (mean RSS of the meshed nodes - RSS of a lone node) /
# (N-1). Also printed, as a comment line: the CPU time (user+system) all
# nodes used from their start until the full mesh was seen, and the bytes
# they wrote (wchar of /proc/PID/io: sockets, and their logs at
# AEMP_WARNLEVEL 5), counts that a loaded machine does not distort the way
# it distorts wall time, and the memory figures from the proportional set
# size (PSS), which counts shared pages (the heartbeat pages of peers) once.
# Measures only; the tests do not run it.
#
# Usage: bash bench/mesh_scale.sh [N] [MONITOR_TIMEOUT]
# Environment: IDLE (s, default 20), CPUS (a taskset CPU list every node is
# pinned to, e.g. CPUS=0), BUILD (build dir, default build), KEEP=1 keeps
# the temp dir, MESH_LIMIT (s to wait for the full mesh, default 120).
# Needs the build's cmd/aemp and tests/libsvc_watch.so (the svc_watch
# service prints the events counted here). Raises RLIMIT_NOFILE as far as
# the hard limit allows. Reaps every process it starts, by PID.
set -u
N=${1:-300}
MT=${2:-5}
IDLE=${IDLE:-20}
MESH_LIMIT=${MESH_LIMIT:-120}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$ROOT/build}
AEMP=$B/cmd/aemp
SO=$B/tests/libsvc_watch.so
for f in "$AEMP" "$SO"; do
    [ -e "$f" ] || { echo "mesh_scale: $f missing (build first: ninja -C $B)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 64)) ]; then
    echo "mesh_scale: RLIMIT_NOFILE $(ulimit -n) is below $((N + 64)) descriptors per node" >&2
    exit 1
fi
D=$(mktemp -d "${TMPDIR:-/tmp}/mesh_scale.XXXXXX")
export HOME=$D/home PERL_ANYEVENT_MP_RC=$D/home/.perl-anyevent-mp AEMP_WARNLEVEL=${AEMP_WARNLEVEL:-5}
export AEMP_PROFILE_DIR=$ROOT/profiles
unset AEMP_RC
mkdir -p "$HOME"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "# kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
now() { date +%s.%N; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AEMP" gensecret >/dev/null || exit 1
"$AEMP" setseeds "127.0.0.1:$port" setmonitor_timeout "$MT" >/dev/null || exit 1
SVC="[\"$SO:svc_watch_init\"]"
PIN=()
[ -n "${CPUS:-}" ] && PIN=(taskset -c "$CPUS")

# a lone node (no seeds, nobody calls it) for the base RSS and PSS, measured
# beside the meshed nodes (so shared pages are shared as widely); its seeds
# come from a profile (the arguments of `aemp run` do not override the
# file's seeds, as in 1.30)
"$AEMP" profile lone setseeds '' >/dev/null || exit 1
"${PIN[@]}" "$AEMP" run profile lone nodeid lone binds 127.0.0.1:0 services "$SVC" \
    >"$D/lone.log" 2>&1 &
LONE=$!
PIDS+=("$LONE")
sleep 1

for i in $(seq 0 $((N - 1))); do
    bind=127.0.0.1:0
    [ "$i" = 0 ] && bind=127.0.0.1:$port
    "${PIN[@]}" "$AEMP" run nodeid "n$i" binds "$bind" services "$SVC" >"$D/n$i.log" 2>&1 &
    PIDS+=("$!")
done
t_last=$(now)

# CPU ticks (user+system) and bytes written by all nodes so far (bash's
# own read: a process per node would take minutes on a machine these nodes
# saturate; the command name "aemp" holds no space)
cpu_ticks() {
    local p sum=0 f
    for p in "${PIDS[@]:1}"; do
        read -ra f 2>/dev/null <"/proc/$p/stat" && sum=$((sum + f[13] + f[14]))
    done
    echo "$sum"
}
written() {
    local p sum=0 k v
    for p in "${PIDS[@]:1}"; do
        while read -r k v; do
            [ "$k" = wchar: ] && sum=$((sum + v)) && break
        done 2>/dev/null <"/proc/$p/io"
    done
    echo "$sum"
}
hz=$(getconf CLK_TCK)

# distinct peers each node has seen come up; all meshed when each has N-1
meshed() {
    awk -v n=$((N - 1)) '$1 == "WATCH" && $2 == "up" { s[FILENAME " " $3] = 1 }
        END { for (k in s) { split(k, a, " "); c[a[1]]++ }
              m = 0; for (f in c) if (c[f] >= n) m++; print m }' "$D"/n*.log
}
while :; do
    m=$(meshed)
    [ "$m" -ge "$N" ] && break
    if [ "$(echo "$(now) - $t_last > $MESH_LIMIT" | bc)" = 1 ]; then
        echo "mesh_scale: only $m of $N nodes meshed after $MESH_LIMIT s" >&2
        break
    fi
    sleep 0.5
done
form_cpu=$(echo "$(cpu_ticks) / $hz" | bc -l | xargs printf '%.1f')
form_mb=$(echo "$(written) / 1000000" | bc -l | xargs printf '%.1f')
# when each node saw its N-1th distinct peer: the latest of those
mesh_at=$(awk -v n=$((N - 1)) '$1 == "WATCH" && $2 == "up" && !((FILENAME, $3) in s) {
        s[FILENAME, $3] = 1; c[FILENAME]++
        if (c[FILENAME] == n) { t = substr($NF, 3) + 0; if (t > max) max = t } }
        END { printf "%.3f", max }' "$D"/n*.log)
if [ "$m" -ge "$N" ]; then
    mesh_s=$(echo "$mesh_at - $t_last" | bc -l | xargs printf '%.1f s')
else
    mesh_s="not ($m/$N in ${MESH_LIMIT} s)"
fi

# idle: CPU of all nodes over IDLE seconds
sleep 2
c0=$(cpu_ticks); t0=$(now)
sleep "$IDLE"
c1=$(cpu_ticks); t1=$(now)
cpu=$(echo "($c1 - $c0) * 1000 / $hz / ($t1 - $t0) / $N" | bc -l | xargs printf '%.2f ms/s')
# mean of a "KEY: N kB" line over the nodes' /proc/PID/FILE, in one awk
mean_kb() {
    local p files=()
    for p in "${PIDS[@]:1}"; do files+=("/proc/$p/$2"); done
    awk -v k="$1:" '$1 == k {s += $2; n++} END {printf "%d", n ? s / n : 0}' "${files[@]}"
}
lone_kb=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$LONE/status")
lone_pss=$(awk '$1 == "Pss:" {print $2}' "/proc/$LONE/smaps_rollup")
rss_kb=$(mean_kb VmRSS status)
pss_kb=$(mean_kb Pss smaps_rollup)
per_conn=$(echo "($rss_kb - $lone_kb) / ($N - 1)" | bc -l | xargs printf '%.1f KB')
per_node=$(echo "$rss_kb / 1024" | bc -l | xargs printf '%.1f MB')
pss_conn=$(echo "($pss_kb - $lone_pss) / ($N - 1)" | bc -l | xargs printf '%.1f KB')
pss_node=$(echo "$pss_kb / 1024" | bc -l | xargs printf '%.1f MB')

downs=$(cat "$D"/n*.log | grep -c '^WATCH down ')
fires=$(cat "$D"/n*.log | grep -c '^WATCH fired ')

# kill -9 a tenth (never the seed): every survivor must see each go down
K=$((N / 10)); [ "$K" -lt 1 ] && K=1
VICTIMS=$(seq 1 $((N - 1)) | shuf -n "$K" | sort -n)
t_kill=$(now)
for v in $VICTIMS; do kill -KILL "${PIDS[$((v + 1))]}"; done
for v in $VICTIMS; do wait "${PIDS[$((v + 1))]}" 2>/dev/null; done
vic_re=$(for v in $VICTIMS; do printf 'n%s\n' "$v"; done)
survivors=()
for i in $(seq 0 $((N - 1))); do echo "$VICTIMS" | grep -qx "$i" || survivors+=("$D/n$i.log"); done
seen_all() {
    awk -v want="$K" -v t0="$t_kill" 'BEGIN { while ((getline v < "/dev/stdin") > 0) vic[v] = 1 }
        $1 == "WATCH" && $2 == "down" && ($3 in vic) && !((FILENAME, $3) in s) {
            t = substr($NF, 3) + 0; if (t < t0) next
            s[FILENAME, $3] = 1; c[FILENAME]++; if (t > max) max = t }
        END { ok = 0; for (f in c) if (c[f] >= want) ok++; printf "%d %.3f\n", ok, max }' \
        "${survivors[@]}" <<<"$vic_re"
}
t_limit=$(echo "$t_kill + 4 * $MT + 10" | bc)
while :; do
    read -r ok last <<<"$(seen_all)"
    [ "$ok" -ge "${#survivors[@]}" ] && break
    [ "$(echo "$(now) > $t_limit" | bc)" = 1 ] && break
    sleep 0.5
done
if [ "$ok" -ge "${#survivors[@]}" ]; then
    kill_s=$(echo "$last - $t_kill" | bc -l | xargs printf '%.1f s')
else
    kill_s="not ($ok/${#survivors[@]} survivors)"
fi
# events for nodes that did not die, after the kill too
false_after=$(cat "${survivors[@]}" | grep '^WATCH \(down\|fired\) ' |
    awk '{print $3}' | sed 's/#.*//' | grep -cvxF -f <(echo "$vic_re"))

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $N nodes, monitor_timeout $MT, idle window $IDLE s${CPUS:+, all on CPUs $CPUS}," \
    "$K killed; load average at the end: $load"
echo "# until the full mesh was seen: $form_cpu CPU s in all nodes, $form_mb MB written"
echo "# proportional set size (PSS: a page mapped by k processes counts 1/k in each):" \
    "$pss_conn per connection, $pss_node per node (RSS counts in full each peer's" \
    "heartbeat page a node maps: 4 KB per connection to a node on this host)"
echo "# node downs + monitor fires for live nodes: $downs + $fires before the kill," \
    "$false_after in all (after the kill too)"
echo "| nodes | full mesh after | node downs while idle (none died) | idle CPU per node |" \
    "a kill seen by all after | memory per connection | memory per node |"
echo "|---|---|---|---|---|---|---|"
echo "| $N${CPUS:+ (CPU $CPUS)} | $mesh_s | $downs | $cpu | $kill_s | $per_conn | $per_node |"
