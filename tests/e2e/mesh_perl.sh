#!/bin/bash
# mesh_perl.sh - a mixed mesh: C `aemp run` nodes and Perl AnyEvent::MP 1.30
# nodes started at once through one seed (a C seed, then a Perl seed) form a
# full mesh, and no C node ever reports a node down, nor does any Perl node
# report a C node down, while it forms. Skipped when Perl AnyEvent::MP 1.30
# is not installed (~/aemp-perl or $AEMP_PERL_LIB).
T_LIMIT=240
. "$(dirname "$0")/lib.sh"
SO="$AEMP_BUILD_DIR/tests/libsvc_watch.so"
PERL_LIB=${AEMP_PERL_LIB:-$(eval echo "~$(id -un)")/aemp-perl/local/lib/perl5}
if ! perl -I"$PERL_LIB" -MAnyEvent::MP -e 'exit($AnyEvent::MP::VERSION >= 1.30 ? 0 : 1)' 2>/dev/null; then
    echo "1..0 # SKIP Perl AnyEvent::MP 1.30 not found (set AEMP_PERL_LIB)"
    exit 77
fi
NC=${MESH_C_NODES:-6}
NP=${MESH_PERL_NODES:-6}

# A Perl node printing the same WATCH lines as svc_watch.
cat >"$T_DIR/pnode.pl" <<'PERL'
use strict;
use AnyEvent;
use AnyEvent::MP;
use AnyEvent::MP::Kernel;
$| = 1;
my ($id, $seed) = @ARGV;
mon_nodes sub {
    my ($node, $up, @reason) = @_;
    print STDERR "WATCH ", ($up ? "up" : "down"), " $node", ($up ? "" : " [@reason]"), "\n";
};
configure nodeid => $id, binds => ["127.0.0.1:0"], seeds => [$seed], monitor_timeout => 60;
AE::cv->recv;
PERL

expect_status "gensecret" 0 "$AEMP" gensecret
SVC="[\"$SO:svc_watch_init\"]"
ROUND=0

# mixed_round SEEDKIND: start NC C nodes and NP Perl nodes, node 0 of
# SEEDKIND ("c" or "p") being the seed; check the mesh; stop them all.
mixed_round() {
    local kind=$1 i ids=() pids=() PS
    ROUND=$((ROUND + 1))
    PS=$(free_port)
    "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout 60 setconnect_interval 1 >/dev/null
    local dir="$T_DIR/r$ROUND"
    mkdir -p "$dir"
    for i in $(seq 0 $((NC - 1))); do
        local bind="127.0.0.1:0"
        [ "$kind" = c ] && [ "$i" = 0 ] && bind="127.0.0.1:$PS"
        start_bg "$dir/c$i.log" "$AEMP" run nodeid "c$i" binds "$bind" services "$SVC"
        pids+=("$BG_PID"); ids+=("c$i")
    done
    for i in $(seq 0 $((NP - 1))); do
        if [ "$kind" = p ] && [ "$i" = 0 ]; then
            start_bg "$dir/p$i.log" perl -I"$PERL_LIB" -e '
                use AnyEvent; use AnyEvent::MP; use AnyEvent::MP::Kernel; $| = 1;
                mon_nodes sub { my ($n, $up, @r) = @_;
                    print STDERR "WATCH ", ($up ? "up" : "down"), " $n", ($up ? "" : " [@r]"), "\n" };
                configure nodeid => "p0", binds => ["127.0.0.1:'"$PS"'"],
                    seeds => ["127.0.0.1:'"$PS"'"], monitor_timeout => 60;
                AE::cv->recv'
        else
            start_bg "$dir/p$i.log" perl -I"$PERL_LIB" "$T_DIR/pnode.pl" "p$i" "127.0.0.1:$PS"
        fi
        pids+=("$BG_PID"); ids+=("p$i")
    done
    local n=$(( NC + NP ))
    meshed() {
        local f
        for f in "$dir"/*.log; do
            [ "$(grep '^WATCH up ' "$f" | awk '{print $3}' | sort -u | wc -l)" -ge $((n - 1)) ] || return 1
        done
    }
    if wait_for 120 meshed; then pass "round $ROUND ($kind seed): $NC C + $NP Perl nodes form a full mesh"
    else
        local f short=""
        for f in "$dir"/*.log; do
            short="$short $(basename "$f" .log):$(grep '^WATCH up ' "$f" | awk '{print $3}' | sort -u | wc -l)"
        done
        fail "round $ROUND ($kind seed): full mesh" "up counts:$short"
    fi
    local cdowns pdowns
    cdowns=$(cat "$dir"/c*.log | grep -c '^WATCH \(down\|fired\) ')
    pdowns=$(cat "$dir"/p*.log | grep -c '^WATCH down c')
    echo "# round $ROUND: C nodes saw $cdowns node-down/monitor events; Perl nodes saw $pdowns C node-downs" \
         "($(cat "$dir"/p*.log | grep -c '^WATCH down p') Perl-to-Perl)"
    [ "$cdowns" = 0 ] && pass "round $ROUND: no C node sees a node go down" ||
        fail "round $ROUND: no C node sees a node go down" "$(grep -h '^WATCH \(down\|fired\)' "$dir"/c*.log | head -3)"
    [ "$pdowns" = 0 ] && pass "round $ROUND: no Perl node sees a C node go down" ||
        fail "round $ROUND: no Perl node sees a C node go down" "$(grep -h '^WATCH down c' "$dir"/p*.log | head -3)"
    for i in "${pids[@]}"; do stop_pid "$i"; done
}

mixed_round c
mixed_round p
finish
