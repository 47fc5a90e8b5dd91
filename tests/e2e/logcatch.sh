#!/bin/bash
# logcatch.sh - log catching (1.30's AnyEvent::MP::LogCatcher) between real
# processes on 127.0.0.1: a node n1, a catcher node started with
# `aemp run services '[["AnyEvent::MP::LogCatcher::catch", 7]]'`, and
# `aemp logs` piped into grep. Proves: a catcher gets another node's lines
# with the 1.30 format and level filter, `aemp logs NODE` catches only that
# node, a dying catcher (SIGTERM, kill -9) is noticed and dropped by the
# node, a stopped catcher costs the node a bounded amount (lines dropped and
# reported), and, when the Perl reference is there, a Perl catcher gets a C
# node's lines and a C catcher a Perl node's.
T_LIMIT=200
. "$(dirname "$0")/lib.sh"

has() { grep -qF -- "$2" "$1"; }
dump() { local f; for f in "$@"; do echo "# --- $f"; sed 's/^/#   /' "$f" | tail -25; done; }
alive() { kill -0 "$1" 2>/dev/null; }

P1=$(free_port)
expect_status "config: secret, tools seed on n1" 0 "$AEMP" gensecret profile aemp \
    seeds "127.0.0.1:$P1"

# usage errors: exit 2, one line that names the problem
expect_status "logs --level 12" 2 "$AEMP" logs --level 12
grep -qx "aemp: logs: --level wants a number from 0 to 9, not '12' (usage: aemp logs \[--level N\] \[--timeout S\] \[NODE...\])" \
    "$T_DIR/last.err" && pass "logs --level 12: message" || fail "logs --level 12: message" "$(cat "$T_DIR/last.err")"
expect_status "logs --level=12" 2 "$AEMP" logs --level=12
grep -qx "aemp: logs: --level wants a number from 0 to 9, not '12' (usage: aemp logs \[--level N\] \[--timeout S\] \[NODE...\])" \
    "$T_DIR/last.err" && pass "logs --level=12: message" || fail "logs --level=12: message" "$(cat "$T_DIR/last.err")"
expect_status "logs --bogus" 2 "$AEMP" logs --bogus
grep -q "unknown option '--bogus'" "$T_DIR/last.err" && pass "logs --bogus: message" \
    || fail "logs --bogus: message" "$(cat "$T_DIR/last.err")"
expect_status "logs n1#port" 2 "$AEMP" logs n1#port

# n1 writes levels up to 8 to its stderr: "log catcher ... is gone" is level 8.
start_bg "$T_DIR/n1.log" env AEMP_WARNLEVEL=8 "$AEMP" run nodeid n1 binds "127.0.0.1:$P1"
N1=$BG_PID
wait_for 10 has "$T_DIR/n1.log" "node n1 running" && pass "n1 runs" \
    || { fail "n1 runs" ""; dump "$T_DIR/n1.log"; finish; }

# --- the catch service: one catching port per up node, 1.30's line format
start_bg "$T_DIR/cc.log" "$AEMP" run nodeid cc binds 127.0.0.1:0 seeds "127.0.0.1:$P1" \
    services '[["AnyEvent::MP::LogCatcher::catch", 7]]'
CC=$BG_PID
wait_for 15 has "$T_DIR/n1.log" "log catcher cc#" && pass "the catch service connects to n1" \
    || { fail "the catch service connects to n1" ""; dump "$T_DIR/n1.log" "$T_DIR/cc.log"; }
"$AEMP" snd n1 no_such_func_mark1 >/dev/null 2>&1
line_re='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \[n1\] <4> request no_such_func_mark1 from anon/[^ ]+ dropped'
if wait_for 10 grep -Eq "$line_re" "$T_DIR/cc.log"; then
    pass "catcher prints n1's line as DATE [NODE] <LEVEL> TEXT"
else
    fail "catcher prints n1's line" ""; dump "$T_DIR/cc.log"
fi
grep -q '\[n1\] <[89]>' "$T_DIR/cc.log" && fail "catch 7 gets no level 8/9 lines" "$(grep '\[n1\] <[89]>' "$T_DIR/cc.log" | head -2)" \
    || pass "catch 7 gets no level 8/9 lines"

# --- the catch service re-arms when a node comes back (same ID, new process)
for round in 1 2; do
    start_bg "$T_DIR/n2.$round.log" env AEMP_WARNLEVEL=7 "$AEMP" run nodeid n2 binds 127.0.0.1:0 seeds "127.0.0.1:$P1"
    N2=$BG_PID
    wait_for 15 has "$T_DIR/n2.$round.log" "log catcher cc#" \
        && pass "catch service connects to n2 (start $round)" \
        || { fail "catch service connects to n2 (start $round)" ""; dump "$T_DIR/n2.$round.log"; }
    "$AEMP" snd n2 "no_such_func_n2_round$round" >/dev/null 2>&1
    wait_for 10 grep -q "\[n2\] <4> request no_such_func_n2_round$round" "$T_DIR/cc.log" \
        && pass "catcher gets n2's line (start $round)" \
        || { fail "catcher gets n2's line (start $round)" ""; dump "$T_DIR/cc.log"; }
    stop_pid "$N2" KILL
done

# --- aemp logs NODE | grep: only n1, live through a pipe
( "$AEMP" logs --level 9 n1 2>"$T_DIR/logs.err" | grep --line-buffered -e mark2 -e '\[cc\]' >"$T_DIR/logs.out" ) &
LOGS_PIPE=$!
T_PIDS+=("$LOGS_PIPE")
wait_for 15 grep -q "log catcher anon/.* connected (levels up to 9)" "$T_DIR/n1.log" \
    && pass "aemp logs connects to n1" || { fail "aemp logs connects to n1" ""; dump "$T_DIR/n1.log"; }
"$AEMP" snd n1 no_such_func_mark2 >/dev/null 2>&1
wait_for 10 has "$T_DIR/logs.out" "[n1] <4> request no_such_func_mark2" \
    && pass "aemp logs n1 | grep shows n1's line at once" \
    || { fail "aemp logs n1 | grep" ""; dump "$T_DIR/logs.out" "$T_DIR/logs.err"; }
"$AEMP" snd cc no_such_func_mark2 >/dev/null 2>&1
sleep 1
has "$T_DIR/logs.out" "[cc]" && fail "aemp logs n1 catches only n1" "$(grep -F '[cc]' "$T_DIR/logs.out" | head -2)" \
    || pass "aemp logs n1 catches only n1"
# the end of `aemp logs` (SIGTERM) ends its catching ports: n1 drops the catcher
LOGS_PID=$(ps -o pid= --ppid "$LOGS_PIPE" | while read -r p; do
    [ "$(ps -o comm= -p "$p")" = aemp ] && echo "$p"; done | head -1)
before=$(grep -c "is gone: no more log lines" "$T_DIR/n1.log")
[ -n "$LOGS_PID" ] && kill -TERM "$LOGS_PID"
wait "$LOGS_PIPE" 2>/dev/null
gone_more() { [ "$(grep -c "is gone: no more log lines" "$T_DIR/n1.log")" -gt "$1" ]; }
wait_for 10 gone_more "$before" && pass "n1 stops sending to a catcher that ended" \
    || { fail "n1 stops sending to a catcher that ended" ""; dump "$T_DIR/n1.log"; }

# --- a catcher killed with -9: the lost connection ends the sink
before=$(grep -c "is gone: no more log lines" "$T_DIR/n1.log")
stop_pid "$CC" KILL
wait_for 15 gone_more "$before" && pass "n1 drops a catcher killed with -9" \
    || { fail "n1 drops a catcher killed with -9" ""; dump "$T_DIR/n1.log"; }

# --- a stopped catcher: n1 drops lines instead of holding them, says so later
# (--level=9: the --opt=VALUE form the other subcommands take works here too)
start_bg "$T_DIR/slow.out" "$AEMP" logs --level=9 n1
SLOW=$BG_PID
# (lines about log delivery, like "log catcher ... connected", are not
# delivered: a line the catcher asks for shows it is connected)
mark1() { "$AEMP" snd n1 no_such_func_mark1 >/dev/null 2>&1; sleep 0.5; has "$T_DIR/slow.out" "no_such_func_mark1"; }
wait_for 15 mark1 && pass "slow catcher connected" || { fail "slow catcher connected" ""; dump "$T_DIR/slow.out"; }
grep -q "log catcher anon/.* connected" "$T_DIR/slow.out" \
    && fail "lines about log delivery are not delivered" "$(grep -m1 'log catcher' "$T_DIR/slow.out")" \
    || pass "lines about log delivery are not delivered"
kill -STOP "$SLOW"
# Each snd_multiple relays to 1500 unknown ports with 900-byte names: 1500
# level-9 lines of ~950 bytes; 20 processes: ~28 MB of log lines, far more
# than the socket buffers and n1's 1 MiB bound.
python3 -c 'for i in range(1500): print("[\"n1#%s%d\",\"x\"]" % ("x" * 900, i))' >"$T_DIR/flood"
mapfile -t flood_args <"$T_DIR/flood"
for r in $(seq 1 20); do "$AEMP" snd --timeout 10 n1 snd_multiple "${flood_args[@]}" >/dev/null 2>&1; done
rss=$(awk '/VmHWM/ {print $2}' "/proc/$N1/status")
# (a figure only: a sanitizer build's RSS says little; the proof of the
# bound is the drop report below)
echo "# n1 peak RSS after the flood: ${rss} kB"
expect_status "n1 still answers" 0 "$AEMP" cal --timeout 5 n1 info
kill -CONT "$SLOW"
# (lines logged while the backlog drains are dropped too: ask until one arrives)
mark3() { "$AEMP" snd n1 no_such_func_mark3 >/dev/null 2>&1; sleep 0.5; has "$T_DIR/slow.out" "no_such_func_mark3"; }
wait_for 40 mark3 && pass "and gets new lines again" \
    || fail "the slow catcher gets new lines again" ""
wait_for 40 has "$T_DIR/slow.out" "log lines dropped: the catcher did not keep up" \
    && pass "the slow catcher is told how many lines were dropped" \
    || { fail "the slow catcher is told about dropped lines" ""; tail -c 600 "$T_DIR/slow.out" | sed 's/^/#   /' | cut -c1-200; }
stop_pid "$SLOW"

# --- two traced nodes catching each other at level 9: the log traffic must
# not feed itself (a caught line traced on arrival, that trace line caught
# by the other side, traced there, ...)
start_bg "$T_DIR/tr.log" env AEMP_TRACE=1 "$AEMP" run nodeid tr binds 127.0.0.1:0 seeds "127.0.0.1:$P1" \
    services '[["AnyEvent::MP::LogCatcher::catch", 9]]'
TR=$BG_PID
start_bg "$T_DIR/trlogs.out" env AEMP_TRACE=1 "$AEMP" logs --level 9 tr
TRL=$BG_PID
wait_for 15 grep -q '\[tr\] <9> snd to' "$T_DIR/trlogs.out" && pass "trace lines of a node are caught" \
    || { fail "trace lines of a node are caught" ""; dump "$T_DIR/trlogs.out" "$T_DIR/tr.log"; }
sleep 2
n_a=$(wc -l <"$T_DIR/trlogs.out")
sleep 2
n_b=$(wc -l <"$T_DIR/trlogs.out")
echo "# caught lines of a traced node: $n_a, 2 s later $n_b"
[ $((n_b - n_a)) -lt 50 ] && pass "no feedback loop between tracing and catching" \
    || fail "no feedback loop between tracing and catching" "$n_a -> $n_b lines in 2 s"
stop_pid "$TRL"
stop_pid "$TR"

# --- the Perl reference, both directions
if [ ! -f "$PERL_LIB/AnyEvent/MP/LogCatcher.pm" ]; then
    echo "# skipped: Perl AnyEvent::MP 1.30 not found (set AEMP_PERL_LIB)"
else
    start_bg "$T_DIR/pcatch.log" perl -I"$PERL_LIB" -e '
        use AnyEvent; use AnyEvent::MP; use AnyEvent::MP::LogCatcher;
        configure nodeid => "pcatch", binds => ["127.0.0.1:0"], seeds => [$ARGV[0]];
        AnyEvent::MP::LogCatcher::catch(7); AE::cv->recv' "127.0.0.1:$P1"
    PCATCH=$BG_PID
    wait_for 20 has "$T_DIR/n1.log" "log catcher pcatch#" && pass "a Perl catcher connects to C node n1" \
        || { fail "a Perl catcher connects to n1" ""; dump "$T_DIR/pcatch.log" "$T_DIR/n1.log"; }
    "$AEMP" snd n1 no_such_func_mark4 >/dev/null 2>&1
    wait_for 10 grep -q '\[n1\] <4> request no_such_func_mark4' "$T_DIR/pcatch.log" \
        && pass "the Perl catcher prints the C node's line" \
        || { fail "the Perl catcher prints the C node's line" ""; dump "$T_DIR/pcatch.log"; }
    stop_pid "$PCATCH"

    start_bg "$T_DIR/cc2.log" "$AEMP" run nodeid cc2 binds 127.0.0.1:0 seeds "127.0.0.1:$P1" \
        services '[["AnyEvent::MP::LogCatcher::catch", 7]]'
    CC2=$BG_PID
    start_bg "$T_DIR/pnode.log" perl -I"$PERL_LIB" -e '
        use AnyEvent; use AnyEvent::MP;
        configure nodeid => "pnode", binds => ["127.0.0.1:0"], seeds => [$ARGV[0]];
        my $t = AE::timer 1, 1, sub { $AnyEvent::MP::Kernel::WARN->(4, "perl says mark5") };
        AE::cv->recv' "127.0.0.1:$P1"
    PNODE=$BG_PID
    wait_for 25 grep -q '\[pnode\] <4> perl says mark5' "$T_DIR/cc2.log" \
        && pass "the C catch service prints a Perl node's line" \
        || { fail "the C catcher prints a Perl node's line" ""; dump "$T_DIR/cc2.log" "$T_DIR/pnode.log"; }
    stop_pid "$PNODE"
    stop_pid "$CC2"
fi

stop_pid "$N1"
finish
