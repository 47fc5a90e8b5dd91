#!/bin/bash
# config_once.sh - `aemp run` reads and merges the configuration file once:
# with autorestart the watchdog's reading serves the node it starts first
# (before, the watchdog and then the node read it, two openings).
T_LIMIT=60
. "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || { echo "1..0 # SKIP no strace"; exit 77; }

port=$(free_port)
"$AEMP" gensecret seeds "127.0.0.1:$port" profile once nodeid once binds "127.0.0.1:$port" \
    autorestart 1 >/dev/null
st=$T_DIR/strace.out
# LeakSanitizer cannot work under ptrace: in an ASan build the traced
# processes check everything else but not leaks
[ -n "${ASAN_OPTIONS+x}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
start_bg "$T_DIR/run.log" strace -f -qq -e trace=open,openat -o "$st" "$AEMP" run profile once
S_PID=$BG_PID
if wait_for 20 "$AEMP" cal --timeout 1 once info; then
    pass "the node runs under its watchdog"
else
    fail "the node runs under its watchdog" "$(cat "$T_DIR/run.log")"
fi
n=$(grep -c "\"$PERL_ANYEVENT_MP_RC\"" "$st")
[ "$n" = 1 ] && pass "the configuration file is opened once (watchdog and node)" ||
    fail "the configuration file is opened once (watchdog and node)" "$n openings"
# end the watchdog (strace's child; it stops its node) rather than strace:
# a strace ended first lets its tracees go on running after the test
W_PID=$(pgrep -P "$S_PID" | head -1)
NODE_PID=${W_PID:+$(pgrep -P "$W_PID" | head -1)}
[ -n "$W_PID" ] && kill -TERM "$W_PID" 2>/dev/null
ended() { ! kill -0 "$S_PID" 2>/dev/null && { [ -z "$NODE_PID" ] || ! kill -0 "$NODE_PID" 2>/dev/null; }; }
if [ -n "$W_PID" ] && wait_for 20 ended; then
    pass "SIGTERM to the watchdog ends it and its node (and strace)"
else
    fail "SIGTERM to the watchdog ends it and its node" "watchdog ${W_PID:-?}, node ${NODE_PID:-?}: $(cat "$T_DIR/run.log")"
    [ -n "$NODE_PID" ] && kill -KILL "$NODE_PID" 2>/dev/null
fi
finish
