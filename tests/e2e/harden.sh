#!/bin/bash
# harden.sh - what another node may make an `aemp run` node do (issue 18,
# issue 13): restarts are rate-limited, can be refused by configuration,
# and the log names the node that asked (also through a relay); the Perl
# tool's `aemp restart` (a fixed eval request) restarts a C node; aemp::put
# does not replace a file unless asked and refuses names beginning with a dot.
T_LIMIT=240
. "$(dirname "$0")/lib.sh"

P1=$(free_port)
"$AEMP" gensecret profile aemp seeds "127.0.0.1:$P1" >/dev/null

# err_re NAME REGEX: the last command's stderr has a line matching REGEX.
err_re() {
    if grep -qE -- "$2" "$T_DIR/last.err"; then pass "$1"; else
        fail "$1" "stderr '$(head -c 400 "$T_DIR/last.err")', wanted a line matching '$2'"; fi
}
running() { grep -c "node $1 running" "$T_DIR/$1.log"; }
up() { "$AEMP" cal --timeout 1 "$1" info >/dev/null 2>&1; }
# start NAME [KEY VALUE...]: an aemp run node meshed through r1
start() {
    local n=$1; shift
    local b=127.0.0.1:0
    [ "$n" = r1 ] && b=127.0.0.1:$P1
    start_bg "$T_DIR/$n.log" "$AEMP" run nodeid "$n" binds "$b" seeds "127.0.0.1:$P1" "$@"
    wait_for 20 up "$n" && pass "$n runs" || { fail "$n runs" ""; dump "$T_DIR/$n.log"; }
}

# --- restarts: logged with the asker, at most one per 10 s
start r1
expect_status "aemp restart r1" 0 "$AEMP" restart r1
check "r1 confirms" grep -qx '"restarting"' "$T_DIR/last.out"
wait_for 20 bash -c "[ \$(grep -c 'node r1 running' '$T_DIR/r1.log') -ge 2 ]" && wait_for 20 up r1 \
    && pass "r1 restarted" || fail "r1 restarted" "$(tail -5 "$T_DIR/r1.log")"
check "r1 logs the node that asked" grep -q "restart requested by anon/[^ ]*: stopping node r1" "$T_DIR/r1.log"
expect_status "a second restart at once is refused" 1 "$AEMP" restart r1
err_re "and says why" "r1 refused to restart: it restarted .* s ago; restarts are at most one per 10 s"
[ "$(running r1)" = 2 ] && pass "r1 did not restart again" || fail "r1 did not restart again" "$(running r1) starts"

# --- allow_restart false: refused, with what to do instead
start r2 allow_restart false
expect_status "restart of a node with allow_restart false" 1 "$AEMP" restart r2
err_re "says it takes no restart requests" "does not take restart requests \\(allow_restart is false\\)"
check "r2 logs the refusal" grep -q "restart requested by anon/.* refused" "$T_DIR/r2.log"
[ "$(running r2)" = 1 ] && pass "r2 still runs its first start" || fail "r2 still runs its first start" ""

# --- a relayed request: the log names the asker and the relaying node
start r3
expect_status "relay a restart request through r2" 0 "$AEMP" snd r2 snd 'r3#' aemp::restart 'asker#reply'
wait_for 10 grep -q "restart requested by asker (relayed by r2): stopping node r3" "$T_DIR/r3.log" \
    && pass "r3 logs the asker and the relay" || fail "r3 logs the asker and the relay" "$(grep restart "$T_DIR/r3.log")"

# --- the Perl tool's restart (1.30 sends a fixed eval request)
if perl -I"$PERL_LIB" -MAnyEvent::MP -e 'exit($AnyEvent::MP::VERSION >= 1.30 ? 0 : 1)' 2>/dev/null; then
    PAEMP=$PERL_LIB/../../bin/aemp
    start r4
    expect_status "Perl aemp restart r4" 0 perl -I"$PERL_LIB" "$PAEMP" restart r4
    wait_for 20 bash -c "[ \$(grep -c 'node r4 running' '$T_DIR/r4.log') -ge 2 ]" && wait_for 20 up r4 \
        && pass "r4 restarted by the Perl tool" || fail "r4 restarted by the Perl tool" "$(cat "$T_DIR/last.err")"
    check "r4 logs who asked" grep -q "restart requested by anon/[^ ]*: stopping node r4" "$T_DIR/r4.log"
    expect_status "Perl aemp eval of other code is still refused" 255 perl -I"$PERL_LIB" "$PAEMP" eval r4 '1+1'
    err_re "with the reason" "eval is not supported"
else
    echo "ok - # SKIP Perl AnyEvent::MP 1.30 not found (Perl tool's restart)"
fi

# --- aemp::put: no silent replacing, no dot-names
# put_retry ARGS...: aemp put, tried again when it hangs (on this main some
# puts stall with the receiver getting 0 bytes, more often under meson's
# MALLOC_PERTURB_, with or without these changes: a separate bug of data
# connections; this script checks what the receiver answers)
put_retry() {
    local i rc
    for i in 1 2 3 4 5 6 7 8; do
        timeout 5 "$AEMP" put "$@" >"$T_DIR/put.out" 2>"$T_DIR/put.err"
        rc=$?
        [ "$rc" != 124 ] && break
    done
    cat "$T_DIR/put.out"; cat "$T_DIR/put.err" >&2
    return "$rc"
}
in=$T_DIR/in
mkdir -p "$in"
start r5 services "[[\"aemp::put\",\"$in\"]]"
printf 'one\n' >"$T_DIR/f.txt"
expect_status "put a new file" 0 put_retry r5 aemp::put "$T_DIR/f.txt"
check "it arrived" cmp -s "$T_DIR/f.txt" "$in/f.txt"
printf 'two\n' >"$T_DIR/f.txt"
expect_status "put over an existing file is refused" 1 put_retry r5 aemp::put "$T_DIR/f.txt"
err_re "and says it exists" "refused f.txt: .*/f.txt exists \\(aemp put --replace replaces it\\)"
check "the old file is kept" grep -qx one "$in/f.txt"
expect_status "put --replace replaces it" 0 put_retry --replace r5 aemp::put "$T_DIR/f.txt"
check "with the new bytes" grep -qx two "$in/f.txt"
printf 'x\n' >"$T_DIR/.profile"
expect_status "a name beginning with a dot is refused" 1 put_retry r5 aemp::put "$T_DIR/.profile"
check "and not written" test ! -e "$in/.profile"
check "no temporary file is left" bash -c "[ -z \"\$(ls -A '$in' | grep -v '^f.txt$')\" ]"
printf 'y\n' >"$T_DIR/n
l"
expect_status "a name with a newline is refused" 1 put_retry r5 aemp::put "$T_DIR/n
l"
check "and logged on one line" grep -q 'aemp::put: n\\nl: expected' "$T_DIR/r5.log"

finish
