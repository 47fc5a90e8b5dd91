#!/bin/bash
# tool_edges.sh - the edges of the aemp tool (issue 13, part 3), as real
# processes on 127.0.0.1 with real configuration files in a temp dir: what
# a node logs when the other side refuses its handshake.
T_LIMIT=200
. "$(dirname "$0")/lib.sh"

: "${AEMP_PROFILE_DIR:=$(cd "$(dirname "$0")/../../profiles" && pwd)}"
export AEMP_PROFILE_DIR
RC="$PERL_ANYEVENT_MP_RC"

expect_status "gensecret" 0 "$AEMP" gensecret

# --- a handshake the other side refuses: the log says the likely cause
# (n2 accepts only cleartext, which the seed never offers: the seed closes
# after the greetings, before its auth line)
PS=$(free_port)
start_bg "$T_DIR/seed.log" "$AEMP" run nodeid s1 binds "127.0.0.1:$PS"
SEEDPID=$BG_PID
start_bg "$T_DIR/n2.log" "$AEMP" run nodeid n2 binds "127.0.0.1:$(free_port)" \
    seeds "127.0.0.1:$PS" auth_accept cleartext connect_interval 0.5
N2PID=$BG_PID
refusal() { grep -q "closed: connection closed by the peer before its auth line: it refused our greeting, most likely because it offers no auth method our auth_accept lists" "$T_DIR/n2.log"; }
if wait_for 20 refusal; then pass "refused handshake: the cause is logged"; else
    fail "refused handshake: the cause is logged" "$(tail -3 "$T_DIR/n2.log")"; fi
stop_pid "$N2PID"
stop_pid "$SEEDPID"

finish
