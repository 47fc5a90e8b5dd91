#!/bin/bash
# prometheus.sh - a real Prometheus scrapes the monitoring listeners of a
# network: five `aemp run` nodes serving "http" (plus a Perl AnyEvent::MP
# node when the reference is installed: a node of the mesh, but no scrape
# target), Prometheus (Debian's) on 127.0.0.1 with a scrape interval of 1 s
# and its data in the test's temporary directory. Asked through its HTTP
# API: every target is up, the nodes see each other (and the Perl node),
# and after n1 sends N messages to a port on n0 (svc_seq's seq::source)
# the counters Prometheus scraped grew by exactly N (plus the messages
# Global exchanges about the visiting `aemp snd` client, counted by a dry
# run of the same command with 0 messages): n1's
# aemp_peer_messages_sent_total{peer="n0"} and n0's
# aemp_peer_messages_received_total{peer="n1"}. Skips (77) without
# prometheus.
T_LIMIT=240
. "$(dirname "$0")/lib.sh"
SEQ_SO="$AEMP_BUILD_DIR/tests/libsvc_seq.so"
PROM=$(command -v prometheus || true)
if [ -z "$PROM" ]; then
    echo "1..0 # SKIP prometheus not installed (tools/deps.sh --tests installs it)"
    exit 77
fi
[ -f "$SEQ_SO" ] || { fail "svc_seq built" "$SEQ_SO missing"; finish; }
N=1000
PS=$(free_port)
expect_status "gensecret" 0 "$AEMP" gensecret
# probes only after 30 s of silence: nothing but the test's messages flows
# between n0 and n1 while it counts
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout 60
SVC="[\"$SEQ_SO:svc_seq_init\"]"
HP=()
targets=""
for i in 0 1 2 3 4; do
    HP[i]=$(free_port)
    bind=127.0.0.1:0
    [ "$i" = 0 ] && bind="127.0.0.1:$PS"
    start_bg "$T_DIR/n$i.log" "$AEMP" run nodeid "n$i" binds "$bind" http "127.0.0.1:${HP[i]}" services "$SVC"
    targets="$targets'127.0.0.1:${HP[i]}', "
done
PERL=0
if perl -I"$PERL_LIB" -MAnyEvent::MP -e 'exit($AnyEvent::MP::VERSION >= 1.30 ? 0 : 1)' 2>/dev/null; then
    PERL=1
    start_bg "$T_DIR/perl.log" perl -I"$PERL_LIB" -e '
        use AnyEvent; use AnyEvent::MP; $| = 1;
        configure nodeid => "perl1", binds => ["127.0.0.1:0"], seeds => ["127.0.0.1:'"$PS"'"];
        AE::cv->recv;'
else
    echo "# Perl AnyEvent::MP 1.30 not found: five C nodes only"
fi

PP=$(free_port)
mkdir -p "$T_DIR/prom"
cat >"$T_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: aemp
    static_configs:
      - targets: [${targets%, }]
EOF
start_bg "$T_DIR/prometheus.log" "$PROM" --config.file="$T_DIR/prometheus.yml" \
    --storage.tsdb.path="$T_DIR/prom" --web.listen-address="127.0.0.1:$PP" \
    --log.level=warn
PROM_PID=$BG_PID

# q EXPR: the instant vector of EXPR as "INSTANCE LABEL=VALUE... VALUE" lines
q() {
    python3 - "$PP" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, expr = sys.argv[1], sys.argv[2]
u = "http://127.0.0.1:%s/api/v1/query?query=%s" % (port, urllib.parse.quote(expr))
d = json.load(urllib.request.urlopen(u, timeout=5))
assert d["status"] == "success", d
for r in d["data"]["result"]:
    m = r["metric"]
    labels = " ".join("%s=%s" % (k, v) for k, v in sorted(m.items()) if k not in ("__name__", "job"))
    print(labels, r["value"][1])
EOF
}
all_up() { [ "$(q 'sum(up{job="aemp"})' 2>/dev/null | awk '{print $NF}')" = 5 ]; }
if wait_for 60 all_up; then pass "Prometheus: all 5 targets up"; else
    fail "all 5 targets up" "$(q 'up' 2>&1 | head -5); $(tail -5 "$T_DIR/prometheus.log")"
    finish
fi
python3 - "$PP" <<'EOF' && pass "its targets API: 5 targets, health up, no scrape error" || fail "targets API" "see above"
import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/targets" % sys.argv[1], timeout=5))
t = d["data"]["activeTargets"]
bad = [(x["scrapeUrl"], x["health"], x["lastError"]) for x in t if x["health"] != "up" or x["lastError"]]
assert len(t) == 5 and not bad, (len(t), bad)
EOF
meshed() { [ "$(q 'count(aemp_peer_up{peer=~"n[0-4]"} == 1)' | awk '{print $NF}')" = 20 ]; }
wait_for 60 meshed && pass "each node's metrics: the four others up (20 series at 1)" ||
    fail "meshed in Prometheus" "$(q 'aemp_peer_up')"
if [ "$PERL" = 1 ]; then
    perl_seen() { [ "$(q 'count(aemp_peer_up{peer="perl1"} == 1)' | awk '{print $NF}')" = 5 ]; }
    wait_for 60 perl_seen && pass "every C node has the Perl node up (it is no target itself)" ||
        fail "Perl node seen" "$(q 'aemp_peer_up{peer="perl1"}')"
fi
q 'aemp_build_info' | grep -q 'version=' && pass "aemp_build_info scraped" || fail "aemp_build_info" "$(q aemp_build_info)"
q 'process_resident_memory_bytes' | awk '$NF > 0' | grep -c . | grep -qx 5 &&
    pass "process_resident_memory_bytes of 5 nodes" || fail "process metrics" "$(q process_resident_memory_bytes)"

expect_status "spawn seq::sink on n0" 0 "$AEMP" snd n0 AnyEvent::MP::_spawn sink1 seq::sink
sink_up() { "$AEMP" cal --timeout 1 'n0#sink1' count >/dev/null 2>&1; }
wait_for 15 sink_up || fail "sink up" "no answer"
S1="aemp_peer_messages_sent_total{instance=\"127.0.0.1:${HP[1]}\",peer=\"n0\"}"
R0="aemp_peer_messages_received_total{instance=\"127.0.0.1:${HP[0]}\",peer=\"n1\"}"
val() { q "$1" | awk '{print $NF}'; }
# the counters settle (no traffic between n0 and n1 for 3 scrapes)
settled() {
    local a b
    a="$(val "$S1") $(val "$R0")"
    sleep 3
    b="$(val "$S1") $(val "$R0")"
    [ "$a" = "$b" ] && [ -n "$(val "$S1")" ]
}
wait_for 30 settled || fail "counters settle" "$(val "$S1") $(val "$R0")"
# The client that asks n1 to send (an anonymous node of `aemp snd`) joins
# the mesh for a moment, and Global tells n0 and n1 about it: a few
# messages between them of its own. Their number D is measured first, by
# the same command asking for 0 messages; the real run must then add
# exactly N + D.
s0=$(val "$S1")
r0=$(val "$R0")
expect_status "dry run: n1 sends 0 messages" 0 "$AEMP" snd n1 seq::source 'n0#sink1' 0
sleep 4
wait_for 30 settled || fail "counters settle after the dry run" ""
s_before=$(val "$S1")
r_before=$(val "$R0")
D=$((s_before - s0))
echo "# a visiting client costs D=$D messages n1 -> n0 (n0 received $((r_before - r0)))"
[ "$D" -le 4 ] && [ "$((r_before - r0))" = "$D" ] && pass "the client's own messages: $D, the same at both ends" ||
    fail "client's messages" "sent $D, received $((r_before - r0))"
echo "# before: n1 sent to n0 $s_before, n0 received from n1 $r_before"
expect_status "n1 sends $N messages to n0#sink1" 0 "$AEMP" snd n1 seq::source 'n0#sink1' "$N"
all_in() { [ "$("$AEMP" cal --timeout 5 'n0#sink1' count 2>/dev/null)" = "$N,true" ]; }
wait_for 60 all_in && pass "the $N messages arrived" || fail "$N messages arrived" "$("$AEMP" cal 'n0#sink1' count 2>&1)"
grown() { [ "$(val "$S1")" = $((s_before + N + D)) ] && [ "$(val "$R0")" = $((r_before + N + D)) ]; }
if wait_for 20 grown; then
    pass "Prometheus: n1's sent{peer=n0} and n0's received{peer=n1} grew by exactly $N (+ the client's $D)"
else
    fail "counters grew by exactly $N + $D" "sent $s_before -> $(val "$S1"), received $r_before -> $(val "$R0")"
fi
rate_ok=$(q "increase(aemp_peer_messages_received_total{peer=\"n1\",instance=\"127.0.0.1:${HP[0]}\"}[1m])" | awk '{print ($NF >= '"$N"' * 0.9) ? "yes" : "no"}')
[ "$rate_ok" = yes ] && pass "PromQL increase() over the minute sees them" || fail "increase()" "$rate_ok"
stop_pid "$PROM_PID"
finish
