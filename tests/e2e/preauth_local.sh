#!/bin/bash
# preauth_local.sh - strangers cannot lock a node's own host out (issue 18):
# with 64 idle unauthenticated connections from 127.0.0.1 (the per-host
# pre-auth cap) `aemp cal` from the same host still gets an answer; and
# when even the reserve is full (64 + 256 more idle ones, held for their
# 3 s of grace), the client says the node refused the connection before
# greeting, not that it refused our secret.
T_LIMIT=120
. "$(dirname "$0")/lib.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
P=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$P"
start_bg "$T_DIR/v.log" "$AEMP" run nodeid victim binds "127.0.0.1:$P"
wait_for 10 grep -q listening "$T_DIR/v.log"

# hold N idle connections from 127.0.0.1 for SECS; "ready" on stdout once
# all are connected
cat >"$T_DIR/hold.py" <<'EOF'
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("ready", flush=True)
time.sleep(secs)
EOF
hold() { # N SECS: background, waits until connected
    python3 "$T_DIR/hold.py" "$P" "$1" "$2" >"$T_DIR/hold.out" 2>&1 &
    HOLD=$!
    T_PIDS+=("$HOLD")
    wait_for 20 grep -q ready "$T_DIR/hold.out"
}

hold 64 30
expect_status "aemp cal answers with 64 idle strangers from its host" 0 \
    "$AEMP" cal --timeout 5 victim time
stop_pid "$HOLD"

hold 330 30
expect_status "aemp cal fails while every slot and the reserve are held" 1 \
    "$AEMP" cal --timeout 2 victim time
if grep -q "closed the connection before greeting us" "$T_DIR/last.err"; then
    pass "the client says the node refused before greeting"
else
    fail "the client says the node refused before greeting" "$(cat "$T_DIR/last.err")"
fi
stop_pid "$HOLD"
expect_status "aemp cal answers once they are gone" 0 "$AEMP" cal --timeout 5 victim time
finish
