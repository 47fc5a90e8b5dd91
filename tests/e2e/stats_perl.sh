#!/bin/bash
# stats_perl.sh - the stats request against a Perl AnyEvent::MP 1.30 node:
# the Perl node discards it without logging anything, `aemp stats` says the
# node is up but keeps no stats, and `aemp top` shows it as not answering
# next to a C node that does. Skipped when Perl AnyEvent::MP 1.30 is not
# installed (~/aemp-perl or $AEMP_PERL_LIB).
T_LIMIT=120
. "$(dirname "$0")/lib.sh"
require_perl

expect_status "gensecret" 0 "$AEMP" gensecret
PP=$(free_port)
PC=$(free_port)
expect_status "seeds" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$PP"
# warn level 9: the Perl node would log the request if it did anything with it
start_bg "$T_DIR/perl.log" env PERL_ANYEVENT_MP_WARNLEVEL=9 perl -I"$PERL_LIB" -e '
    use AnyEvent; use AnyEvent::MP; $| = 1;
    configure nodeid => "perl1", binds => ["127.0.0.1:'"$PP"'"], seeds => ["127.0.0.1:'"$PP"'"];
    print STDERR "PERL READY\n";
    AE::cv->recv;'
start_bg "$T_DIR/c1.log" "$AEMP" run nodeid c1 binds "127.0.0.1:$PC" seeds "127.0.0.1:$PP"
meshed() { "$AEMP" trace --timeout 3 perl1 2>/dev/null | grep -qx "perl1: c1"; }
if wait_for 20 meshed; then pass "perl1 and c1 meshed"; else
    fail "perl1 and c1 meshed" "$(tail -5 "$T_DIR/perl.log")"; finish; fi

expect_status "stats of a Perl node" 1 "$AEMP" stats --timeout 2 perl1
err_is "stats of a Perl node: message" "aemp: stats: perl1 is up but did not answer the stats \
request within 2 s: a Perl node, or an aemp without stats, ignores it"
grep -Eiq "aemp_stats|unable to resolve|error processing" "$T_DIR/perl.log" \
    && fail "the Perl node logged nothing about it" "$(grep -Ei 'aemp_stats|unable|error' "$T_DIR/perl.log" | head -3)" \
    || pass "the Perl node logged nothing about it"
expect_status "top with a Perl and a C node" 0 "$AEMP" top --count 1 --interval 1 perl1 c1
grep -Eq "^perl1 +\(no answer: down, unreachable, or a node without stats\)$" "$T_DIR/last.out" \
    && pass "top: the Perl node does not answer" || fail "top: the Perl node" "$(cat "$T_DIR/last.out")"
grep -Eq "^c1 +[0-9]+s +[0-9]+ " "$T_DIR/last.out" \
    && pass "top: the C node answers" || fail "top: the C node" "$(cat "$T_DIR/last.out")"
finish
