#!/bin/bash
# mesh_tables.sh - Global's address tables in a mesh larger than 16 nodes
# (lib/mesh/global.c FULL_TABLE_MAX): a node that comes up is not sent every
# node's whole table, yet every node learns of every node.
#  - 24 nodes through one seed form a full mesh; a node joining later
#    (AEMP_WARNLEVEL 9: "global: X told us of K nodes") gets a table of
#    more than one node from the seed only, not one from each node (the old
#    code: a table from each of the 24), and every node sees it;
#  - with Perl AnyEvent::MP 1.30 installed: a 1.30 node joining later learns
#    of every node and is told tables by the seed only (its level-9 "X told
#    us it knows about" lines); a mesh of 20 C nodes through a 1.30 seed;
#  - a second mesh of 20 nodes (its own seed); a node of the first mesh is
#    the seed of one more node, whose other seed is the second mesh's seed:
#    the two meshes merge into one full mesh (the old code merged them by
#    tables on every connection; now by the joiner's table to its seeds,
#    their answers to seedme1 and the bridge's report to its master,
#    report_due, whichever comes first: which does is a matter of timing);
#  - the seed killed: a node joining through another node (a seed only to
#    the joiner) is seen by every node, and sees every node.
T_LIMIT=400
. "$(dirname "$0")/lib.sh"
N=${MESH_NODES:-24}
M=20

need_svc_watch
SVC="[\"$SO:svc_watch_init\"]"
export AEMP_WARNLEVEL=5
PS=$(free_port)
P1=$(free_port)
PB=$(free_port)
PJ=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
PP=$(free_port)
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout 60 \
    setconnect_interval 1
# seeds of the other nodes: profiles (the file's keys beat `aemp run`'s, as
# in 1.30)
expect_status "profiles" 0 "$AEMP" profile pa setseeds "127.0.0.1:$PS" \
    profile pb setseeds "127.0.0.2:$PB" profile pp setseeds "127.0.0.1:$PP" \
    profile joiner setseeds "127.0.0.2:$PB,127.0.0.1:$PJ" profile viaone setseeds "127.0.0.1:$P1"

# node NAME BIND [PROFILE]: start an `aemp run` node logging to NAME.log
node() {
    local extra=()
    [ -n "${3:-}" ] && extra=(profile "$3")
    start_bg "$T_DIR/$1.log" "$AEMP" run nodeid "$1" binds "$2" services "$SVC" "${extra[@]}"
    PID_OF[$1]=$BG_PID
}
declare -A PID_OF
# ups NAME: how many distinct nodes NAME has seen come up
ups() { grep '^WATCH up ' "$T_DIR/$1.log" | awk '{print $3}' | sort -u | wc -l; }
# meshed WANT NAME...: each NAME has seen WANT distinct nodes come up
meshed() {
    local want=$1 n; shift
    for n in "$@"; do [ "$(ups "$n")" -ge "$want" ] || return 1; done
}
# seen_by WHO NAME...: every NAME has seen WHO come up
seen_by() {
    local who=$1 n; shift
    for n in "$@"; do grep -q "^WATCH up $who " "$T_DIR/$n.log" || return 1; done
}
counts() { local n s=""; for n in "$@"; do s="$s $n:$(ups "$n")"; done; echo "$s"; }
# expect_mesh WHAT SECONDS WANT NAME...
expect_mesh() {
    local what=$1 secs=$2 want=$3; shift 3
    local t0; t0=$(date +%s%N)
    if wait_for "$secs" meshed "$want" "$@"; then
        pass "$what ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    else
        fail "$what" "up counts:$(counts "$@")"
    fi
}

A=()
for i in $(seq 0 $((N - 1))); do
    bind=127.0.0.1:0
    [ "$i" = 0 ] && bind=127.0.0.1:$PS
    [ "$i" = 1 ] && bind=127.0.0.1:$P1
    node "n$i" "$bind"
    A+=("n$i")
done
expect_mesh "$N nodes form a full mesh" 120 $((N - 1)) "${A[@]}"

# a C node joining later, logging at level 9
AEMP_WARNLEVEL=9 node late 127.0.0.1:0
expect_mesh "a node joining later sees all $N" 60 "$N" late
wait_for 30 seen_by late "${A[@]}" && pass "every node sees the late node" ||
    fail "every node sees the late node" "$(for n in "${A[@]}"; do seen_by late "$n" || printf ' %s' "$n"; done)"
# "global: SENDER told us of K nodes", K > 1: tables, not forwards of one node
tables_from() { grep -o 'global: [^ ]* told us of [0-9]* nodes' "$T_DIR/late.log" |
    awk '$6 > 1 {print $2}' | sort | uniq -c; }
echo "# tables the late node got (count sender):"; tables_from | sed 's/^/#   /'
seed_tables=$(tables_from | awk '$2 == "n0" {print $1}')
other_tables=$(tables_from | awk '$2 != "n0" {s += $1} END {print s + 0}')
[ "${seed_tables:-0}" -ge 1 ] && pass "the seed gave the late node its table" ||
    fail "the seed gave the late node its table" "no table from n0 in late.log"
[ "$other_tables" -eq 0 ] && pass "no other node sent the late node a table" ||
    fail "no other node sent the late node a table" "$other_tables tables from other nodes"
ALL=("${A[@]}" late)

PERL_LIB=${AEMP_PERL_LIB:-$(eval echo "~$(id -un)")/aemp-perl/local/lib/perl5}
if perl -I"$PERL_LIB" -MAnyEvent::MP -e 'exit($AnyEvent::MP::VERSION >= 1.30 ? 0 : 1)' 2>/dev/null; then
    cat >"$T_DIR/pnode.pl" <<'PERL'
use strict;
use AnyEvent;
use AnyEvent::MP;
use AnyEvent::MP::Kernel;
$| = 1;
my ($id, $bind, $profile) = @ARGV;
mon_nodes sub {
    my ($node, $up, @reason) = @_;
    print STDERR "WATCH ", ($up ? "up" : "down"), " $node", ($up ? "" : " [@reason]"), "\n";
};
configure profile => $profile, nodeid => $id, binds => [$bind];
AE::cv->recv;
PERL
    start_bg "$T_DIR/perl.log" env PERL_ANYEVENT_MP_WARNLEVEL=9 \
        perl -I"$PERL_LIB" "$T_DIR/pnode.pl" perl 127.0.0.1:0 pa
    PERL_PID=$BG_PID
    expect_mesh "a 1.30 node joining later sees all $((N + 1))" 60 $((N + 1)) perl
    wait_for 30 seen_by perl "${ALL[@]}" && pass "every node sees the 1.30 node" ||
        fail "every node sees the 1.30 node" "missing on some node"
    # 1.30 logs "NODE told us it knows about {JSON}" for each nodes message
    ptables=$(grep -o '<9> [^ ]* told us it knows about {.*,.*}' "$T_DIR/perl.log" |
        awk '{print $2}' | sort | uniq -c)
    echo "# tables the 1.30 node got (count sender):"; echo "$ptables" | sed 's/^/#   /'
    pother=$(echo "$ptables" | awk '$1 && $2 != "n0" {s += $1} END {print s + 0}')
    [ "$pother" -eq 0 ] && pass "no node but the seed sent the 1.30 node a table" ||
        fail "no node but the seed sent the 1.30 node a table" "$pother tables from other nodes"
    stop_pid "$PERL_PID"

    # a mesh of C nodes through a 1.30 seed
    start_bg "$T_DIR/pseed.log" perl -I"$PERL_LIB" "$T_DIR/pnode.pl" pseed "127.0.0.1:$PP" pp
    PSEED=$BG_PID
    C=()
    for i in $(seq 0 $((M - 1))); do node "c$i" 127.0.0.1:0 pp; C+=("c$i"); done
    expect_mesh "$M C nodes and a 1.30 seed form a full mesh" 120 "$M" "${C[@]}" pseed
    apart=$(cat "$T_DIR"/c*.log "$T_DIR/pseed.log" | grep -c '^WATCH up [nml]')
    [ "$apart" = 0 ] && pass "that mesh is apart from the first" || fail "that mesh is apart" "$apart"
    stop_pid "$PSEED"
    for n in "${C[@]}"; do stop_pid "${PID_OF[$n]}"; done
else
    echo "# Perl AnyEvent::MP 1.30 not found: its parts skipped"
fi

# a second mesh, then a node with the seeds of both. Its nodes listen on
# 127.0.0.2: the first mesh keeps dialing the addresses of the nodes that
# were stopped above (the 1.30 node, the C nodes of the 1.30 seed), and a
# node of the second mesh that got such a port on 127.0.0.1 from the kernel
# was reached by them (seen: the two meshes joined before the bridge)
B=()
for i in $(seq 0 $((M - 1))); do
    bind=127.0.0.2:0
    [ "$i" = 0 ] && bind=127.0.0.2:$PB
    node "m$i" "$bind" pb
    B+=("m$i")
done
expect_mesh "a second mesh of $M nodes" 120 $((M - 1)) "${B[@]}"
apart=$(cat "$T_DIR"/m*.log | grep -c '^WATCH up [nlpc]')
[ "$apart" = 0 ] && pass "the second mesh is apart from the first" ||
    fail "the second mesh is apart from the first" "$apart"
AEMP_WARNLEVEL=9 node bridge "127.0.0.1:$PJ"
ALL+=(bridge)
expect_mesh "the bridge joins the first mesh" 60 $((${#ALL[@]} - 1)) "${ALL[@]}"
node joiner 127.0.0.1:0 joiner
ALL+=("${B[@]}" joiner)
expect_mesh "a node with the seeds of both meshes merges them into one" 90 \
    $((${#ALL[@]} - 1)) "${ALL[@]}"
echo "# the bridge's reports to its master:" \
    "$(grep -c 'global: telling master' "$T_DIR/bridge.log")"

# the seed dies; a node joins through n1, a seed to it only
stop_pid "${PID_OF[n0]}" KILL
LIVE=()
for n in "${ALL[@]}"; do [ "$n" != n0 ] && LIVE+=("$n"); done
node late2 127.0.0.1:0 viaone
expect_mesh "with the seed down, a node joining through another sees all" 60 \
    "${#LIVE[@]}" late2
wait_for 30 seen_by late2 "${LIVE[@]}" && pass "every live node sees it" ||
    fail "every live node sees it" "$(for n in "${LIVE[@]}"; do seen_by late2 "$n" || printf ' %s' "$n"; done)"

downs=$(cat "$T_DIR"/*.log | grep '^WATCH down ' | grep -vc '^WATCH down \(n0\|perl\|pseed\|c[0-9]*\) ')
[ "$downs" = 0 ] && pass "no node saw a live node go down" ||
    fail "no node saw a live node go down" "$downs node-down events"
finish
