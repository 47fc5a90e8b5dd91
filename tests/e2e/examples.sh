#!/bin/bash
# examples.sh - the AnyEvent::MP 1.30 examples (eg/) in examples/ as
# separate processes on 127.0.0.1: a seed node (`aemp run`), simple_example,
# simple_example_receiver + simple_example_sender, the chat by message
# passing (chat_server + chat_clients fed through fifos), the bridge-head
# chat (chat_server2 + chat_client2), the same examples loaded as services
# into `aemp run`, and, when the Perl reference is there, each C program
# with its Perl counterpart from eg/ in both directions.
T_LIMIT=300
HOME_REAL=$HOME
. "$(dirname "$0")/lib.sh"

: "${AEMP_BUILD_DIR:?AEMP_BUILD_DIR must point at the build directory}"
EX="$AEMP_BUILD_DIR/examples"
for p in simple_example_receiver simple_example_sender chat_server chat_client chat_server2 chat_client2; do
    if [ ! -x "$EX/$p" ] || [ ! -f "$EX/lib$p.so" ]; then
        echo "# $EX/$p or lib$p.so is not built"
        fail "examples built" "$p"
        finish
    fi
done

# has FILE TEXT: FILE contains the fixed string TEXT.
has() { grep -qF -- "$2" "$1"; }
# has_n FILE TEXT N: FILE contains TEXT on at least N lines.
has_n() { [ "$(grep -cF -- "$2" "$1")" -ge "$3" ]; }
# start_in LOG INPUT CMD...: start_bg with stdin from INPUT. (start_bg's
# `&` inside a function would give the command /dev/null as stdin.) The
# shell's write ends of the fifos (fd 7-9) are not passed on, so that closing
# them is an end of input.
start_in() {
    local log=$1 input=$2; shift 2
    "$@" <"$input" >"$log" 2>&1 7>&- 8>&- 9>&- &
    BG_PID=$!
    T_PIDS+=("$BG_PID")
}
# show the logs of a failed step

PORT=$(free_port)
# One secret for everybody, a seed profile listening on PORT and a client
# profile that finds the network through it.
# The global keys make every node without a profile of its own (the Perl eg/
# scripts call `configure` with the host's name as profile) an anonymous one
# that finds the network through the seed.
expect_status "config: gensecret, seed and client profiles" 0 "$AEMP" gensecret \
    setnodeid anon/ setbinds 127.0.0.1:0 setseeds "127.0.0.1:$PORT" \
    profile seed nodeid seed binds "[\"127.0.0.1:$PORT\"]" \
    profile eg nodeid anon/ binds '["127.0.0.1:0"]' seeds "127.0.0.1:$PORT"

start_bg "$T_DIR/seed.log" "$AEMP" run profile seed
SEED=$BG_PID
if wait_for 10 has "$T_DIR/seed.log" "node seed running"; then pass "seed node runs"
else fail "seed node runs" "$(head -c 300 "$T_DIR/seed.log")"; fi

# --- 0. simple_example: one node, a port, a tagged message
expect_status "simple_example" 0 "$EX/simple_example"
[ "$(cat "$T_DIR/last.out")" = "Ending with: 123" ] && pass "simple_example prints Ending with: 123" \
    || fail "simple_example output" "$(cat "$T_DIR/last.out")"

# --- 1. simple_example_receiver / simple_example_sender, standalone programs
start_bg "$T_DIR/recv.log" "$EX/simple_example_receiver" eg
RECV=$BG_PID
wait_for 10 has "$T_DIR/recv.log" "ready (group eg_receivers)" && pass "receiver ready" \
    || { fail "receiver ready" ""; dump "$T_DIR/recv.log"; }
start_bg "$T_DIR/send.log" "$EX/simple_example_sender" eg
SEND=$BG_PID
if wait_for 10 grep -Eq '^Received data: [0-9]{10}$' "$T_DIR/recv.log"; then
    pass "receiver got test => time from the sender"
else
    fail "receiver got test => time from the sender" "nothing within 10 s"
    dump "$T_DIR/recv.log" "$T_DIR/send.log" "$T_DIR/seed.log"
fi
grep -Eq 'received: \["test",[0-9]{10}\]$' "$T_DIR/recv.log" \
    && pass "the message is exactly [\"test\", TIME]" \
    || fail "the message is exactly [\"test\", TIME]" "$(tail -c 300 "$T_DIR/recv.log")"
wait_for 5 has "$T_DIR/send.log" "sent to 1 receiver" && pass "sender counts 1 receiver" \
    || fail "sender counts 1 receiver" "$(tail -c 200 "$T_DIR/send.log")"
# the receiver goes: its group membership goes with it
stop_pid "$RECV"
wait_for 10 has "$T_DIR/send.log" "sent to 0 receivers" \
    && pass "sender sees the receiver leave the group" \
    || fail "sender sees the receiver leave the group" "$(tail -c 200 "$T_DIR/send.log")"
stop_pid "$SEND"

# --- 1b. the chat by message passing (join / privmsg), standalone programs
# chat_pair SRVLOG SERVER... : (after starting a server) alice and bob join,
# talk, alice leaves; uses fds 7 and 8.
mkfifo "$T_DIR/c1a.in" "$T_DIR/c1b.in"
start_bg "$T_DIR/c1srv.log" "$EX/chat_server" eg
C1SRV=$BG_PID
wait_for 10 has "$T_DIR/c1srv.log" "chat server ready" && pass "chat_server ready" \
    || { fail "chat_server ready" ""; dump "$T_DIR/c1srv.log"; }
exec 7<>"$T_DIR/c1a.in" 8<>"$T_DIR/c1b.in"
start_in "$T_DIR/c1a.log" "$T_DIR/c1a.in" "$EX/chat_client" eg alice
C1A=$BG_PID
start_in "$T_DIR/c1b.log" "$T_DIR/c1b.in" "$EX/chat_client" eg bob
C1B=$BG_PID
if wait_for 15 has "$T_DIR/c1a.log" "alice (joins)" && wait_for 10 has "$T_DIR/c1b.log" "bob (joins)"; then
    pass "chat_client: both joined (join message to the eg_chat_server port)"
else
    fail "chat_client: both joined" ""; dump "$T_DIR/c1a.log" "$T_DIR/c1b.log" "$T_DIR/c1srv.log"
fi
echo "privmsg from alice" >&7
wait_for 10 has "$T_DIR/c1b.log" "alice: privmsg from alice" \
    && pass "chat_client: alice's privmsg reaches bob" \
    || { fail "chat_client: alice's privmsg reaches bob" ""; dump "$T_DIR/c1b.log" "$T_DIR/c1srv.log"; }
exec 7>&-
wait_for 10 has "$T_DIR/c1b.log" "alice (quits, " && pass "chat_client: bob sees alice quit" \
    || { fail "chat_client: bob sees alice quit" ""; dump "$T_DIR/c1b.log"; }
stop_pid "$C1A"
stop_pid "$C1SRV"
wait_for 15 has "$T_DIR/c1b.log" "disconnected" && pass "chat_client: bob notices the server died" \
    || { fail "chat_client: bob notices the server died" ""; dump "$T_DIR/c1b.log"; }
exec 8>&-
stop_pid "$C1B"

# --- 2. the bridge-head chat (chat_server2 / chat_client2), standalone programs
start_bg "$T_DIR/srv.log" "$EX/chat_server2" eg
SRV=$BG_PID
wait_for 10 has "$T_DIR/srv.log" "chat server ready" && pass "chat_server2 ready" \
    || { fail "chat_server ready" ""; dump "$T_DIR/srv.log"; }
mkfifo "$T_DIR/alice.in" "$T_DIR/bob.in"
# Open each fifo read-write first so that neither side blocks on open; the
# shell keeps the write ends (fd 7, 8) to type into.
exec 7<>"$T_DIR/alice.in" 8<>"$T_DIR/bob.in"
start_in "$T_DIR/alice.log" "$T_DIR/alice.in" "$EX/chat_client2" eg alice
ALICE=$BG_PID
start_in "$T_DIR/bob.log" "$T_DIR/bob.in" "$EX/chat_client2" eg bob
BOB=$BG_PID
# Each client sees its own join line (it reads stdin from then on), the
# server has both; who joined first varies.
if wait_for 15 has "$T_DIR/alice.log" "alice (joins)" && wait_for 10 has "$T_DIR/bob.log" "bob (joins)" \
    && has "$T_DIR/srv.log" "relaying: alice (joins)" && has "$T_DIR/srv.log" "relaying: bob (joins)"; then
    pass "both chat clients joined (spawned handlers on the server)"
else
    fail "both chat clients joined" ""
    dump "$T_DIR/alice.log" "$T_DIR/bob.log" "$T_DIR/srv.log"
fi
echo "hello from alice" >&7
wait_for 10 has "$T_DIR/bob.log" "alice: hello from alice" \
    && pass "a line typed at alice shows up at bob" \
    || { fail "a line typed at alice shows up at bob" ""; dump "$T_DIR/bob.log" "$T_DIR/srv.log"; }
echo "and bob answers" >&8
wait_for 10 has "$T_DIR/alice.log" "bob: and bob answers" \
    && pass "a line typed at bob shows up at alice" \
    || { fail "a line typed at bob shows up at alice" ""; dump "$T_DIR/alice.log"; }
has "$T_DIR/srv.log" "relaying: alice: hello from alice" && pass "chat_server relayed the line" \
    || fail "chat_server relayed the line" "$(tail -c 300 "$T_DIR/srv.log")"
# End of alice's input: she leaves, the server kills her handler, bob is told.
exec 7>&-
wait_for 10 has "$T_DIR/bob.log" "alice (quits" && pass "bob sees alice quit (client mon -> handler)" \
    || { fail "bob sees alice quit" ""; dump "$T_DIR/bob.log" "$T_DIR/srv.log"; }
wait_for 5 sh -c "! kill -0 $ALICE 2>/dev/null" && pass "alice's client exits at end of input" \
    || fail "alice's client exits at end of input" "still running"
stop_pid "$ALICE"
# The server goes: bob's monitor on his handler fires.
stop_pid "$SRV"
wait_for 15 has "$T_DIR/bob.log" "(disconnected" && pass "bob notices the server's handler died" \
    || { fail "bob notices the server's handler died" ""; dump "$T_DIR/bob.log"; }
exec 8>&-
wait_for 5 sh -c "! kill -0 $BOB 2>/dev/null"; stop_pid "$BOB"

# --- 3. the same code as services of `aemp run`
SO="$EX"
start_bg "$T_DIR/svc_srv.log" "$AEMP" run profile eg services \
    "[\"$SO/libsimple_example_receiver.so:simple_example_receiver_init\", \"$SO/libchat_server2.so:chat_server2_init\"]"
SVC_SRV=$BG_PID
wait_for 10 has "$T_DIR/svc_srv.log" "chat server ready" \
    && has "$T_DIR/svc_srv.log" "ready (group eg_receivers)" \
    && pass "aemp run loads simple_example_receiver and chat_server2 as services" \
    || { fail "aemp run loads services" ""; dump "$T_DIR/svc_srv.log"; }
start_bg "$T_DIR/svc_send.log" "$AEMP" run profile eg services "[\"$SO/libsimple_example_sender.so:simple_example_sender_init\"]"
SVC_SEND=$BG_PID
wait_for 10 has "$T_DIR/svc_srv.log" 'received: ["test",' \
    && pass "service receiver got a message from service sender" \
    || { fail "service sender -> receiver" ""; dump "$T_DIR/svc_srv.log" "$T_DIR/svc_send.log"; }
stop_pid "$SVC_SEND"
mkfifo "$T_DIR/carol.in"
exec 9<>"$T_DIR/carol.in"
start_in "$T_DIR/carol.log" "$T_DIR/carol.in" "$AEMP" run profile eg services \
    "[[\"$SO/libchat_client2.so:chat_client2_init\", \"carol\"]]"
CAROL=$BG_PID
wait_for 15 has "$T_DIR/carol.log" "carol (joins)" && pass "service chat_client joined" \
    || { fail "service chat_client joined" ""; dump "$T_DIR/carol.log" "$T_DIR/svc_srv.log"; }
echo "carol via aemp run" >&9
wait_for 10 has "$T_DIR/carol.log" "carol: carol via aemp run" \
    && pass "service chat_client's line relayed back to it" \
    || { fail "service chat_client's line relayed" ""; dump "$T_DIR/carol.log"; }
exec 9>&-
stop_pid "$CAROL"
wait_for 10 has "$T_DIR/svc_srv.log" "carol (quits" && pass "service chat_server drops the client" \
    || fail "service chat_server drops the client" "$(tail -c 300 "$T_DIR/svc_srv.log")"
stop_pid "$SVC_SRV"

# a bad service spec is reported, not crashed on
expect_status "missing symbol in a service .so fails cleanly" 1 "$AEMP" run profile eg \
    services "[\"$SO/libsimple_example_sender.so:no_such_symbol\"]"
has "$T_DIR/last.err" "no_such_symbol" && pass "the error names the symbol" \
    || fail "the error names the symbol" "$(head -c 300 "$T_DIR/last.err")"

# --- 4. each C program with its Perl counterpart from eg/, both directions
PERL_EG=${AEMP_PERL_EG:-$HOME_REAL/aemp-perl/src/mp/eg}
if [ ! -f "$PERL_LIB/AnyEvent/MP.pm" ] || [ ! -d "$PERL_EG" ]; then
    echo "# skipped: Perl AnyEvent::MP 1.30 and its eg/ not found (AEMP_PERL_LIB, AEMP_PERL_EG)"
else
    # perl_eg LOG INPUT SCRIPT ARG...: run eg/SCRIPT with stdout unbuffered.
    perl_eg() {
        local log=$1 input=$2 script=$3; shift 3
        perl -I"$PERL_LIB" -e '$| = 1; my $f = shift; @ARGV = @ARGV; do $f; die $@ if $@' \
            "$PERL_EG/$script" "$@" <"$input" >"$log" 2>&1 7>&- 8>&- 9>&- &
        BG_PID=$!
        T_PIDS+=("$BG_PID")
    }
    pl_out=$(perl -I"$PERL_LIB" "$PERL_EG/simple_example" 2>&1)
    [ "$pl_out" = "$("$EX/simple_example")" ] && pass "simple_example prints what the Perl one prints" \
        || fail "simple_example = Perl simple_example" "perl: '$pl_out'"

    # Perl receiver <- C sender
    perl_eg "$T_DIR/p_recv.log" /dev/null simple_example_receiver
    P_RECV=$BG_PID
    start_bg "$T_DIR/c_send.log" "$EX/simple_example_sender" eg
    C_SEND=$BG_PID
    wait_for 20 grep -Eq '^Received data: [0-9]{10}$' "$T_DIR/p_recv.log" \
        && pass "Perl simple_example_receiver gets test => time from the C sender" \
        || { fail "Perl receiver <- C sender" ""; dump "$T_DIR/p_recv.log" "$T_DIR/c_send.log"; }
    stop_pid "$C_SEND"
    stop_pid "$P_RECV"
    # C receiver <- Perl sender
    start_bg "$T_DIR/c_recv.log" "$EX/simple_example_receiver" eg
    C_RECV=$BG_PID
    perl_eg "$T_DIR/p_send.log" /dev/null simple_example_sender
    P_SEND=$BG_PID
    wait_for 20 grep -Eq '^Received data: [0-9]{10}$' "$T_DIR/c_recv.log" \
        && pass "C simple_example_receiver gets test => time from the Perl sender" \
        || { fail "C receiver <- Perl sender" ""; dump "$T_DIR/c_recv.log" "$T_DIR/p_send.log"; }
    stop_pid "$P_SEND"
    stop_pid "$C_RECV"

    # chat_pair N SRV_KIND CLI_KIND SERVER CLIENT: a server of one kind
    # (perl or c), a client of the other, the client's line relayed back.
    chat_pair() {
        local n=$1 sk=$2 ck=$3 srv=$4 cli=$5 s c nick="nick$1"
        mkfifo "$T_DIR/pair$n.in"
        exec 9<>"$T_DIR/pair$n.in"
        if [ "$sk" = perl ]; then perl_eg "$T_DIR/pair$n.srv" /dev/null "$srv"
        else start_bg "$T_DIR/pair$n.srv" "$EX/$srv" eg; fi
        s=$BG_PID
        if [ "$ck" = perl ]; then perl_eg "$T_DIR/pair$n.cli" "$T_DIR/pair$n.in" "$cli" "$nick"
        else start_in "$T_DIR/pair$n.cli" "$T_DIR/pair$n.in" "$EX/$cli" eg "$nick"; fi
        c=$BG_PID
        if wait_for 25 has "$T_DIR/pair$n.cli" "$nick (joins)"; then
            pass "$ck $cli joins the $sk $srv"
            echo "hello from $ck" >&9
            wait_for 10 has "$T_DIR/pair$n.cli" "$nick: hello from $ck" \
                && pass "$ck $cli's line comes back through the $sk $srv" \
                || { fail "$ck $cli's line through the $sk $srv" ""; dump "$T_DIR/pair$n.cli" "$T_DIR/pair$n.srv"; }
        else
            fail "$ck $cli joins the $sk $srv" ""; dump "$T_DIR/pair$n.cli" "$T_DIR/pair$n.srv"
        fi
        exec 9>&-
        stop_pid "$c"
        stop_pid "$s" # (a client that picks a dead server's stale entry retries)
    }
    chat_pair 1 perl c chat_server chat_client
    chat_pair 2 c perl chat_server chat_client
    chat_pair 3 perl c chat_server2 chat_client2
    chat_pair 4 c perl chat_server2 chat_client2
fi

stop_pid "$SEED"
finish
