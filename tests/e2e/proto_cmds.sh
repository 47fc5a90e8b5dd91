#!/bin/bash
# proto_cmds.sh - the protocol subcommands of aemp (run, snd, cal, mon, trace)
# as real processes on 127.0.0.1: usage errors, the missing-secret message,
# timeouts, then a node started with `aemp run` (with the simple_example_receiver example
# service for ports to talk to) driven by snd/cal/mon, a second node for
# trace, and the clean stop of `run` by signal.
T_LIMIT=150
. "$(dirname "$0")/lib.sh"

RECV_SO="$AEMP_BUILD_DIR/examples/libsimple_example_receiver.so"


# what a command says when its target's node never came up (no seed answered)
# (nothing listening: the connection is refused; a wrong secret: the
# authentication fails)
REFUSED="the connection was refused or the address is unreachable (is the seed running?)"
AUTHFAIL="authentication failed: the seed and this node have different secrets"
noseed() { echo "cannot reach $1 within $2 s: no seed answered ([\"127.0.0.1:$P1\"]): ${3:-$REFUSED}"; }

# --- usage errors: exit 2 and one line naming what is missing
expect_status "snd without PORT" 2 "$AEMP" snd
err_has "snd without PORT: message" "aemp: snd: missing PORT (usage: aemp snd PORT ARG...)"
expect_status "cal without PORT" 2 "$AEMP" cal --timeout 1
err_has "cal without PORT: message" "aemp: cal: missing PORT (usage: aemp cal PORT ARG...)"
expect_status "mon without PORT" 2 "$AEMP" mon
err_has "mon without PORT: message" "aemp: mon: missing PORT (usage: aemp mon PORT)"
expect_status "trace without NODE" 2 "$AEMP" trace
err_has "trace without NODE: message" "aemp: trace: missing NODE (usage: aemp trace NODE)"
expect_status "--timeout without value" 2 "$AEMP" snd --timeout
err_has "--timeout without value: message" "aemp: snd: --timeout needs a value in seconds"
expect_status "--timeout not a number" 2 "$AEMP" cal --timeout soon n1 info
err_has "--timeout not a number: message" \
    "aemp: cal: --timeout wants a positive number of seconds, not 'soon'"
expect_status "unknown option" 2 "$AEMP" snd --wait 3 n1 x
expect_status "run: a profile that is not a name" 2 "$AEMP" '["run",5]'
err_has "run: a profile that is not a name: message" \
    "aemp: run: the profile must be a name, not '5' (usage: aemp run [PROFILE] [KEY VALUE...])"
expect_status "snd: invalid JSON argument" 2 "$AEMP" snd n1 '[1,'
[ "$(wc -l <"$T_DIR/last.err")" = 1 ] && pass "usage error is one line" \
    || fail "usage error is one line" "$(cat "$T_DIR/last.err")"

# --- no secret and no certificate yet
for sub in snd cal mon trace; do
    expect_status "$sub without secret" 1 "$AEMP" "$sub" --timeout 1 n1 $([ $sub = cal ] && echo info)
    grep -q 'run `aemp gensecret`' "$T_DIR/last.err" && pass "$sub: says to run aemp gensecret" \
        || fail "$sub: says to run aemp gensecret" "$(cat "$T_DIR/last.err")"
done

expect_status "gensecret" 0 "$AEMP" gensecret

# --- nobody there: fail after the timeout
P1=$(free_port)
P2=$(free_port)
expect_status "seeds for the aemp profile" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$P1"
timed expect_status "snd to a node that is not running" 1 "$AEMP" snd --timeout 1 n1 info
err_has "snd timeout: message" "aemp: snd: $(noseed n1 1)"
took_at_most "snd timeout: bounded" 3
timed expect_status "cal to a node that is not running" 1 "$AEMP" cal --timeout 1 n1#x y
err_has "cal timeout: message" "aemp: cal: $(noseed n1 1)"
took_at_most "cal timeout: bounded" 3
timed expect_status "trace of a node that is not running" 1 "$AEMP" trace --timeout 1 n1
out_is "trace: no answer line" "n1: (no answer)"
err_has "trace timeout: message" "aemp: trace: $(noseed n1 1)"
took_at_most "trace timeout: bounded" 3
timed expect_status "mon --timeout of a port nobody answers for" 1 "$AEMP" mon --timeout 1 n1#x
err_has "mon timeout: not 'still alive' but what happened" "aemp: mon: $(noseed n1 1)"
took_at_most "mon timeout: bounded" 3

# --- run: configure failure
expect_status "run with a bad node ID (bad usage)" 2 "$AEMP" run nodeid 'bad id' binds '[]'
grep -q "^aemp: run: .*bad id" "$T_DIR/last.err" && pass "run: configure failure message" \
    || fail "run: configure failure message" "$(cat "$T_DIR/last.err")"

# --- a real node n1 with two receiver ports (the example service, twice)
if [ ! -f "$RECV_SO" ]; then
    fail "examples built" "$RECV_SO missing"
    finish
fi
SVC="\"$RECV_SO:simple_example_receiver_init\""
start_bg "$T_DIR/n1.log" env AEMP_TRACE=1 "$AEMP" run nodeid n1 binds "[\"127.0.0.1:$P1\"]" \
    services "[$SVC,$SVC]"
N1=$BG_PID
n_ready() { [ "$(grep -c 'receiver .* ready' "$T_DIR/n1.log")" -ge 2 ]; }
if wait_for 10 n_ready; then pass "run: node n1 up with two receivers"; else
    fail "run: node n1 up" "no receivers"; dump "$T_DIR/n1.log"; finish; fi
grep -Eq "<5> node n1 running, listening on \\[\"127.0.0.1:[0-9]+\"\\]$" "$T_DIR/n1.log" && pass "run: logs node n1 running" \
    || fail "run: logs node n1 running" "$(head -c 300 "$T_DIR/n1.log")"
mapfile -t RP < <(sed -n 's/^receiver \(n1#[^ ]*\) ready.*/\1/p' "$T_DIR/n1.log")
R1=${RP[0]}
R2=${RP[1]}
[ -n "$R1" ] && [ -n "$R2" ] && [ "$R1" != "$R2" ] && pass "receiver ports $R1 $R2" \
    || fail "receiver ports" "'$R1' '$R2'"

# snd: delivery proven, the message arrives with 1.30's argument decoding
expect_status "snd to the node port" 0 "$AEMP" snd n1 devnull x
out_is "snd: proof of delivery" "message sent successfully"
expect_status "snd to a receiver" 0 "$AEMP" snd "$R1" hello 1 '[2,{"a":null}]' '"q"'
out_is "snd to a receiver: proof" "message sent successfully"
recv_has() { grep -qF "$R1 received: [\"hello\",\"1\",[2,{\"a\":null}],\"q\"]" "$T_DIR/n1.log"; }
wait_for 5 recv_has && pass "receiver got the message, arguments decoded as 1.30" \
    || { fail "receiver got the message" "not in log"; dump "$T_DIR/n1.log"; }
expect_status "snd to a port that does not exist" 1 "$AEMP" snd n1#nosuch hi
out_is "snd to a missing port: nothing on stdout" ""
err_has "snd to a missing port: message" "aemp: snd: n1#nosuch was not delivered: \
\"no_such_port\",\"cannot monitor nonexistent port\",\"n1#nosuch\""

# cal: reply as JSON without the brackets
expect_status "cal info" 0 "$AEMP" cal n1 info
out_is "cal info: reply" '"n1"'
expect_status "cal info, JSON array of all arguments" 0 "$AEMP" '["cal","n1","info"]'
out_is "cal info, JSON array form: reply" '"n1"'
expect_status "cal time" 0 "$AEMP" cal --timeout 3 n1 time
grep -qxE '[0-9]+(\.[0-9]+)?(e\+?[0-9]+)?' "$T_DIR/last.out" && pass "cal time: a number" \
    || fail "cal time: a number" "$(cat "$T_DIR/last.out")"
expect_status "cal to a port that does not exist" 1 "$AEMP" cal n1#nosuch x
err_has "cal to a missing port: reason" "aemp: cal: n1#nosuch died: \
\"no_such_port\",\"cannot monitor nonexistent port\",\"n1#nosuch\""

# mon: the reason a port dies
expect_status "mon of a missing port" 0 "$AEMP" mon n1#nosuch
out_is "mon of a missing port: reason" \
    '"no_such_port","cannot monitor nonexistent port","n1#nosuch"'
expect_status "mon --timeout of a live port" 1 "$AEMP" mon --timeout 1 "$R1"
err_has "mon of a live port: message" "aemp: mon: $R1 still alive after 1 s"

# The kils go out once both monitors are in place on n1: its trace logs
# each mon1 request as it handles it (a kil before would find no monitor).
mon1s() { grep -F "\"mon1\",\"${1#n1#}\"]" "$T_DIR/n1.log" | grep -c "> rcv from "; }
m1_before=$(mon1s "$R1")
m2_before=$(mon1s "$R2")
start_bg "$T_DIR/mon1.out" "$AEMP" mon "$R1"
M1=$BG_PID
start_bg "$T_DIR/mon2.out" "$AEMP" mon "$R2"
M2=$BG_PID
mons_in() { [ "$(mon1s "$R1")" -gt "$m1_before" ] && [ "$(mon1s "$R2")" -gt "$m2_before" ]; }
wait_for 30 mons_in || fail "both monitors reach n1" "$(tail -5 "$T_DIR/n1.log")"
expect_status "kil with a reason through the node port" 0 "$AEMP" snd n1 kil "${R1#n1#}" \
    gone '{"why":1}'
expect_status "kil without a reason (normal)" 0 "$AEMP" snd n1 kil "${R2#n1#}"
m_done() { ! kill -0 "$1" 2>/dev/null; }
if wait_for 20 m_done "$M1"; then
    wait "$M1"
    st=$?
    [ "$st" = 0 ] && pass "mon: exit 0 when the port dies" || fail "mon: exit 0" "exit $st"
    got=$(cat "$T_DIR/mon1.out")
    [ "$got" = '"gone",{"why":1}' ] && pass "mon: prints the reason" \
        || fail "mon: prints the reason" "'$got'"
else
    fail "mon ends when the port is killed" "still running"
fi
if wait_for 20 m_done "$M2"; then
    wait "$M2"
    st=$?
    [ "$st" = 0 ] && pass "mon (normal kill): exit 0" || fail "mon (normal kill): exit 0" "$st"
    got=$(od -An -c "$T_DIR/mon2.out" | tr -d ' ')
    [ "$got" = '\n' ] && pass "mon (normal kill): an empty line" \
        || fail "mon (normal kill): an empty line" "'$got'"
else
    fail "mon (normal kill) ends" "still running"
fi

# trace: n2 joins through n1
start_bg "$T_DIR/n2.log" "$AEMP" run nodeid n2 binds "[\"127.0.0.1:$P2\"]" \
    seeds "127.0.0.1:$P1"
N2=$BG_PID
WANT_TRACE=$'n1: n2\nn2: n1'
trace_ok() { [ "$("$AEMP" trace --timeout 5 n1 2>/dev/null)" = "$WANT_TRACE" ]; }
wait_for 15 trace_ok
expect_status "trace n1" 0 "$AEMP" trace n1
out_is "trace n1: both nodes, sorted" "$WANT_TRACE"
# (our anonymous node learns n2's address from n1 and connects to it at the
# next connect_interval, 2 s: the default timeout of 5 s covers that)
expect_status "trace from n2 (node in a port ID)" 0 "$AEMP" trace "n2#whatever"
out_is "trace n2: same network" "$WANT_TRACE"

# a wrong secret: refused, bounded failure
expect_status "aemp profile with another secret" 0 "$AEMP" profile aemp setsecret not-the-secret
timed expect_status "snd with a wrong secret" 1 "$AEMP" snd --timeout 2 n1 info
err_has "snd with a wrong secret: message" "aemp: snd: $(noseed n1 2 "$AUTHFAIL")"
took_at_most "snd with a wrong secret: bounded" 4
expect_status "aemp profile: secret removed again" 0 "$AEMP" profile aemp delsecret

# run stops cleanly on SIGTERM and SIGINT
kill -TERM "$N2"
wait "$N2"
st=$?
[ "$st" = 0 ] && pass "run: exit 0 on SIGTERM" || fail "run: exit 0 on SIGTERM" "exit $st"
kill -INT "$N1"
wait "$N1"
st=$?
[ "$st" = 0 ] && pass "run: exit 0 on SIGINT" || fail "run: exit 0 on SIGINT" "exit $st"

# after n1 is gone: refused connection, bounded failure
timed expect_status "snd after n1 stopped" 1 "$AEMP" snd --timeout 1 n1 info
err_has "snd after n1 stopped: message" "aemp: snd: $(noseed n1 1)"
took_at_most "snd after n1 stopped: bounded" 3

# run: list keys take comma lists like the config subcommands (a plain
# "cleartext" used to be stored as a string and fail the handshake)
P3=$(free_port)
P4=$(free_port)
start_bg "$T_DIR/n3.log" "$AEMP" run nodeid n3 binds "127.0.0.1:$P3" \
    auth_offer cleartext auth_accept cleartext framing_format json
N3=$BG_PID
start_bg "$T_DIR/n4.log" "$AEMP" run nodeid n4 binds "127.0.0.1:$P4" seeds "127.0.0.1:$P3" \
    auth_offer cleartext auth_accept cleartext,hmac_md6_64_256
N4=$BG_PID
expect_status "aemp profile: seed n3, offer cleartext" 0 "$AEMP" profile aemp \
    setseeds "127.0.0.1:$P3" setauth_offer cleartext
WANT_TRACE=$'n3: n4\nn4: n3'
trace34() { [ "$("$AEMP" trace --timeout 5 n3 2>/dev/null)" = "$WANT_TRACE" ]; }
if wait_for 20 trace34; then pass "run: nodes with auth_offer/auth_accept cleartext (list values) mesh"
else fail "run: list values for auth keys" "$("$AEMP" trace --timeout 3 n3 2>&1)"; dump "$T_DIR/n3.log" "$T_DIR/n4.log"; fi
grep -q "no common auth" "$T_DIR/n3.log" "$T_DIR/n4.log" \
    && fail "run: no 'no common auth method'" "$(grep -h "no common auth" "$T_DIR/n3.log" "$T_DIR/n4.log" | head -3)" \
    || pass "run: no 'no common auth method'"
# n3 accepts only cleartext: a tool offering only hmac is refused
expect_status "aemp profile: offer hmac only" 0 "$AEMP" profile aemp setauth_offer hmac_md6_64_256
expect_status "run: auth_accept list is enforced" 1 "$AEMP" snd --timeout 2 n3 info
stop_pid "$N3"
stop_pid "$N4"

finish
