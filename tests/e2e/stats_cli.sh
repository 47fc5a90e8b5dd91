#!/bin/bash
# stats.sh - `aemp stats` and `aemp top` against real `aemp run` nodes on
# 127.0.0.1: the JSON parsed by a JSON parser, counters that follow the
# messages a test sends, the text forms, a node without stats, bad usage.
# (test_stats.c proves the counters exact with a hand-driven peer; here the
# nodes' own Global messages run alongside, so the message check allows
# for them.)
T_LIMIT=150
. "$(dirname "$0")/lib.sh"

RECV_SO="$AEMP_BUILD_DIR/examples/libsimple_example_receiver.so"

# pyjson NAME PYCODE: run PYCODE with `j` the list of JSON values, one per
# line of the last stdout (fails if a line is not JSON); it asserts.
pyjson() {
    if python3 -c '
import json, sys
j = [json.loads(l) for l in open(sys.argv[2]).read().splitlines()]
exec(sys.argv[1])' "$2" "$T_DIR/last.out" 2>"$T_DIR/py.err"; then pass "$1"; else
        fail "$1" "$(tail -3 "$T_DIR/py.err") -- $(head -c 300 "$T_DIR/last.out")"; fi
}

expect_status "gensecret" 0 "$AEMP" gensecret
P1=$(free_port)
P2=$(free_port)
expect_status "seeds for the aemp profile" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$P1"

# --- bad usage
expect_status "stats without NODE" 2 "$AEMP" stats
err_is "stats without NODE: message" "aemp: stats: missing NODE (usage: aemp stats [--json] NODE...)"
expect_status "stats of 'n1#'" 2 "$AEMP" stats 'n1#'
expect_status "top --json" 2 "$AEMP" top --json n1
err_is "top --json: message" "aemp: top: --json is for \`aemp stats NODE...\`, not for watching"
expect_status "top --count 0" 2 "$AEMP" top --count 0 n1
err_is "top --count 0: message" "aemp: top: --count wants a positive number, not '0'"
expect_status "stats --count without --watch" 2 "$AEMP" stats --count 2 n1
# --interval without --watch is refused like --count (it was silently ignored)
expect_status "stats --interval without --watch" 2 "$AEMP" stats --interval 2 n1
err_is "stats --interval without --watch: message" \
    "aemp: stats: --count and --interval go with --watch"
expect_status "stats: nobody there" 1 "$AEMP" stats --timeout 1 n1
err_is "stats: nobody there: message" "aemp: stats: cannot reach n1 within 1 s: no seed answered \
([\"127.0.0.1:$P1\"]): the connection was refused or the address is unreachable (is the seed \
running?)"

if [ ! -f "$RECV_SO" ]; then
    fail "examples built" "$RECV_SO missing"
    finish
fi
SVC="\"$RECV_SO:simple_example_receiver_init\""
start_bg "$T_DIR/n1.log" "$AEMP" run nodeid n1 binds "127.0.0.1:$P1" services "[$SVC]"
start_bg "$T_DIR/n2.log" "$AEMP" run nodeid n2 binds "127.0.0.1:$P2" seeds "127.0.0.1:$P1"
ready() { grep -q 'receiver .* ready' "$T_DIR/n1.log" && \
    [ "$("$AEMP" trace --timeout 5 n1 2>/dev/null)" = $'n1: n2\nn2: n1' ]; }
if wait_for 15 ready; then pass "n1 and n2 meshed"; else
    fail "n1 and n2 meshed" "no"; dump "$T_DIR/n1.log" "$T_DIR/n2.log"; finish; fi
R1=$(sed -n 's/^receiver \(n1#[^ ]*\) ready.*/\1/p' "$T_DIR/n1.log" | head -1)

# --- stats --json: one object per node, in the order given
expect_status "stats --json n1 n2" 0 "$AEMP" stats --json n1 n2
pyjson "stats --json: one object per node with its counters" '
assert [s["node"] for s in j] == ["n1", "n2"], j
for s, other in ((j[0], "n2"), (j[1], "n1")):
    p = s["peers"][other]
    assert p["up"] is True and p["connects"] >= 1 and p["msgs_in"] >= 1, p
    for k in ("msgs_in", "msgs_out", "bytes_in", "bytes_out", "connects", "disconnects",
              "handshake_failures", "queued_bytes", "peers_up"):
        assert isinstance(s["total"][k], (int, float)), k
    assert s["total"]["peers_up"] >= 1 and s["uptime"] > 0 and s["ports"] >= 1
    assert set(s["total"]["disconnect_reasons"]) == {"closed_by_peer", "timeout", "protocol", "error", "replaced"}
    assert set(s["total"]["handshake_failure_causes"]) == {"connect", "protocol", "auth", "tls", "timeout", "closed_by_peer", "duplicate", "refused"}
'
cp "$T_DIR/last.out" "$T_DIR/before.json"

# --- N messages from n2 to n1's receiver (n1 relays our request to n2's
# snd_multiple): n1 counts them from n2, n2 counts them to n1
N=40
args=()
for i in $(seq 1 $N); do args+=("[\"$R1\",\"m\",$i]"); done
expect_status "n2 sends $N messages to n1" 0 "$AEMP" snd --quiet n1 snd n2 snd_multiple "${args[@]}"
got_all() { [ "$(grep -c "$R1 received: \[\"m\"," "$T_DIR/n1.log")" -ge $N ]; }
wait_for 10 got_all && pass "the receiver got $N messages" || fail "the receiver got $N messages" "$(grep -c received "$T_DIR/n1.log")"
expect_status "stats --json n1 n2 after" 0 "$AEMP" stats --json n1 n2
cp "$T_DIR/last.out" "$T_DIR/after.json"
python3 - "$T_DIR/before.json" "$T_DIR/after.json" $N >"$T_DIR/delta.txt" 2>&1 <<'PY'
import json, sys
b = [json.loads(l) for l in open(sys.argv[1])]
a = [json.loads(l) for l in open(sys.argv[2])]
n = int(sys.argv[3])
din = a[0]["peers"]["n2"]["msgs_in"] - b[0]["peers"]["n2"]["msgs_in"]
dout = a[1]["peers"]["n1"]["msgs_out"] - b[1]["peers"]["n1"]["msgs_out"]
dbytes = a[0]["peers"]["n2"]["bytes_in"] - b[0]["peers"]["n2"]["bytes_in"]
print(din, dout, dbytes)
# each message is ["<receiver port name>","m",i]: at least these bytes
least = sum(len(json.dumps([sys.argv[0] and "x", "m", i], separators=(",", ":"))) for i in range(1, n + 1))
assert n <= din <= n + 8, ("n1 from n2", din)
assert n <= dout <= n + 8, ("n2 to n1", dout)
assert dbytes >= least, (dbytes, least)
PY
[ $? = 0 ] && pass "counters moved by the $N messages (n1 in from n2, n2 out to n1, bytes): $(cat "$T_DIR/delta.txt")" \
    || fail "counters moved by the $N messages" "$(cat "$T_DIR/delta.txt")"

# --- the text form
expect_status "stats n1 (text)" 0 "$AEMP" stats n1
grep -Eq '^n1: up [0-9.]+ s, [0-9]+ ports, [0-9]+ monitored ports, [0-9]+ peers up, listening on \["127.0.0.1:'"$P1"'"\]$' "$T_DIR/last.out" \
    && pass "stats text: heading" || fail "stats text: heading" "$(head -1 "$T_DIR/last.out")"
grep -Eq '^  total: in [0-9]+ msgs [0-9]+ B, out [0-9]+ msgs [0-9]+ B, queued [0-9]+ B, connects [0-9]+, disconnects [0-9]+' "$T_DIR/last.out" \
    && pass "stats text: total line" || fail "stats text: total line" "$(cat "$T_DIR/last.out")"
grep -Eq '^  n2 \(up\): in [0-9]+ msgs' "$T_DIR/last.out" \
    && pass "stats text: a line for peer n2" || fail "stats text: a line for peer n2" "$(cat "$T_DIR/last.out")"

# --- aemp top --count: two rounds, one line per node, rates from the second
expect_status "top --count 2 --interval 0.5 n1" 0 "$AEMP" top --count 2 --interval 0.5 n1
python3 - "$T_DIR/last.out" >"$T_DIR/top.txt" 2>&1 <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
heads = [i for i, l in enumerate(lines) if l.startswith("aemp top - ")]
assert len(heads) == 2, lines
assert re.match(r"aemp top - \d\d:\d\d:\d\d - 2 nodes - round 2, every 0.5 s$", lines[heads[1]]), lines[heads[1]]
for h in heads:
    assert lines[h + 1].split()[:4] == ["NODE", "UPTIME", "PEERS", "PORTS"], lines[h + 1]
    rows = [l.split() for l in lines[h + 2:h + 4]]
    assert [r[0] for r in rows] == ["n1", "n2"], rows
    for r in rows:
        assert len(r) == 12, r
        assert int(r[2]) >= 1, r  # peers up
        if h == heads[0]:
            assert r[4:8] == ["-"] * 4, r  # no rates before a second sample
        else:
            assert all(float(x) >= 0 for x in r[4:8]), r
print("ok")
PY
[ $? = 0 ] && pass "top: two tables, n1 and n2, rates in the second" || fail "top output" "$(cat "$T_DIR/top.txt"; cat "$T_DIR/last.out")"
expect_status "stats --watch --count 1 (nodes from the seeds)" 0 "$AEMP" stats --watch --count 1 --interval 0.5
grep -q "^n1 " "$T_DIR/last.out" && grep -q "^n2 " "$T_DIR/last.out" \
    && pass "stats --watch without NODE finds the network through the seeds" \
    || fail "stats --watch without NODE" "$(cat "$T_DIR/last.out")"

# --- top ends on SIGTERM (and restores nothing it did not change: no tty here)
start_bg "$T_DIR/top.out" "$AEMP" top --interval 0.3 n1
TOP=$BG_PID
has_table() { grep -q "^n2 " "$T_DIR/top.out"; }
wait_for 10 has_table && pass "top runs until stopped" || fail "top runs" "$(cat "$T_DIR/top.out")"
kill -TERM "$TOP"
wait "$TOP"
st=$?
[ "$st" = 0 ] && pass "top: exit 0 on SIGTERM" || fail "top: exit 0 on SIGTERM" "exit $st"

# --- on a terminal (a pseudo-terminal from script(1)): the screen is
# cleared each round and q quits with exit 0
if command -v script >/dev/null; then
    # q is typed once two rounds are on the screen
    mkfifo "$T_DIR/top.in"
    timeout 20 script -qfec "$AEMP top --interval 0.3 n1" /dev/null <"$T_DIR/top.in" \
        >"$T_DIR/top.tty" 2>&1 &
    SCR=$!
    T_PIDS+=("$SCR")
    exec 8>"$T_DIR/top.in"
    rounds() { grep -c $'\033\[H\033\[2Jaemp top - ' "$T_DIR/top.tty"; }
    two_rounds() { [ "$(rounds)" -ge 2 ]; }
    wait_for 15 two_rounds
    printf q >&8
    wait "$SCR"
    st=$?
    exec 8>&-
    [ "$st" = 0 ] && pass "top on a terminal: q quits, exit 0" || fail "top: q quits" "exit $st"
    n=$(rounds)
    [ "$n" -ge 2 ] && pass "top on a terminal: the screen cleared each round ($n rounds)" \
        || fail "top on a terminal: screen cleared" "$(head -c 300 "$T_DIR/top.tty" | od -c | head -5)"
    grep -q "(q quits)" "$T_DIR/top.tty" && pass "top on a terminal: says q quits" \
        || fail "top on a terminal: says q quits" "$(head -c 200 "$T_DIR/top.tty")"
else
    echo "# script(1) not installed: the terminal checks of top are skipped"
fi

finish
