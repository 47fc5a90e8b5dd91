#!/bin/bash
# mesh_busy.sh - a mesh on a saturated machine never reports a live node
# down (issue 15): MESH_NODES (default 60) `aemp run` nodes with
# monitor_timeout 3 start at once through one seed while one busy process
# per CPU at nice -10 (MESH_BUSY_NICE) takes about 90 % of every core;
# they form a full mesh and then idle,
# and not one node-down event or monitor firing may happen, while the
# mesh forms or while it idles (late event loops, probes answered late,
# dial storms and the pre-auth caps all used to cause some). Then one node
# is killed with SIGKILL and every other node sees it go down. Every node
# runs the svc_watch service (tests/e2e/svc_watch.c). The busy processes
# are started and reaped here, by PID.
T_LIMIT=400
. "$(dirname "$0")/lib.sh"
N=${MESH_NODES:-60}
IDLE=${MESH_IDLE:-15}

need_svc_watch
ulimit -n "$(ulimit -Hn)" 2>/dev/null
PS=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout 3

# one busy loop per CPU, at a higher priority than the nodes: the nodes'
# loops run late (on the old main: 10 false node-downs, peers timed out)
for _ in $(seq "$(nproc)"); do
    start_bg /dev/null nice -n "${MESH_BUSY_NICE:--10}" bash -c 'while :; do :; done'
done

start_mesh "$N" "$PS"

# nodes that have seen every other node come up
meshed() {
    awk -v n=$((N - 1)) '$1 == "WATCH" && $2 == "up" && !((FILENAME, $3) in s) {
        s[FILENAME, $3] = 1; c[FILENAME]++ }
        END { m = 0; for (f in c) if (c[f] >= n) m++; print m }' "$T_DIR"/n*.log
}
all_meshed() { [ "$(meshed)" -ge "$N" ]; }
t0=$(date +%s%N)
if wait_for 200 all_meshed; then
    pass "$N nodes on busy CPUs form a full mesh ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else
    fail "$N nodes on busy CPUs form a full mesh" "$(meshed) of $N meshed"
fi
sleep "$IDLE"
events() { cat "$T_DIR"/n*.log | grep '^WATCH \(down\|fired\) '; }
downs=$(events | grep -c '^WATCH down ')
fires=$(events | grep -c '^WATCH fired ')
echo "# forming and $IDLE s idle on busy CPUs: $downs node-down events, $fires monitor firings"
[ "$downs" = 0 ] && pass "no node-down while nothing died" ||
    fail "no node-down while nothing died" "$(events | grep '^WATCH down ' | head -5)"
[ "$fires" = 0 ] && pass "no monitor fires while nothing died" ||
    fail "no monitor fires while nothing died" "$(events | grep '^WATCH fired ' | head -5)"
if [ "$downs" != 0 ]; then
    echo "# why connections closed (all nodes):"
    cat "$T_DIR"/n*.log | grep ' closed: ' | sed 's/.*closed: //' | sort | uniq -c |
        sort -rn | head -8 | sed 's/^/#   /'
fi

# kill -9 one node: every other node sees it go down
V=$((N - 1))
stop_pid "${PIDS[$V]}" KILL
seen_down() {
    local i
    for i in $(seq 0 $((N - 2))); do grep -q "^WATCH down n$V " "$T_DIR/n$i.log" || return 1; done
}
if wait_for 60 seen_down; then pass "every node sees the killed n$V go down"; else
    fail "every node sees the killed n$V go down" "missing on some node"; fi
others=$(events | grep -vc "^WATCH [a-z]* n$V ")
[ "$others" = 0 ] && pass "no event for a node that did not die" ||
    fail "no event for a node that did not die" "$others"
# End the survivors before finish, all at once, and reap them: under
# LeakSanitizer each runs its leak check at exit, which the KILL of
# t_cleanup (0.2 s after its TERM) cut short on busy CPUs ("Unable to get
# registers from thread"); their reports, if any, are read by finish.
for i in $(seq 0 $((N - 2))); do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
for i in $(seq 0 $((N - 2))); do wait "${PIDS[$i]}" 2>/dev/null; done
finish
