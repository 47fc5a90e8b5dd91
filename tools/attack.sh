#!/usr/bin/env bash
# attack.sh - the attacks of issue 7 section 3 against real `aemp run` nodes
# on 127.0.0.1, printing what each cost the target. Not part of CI; about two
# minutes. Uses the build in $AEMP_BUILD_DIR (default build-dev).
#
#   1. strangers out of descriptors: 400 idle connections to a node whose fd
#      limit is 256 (CPU and log lines while they wait; does it serve again)
#   2. pre-auth caps: 200 idle connections from one host, 1000 from 20 hosts
#   3. handshake timeout: how long a silent stranger is kept
#   4. log volume of 1000 strangers sending garbage greetings
#   5. livelock and reflection: 200,000 Global::connect spawns naming ghosts,
#      then one "nodes" message with 5,000 ghosts at one address
#   6. unbounded buffers: 1,000,000 relays of 1 KB to a peer that never reads
#   7. a message nested 1,000 deep
#   8. 600 data connections to aemp::put that stall after their greeting,
#      against a node limited to 1,024 descriptors (issue 18; before: 512
#      up, all 1,024 descriptors taken, a new client not served)
#   9. a log catcher whose reply port is the target's own node port (issue 18)
#  10. relays of 1 MiB to 2,000 made-up nodes
#  11. log forging: newlines, ESC and CR in a request name, a relay target, a
#      greeting, an aemp::put file name
#  12. log floods: 8,000 eval requests, 2,000 unknown functions with 2 KB names
#  13. restarts: aemp restart as often as it goes for 20 s
#  14. aemp::put over an existing file, and of a dot-name
set -u
cd "$(dirname "$0")/.." || exit 1
B=${AEMP_BUILD_DIR:-build-dev}
AEMP=$PWD/$B/cmd/aemp
[ -x "$AEMP" ] || { echo "attack.sh: build first (ninja -C $B)" >&2; exit 2; }
T=$(mktemp -d /tmp/aemp-attack.XXXXXX)
export HOME=$T/home PERL_ANYEVENT_MP_RC=$T/home/.perl-anyevent-mp
mkdir -p "$HOME"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
[ "${KEEP:-0}" = 1 ] && trap 'for p in "${PIDS[@]:-}"; do kill -KILL "$p" 2>/dev/null; done; echo "# kept $T"' EXIT
trap 'exit 1' INT TERM
( sleep 480; kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
PIDS+=($!)

read -ra pc_flags < <(pkg-config --cflags --libs libevent libcjson gnutls libsodium)
cc -std=gnu11 -O1 -I lib -I "$B" -o "$T/attack_peer" tools/attack_peer.c "$B/lib/libaemp.a" \
    "${pc_flags[@]}" -ldl -lm || exit 1
"$AEMP" gensecret >/dev/null
SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$PERL_ANYEVENT_MP_RC")
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }           # KB
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }               # ticks
TCK=$(getconf CLK_TCK)
lines() { wc -l <"$1"; }

# start NAME FDLIMIT [KEY VALUE...]: an `aemp run` node on a free port; sets
# PID[NAME], PORT[NAME]
declare -A PID PORT
start() {
    local p; p=$(port)
    bash -c 'ulimit -n "$1"; shift; exec "$@"' _ "$2" "$AEMP" run nodeid "$1" binds "127.0.0.1:$p" \
        "${@:3}" >"$T/$1.log" 2>&1 &
    PIDS+=($!)
    PID[$1]=$!
    PORT[$1]=$p
    "$AEMP" setseeds "127.0.0.1:$p" >/dev/null # for `aemp cal NODE time`
    for _ in $(seq 100); do grep -q listening "$T/$1.log" && return 0; sleep 0.1; done
    echo "attack.sh: node $1 did not start" >&2; cat "$T/$1.log" >&2; exit 1
}

# hold PORT N SECS SOURCES [SEND]: N connections from 127.0.0.2.. (SOURCES
# hosts; 1 = 127.0.0.1 only), each sending SEND, held SECS; prints
# "greeted closed"
cat >"$T/hold.py" <<'EOF'
import socket, sys, time, select
port, n, secs, nsrc = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
send = sys.argv[5].encode().decode('unicode_escape').encode() if len(sys.argv) > 5 else b""
socks = []
for i in range(n):
    s = socket.socket()
    if nsrc > 1: s.bind(("127.0.0.%d" % (2 + i % nsrc), 0))
    s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    socks.append(s)
    if i % 50 == 49: time.sleep(0.05)
sent = set()
greeted, closed = set(), set()
end = time.time() + secs
while time.time() < end:
    for i, s in enumerate(socks):
        if i in closed: continue
        if send and i not in sent:
            try: s.send(send); sent.add(i)
            except (BlockingIOError, OSError): pass
        try:
            d = s.recv(4096)
            if d: greeted.add(i)
            else: closed.add(i)
        except BlockingIOError: pass
        except OSError: closed.add(i)
    time.sleep(0.05)
print(len(greeted - closed), len(closed))
EOF
hold() { python3 "$T/hold.py" "$@"; }

echo "== 1. 400 idle strangers against a node limited to 256 descriptors"
start fd 256
c0=$(cpu "${PID[fd]}"); l0=$(lines "$T/fd.log"); t0=$(date +%s.%N)
hold "${PORT[fd]}" 400 6 10 >/dev/null
c1=$(cpu "${PID[fd]}"); l1=$(lines "$T/fd.log"); t1=$(date +%s.%N)
ok=no; "$AEMP" setseeds "127.0.0.1:${PORT[fd]}" >/dev/null
"$AEMP" cal --timeout 5 fd time >/dev/null 2>&1 && ok=yes
kill -KILL "${PID[fd]}"
printf '# %.2f s CPU in %.1f s while they waited, %d log lines; serves again afterwards: %s\n' \
    "$(echo "($c1 - $c0) / $TCK" | bc -l)" "$(echo "$t1 - $t0" | bc -l)" $((l1 - l0)) "$ok"
grep -m1 "cannot accept" "$T/fd.log" | sed 's/^/#   log: /'

echo "== 2. pre-auth caps"
start tg 65536
read -r g c < <(hold "${PORT[tg]}" 200 2 1)
echo "# 200 idle connections from 127.0.0.1: $g greeted, $c refused"
read -r g c < <(hold "${PORT[tg]}" 1000 3 20)
echo "# 1000 idle connections from 20 hosts: $g greeted, $c refused"

echo "== 3. handshake timeout (monitor_timeout 30)"
t0=$(date +%s.%N)
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(40)
while s.recv(4096): pass' "${PORT[tg]}"
printf '# a silent stranger was closed after %.1f s\n' "$(echo "$(date +%s.%N) - $t0" | bc -l)"

echo "== 4. log volume"
l0=$(lines "$T/tg.log")
read -r g c < <(hold "${PORT[tg]}" 1000 4 20 'garbage\n\n')
echo "# 1000 strangers sending garbage greetings ($c closed): $(( $(lines "$T/tg.log") - l0 )) log lines"

echo "== 5. livelock and reflection"
r0=$(rss "${PID[tg]}")
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[tg]}" ghosts 200000 5000 | grep '^#'
echo "# target RSS $r0 KB before, $(rss "${PID[tg]}") KB after; log lines about refused Global::connect: $(grep -c "Global::connect for" "$T/tg.log")"
ok=no; "$AEMP" cal --timeout 5 tg time >/dev/null 2>&1 && ok=yes
echo "# target answers afterwards: $ok"

echo "== 6. 1,000,000 relays of 1 KB to a peer that never reads"
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[tg]}" idle >"$T/idle.out" 2>&1 &
IDLE=$!; PIDS+=("$IDLE")
for _ in $(seq 100); do grep -q '^up' "$T/idle.out" && break; sleep 0.1; done
IDLE_ID=$(awk '/^up/ {print $2}' "$T/idle.out")
kill -STOP "$IDLE"
r0=$(rss "${PID[tg]}"); max=$r0
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[tg]}" relay "$IDLE_ID#sink" 1000000 >"$T/relay.out" 2>&1 &
RELAY=$!; PIDS+=("$RELAY")
while kill -0 "$RELAY" 2>/dev/null; do
    r=$(rss "${PID[tg]}"); [ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
    sleep 0.2
done
grep '^#' "$T/relay.out"
echo "# target RSS $r0 KB before, at most $max KB during, $(rss "${PID[tg]}") KB after"
grep -m1 "does not read" "$T/tg.log" | sed 's/^/#   log: /'
kill -KILL "$IDLE" 2>/dev/null

echo "== 7. a message nested 1,000 deep"
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[tg]}" deep | grep '^#'
grep -m1 "nested deeper" "$T/tg.log" | sed 's/^/#   log: /'
echo "# target log: $(lines "$T/tg.log") lines in all"
kill -KILL "${PID[tg]}" # later nodes mesh through the seed; an attacker must not pick tg

echo "== 8. 600 stalled data connections against a node limited to 1,024 descriptors"
mkdir -p "$T/in"
start dc 1024 services "[[\"aemp::put\",\"$T/in\"]]"
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
f0=$(fds "${PID[dc]}"); fmax=$f0
( ulimit -n 4096 2>/dev/null; exec "$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[dc]}" stall 600 ) >"$T/stall.out" 2>&1 &
STALL=$!; PIDS+=("$STALL")
"$AEMP" setseeds "127.0.0.1:${PORT[dc]}" >/dev/null
during=
while kill -0 "$STALL" 2>/dev/null; do
    f=$(fds "${PID[dc]}"); [ -n "$f" ] && [ "$f" -gt "$fmax" ] && fmax=$f
    if [ -z "$during" ] && grep -q '^# stall: 600' "$T/stall.out"; then
        during=no; "$AEMP" cal --timeout 5 dc time >/dev/null 2>&1 && during=yes
    fi
    sleep 0.2
done
grep '^#' "$T/stall.out"
echo "# target descriptors: $f0 before, at most $fmax during (limit 1024); a new client (aemp cal) served while they were held: ${during:-not tried}"
ok=no
"$AEMP" cal --timeout 5 dc time >/dev/null 2>&1 && ok=yes
echo "# target answers afterwards: $ok; log lines about refused data connections: $(grep -c "data connection refused" "$T/dc.log")"

echo "== 9. a log catcher whose reply port is the target's own node port"
start lc 65536
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[lc]}" i18 lcloop | grep '^#'
l0=$(lines "$T/lc.log"); sleep 5
echo "# target log: $(( $(lines "$T/lc.log") - l0 )) lines in the 5 s after the attacker left, $(stat -c %s "$T/lc.log") bytes in all"
grep -m1 "reply port must be" "$T/lc.log" | sed 's/^/#   log: /'
ok=no; "$AEMP" cal --timeout 5 lc time >/dev/null 2>&1 && ok=yes
t0=$(date +%s.%N); kill -TERM "${PID[lc]}"; wait "${PID[lc]}" 2>/dev/null
printf '# target answers: %s; it stopped %.1f s after SIGTERM\n' "$ok" "$(echo "$(date +%s.%N) - $t0" | bc -l)"

echo "== 10. relays of 1 MiB to 2,000 made-up nodes"
start gq 65536
r0=$(rss "${PID[gq]}"); max=$r0
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[gq]}" i18 ghostq 2000 1048576 >"$T/gq.out" 2>&1 &
GQ=$!; PIDS+=("$GQ")
while kill -0 "$GQ" 2>/dev/null; do
    r=$(rss "${PID[gq]}"); [ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
    sleep 0.2
done
grep '^#' "$T/gq.out"
echo "# target RSS $r0 KB before, at most $max KB during, $(rss "${PID[gq]}") KB after; $(grep -c "queues for nodes not connected" "$T/gq.log") log lines about refused relays"
grep -m1 "queues for nodes not connected" "$T/gq.log" | sed 's/^/#   log: /'
kill -KILL "${PID[gq]}"

echo "== 11. log forging"
start lf 65536 services "[[\"aemp::put\",\"$T\"]]"
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[lf]}" i18 forge 10 | grep '^#'
hold "${PORT[lf]}" 5 2 1 'aemp;1;x\x1b[2J\rFORGED-GREETING\n' >/dev/null
printf 'x\n' >"$T/n
2026-12-05 00:00:00 <1> FORGED: put"
"$AEMP" put lf aemp::put "$T/n
2026-12-05 00:00:00 <1> FORGED: put" >/dev/null 2>&1
sleep 1
echo "# lines that begin with a forged stamp: $(grep -c '^2026-12-05 00:00:00 <1> FORGED' "$T/lf.log"); lines with raw ESC or CR: $(grep -c $'[\e\r]' "$T/lf.log"); escaped: $(grep -c 'FORGED' "$T/lf.log")"
grep -m1 'FORGED: request' "$T/lf.log" | sed 's/^/#   log: /'

echo "== 12. log floods"
l0=$(lines "$T/lf.log"); b0=$(stat -c %s "$T/lf.log")
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[lf]}" i18 eval 8000 | grep '^#'
sleep 1
echo "# 8,000 eval requests: $(( $(lines "$T/lf.log") - l0 )) log lines, $(( $(stat -c %s "$T/lf.log") - b0 )) bytes"
l0=$(lines "$T/lf.log"); b0=$(stat -c %s "$T/lf.log")
"$T/attack_peer" "$SECRET" "127.0.0.1:${PORT[lf]}" i18 longname 2000 | grep '^#'
sleep 1
echo "# 2,000 unknown functions with 2 KB names: $(( $(lines "$T/lf.log") - l0 )) log lines, $(( $(stat -c %s "$T/lf.log") - b0 )) bytes"
grep -m1 "similar lines before" "$T/lf.log" | cut -c1-200 | sed 's/^/#   log: /'

echo "== 13. restarts"
start rs 65536
n=0; t0=$SECONDS
while [ $((SECONDS - t0)) -lt 20 ]; do "$AEMP" restart --timeout 2 rs >/dev/null 2>&1; n=$((n + 1)); done
echo "# $n restart requests in 20 s: the node restarted $(( $(grep -c 'node rs running' "$T/rs.log") - 1 )) times"
grep -m1 "refused" "$T/rs.log" | cut -c1-220 | sed 's/^/#   log: /'

echo "== 14. aemp::put"
mkdir -p "$T/in"
start pt 65536 services "[[\"aemp::put\",\"$T/in\"]]"
# (some puts stall with the receiver getting nothing, a separate bug: try again)
putr() { local rc; for _ in 1 2 3 4 5; do timeout 5 "$AEMP" put "$@"; rc=$?; [ "$rc" != 124 ] && return "$rc"; done; return "$rc"; }
printf 'one\n' >"$T/f.txt"; putr pt aemp::put "$T/f.txt" >/dev/null 2>&1
printf 'two\n' >"$T/f.txt"; putr pt aemp::put "$T/f.txt" >/dev/null 2>"$T/put.err"
echo "# a second put of f.txt without --replace: the file holds '$(cat "$T/in/f.txt")'; put said: $(head -c 150 "$T/put.err")"
printf 'x\n' >"$T/.profile"; putr pt aemp::put "$T/.profile" >/dev/null 2>"$T/put.err"
echo "# put of .profile: $([ -e "$T/in/.profile" ] && echo stored || echo refused): $(head -c 150 "$T/put.err")"
