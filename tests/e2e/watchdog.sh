#!/bin/bash
# watchdog.sh - `aemp run` with autorestart: a hung node (SIGSTOP: no
# heartbeat) and a crashed node (kill -9) are restarted by the watchdog with
# back-off and a logged reason; `aemp restart NODE` makes a node start again
# in place (same PID, same node ID, services read again from the file);
# SIGTERM to the watchdog stops both; a node that cannot start is not
# restarted; without autorestart there is no watchdog but restart works.
T_LIMIT=120
. "$(dirname "$0")/lib.sh"

port=$(free_port)
log=$T_DIR/wd.log
"$AEMP" gensecret seeds "127.0.0.1:$port" profile wdp nodeid wd binds "127.0.0.1:$port" \
    autorestart 1 >/dev/null
in=$T_DIR/in
mkdir -p "$in"
printf 'hello\n' >"$T_DIR/file"

# the PID the watchdog started last
child() { grep -o 'node wd started (pid [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$'; }
up() { "$AEMP" cal --timeout 1 wd info >/dev/null 2>&1; }
started_count() { grep -c 'node wd started (pid' "$log"; }

# what the node tells a service manager (as notify.sh): from the child
sock=$T_DIR/notify.sock
nlog=$T_DIR/notify.log
notify_listener "$sock" "$nlog"
have_notify=0
ldd "$AEMP" 2>/dev/null | grep -q libsystemd && have_notify=1

start_bg "$log" env NOTIFY_SOCKET="$sock" "$AEMP" run profile wdp heartbeat 2
W=$BG_PID
if wait_for 20 up; then pass "node up under the watchdog"; else fail "node up under the watchdog" "$(cat "$log")"; fi
check "the watchdog says it supervises" grep -q "watchdog: supervising node wd (heartbeat 2 s)" "$log"
c1=$(child)
[ -n "$c1" ] && [ "$c1" != "$W" ] && pass "the node is a child process" || fail "the node is a child process" "$c1 / $W"

# hung: stopped, so no heartbeat
kill -STOP "$c1"
if wait_for 20 bash -c "[ \$(grep -c 'node wd started (pid' '$log') -ge 2 ]"; then
    pass "hung node restarted"; else fail "hung node restarted" "$(cat "$log")"; fi
check "the reason is logged" grep -q "node wd (pid $c1) hung: no heartbeat for 2 s; killing it" "$log"
check "the hung process is gone" bash -c "! kill -0 $c1 2>/dev/null"
if wait_for 20 up; then pass "restarted node answers"; else fail "restarted node answers" "$(tail -5 "$log")"; fi
if [ "$have_notify" = 1 ]; then
    if wait_for 10 bash -c "[ \$(grep -c '^READY=1' '$nlog') -ge 2 ]"; then
        pass "each node start tells the service manager READY=1 (NotifyAccess=all)"
    else fail "READY=1 per start" "$(cat "$nlog")"; fi
else echo "ok - # SKIP READY=1: aemp built without libsystemd"; fi

# crashed: kill -9
c2=$(child)
kill -KILL "$c2"
if wait_for 20 bash -c "[ \$(grep -c 'node wd started (pid' '$log') -ge 3 ]"; then
    pass "crashed node restarted"; else fail "crashed node restarted" "$(cat "$log")"; fi
check "the crash is logged" grep -q "node wd crashed: killed by signal 9 (Killed); restarting in 2 s" "$log"
check "with back-off (1 s, then 2 s)" grep -q "hung (no heartbeat for 2 s); restarting in 1 s" "$log"
if wait_for 20 up; then pass "node answers after the crash"; else fail "node answers after the crash" "$(tail -5 "$log")"; fi

# aemp restart: same process, the services of the file read again
c3=$(child)
expect_status "no aemp::put before" 1 "$AEMP" put --timeout 3 wd aemp::put "$T_DIR/file"
"$AEMP" profile wdp setservices "[[\"aemp::put\",\"$in\"]]" >/dev/null
n=$(grep -c 'node wd running' "$log")
expect_status "aemp restart" 0 "$AEMP" restart wd
check "it prints the node's confirmation" grep -qx '"restarting"' "$T_DIR/last.out"
check "the node logs who asked" grep -q "restart requested by anon/.*: stopping node wd to start it again" "$log"
if wait_for 20 bash -c "[ \$(grep -c 'node wd running' '$log') -gt $n ]" && wait_for 20 up; then
    pass "the node runs again"; else fail "the node runs again" "$(tail -5 "$log")"; fi
[ "$(child)" = "$c3" ] && kill -0 "$c3" && pass "in place: same PID, not a crash" ||
    fail "in place: same PID, not a crash" "$(child) vs $c3"
if [ "$have_notify" = 1 ]; then
    # the service manager sees a reload, not a stop: RELOADING=1, then READY=1
    if wait_for 10 bash -c "grep -v '^STATUS' '$nlog' | grep -A1 '^RELOADING=1 | STATUS=restarting' | grep -q '^READY=1'"; then
        pass "aemp restart tells the service manager RELOADING=1 then READY=1"
    else fail "RELOADING=1 then READY=1" "$(cat "$nlog")"; fi
    check "and never STOPPING=1" bash -c "! grep -q STOPPING '$nlog'"
fi
"$AEMP" profile aemp binds 127.0.0.1:0 >/dev/null
expect_status "its new service works (aemp put)" 0 "$AEMP" put --timeout 5 wd aemp::put "$T_DIR/file"
check "the file arrived" cmp -s "$T_DIR/file" "$in/file"

# SIGTERM to the watchdog: the node stops too, status 0
kill -TERM "$W"
wait "$W"
st=$?
[ "$st" = 0 ] && pass "watchdog exits 0 on SIGTERM" || fail "watchdog exits 0 on SIGTERM" "status $st"
check "and the node is gone" bash -c "! kill -0 $c3 2>/dev/null"

# a node that cannot start (its port is taken) is not restarted
blocker_port=$(free_port)
start_bg "$T_DIR/blocker.log" "$AEMP" run nodeid blocker binds "127.0.0.1:$blocker_port"
wait_for 20 "$AEMP" cal --timeout 1 blocker info
expect_status "a node that cannot start: watchdog exits 1" 1 \
    "$AEMP" run nodeid wd2 binds "127.0.0.1:$blocker_port" autorestart 1
check "and says it does not restart it" grep -q "before it ran (see above); not restarting" "$T_DIR/last.err"

# without autorestart: no watchdog, and restart still works in place
start_bg "$T_DIR/plain.log" "$AEMP" run nodeid plain binds "127.0.0.1:$port" # the seed address
P=$BG_PID
if wait_for 20 "$AEMP" cal --timeout 1 plain info; then pass "plain node up"; else fail "plain node up" "$(cat "$T_DIR/plain.log")"; fi
check "no watchdog without autorestart" bash -c "! grep -q watchdog '$T_DIR/plain.log'"
expect_status "aemp restart of a plain node" 0 "$AEMP" restart plain
if wait_for 20 bash -c "[ \$(grep -c 'node plain running' '$T_DIR/plain.log') -ge 2 ]" &&
    wait_for 20 "$AEMP" cal --timeout 1 plain info; then
    pass "plain node restarted in place"; else fail "plain node restarted in place" "$(cat "$T_DIR/plain.log")"; fi
check "same process" kill -0 "$P"
expect_status "restart of a node that is not there" 1 "$AEMP" restart --timeout 2 nobody
expect_status "restart usage" 2 "$AEMP" restart
finish
