#!/bin/bash
# partition.sh - silent peers are detected (probe.c), in two network
# namespaces joined by a veth pair: nodes a0 (seed) and a1 in one, b0 and b1
# in the other, monitor_timeout M = 3 s, every node running svc_watch
# (tests/e2e/svc_watch.c) with AEMP_WATCH_RESEND=1.
#  1. idle for 3 M: probes are answered, no node goes down;
#  2. b1 is stopped (SIGSTOP): every other node reports it down with
#     "peer timed out" within 2 M; after SIGCONT the mesh re-forms;
#  3. the veth link goes down (a partition): each side reports both nodes of
#     the other side down ("peer timed out") within 2 M; what each node then
#     sends to a node of the other side is reported lost (its monitor fires);
#  4. the link comes back: the mesh re-forms by itself, and no message whose
#     monitor fired is ever delivered.
# Needs root for `ip netns`; skipped with a message otherwise. The namespaces
# and the veth pair have names unique to this run and are removed on exit.
T_LIMIT=240
. "$(dirname "$0")/lib.sh"
SO="$AEMP_BUILD_DIR/tests/libsvc_watch.so"
M=3

TAG="$$$RANDOM"
TAG=${TAG: -7}
NSA="aemp-pa-$TAG"
NSB="aemp-pb-$TAG"
VA="apa$TAG"
VB="apb$TAG"
NETS_MADE=0
ns_cleanup() {
    [ "$NETS_MADE" = 1 ] || return 0
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    ip link del "$VA" 2>/dev/null
    return 0
}
# ns_cleanup first: t_cleanup ends the script (exit with its status)
trap 'ns_cleanup; t_cleanup' EXIT

NETS_MADE=1 # from here on, whatever exists of ours is removed on exit
if ! ip netns add "$NSA" 2>"$T_DIR/ns.err"; then
    echo "1..0 # SKIP cannot create network namespaces: $(head -c 200 "$T_DIR/ns.err")"
    exit 77
fi
# an address pair unique enough for this run: 10.X.Y.1 and 10.X.Y.2
X=$(( (10#$TAG / 250) % 250 + 1 ))
Y=$(( 10#$TAG % 250 + 1 ))
IPA="10.$X.$Y.1"
IPB="10.$X.$Y.2"
if ! { ip netns add "$NSB" && ip link add "$VA" type veth peer name "$VB" &&
       ip link set "$VA" netns "$NSA" && ip link set "$VB" netns "$NSB" &&
       ip -n "$NSA" addr add "$IPA/24" dev "$VA" && ip -n "$NSB" addr add "$IPB/24" dev "$VB" &&
       ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up &&
       ip -n "$NSA" link set "$VA" up && ip -n "$NSB" link set "$VB" up; } 2>"$T_DIR/ns.err"; then
    fail "network namespaces set up" "$(head -c 300 "$T_DIR/ns.err")"
    finish
fi
pass "namespaces $NSA and $NSB joined by $VA/$VB ($IPA, $IPB)"
if [ ! -f "$SO" ]; then
    fail "svc_watch built" "$SO missing"
    finish
fi

SEEDPORT=$(( 20000 + RANDOM % 20000 )) # in a namespace of our own: no clash
expect_status "config" 0 "$AEMP" gensecret setseeds "$IPA:$SEEDPORT" setmonitor_timeout "$M" \
    setconnect_interval 0.5
SVC="[\"$SO:svc_watch_init\"]"
export AEMP_WATCH_RESEND=1
declare -A PID
start_node() { # NS NAME BIND
    start_bg "$T_DIR/$2.log" ip netns exec "$1" "$AEMP" run nodeid "$2" binds "$3" services "$SVC"
    PID[$2]=$BG_PID
}
start_node "$NSA" a0 "$IPA:$SEEDPORT"
start_node "$NSA" a1 "$IPA:0"
start_node "$NSB" b0 "$IPB:0"
start_node "$NSB" b1 "$IPB:0"
NODES="a0 a1 b0 b1"

# every node's last word on every other node is "up"
all_up() {
    local n v last
    for n in $NODES; do for v in $NODES; do
        [ "$n" = "$v" ] && continue
        last=$(grep "^WATCH \(up\|down\) $v " "$T_DIR/$n.log" | tail -1 | awk '{print $2}')
        [ "$last" = up ] || return 1
    done; done
}
dump() { local n; for n in $NODES; do echo "# --- $n"; tail -15 "$T_DIR/$n.log" | sed 's/^/#   /'; done; }

if wait_for 60 all_up; then pass "4 nodes meshed across the namespaces"; else
    fail "4 nodes meshed across the namespaces" "see the logs"; dump; finish; fi

# 1. idle: probes keep everyone up
sleep $((3 * M))
downs=$(cat "$T_DIR"/*.log | grep -c '^WATCH down ')
[ "$downs" = 0 ] && pass "idle for $((3 * M)) s (3 x monitor_timeout): no node goes down" ||
    { fail "idle: no node goes down" "$downs node-downs"; dump; }

# The latest time (epoch seconds) at which each of the nodes $2... reported
# node $1 down with "peer timed out"; fails when one has not.
down_time() {
    local v=$1 n t max=0; shift
    for n in "$@"; do
        t=$(grep "^WATCH down $v .*peer timed out" "$T_DIR/$n.log" | tail -1 | sed 's/.* t=//')
        [ -n "$t" ] || return 1
        max=$(echo "$t $max" | awk '{print ($1 > $2) ? $1 : $2}')
    done
    echo "$max"
}
within() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { exit !(a - b <= m) }'; }

# 2. a stopped peer
t0=$(date +%s.%N)
kill -STOP "${PID[b1]}"
detected() { down_time b1 a0 a1 b0 >/dev/null; }
if wait_for $((4 * M)) detected; then
    t1=$(down_time b1 a0 a1 b0)
    d=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    echo "# stopped b1 reported down by all others after $d s (monitor_timeout $M s)"
    within "$t1" "$t0" $((2 * M)) && pass "stopped peer detected within 2 x monitor_timeout ($d s)" ||
        fail "stopped peer detected within 2 x monitor_timeout" "$d s"
else
    fail "stopped peer reported down (peer timed out)" "not within $((4 * M)) s"; dump
fi
kill -CONT "${PID[b1]}"
if wait_for 30 all_up; then pass "after SIGCONT the mesh re-forms"; else
    fail "after SIGCONT the mesh re-forms" "see the logs"; dump; fi
nb1=$(grep -h '^WATCH down ' "$T_DIR"/a0.log "$T_DIR"/a1.log "$T_DIR"/b0.log | grep -vc '^WATCH down b1 ')
[ "$nb1" = 0 ] && pass "only b1 was reported down" || fail "only b1 was reported down" "$nb1 other downs"

# 3. a partition
t0=$(date +%s.%N)
ip -n "$NSA" link set "$VA" down
part_seen() {
    down_time b0 a0 a1 >/dev/null && down_time b1 a0 a1 >/dev/null &&
        down_time a0 b0 b1 >/dev/null && down_time a1 b0 b1 >/dev/null
}
if wait_for $((4 * M)) part_seen; then
    t1=0
    for v in "b0 a0 a1" "b1 a0 a1" "a0 b0 b1" "a1 b0 b1"; do
        t=$(down_time $v)
        t1=$(echo "$t $t1" | awk '{print ($1 > $2) ? $1 : $2}')
    done
    d=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    echo "# partition noticed on both sides after $d s (monitor_timeout $M s)"
    within "$t1" "$t0" $((2 * M)) && pass "partition detected on both sides within 2 x monitor_timeout ($d s)" ||
        fail "partition detected within 2 x monitor_timeout" "$d s"
else
    fail "partition detected on both sides" "not within $((4 * M)) s"; dump
fi
# what each node sent to the other side after it went down is reported lost
lost_seen() {
    local n v
    for n in a0 a1; do for v in b0 b1; do
        grep -q "^WATCH lost $v#watch " "$T_DIR/$n.log" || return 1; done; done
    for n in b0 b1; do for v in a0 a1; do
        grep -q "^WATCH lost $v#watch " "$T_DIR/$n.log" || return 1; done; done
}
if wait_for $((3 * M)) lost_seen; then pass "messages sent across the partition are reported lost"; else
    fail "messages sent across the partition are reported lost" "no monitor fired"; dump; fi

# 4. heal
ip -n "$NSA" link set "$VA" up
if wait_for 60 all_up; then pass "after healing the mesh re-forms by itself"; else
    fail "after healing the mesh re-forms by itself" "see the logs"; dump; fi
sleep 1
# No message is delivered after its monitor fired at its sender (a monitor
# may fire later for a message that arrived: its port's node went down).
bad=0
nlost=0
for n in $NODES; do
    while read -r port seq tl; do
        nlost=$((nlost + 1))
        tg=$(grep "^WATCH got  \[\"lost\",\"$n\",$seq\]" "$T_DIR/${port%#watch}.log" | sed 's/.* t=//')
        [ -n "$tg" ] && awk -v g="$tg" -v l="${tl#t=}" 'BEGIN { exit !(g > l) }' && {
            bad=$((bad + 1)); echo "# $n: message $seq to $port delivered at $tg after its monitor fired at ${tl#t=}"; }
    done < <(grep '^WATCH lost ' "$T_DIR/$n.log" | awk '{print $3, $4, $NF}')
done
echo "# $nlost monitors of messages sent to nodes that were down fired; $bad of those messages arrived later"
[ "$nlost" -gt 0 ] && [ "$bad" = 0 ] && pass "no message is delivered after it was reported lost" ||
    fail "no message is delivered after it was reported lost" "$bad of $nlost"
finish
