#!/bin/bash
# probe_perl.sh - probing silent peers (probe.c) against Perl AnyEvent::MP
# 1.30: a C node (monitor_timeout M = 2 s) connected to an idle Perl node
# probes it with node-port "time" requests; the Perl node answers them, so
# over 5 M it is never reported down, and it never reports the C node down.
# Then the Perl node is stopped (SIGSTOP): the C node reports it down with
# transport_error "peer timed out" within 2 M. Skipped when Perl
# AnyEvent::MP 1.30 is not installed (~/aemp-perl or $AEMP_PERL_LIB).
T_LIMIT=120
. "$(dirname "$0")/lib.sh"
SO="$AEMP_BUILD_DIR/tests/libsvc_watch.so"
require_perl
M=2
PS=$(free_port)
expect_status "config" 0 "$AEMP" gensecret setseeds "127.0.0.1:$PS" setconnect_interval 0.5
SVC="[\"$SO:svc_watch_init\"]"
start_bg "$T_DIR/c.log" "$AEMP" run nodeid c0 binds "127.0.0.1:$PS" services "$SVC" \
    monitor_timeout "$M"
# the Perl node keeps 1.30's default monitor_timeout: it never probes
start_bg "$T_DIR/p.log" perl -I"$PERL_LIB" -e '
    use AnyEvent; use AnyEvent::MP; use AnyEvent::MP::Kernel; $| = 1;
    mon_nodes sub { my ($n, $up, @r) = @_;
        print STDERR "WATCH ", ($up ? "up" : "down"), " $n", ($up ? "" : " [@r]"), "\n" };
    configure nodeid => "p1", binds => ["127.0.0.1:0"], seeds => ["127.0.0.1:'"$PS"'"];
    AE::cv->recv'
P=$BG_PID
up() { grep -q '^WATCH up p1 ' "$T_DIR/c.log" && grep -q '^WATCH up c0' "$T_DIR/p.log"; }
if wait_for 30 up; then pass "C node and Perl node connected"; else
    fail "C node and Perl node connected" "$(tail -5 "$T_DIR/c.log" "$T_DIR/p.log")"; finish; fi

sleep $((5 * M))
d=$(grep -c '^WATCH down' "$T_DIR/c.log" "$T_DIR/p.log" | awk -F: '{s += $2} END {print s}')
[ "$d" = 0 ] && pass "idle for $((5 * M)) s: the answering Perl node is never reported down" ||
    fail "idle Perl node never reported down" "$(grep -h '^WATCH down' "$T_DIR/c.log" "$T_DIR/p.log")"

t0=$(date +%s.%N)
kill -STOP "$P"
gone() { grep -q '^WATCH down p1 .*"peer timed out"' "$T_DIR/c.log"; }
if wait_for $((4 * M)) gone; then
    t1=$(grep '^WATCH down p1 ' "$T_DIR/c.log" | head -1 | sed 's/.* t=//')
    dt=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    echo "# stopped Perl node reported down after $dt s (monitor_timeout $M s)"
    if awk -v a="$t1" -v b="$t0" -v m=$((2 * M)) 'BEGIN { exit !(a - b <= m) }'; then
        pass "stopped Perl node reported down (peer timed out) within 2 x monitor_timeout"
    else fail "stopped Perl node reported down within 2 x monitor_timeout" "$dt s"; fi
else
    fail "stopped Perl node reported down (peer timed out)" "$(tail -5 "$T_DIR/c.log")"
fi
kill -CONT "$P"
finish
