#!/bin/bash
# dropin.sh - habits of Perl AnyEvent::MP 1.30 users that must work with the
# C tool alone (no Perl needed): `aemp run PROFILE` (an odd number of
# arguments starts with the profile, as 1.30's configure reads them).
T_LIMIT=120
. "$(dirname "$0")/lib.sh"
: "${AEMP_PROFILE_DIR:=$(cd "$(dirname "$0")/../../profiles" && pwd)}"
export AEMP_PROFILE_DIR

P1=$(free_port)
expect_status "config" 0 "$AEMP" gensecret profile seed2 nodeid s2 binds "127.0.0.1:$P1" \
    profile other nodeid o2 binds 127.0.0.1:0

# --- `aemp run seed2`: the profile seed2, as `aemp run profile seed2`
start_bg "$T_DIR/run1.log" "$AEMP" run seed2
R=$BG_PID
if wait_for 20 grep -q "node s2 running, listening on \\[\"127.0.0.1:$P1\"\\]" "$T_DIR/run1.log"; then
    pass "run seed2: runs profile seed2"
else fail "run seed2: runs profile seed2" "$(head -5 "$T_DIR/run1.log")"; fi
stop_pid "$R"
# an odd list with pairs after the profile; a later profile pair wins
start_bg "$T_DIR/run2.log" "$AEMP" run other monitor_timeout 7 profile seed2
R=$BG_PID
if wait_for 20 grep -q "node s2 running" "$T_DIR/run2.log"; then
    pass "run other ... profile seed2: the later profile wins"
else fail "run other ... profile seed2: the later profile wins" "$(head -5 "$T_DIR/run2.log")"; fi
stop_pid "$R"
finish
