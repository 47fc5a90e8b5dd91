#!/usr/bin/env bash
# soak.sh [SECONDS] - 10 `aemp run` nodes on 127.0.0.1 for SECONDS (default
# 60, at most 1800) while one of seven "victim" nodes is killed with SIGKILL
# and restarted every few seconds. Not part of CI. Uses the build in
# $AEMP_BUILD_DIR (default build-dev) and its svc_seq test service.
#
# Each round: a new seq::sink on stable node n1 gets M sequenced messages
# from stable node n2 (all must arrive, in order), and a sink on n0 gets M
# (50 M) from a random victim, which is the one killed half of the time:
# what arrives must be a prefix, in order. At the end: every flow checked, the mesh whole again,
# and descriptors and RSS of every node (first, last, largest).
set -u
cd "$(dirname "$0")/.." || exit 1
DUR=${1:-60}
[ "$DUR" -gt 1800 ] && DUR=1800
B=${AEMP_BUILD_DIR:-build-dev}
AEMP=$PWD/$B/cmd/aemp
SO=$PWD/$B/tests/libsvc_seq.so
if [ ! -x "$AEMP" ] || [ ! -f "$SO" ]; then echo "soak.sh: build first (ninja -C $B)" >&2; exit 2; fi
M=${SOAK_MSGS:-20000}
VM=$((M * 50)) # victim flows: long enough to be cut by a kill now and then
T=$(mktemp -d /tmp/aemp-soak.XXXXXX)
export HOME=$T/home PERL_ANYEVENT_MP_RC=$T/home/.perl-anyevent-mp AEMP_PROFILE_DIR=$PWD/profiles
mkdir -p "$HOME"
declare -a PID PORT
cleanup() {
    for p in "${PID[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
( sleep $((DUR + 120)); kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
WD=$!

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in $(seq 0 9); do PORT[i]=$(port); done
"$AEMP" gensecret setseeds "127.0.0.1:${PORT[0]},127.0.0.1:${PORT[1]}" >/dev/null

start() { # start I
    "$AEMP" run nodeid "n$1" binds "127.0.0.1:${PORT[$1]}" services "[\"$SO:svc_seq_init\"]" \
        >>"$T/n$1.log" 2>&1 &
    PID[$1]=$!
}
for i in $(seq 0 9); do start "$i"; done
a() { timeout 20 "$AEMP" "$@" 2>>"$T/client.err"; }
for i in $(seq 0 9); do
    for _ in $(seq 100); do a cal --timeout 1 "n$i" time >/dev/null && break; sleep 0.1; done
done

declare -A FD0 FD1 FDMAX RSS0 RSS1 RSSMAX
sample() {
    local i f r
    for i in $(seq 0 9); do
        f=$(find "/proc/${PID[$i]}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        r=$(awk '/VmRSS/ {print $2}' "/proc/${PID[$i]}/status" 2>/dev/null)
        [ -z "$r" ] && continue
        [ -z "${FD0[$i]:-}" ] && FD0[$i]=$f && RSS0[$i]=$r
        FD1[$i]=$f; RSS1[$i]=$r
        [ "$f" -gt "${FDMAX[$i]:-0}" ] && FDMAX[$i]=$f
        [ "$r" -gt "${RSSMAX[$i]:-0}" ] && RSSMAX[$i]=$r
    done
}

cut=0 rounds=0 kills=0 stable_ok=0 stable_bad=0 victim_ok=0 victim_bad=0 delivered=0
check() { # check ROUND: the flows of that round
    local out got ord
    out=$(a cal --timeout 5 "n1#s$1" count)
    got=${out%,*}; ord=${out#*,}
    if [ "$out" = "$M,true" ]; then stable_ok=$((stable_ok + 1)); delivered=$((delivered + M))
    else stable_bad=$((stable_bad + 1)); echo "# round $1: stable flow n2 -> n1: '$out', wanted '$M,true'"; fi
    out=$(a cal --timeout 5 "n0#v$1" count)
    got=${out%,*}; ord=${out#*,}
    if [ "$ord" = true ] && [ -n "$got" ] && [ "$got" -le "$VM" ]; then
        victim_ok=$((victim_ok + 1)); delivered=$((delivered + got))
        [ "$got" -lt "$VM" ] && cut=$((cut + 1))
    else victim_bad=$((victim_bad + 1)); echo "# round $1: victim flow -> n0: '$out' (wanted a prefix, in order)"; fi
}

sample
t_end=$(( $(date +%s) + DUR ))
while [ "$(date +%s)" -lt "$t_end" ]; do
    r=$rounds
    v=$((3 + RANDOM % 7))
    a snd --quiet n1 AnyEvent::MP::_spawn "s$r" seq::sink
    a snd --quiet n0 AnyEvent::MP::_spawn "v$r" seq::sink
    a snd --quiet n2 seq::source "n1#s$r" "$M"
    a snd --quiet "n$v" seq::source "n0#v$r" "$VM" &
    SP=$!
    sleep 0.$((RANDOM % 5))
    k=$((3 + RANDOM % 7))
    [ $((RANDOM % 2)) = 0 ] && k=$v
    kill -KILL "${PID[$k]}"; wait "${PID[$k]}" 2>/dev/null
    kills=$((kills + 1))
    start "$k"
    wait "$SP" 2>/dev/null
    sleep 2
    check "$r"
    sample
    rounds=$((rounds + 1))
done

sleep 3
mesh=$(a cal --timeout 5 --json n0 up_nodes | python3 -c 'import json,sys; print(len([n for n in json.load(sys.stdin) if n.startswith("n")]))' 2>/dev/null)
sample
echo "# soak: $DUR s, $rounds rounds, $kills kill -9 and restart, $M messages per stable flow"
echo "# stable flows n2 -> n1: $stable_ok complete and in order, $stable_bad not"
echo "# victim flows -> n0 ($VM each): $victim_ok in-order prefixes ($cut incomplete when counted: killed or still sending), $victim_bad not"
echo "# messages checked: $delivered"
echo "# n0 sees ${mesh:-?} of the 9 other nodes up at the end"
echo "# node  fds first/last/max  RSS KB first/last/max"
for i in $(seq 0 9); do
    printf '# n%-3s %4s %4s %4s   %7s %7s %7s\n' "$i" "${FD0[$i]:-?}" "${FD1[$i]:-?}" "${FDMAX[$i]:-?}" \
        "${RSS0[$i]:-?}" "${RSS1[$i]:-?}" "${RSSMAX[$i]:-?}"
done
echo "# (n3..n9 are restarted: their figures are of the processes seen)"
[ "$stable_bad" = 0 ] && [ "$victim_bad" = 0 ] && [ "${mesh:-0}" = 9 ]
