#!/bin/bash
# scripting.sh - aemp for shell scripts: --json output (every line parsed by a
# JSON parser), snd --quiet, options after the positional arguments, and
# failures that say what really happened (exit 2 for bad usage at once,
# exit 1 naming the cause), against real `aemp run` nodes on 127.0.0.1.
T_LIMIT=150
. "$(dirname "$0")/lib.sh"

RECV_SO="$AEMP_BUILD_DIR/examples/libsimple_example_receiver.so"

# json_is NAME PYEXPR WANT: parse every line of the last stdout as JSON
# (fails if one is not), `j` the list of values; compare str(PYEXPR).
json_is() {
    local got
    got=$(python3 -c '
import json, sys
j = [json.loads(l) for l in open(sys.argv[2]).read().splitlines()]
print(eval(sys.argv[1]))' "$2" "$T_DIR/last.out" 2>&1)
    if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "got '$got', wanted '$3'"; fi
}

expect_status "gensecret" 0 "$AEMP" gensecret
P1=$(free_port)
P2=$(free_port)
expect_status "seeds for the aemp profile" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$P1"

# --- bad usage: exit 2 at once, no waiting for the network
timed expect_status "cal NODE without a request" 2 "$AEMP" cal n1
err_has "cal NODE without a request: message" "aemp: cal: missing REQUEST: the node port of n1 \
answers named requests (usage: aemp cal NODE REQUEST ARG..., e.g. \`aemp cal n1 info\`; every \
node answers info, time, up_nodes, known_nodes)"
took_at_most "cal NODE without a request: no wait" 1
expect_status "cal NODE with a JSON request" 2 "$AEMP" cal n1 '["info"]'
err_has "cal NODE with a JSON request: message" \
    "aemp: cal: the request name must be a plain word, not '[\"info\"]'"
expect_status "snd to 'seed#'" 2 "$AEMP" snd 'seed#' x
err_has "snd to 'seed#': message" "aemp: snd: 'seed#' has an empty port name: write the node \
ID alone ('seed') for its node port, or NODE#PORT"
expect_status "cal to 'seed#'" 2 "$AEMP" cal 'seed#' info
expect_status "mon of 'n1#'" 2 "$AEMP" mon 'n1#'
expect_status "trace of '#x'" 2 "$AEMP" trace '#x'
err_has "trace of '#x': message" "aemp: trace: '#x' is not a node ID (NODE or NODE#PORT)"
expect_status "snd --json --quiet" 2 "$AEMP" snd --json --quiet n1 x
err_has "snd --json --quiet: message" "aemp: snd: --json and --quiet exclude each other"
expect_status "trace --dot --json" 2 "$AEMP" trace --dot n1 --json
err_has "trace --dot --json: message" "aemp: trace: --dot and --json exclude each other"
expect_status "an option after PORT of cal" 2 "$AEMP" cal n1 --timeout 1 info
err_has "an option after PORT of cal: message" "aemp: cal: options go before PORT (what \
follows PORT is the message); to send the text --timeout write it after \`--\` or as JSON: \
'\"--timeout\"'"
expect_status "unknown option" 2 "$AEMP" mon --dot n1#x
err_has "unknown option: message" \
    "aemp: mon: unknown option '--dot' (mon takes --timeout SECONDS, --json, --verbose)"
expect_status "--quiet is snd's only" 2 "$AEMP" cal --quiet n1 info
expect_status "--timeout=0" 2 "$AEMP" trace --timeout=0 n1
err_has "--timeout=0: message" "aemp: trace: --timeout wants a positive number of seconds, not '0'"

# --- no node there: --timeout after the positional argument is accepted,
# and the failure says no seed answered (not "still alive")
NOSEED="no seed answered ([\"127.0.0.1:$P1\"]): the connection was refused or the address is unreachable (is the seed running?)"
timed expect_status "mon PORT --timeout 1, nobody there" 1 "$AEMP" mon n1#x --timeout 1
err_has "mon, nobody there: message" "aemp: mon: cannot reach n1 within 1 s: $NOSEED"
took_at_most "mon, nobody there: bounded" 3
timed expect_status "trace NODE --json --timeout=1, nobody there" 1 "$AEMP" trace n1 --json --timeout=1
json_is "trace --json, nobody there: one line, neighbours null" 'j' "[{'node': 'n1', 'neighbours': None}]"
err_has "trace, nobody there: message" "aemp: trace: cannot reach n1 within 1 s: $NOSEED"

# --- a node n1 with a receiver port, n2 joining through it
if [ ! -f "$RECV_SO" ]; then
    fail "examples built" "$RECV_SO missing"
    finish
fi
SVC="\"$RECV_SO:simple_example_receiver_init\""
start_bg "$T_DIR/n1.log" env AEMP_TRACE=1 "$AEMP" run nodeid n1 binds "[\"127.0.0.1:$P1\"]" services "[$SVC,$SVC]"
n_ready() { [ "$(grep -c 'receiver .* ready' "$T_DIR/n1.log")" -ge 2 ]; }
if wait_for 10 n_ready; then pass "node n1 up"; else
    fail "node n1 up" "no receiver"; dump "$T_DIR/n1.log"; finish; fi
mapfile -t RP < <(sed -n 's/^receiver \(n1#[^ ]*\) ready.*/\1/p' "$T_DIR/n1.log")
R1=${RP[0]}
R2=${RP[1]}

expect_status "cal --json n1 info" 0 "$AEMP" cal --json n1 info
json_is "cal --json: the reply array" 'j' "[['n1']]"
expect_status "cal --json n1 time" 0 "$AEMP" cal --json n1 time
json_is "cal --json time: one number in an array" \
    'len(j) == 1 and len(j[0]) == 1 and isinstance(j[0][0], float)' True
expect_status "snd --quiet" 0 "$AEMP" snd --quiet "$R1" hello
out_is "snd --quiet: nothing on stdout" ""
[ ! -s "$T_DIR/last.err" ] && pass "snd --quiet: nothing on stderr" \
    || fail "snd --quiet: nothing on stderr" "$(cat "$T_DIR/last.err")"
expect_status "snd --quiet to a missing port" 1 "$AEMP" snd --quiet n1#nosuch hi
err_has "snd --quiet: failures still reported" "aemp: snd: n1#nosuch was not delivered: \
\"no_such_port\",\"cannot monitor nonexistent port\",\"n1#nosuch\""
expect_status "snd --json" 0 "$AEMP" snd --json "$R1" hello
json_is "snd --json: the proof as an array" 'j' "[['message sent successfully']]"

# a request the node does not have: says the node is up and the request
# unanswered, instead of blaming the network
timed expect_status "cal n1 with an unknown request" 1 "$AEMP" cal --timeout 1 n1 nosuch_request
err_has "cal unknown request: message" "aemp: cal: n1 is up but did not answer the request \
'nosuch_request' within 1 s: it has no node request or registered function of that name \
(requests every node answers: info, time, up_nodes, known_nodes), or the function sent no reply"
took_at_most "cal unknown request: bounded" 3

# mon: "still alive" only for a port whose node is up
expect_status "mon --timeout of a live port" 1 "$AEMP" mon "$R1" --timeout 1
err_has "mon of a live port: still alive" "aemp: mon: $R1 still alive after 1 s"
timed expect_status "mon of a node that never existed" 1 "$AEMP" mon --timeout 2 nosuchnode
err_has "mon of a node that never existed: message" "aemp: mon: cannot reach nosuchnode within \
2 s: the seeds answered, but nosuchnode did not come up: not part of this network, not running, \
or unreachable from here"

# The kils go out once both monitors are in place on n1: its trace logs
# each mon1 request as it handles it (a kil before would find no monitor).
mon1s() { grep -F "\"mon1\",\"${1#n1#}\"]" "$T_DIR/n1.log" | grep -c "> rcv from "; }
m1_before=$(mon1s "$R1")
m2_before=$(mon1s "$R2")
start_bg "$T_DIR/mon1.out" "$AEMP" mon --json "$R1"
M1=$BG_PID
start_bg "$T_DIR/mon2.out" "$AEMP" mon "$R2" --json
M2=$BG_PID
mons_in() { [ "$(mon1s "$R1")" -gt "$m1_before" ] && [ "$(mon1s "$R2")" -gt "$m2_before" ]; }
wait_for 30 mons_in || fail "both monitors reach n1" "$(tail -5 "$T_DIR/n1.log")"
# the reason carries U+0000: through the tool, n1 and back it stays one string
expect_status "kil with a reason" 0 "$AEMP" snd --quiet n1 kil "${R1#n1#}" gone '{"why":1}' '"a\u0000b"'
expect_status "kil without a reason" 0 "$AEMP" snd --quiet n1 kil "${R2#n1#}"
m_done() { ! kill -0 "$1" 2>/dev/null; }
if wait_for 20 m_done "$M1" && wait_for 20 m_done "$M2"; then
    cp "$T_DIR/mon1.out" "$T_DIR/last.out"
    json_is "mon --json: the reason as an array, U+0000 kept" 'j' "[['gone', {'why': 1}, 'a\\x00b']]"
    cp "$T_DIR/mon2.out" "$T_DIR/last.out"
    json_is "mon --json, normal kill: an empty array" 'j' "[[]]"
else
    fail "mon --json ends when the port is killed" "still running"
fi

# trace --json: one object per node, sorted
start_bg "$T_DIR/n2.log" "$AEMP" run nodeid n2 binds "[\"127.0.0.1:$P2\"]" seeds "127.0.0.1:$P1"
trace_ok() { [ "$("$AEMP" trace --timeout 5 n1 2>/dev/null)" = $'n1: n2\nn2: n1' ]; }
wait_for 15 trace_ok
expect_status "trace --json n1" 0 "$AEMP" trace n1 --json
json_is "trace --json: one object per node" 'j' \
    "[{'node': 'n1', 'neighbours': ['n2']}, {'node': 'n2', 'neighbours': ['n1']}]"

# seeds --json
expect_status "seeds --json (none in the global part)" 0 "$AEMP" seeds --json
json_is "seeds --json: empty array" 'j' "[[]]"
expect_status "profile aemp seeds --json" 0 "$AEMP" profile aemp seeds --json
json_is "profile aemp seeds --json" 'j' "[['127.0.0.1:$P1']]"


# run KEY VALUE reads a value as setKEY VALUE does (one parser, the key's
# type): monitor_timeout 2 is a number the node uses (a stopped peer times
# out, and a handshake gives up after 2 s, not the default 10), autorestart
# false is false (it used to be the string "false", which started a watchdog)
P3=$(free_port)
start_bg "$T_DIR/n3.log" "$AEMP" run nodeid n3 binds "127.0.0.1:$P3"
N3=$BG_PID
wait_for 20 grep -q 'node n3 running' "$T_DIR/n3.log" || fail "n3 up" "$(cat "$T_DIR/n3.log")"
start_bg "$T_DIR/n4.log" "$AEMP" run nodeid n4 binds 127.0.0.1:0 seeds "127.0.0.1:$P3" \
    monitor_timeout 2 autorestart false loglevel 7
N4=$BG_PID
if wait_for 20 grep -q 'node n3 is up' "$T_DIR/n4.log"; then pass "run with typed values: n4 up, meets n3"
else fail "run with typed values: n4 up, meets n3" "$(cat "$T_DIR/n4.log")"; fi
check "run autorestart false: no watchdog" bash -c "! grep -q watchdog '$T_DIR/n4.log'"
kill -STOP "$N3"
if wait_for 25 grep -q 'handshake made no progress for 2 s' "$T_DIR/n4.log" &&
    grep -q '(n3) closed: peer timed out' "$T_DIR/n4.log"; then
    pass "run monitor_timeout 2: the node uses 2 seconds"
else fail "run monitor_timeout 2: the node uses 2 seconds" "$(cat "$T_DIR/n4.log")"; fi
kill -CONT "$N3"
stop_pid "$N4"
stop_pid "$N3"
expect_status "run heartbeat abc: bad usage" 2 "$AEMP" run heartbeat abc
err_has "run heartbeat abc: the message names the key" \
    "aemp: run: \"heartbeat\" must be a number (seconds), not 'abc'"

finish
