#!/bin/bash
# examples.sh - the AnyEvent::MP examples in examples/ as separate processes
# on 127.0.0.1: a seed node (`aemp run`), eg_receiver + eg_sender, the
# bridge-head chat (chat_server + two chat_clients fed through fifos), and the
# same examples loaded as services into `aemp run`.
T_LIMIT=150
. "$(dirname "$0")/lib.sh"

: "${AEMP_BUILD_DIR:?AEMP_BUILD_DIR must point at the build directory}"
EX="$AEMP_BUILD_DIR/examples"
for p in eg_receiver eg_sender chat_server chat_client; do
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
dump() { local f; for f in "$@"; do echo "# --- $f"; sed 's/^/#   /' "$f" | head -20; done; }

PORT=$(free_port)
# One secret for everybody, a seed profile listening on PORT and a client
# profile that finds the network through it.
expect_status "config: gensecret, seed and client profiles" 0 "$AEMP" gensecret \
    profile seed nodeid seed binds "[\"127.0.0.1:$PORT\"]" \
    profile eg nodeid anon/ binds '["127.0.0.1:0"]' seeds "127.0.0.1:$PORT"

start_bg "$T_DIR/seed.log" "$AEMP" run profile seed
SEED=$BG_PID
if wait_for 10 has "$T_DIR/seed.log" "node seed running"; then pass "seed node runs"
else fail "seed node runs" "$(head -c 300 "$T_DIR/seed.log")"; fi

# --- 1. eg_receiver / eg_sender, standalone programs
start_bg "$T_DIR/recv.log" "$EX/eg_receiver" eg
RECV=$BG_PID
wait_for 10 has "$T_DIR/recv.log" "ready (group eg_receivers)" && pass "eg_receiver ready" \
    || { fail "eg_receiver ready" ""; dump "$T_DIR/recv.log"; }
start_bg "$T_DIR/send.log" "$EX/eg_sender" eg
SEND=$BG_PID
if wait_for 10 has "$T_DIR/recv.log" 'received: ["hi",'; then
    pass "eg_receiver got a message from eg_sender"
else
    fail "eg_receiver got a message from eg_sender" "nothing within 10 s"
    dump "$T_DIR/recv.log" "$T_DIR/send.log" "$T_DIR/seed.log"
fi
sender_node=$(sed -n 's/^sender on \([^:]*\):.*/\1/p' "$T_DIR/send.log")
[ -n "$sender_node" ] && has "$T_DIR/recv.log" "\"$sender_node\"]" \
    && pass "the message names the sender's node" \
    || fail "the message names the sender's node" "sender '$sender_node'"
wait_for 5 has "$T_DIR/send.log" "sent to 1 receiver" && pass "eg_sender counts 1 receiver" \
    || fail "eg_sender counts 1 receiver" "$(tail -c 200 "$T_DIR/send.log")"
# the receiver goes: its group membership goes with it
stop_pid "$RECV"
wait_for 10 has "$T_DIR/send.log" "sent to 0 receivers" \
    && pass "eg_sender sees the receiver leave the group" \
    || fail "eg_sender sees the receiver leave the group" "$(tail -c 200 "$T_DIR/send.log")"
stop_pid "$SEND"

# --- 2. the bridge-head chat, standalone programs
start_bg "$T_DIR/srv.log" "$EX/chat_server" eg
SRV=$BG_PID
wait_for 10 has "$T_DIR/srv.log" "chat server ready" && pass "chat_server ready" \
    || { fail "chat_server ready" ""; dump "$T_DIR/srv.log"; }
mkfifo "$T_DIR/alice.in" "$T_DIR/bob.in"
# Open each fifo read-write first so that neither side blocks on open; the
# shell keeps the write ends (fd 7, 8) to type into.
exec 7<>"$T_DIR/alice.in" 8<>"$T_DIR/bob.in"
start_in "$T_DIR/alice.log" "$T_DIR/alice.in" "$EX/chat_client" eg alice
ALICE=$BG_PID
start_in "$T_DIR/bob.log" "$T_DIR/bob.in" "$EX/chat_client" eg bob
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
    "[\"$SO/libeg_receiver.so:eg_receiver_init\", \"$SO/libchat_server.so:chat_server_init\"]"
SVC_SRV=$BG_PID
wait_for 10 has "$T_DIR/svc_srv.log" "chat server ready" \
    && has "$T_DIR/svc_srv.log" "ready (group eg_receivers)" \
    && pass "aemp run loads eg_receiver and chat_server as services" \
    || { fail "aemp run loads services" ""; dump "$T_DIR/svc_srv.log"; }
start_bg "$T_DIR/svc_send.log" "$AEMP" run profile eg services "[\"$SO/libeg_sender.so:eg_sender_init\"]"
SVC_SEND=$BG_PID
wait_for 10 has "$T_DIR/svc_srv.log" 'received: ["hi",' \
    && pass "service eg_receiver got a message from service eg_sender" \
    || { fail "service eg_sender -> eg_receiver" ""; dump "$T_DIR/svc_srv.log" "$T_DIR/svc_send.log"; }
stop_pid "$SVC_SEND"
mkfifo "$T_DIR/carol.in"
exec 9<>"$T_DIR/carol.in"
start_in "$T_DIR/carol.log" "$T_DIR/carol.in" "$AEMP" run profile eg services \
    "[[\"$SO/libchat_client.so:chat_client_init\", \"carol\"]]"
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
    services "[\"$SO/libeg_sender.so:no_such_symbol\"]"
has "$T_DIR/last.err" "no_such_symbol" && pass "the error names the symbol" \
    || fail "the error names the symbol" "$(head -c 300 "$T_DIR/last.err")"

stop_pid "$SEED"
finish
