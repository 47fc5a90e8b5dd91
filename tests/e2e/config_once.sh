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
start_bg "$T_DIR/run.log" strace -f -qq -e trace=open,openat -o "$st" "$AEMP" run profile once
if wait_for 20 "$AEMP" cal --timeout 1 once info; then
    pass "the node runs under its watchdog"
else
    fail "the node runs under its watchdog" "$(cat "$T_DIR/run.log")"
fi
n=$(grep -c "\"$PERL_ANYEVENT_MP_RC\"" "$st")
[ "$n" = 1 ] && pass "the configuration file is opened once (watchdog and node)" ||
    fail "the configuration file is opened once (watchdog and node)" "$n openings"
