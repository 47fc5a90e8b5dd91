#!/bin/bash
# dup_nodeid.sh - two live processes claiming one node ID are warned about,
# and only then (mesh_form.sh checks that a forming mesh is quiet too):
#  - `aemp` clients, which dial both seeds, leave no warning on the seeds;
#  - a node "twin" is up; a second process also called "twin" keeps calling
#    the seed: the seed refuses it, probes the connected twin, which
#    answers, and logs "... do two nodes use the node ID twin?" once. The
#    first twin stays connected all along.
T_LIMIT=90
. "$(dirname "$0")/lib.sh"
SO="$AEMP_BUILD_DIR/tests/libsvc_watch.so"
PS=$(free_port)
PS2=$(free_port)
expect_status "config" 0 "$AEMP" gensecret setseeds "127.0.0.1:$PS,127.0.0.1:$PS2" \
    setconnect_interval 0.5 setmonitor_timeout 10
SVC="[\"$SO:svc_watch_init\"]"
start_bg "$T_DIR/s.log" "$AEMP" run nodeid seed binds "127.0.0.1:$PS" services "$SVC"
start_bg "$T_DIR/s2.log" "$AEMP" run nodeid seed2 binds "127.0.0.1:$PS2"
seeds_up() { "$AEMP" cal --timeout 2 seed2 info >/dev/null 2>&1; }
if wait_for 20 seeds_up; then pass "two seeds up"; else fail "two seeds up" "no answer"; finish; fi
for i in 1 2 3 4 5; do
    "$AEMP" cal --timeout 5 seed info >/dev/null 2>&1 && "$AEMP" cal --timeout 5 seed2 info >/dev/null 2>&1 ||
        fail "client $i" "cal failed"
done
n=$(cat "$T_DIR/s.log" "$T_DIR/s2.log" | grep -c 'do two nodes use')
[ "$n" = 0 ] && pass "10 clients dialing both seeds: no node-ID warning" ||
    fail "clients dialing both seeds: no node-ID warning" "$(grep -h 'do two nodes' "$T_DIR"/s*.log | head -2)"
start_bg "$T_DIR/t1.log" "$AEMP" run nodeid twin binds "127.0.0.1:0"
up() { grep -q '^WATCH up twin ' "$T_DIR/s.log"; }
if wait_for 20 up; then pass "seed and twin connected"; else
    fail "seed and twin connected" "$(tail -5 "$T_DIR/s.log")"; finish; fi
start_bg "$T_DIR/t2.log" "$AEMP" run nodeid twin binds "127.0.0.1:0"
warned() { grep -q 'do two nodes use the node ID twin?' "$T_DIR/s.log"; }
if wait_for 30 warned; then pass "the seed warns about two nodes with the node ID twin"; else
    fail "the seed warns about two nodes with the node ID twin" "$(tail -5 "$T_DIR/s.log")"; fi
sleep 2
n=$(grep -c 'do two nodes use the node ID twin?' "$T_DIR/s.log")
[ "$n" = 1 ] && pass "warned once" || fail "warned once" "$n times"
[ "$(grep -c '^WATCH down twin' "$T_DIR/s.log")" = 0 ] && pass "the first twin stays connected" ||
    fail "the first twin stays connected" "$(grep '^WATCH down' "$T_DIR/s.log")"
finish
