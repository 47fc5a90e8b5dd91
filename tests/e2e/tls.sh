#!/bin/bash
# tls.sh - TLS between real `aemp run` nodes with certificates made by
# `aemp gencert`: nodes sharing the PEM talk (no secret at all), a node with
# another certificate is refused with a clear log line, and a node with
# neither a secret nor a certificate refuses to start and says why.
T_LIMIT=120
. "$(dirname "$0")/lib.sh"

port=$(free_port)
good_rc=$PERL_ANYEVENT_MP_RC
other_rc=$T_DIR/other-rc
bare_rc=$T_DIR/bare-rc

# A certificate (no secret) for everyone using the main file.
expect_status "gencert" 0 "$AEMP" gencert seeds "127.0.0.1:$port"
check "the file holds a PEM key and certificate" \
    grep -q 'BEGIN CERTIFICATE' "$good_rc"
check "no secret was set" bash -c "! grep -q '\"secret\"' '$good_rc'"

start_bg "$T_DIR/a.log" env AEMP_WARNLEVEL=7 "$AEMP" run nodeid tls-a binds "127.0.0.1:$port"
A=$BG_PID
if wait_for 15 "$AEMP" cal --timeout 1 tls-a info; then pass "node up"; else fail "node up" "$(cat "$T_DIR/a.log")"; fi

expect_status "cal over TLS" 0 "$AEMP" cal tls-a info
[ "$(cat "$T_DIR/last.out")" = '"tls-a"' ] && pass "cal reply" || fail "cal reply" "$(cat "$T_DIR/last.out")"
check "the node logged a TLS connection" grep -q "(127.0.0.1:[0-9]*, TLS)" "$T_DIR/a.log"
expect_status "snd over TLS proves delivery" 0 "$AEMP" snd tls-a devnull x

# Another certificate: the handshake fails and the node says why.
PERL_ANYEVENT_MP_RC=$other_rc "$AEMP" gencert seeds "127.0.0.1:$port" >/dev/null 2>&1
PERL_ANYEVENT_MP_RC=$other_rc expect_status "another certificate is refused" 1 \
    "$AEMP" cal --timeout 3 tls-a info
# the node logs it, whichever side verified first: "the peer's certificate
# was refused" or "the peer refused our certificate"
check "refused with a clear log line" grep -Eq "certificate was refused|refused our certificate" "$T_DIR/a.log"
check "the refused client says what failed" grep -Eq "cannot reach tls-a .*(the TLS handshake failed: the certificates do not share a CA|the seed closed the connection during the handshake)" "$T_DIR/last.err"

# A second node with the shared certificate joins and both see each other.
port2=$(free_port)
start_bg "$T_DIR/b.log" "$AEMP" run nodeid tls-b binds "127.0.0.1:$port2"
if wait_for 15 bash -c "'$AEMP' trace --timeout 1 tls-a | grep -qx 'tls-a: tls-b'"; then
    pass "two TLS nodes form a mesh"; else fail "two TLS nodes form a mesh" "$("$AEMP" trace tls-a 2>&1)"; fi

expect_status "trace --dot" 0 "$AEMP" trace --dot tls-b
check "trace --dot draws a Graphviz graph" grep -qx 'graph aemp {' "$T_DIR/last.out"
check "with one edge between the nodes" \
    bash -c "[ \"\$(grep -c -- ' -- ' '$T_DIR/last.out')\" = 1 ] && grep -qx '  \"tls-a\" -- \"tls-b\";' '$T_DIR/last.out'"

# Neither secret nor certificate: refuse to start talking, say why.
printf '{"version":1}\n' >"$bare_rc"
PERL_ANYEVENT_MP_RC=$bare_rc expect_status "run without secret or cert fails" 1 \
    "$AEMP" run nodeid bare binds "127.0.0.1:0"
check "and says to run gensecret" grep -q "gensecret" "$T_DIR/last.err"

stop_pid "$A"
finish
