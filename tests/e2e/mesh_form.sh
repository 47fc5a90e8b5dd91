#!/bin/bash
# mesh_form.sh - 40 `aemp run` nodes started at once through one seed form a
# full mesh without a single node-down event or monitor firing (connections
# that race while the mesh forms are resolved without reporting the node
# down), without the "do two nodes use the node ID" warning and without
# logging the losers of those races as refused greetings; then one
# node is killed and every other node sees exactly one node-down and one
# monitor firing, for that node only. Every node runs the svc_watch service
# (tests/e2e/svc_watch.c), which prints a line per node up/down and per
# monitor firing on a port of each node that came up.
# MESH_NODES overrides the number of nodes.
T_LIMIT=280
. "$(dirname "$0")/lib.sh"
N=${MESH_NODES:-40}

need_svc_watch
PS=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
# monitor_timeout is long: on a busy machine a slow start must not count as
# a node-down; the test is about races, not timeouts.
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout 60 \
    setconnect_interval 1

start_mesh "$N" "$PS"

# how many distinct nodes node $1 has seen come up
ups() { grep '^WATCH up ' "$T_DIR/n$1.log" | awk '{print $3}' | sort -u | wc -l; }
all_meshed() {
    local i
    for i in $(seq 0 $((N - 1))); do [ "$(ups "$i")" -ge $((N - 1)) ] || return 1; done
}
t0=$(date +%s%N)
if wait_for 200 all_meshed; then
    pass "$N nodes form a full mesh ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else
    short=""
    for i in $(seq 0 $((N - 1))); do short="$short n$i:$(ups "$i")"; done
    fail "$N nodes form a full mesh" "up counts:$short"
fi
count() { cat "$T_DIR"/n*.log | grep -c "$1"; }
downs=$(count '^WATCH down ')
fires=$(count '^WATCH fired ')
warns=$(count 'do two nodes use the node ID')
echo "# while meshing: $downs node-down events, $fires monitor firings, $warns node-ID warnings"
[ "$downs" = 0 ] && pass "no node-down while the mesh forms" ||
    fail "no node-down while the mesh forms" "$(grep -h '^WATCH down ' "$T_DIR"/n*.log | head -5)"
[ "$fires" = 0 ] && pass "no monitor fires while the mesh forms" ||
    fail "no monitor fires while the mesh forms" "$(grep -h '^WATCH fired ' "$T_DIR"/n*.log | head -5)"
# the connections that lose a race are closed quietly (level 7), not as
# greetings refused (level 5, the default level here)
refused=$(count 'refused our greeting')
[ "$refused" = 0 ] && pass "no connection lost in a race is logged as a refused greeting" ||
    fail "no connection lost in a race is logged as a refused greeting" \
        "$refused lines: $(grep -h 'refused our greeting' "$T_DIR"/n*.log | head -2)"
[ "$warns" = 0 ] && pass "no duplicate-node-ID warning while the mesh forms" ||
    fail "no duplicate-node-ID warning while the mesh forms" \
        "$(grep -h 'do two nodes' "$T_DIR"/n*.log | head -3)"

# Kill one node: every other node sees it go down once, and nothing else.
V=$((N - 1))
stop_pid "${PIDS[$V]}" KILL
seen_down() {
    local i
    for i in $(seq 0 $((N - 2))); do
        grep -q "^WATCH fired n$V " "$T_DIR/n$i.log" || return 1
        grep -q "^WATCH down n$V " "$T_DIR/n$i.log" || return 1
    done
}
if wait_for 60 seen_down; then pass "every node sees n$V go down"; else
    fail "every node sees n$V go down" "missing on some node"; fi
sleep 1 # a second chance for stray events to show up
downs=$(count '^WATCH down ')
fires=$(count '^WATCH fired ')
others=$(cat "$T_DIR"/n*.log | grep '^WATCH \(down\|fired\) ' | grep -vc "^WATCH [a-z]* n$V ")
echo "# after killing n$V: $downs node-down events, $fires monitor firings ($others for other nodes)"
[ "$downs" = $((N - 1)) ] && pass "exactly $((N - 1)) node-down events" ||
    fail "exactly $((N - 1)) node-down events" "got $downs"
[ "$fires" = $((N - 1)) ] && pass "exactly $((N - 1)) monitor firings" ||
    fail "exactly $((N - 1)) monitor firings" "got $fires"
[ "$others" = 0 ] && pass "no event for a node that did not die" ||
    fail "no event for a node that did not die" "$others"
finish
