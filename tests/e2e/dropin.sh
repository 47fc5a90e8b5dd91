#!/bin/bash
# dropin.sh - habits of Perl AnyEvent::MP 1.30 users that must work with the
# C tool alone (no Perl needed): `aemp run PROFILE` (an odd number of
# arguments starts with the profile, as 1.30's configure reads them),
# PERL_ANYEVENT_MP_TRACE.
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

# --- PERL_ANYEVENT_MP_TRACE=1 (1.30's switch, as its Intro uses it) traces
# every message, in `aemp run` and in the protocol subcommands' node
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$P1"
start_bg "$T_DIR/run3.log" env PERL_ANYEVENT_MP_TRACE=1 "$AEMP" run seed2
R=$BG_PID
wait_for 20 grep -q "node s2 running" "$T_DIR/run3.log"
expect_status "cal with PERL_ANYEVENT_MP_TRACE=1" 0 env PERL_ANYEVENT_MP_TRACE=1 "$AEMP" cal s2 info
out_is "cal: the reply" '"s2"'
if grep -q '<9> snd to s2 \["",\s*"info"' "$T_DIR/last.err"; then pass "cal: the request is traced"
else fail "cal: the request is traced" "$(head -c 400 "$T_DIR/last.err")"; fi
if wait_for 10 grep -q '<9> rcv from anon/[A-Za-z0-9]* \["",\s*"info"' "$T_DIR/run3.log"; then
    pass "run: the request is traced"
else fail "run: the request is traced" "$(tail -5 "$T_DIR/run3.log")"; fi
expect_status "cal with PERL_ANYEVENT_MP_TRACE=0" 0 env PERL_ANYEVENT_MP_TRACE=0 "$AEMP" cal s2 info
if grep -q '<9>' "$T_DIR/last.err"; then fail "0 is off" "$(head -c 400 "$T_DIR/last.err")"
else pass "PERL_ANYEVENT_MP_TRACE=0 traces nothing"; fi
stop_pid "$R"
finish
