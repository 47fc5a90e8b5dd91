#!/bin/bash
# hostbeat.sh - peers on one host tell their liveness through their
# heartbeat pages (lib/net/hostbeat.c), not probes. Two `aemp run` nodes on
# 127.0.0.1, monitor_timeout M = 2 s, svc_watch on n0, svc_stall on n1:
#  1. both map the other's page (log level 8 says so);
#  2. idle for 3 M: not one byte crosses their link (ss counts the link's
#     bytes); two nodes with AEMP_HOSTBEAT=0 exchange probes in the same
#     time (so the count can see them);
#  3. a node with monitor_timeout 0.5 keeps a peer that beats once a
#     second (monitor_timeout 30);
#  4. n1 stopped (SIGSTOP): n0 reports it down, "peer timed out (its
#     process is stopped or dead)", within 2 M; after SIGCONT it is back;
#  5. a callback of n1 that spins for 3 M: down as "stuck in a callback";
#  6. a callback of n1 that sleeps for 3 M: down as "blocked".
T_LIMIT=150
. "$(dirname "$0")/lib.sh"
need_svc_watch
STALL="$AEMP_BUILD_DIR/tests/libsvc_stall.so"
[ -f "$STALL" ] || { fail "svc_stall built" "$STALL missing"; finish; }
M=2
P0=$(free_port)
P1=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
expect_status "seed, monitor_timeout $M" 0 "$AEMP" setseeds "127.0.0.1:$P0" setmonitor_timeout "$M"

export AEMP_WARNLEVEL=8
start_bg "$T_DIR/n0.log" "$AEMP" run nodeid n0 binds "127.0.0.1:$P0" services "[\"$SO:svc_watch_init\"]"
N0=$BG_PID
start_bg "$T_DIR/n1.log" "$AEMP" run nodeid n1 binds "127.0.0.1:$P1" \
    services "[\"$STALL:svc_stall_init\"]"
N1=$BG_PID
ups() { grep -c '^WATCH up n1 ' "$T_DIR/n0.log"; }
more_ups() { [ "$(ups)" -gt "$1" ]; }
mapped() { grep -q "n1 is on this host (pid $N1)" "$T_DIR/n0.log" &&
    grep -q "n0 is on this host (pid $N0)" "$T_DIR/n1.log"; }
if wait_for 20 mapped; then pass "each maps the other's heartbeat page"; else
    fail "each maps the other's heartbeat page" "no"; dump "$T_DIR/n0.log" "$T_DIR/n1.log"; finish; fi

# link_bytes PORT...: the data bytes sent and received on the established
# TCP connections from or to these ports (both ends of each link)
link_bytes() {
    local f="" p
    for p in "$@"; do f="$f${f:+ or }sport = :$p or dport = :$p"; done
    ss -tinH state established "( $f )" |
        grep -o 'bytes_\(sent\|received\):[0-9]*' | awk -F: '{s += $2} END {print s + 0}'
}
# idle_bytes PORT...: bytes crossing those links in 3 M of idling
idle_bytes() {
    local b0
    b0=$(link_bytes "$@")
    sleep $((3 * M)) # the time the measurement spans, not a wait for an event
    echo $(($(link_bytes "$@") - b0))
}
# settle PORT...: Global's introductions are over (addresses and tables at
# once; each node's addresses passed on by the other 1-3 s after it told
# them, lib/mesh/global.c fwd_due): 4 s without a byte on the links
settle() {
    local i b0
    for i in 1 2 3 4 5 6 7 8; do
        b0=$(link_bytes "$@")
        sleep 4
        [ "$(link_bytes "$@")" = "$b0" ] && return 0
    done
    return 1
}
settle "$P0" "$P1" || fail "the link between n0 and n1 settles" "still busy after 32 s"
got=$(idle_bytes "$P0" "$P1")
if [ "$got" = 0 ]; then pass "an idle link to a peer on this host carries no probes"; else
    fail "an idle link to a peer on this host carries no probes" "$got bytes in $((3 * M)) s"; fi
Q0=$(free_port)
Q1=$(free_port)
AEMP_HOSTBEAT=0 start_bg "$T_DIR/q0.log" "$AEMP" run nodeid q0 binds "127.0.0.1:$Q0" seeds '[]'
AEMP_HOSTBEAT=0 start_bg "$T_DIR/q1.log" "$AEMP" run nodeid q1 binds "127.0.0.1:$Q1" \
    seeds "[\"127.0.0.1:$Q0\"]"
if wait_for 20 grep -q 'node q1 is up' "$T_DIR/q0.log"; then
    got=$(idle_bytes "$Q0" "$Q1")
    if [ "$got" -gt 0 ]; then pass "with AEMP_HOSTBEAT=0 the same link is probed ($got bytes)"; else
        fail "with AEMP_HOSTBEAT=0 the same link is probed" "0 bytes"; fi
else
    fail "q0 and q1 connected" "no"
fi

# a peer with a longer monitor_timeout beats less often (once a second at
# most): a node with monitor_timeout 0.5 waits for two of its beats
F0=$(free_port)
expect_status "profile fast: monitor_timeout 0.5" 0 "$AEMP" profile fast setmonitor_timeout 0.5 \
    setseeds "127.0.0.1:$F0"
expect_status "profile slow: monitor_timeout 30" 0 "$AEMP" profile slow setmonitor_timeout 30 \
    setseeds "127.0.0.1:$F0"
start_bg "$T_DIR/f0.log" "$AEMP" run profile fast nodeid f0 binds "127.0.0.1:$F0" \
    services "[\"$SO:svc_watch_init\"]"
# (f1 also shows that a value other than 0 or 1 leaves the page on, with a word)
AEMP_HOSTBEAT=yes start_bg "$T_DIR/f1.log" "$AEMP" run profile slow nodeid f1 binds 127.0.0.1:0
if wait_for 20 grep -q "f1 is on this host" "$T_DIR/f0.log"; then
    check "AEMP_HOSTBEAT=yes: the page stays on, and the log says why" \
        grep -q "AEMP_HOSTBEAT=yes is neither 0 nor 1: heartbeat pages stay on" "$T_DIR/f1.log"
    sleep 3 # the time the check spans: 6 of f0's monitor_timeouts
    if grep -q '^WATCH down f1 ' "$T_DIR/f0.log"; then
        fail "a peer that beats once a second is alive for monitor_timeout 0.5" \
            "$(grep '^WATCH down f1 ' "$T_DIR/f0.log" | head -2)"
    else
        pass "a peer that beats once a second is alive for monitor_timeout 0.5"
    fi
else
    fail "f0 maps f1's heartbeat page" "$(tail -3 "$T_DIR/f0.log")"
fi

# down_after SINCE TEXT: a "WATCH down n1" line with TEXT in n0's log after
# its first SINCE lines
down_after() {
    tail -n +"$(($1 + 1))" "$T_DIR/n0.log" | grep '^WATCH down n1 ' | grep -qF "$2"
}
t_of() { date +%s.%N; }
within() { echo "$1 <= $2" | bc -l | grep -q 1; }

# 4. stopped
lines=$(wc -l <"$T_DIR/n0.log")
up0=$(ups)
t0=$(t_of)
kill -STOP "$N1"
if wait_for $((4 * M)) down_after "$lines" "peer timed out (its process is stopped or dead)"; then
    dt=$(echo "$(t_of) - $t0" | bc -l)
    if within "$dt" $((2 * M + 1)); then pass "a stopped peer is down after $(printf %.1f "$dt") s"; else
        fail "a stopped peer is down within 2 M" "after $dt s"; fi
else
    fail "a stopped peer is reported down" "$(tail -5 "$T_DIR/n0.log")"
fi
kill -CONT "$N1"
if wait_for 20 more_ups "$up0"; then pass "after SIGCONT it is back"; else
    fail "after SIGCONT it is back" "no new up"; fi
wait_for 20 mapped # the new link maps the page again

# 5. and 6. a callback that does not return; one that blocks
for how in "spin:stuck in a callback" "sleep:its event loop is blocked"; do
    verb=${how%%:*} why=${how#*:}
    lines=$(wc -l <"$T_DIR/n0.log")
    up0=$(ups)
    start_bg "$T_DIR/snd-$verb.log" "$AEMP" snd --quiet --timeout 30 n1#stall "$verb" $((3 * M))
    if wait_for 10 grep -q "^STALL $verb" "$T_DIR/n1.log" &&
        wait_for $((4 * M)) down_after "$lines" "$why"; then
        pass "a peer whose callback does $verb is down: $why"
    else
        fail "a peer whose callback does $verb is down: $why" "$(tail -5 "$T_DIR/n0.log")"
    fi
    if wait_for 30 more_ups "$up0"; then pass "after the $verb it is back"; else
        fail "after the $verb it is back" "no new up"; fi
done
finish
