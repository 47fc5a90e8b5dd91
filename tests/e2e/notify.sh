#!/bin/bash
# notify.sh - `aemp run` as a systemd Type=notify service, without systemd:
# a datagram socket at $NOTIFY_SOCKET records what the node tells the service
# manager. READY=1 only once the node listens; SIGHUP: RELOADING=1, the
# configuration read again (a new seed is dialed, the new log level and a new
# service take effect), READY=1; a broken file changes nothing; SIGTERM:
# STOPPING=1 and exit status 0. stderr is made the "journal" ($JOURNAL_STREAM
# names it): lines carry <PRIORITY> and no timestamp.
T_LIMIT=120
. "$(dirname "$0")/lib.sh"
unset AEMP_WARNLEVEL PERL_ANYEVENT_MP_WARNLEVEL NOTIFY_SOCKET JOURNAL_STREAM

if ! ldd "$AEMP" 2>/dev/null | grep -q libsystemd; then
    echo "ok - # SKIP aemp was built without libsystemd (-Dsystemd=disabled)"
    finish
fi

sock=$T_DIR/notify.sock
nlog=$T_DIR/notify.log
notify_listener "$sock" "$nlog" || { fail "notify listener" "$(cat "$T_DIR/listener.log")"; finish; }

p1=$(free_port)
p2=$(free_port)
"$AEMP" gensecret seeds "127.0.0.1:$p1" profile seed binds "127.0.0.1:$p1" \
    profile other binds "127.0.0.1:$p2" setseeds '' >/dev/null || fail "configure" "aemp failed"

# The node that does not seed anywhere: the seed reaches it only once the
# reload gives it the new seed.
start_bg "$T_DIR/other.log" "$AEMP" run profile other
other_pid=$BG_PID

slog=$T_DIR/seed.log
: >"$slog"
journal=$(stat -c '%d:%i' "$slog")
start_bg "$slog" env NOTIFY_SOCKET="$sock" JOURNAL_STREAM="$journal" "$AEMP" run profile seed
seed=$BG_PID

# ready_at_least N: N READY=1 notifications have arrived
ready_at_least() { [ "$(grep -c '^READY=1' "$nlog")" -ge "$1" ]; }
port_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)' "$1"; }
if wait_for 20 grep -q '^READY=1' "$nlog"; then
    # At READY=1 the listener must already accept connections: no retry.
    if port_open "$p1"; then
        pass "READY=1 once the node listens ($(head -1 "$nlog"))"
    else
        fail "READY=1 after listening" "port $p1 not accepting at READY=1"
    fi
else
    fail "READY=1" "no notification; log: $(head -c 300 "$slog")"
fi
[ "$(wc -l <"$nlog")" = 1 ] && pass "exactly one notification before any signal" ||
    fail "one notification" "$(cat "$nlog")"

wait_for 20 "$AEMP" cal --timeout 2 seed info || fail "seed answers" "$(tail -3 "$slog")"
wait_for 10 port_open "$p2" || fail "node other listens" "$(tail -3 "$T_DIR/other.log")"
up=$("$AEMP" cal --timeout 5 seed up_nodes 2>&1)
case "$up" in *'"other"'*) fail "before reload: seed not connected to other" "$up" ;;
    *) pass "before reload the seed has not met node other ($up)" ;; esac
grep -q '^<6>' "$slog" && fail "level 5 before reload" "$(grep '^<6>' "$slog" | head -2)" ||
    pass "before reload: no info (level 7) lines, though clients connected"
if grep -q libsvc_seq "/proc/$seed/maps"; then fail "service absent before reload" "loaded"; else
    pass "service svc_seq not loaded before reload"; fi

# --- reload: a second seed, log level 7, a new service
"$AEMP" profile seed setseeds "127.0.0.1:$p1,127.0.0.1:$p2" loglevel 7 \
    setservices "$AEMP_BUILD_DIR/tests/libsvc_seq.so:svc_seq_init" || fail "edit config" "aemp failed"
kill -HUP "$seed"
if wait_for 20 ready_at_least 2; then
    tail -2 "$nlog" | head -1 | grep -q '^RELOADING=1' && tail -1 "$nlog" | grep -q '^READY=1' &&
        pass "SIGHUP: RELOADING=1 then READY=1 ($(tail -2 "$nlog" | tr '\n' ' '))" ||
        fail "RELOADING/READY order" "$(cat "$nlog")"
else
    fail "READY=1 after SIGHUP" "$(cat "$nlog")"
fi
if wait_for 20 sh -c "'$AEMP' cal --timeout 2 seed up_nodes | grep -q '\"other\"'"; then
    pass "after reload the seed dialed its new seed: node other is up"
else
    fail "new seed after reload" "$("$AEMP" cal --timeout 2 seed up_nodes 2>&1)"
fi
wait_for 10 grep -q '^<6>' "$slog" && pass "after reload log level 7: $(grep -m1 '^<6>' "$slog")" ||
    fail "log level 7 after reload" "$(tail -5 "$slog")"
grep -q libsvc_seq "/proc/$seed/maps" && pass "after reload the new service is loaded" ||
    fail "new service after reload" "$(grep reload "$slog")"

# --- the journal format: every line <N>text, no timestamp
bad=$(grep -cv '^<[0-7]>[^0-9]' "$slog")
[ "$bad" = 0 ] && [ -s "$slog" ] && pass "under the journal every line is <N>text ($(grep -c . "$slog") lines, e.g. $(head -1 "$slog"))" ||
    fail "journal format" "$(grep -v '^<[0-7]>' "$slog" | head -3)"
grep -q '^<4>node seed running' "$slog" && pass "warning-level lines carry priority 4" ||
    fail "priority of the running line" "$(head -2 "$slog")"

# --- seeds replaced again: one nobody listens on (dialed, refused), then
# both extra seeds dropped; established connections stay.
p3=$(free_port)
"$AEMP" profile seed setseeds "127.0.0.1:$p1,127.0.0.1:$p3" >/dev/null
kill -HUP "$seed"
wait_for 20 ready_at_least 3 || fail "READY=1 after the third reload" "$(cat "$nlog")"
"$AEMP" profile seed setseeds "127.0.0.1:$p1" >/dev/null
kill -HUP "$seed"
wait_for 20 ready_at_least 4 || fail "READY=1 after the fourth reload" "$(cat "$nlog")"
up=$("$AEMP" cal --timeout 5 seed up_nodes 2>&1)
case "$up" in *'"other"'*) pass "seeds replaced twice (one unreachable, then removed): other still connected" ;;
    *) fail "connections after removing seeds" "$up; $(tail -3 "$slog")" ;; esac

# --- a broken file: the reload fails, the node keeps running as it was
rc=$PERL_ANYEVENT_MP_RC
cp "$rc" "$T_DIR/rc.good"
echo '{ broken' >"$rc"
kill -HUP "$seed"
if wait_for 20 ready_at_least 5; then
    tail -1 "$nlog" | grep -q 'reload failed' && grep -q '^<2>reload of node seed: .*line 1' "$slog" &&
        pass "a broken file: READY=1 with 'reload failed', the error logged ($(grep -m1 '^<2>reload' "$slog" | cut -c1-90))" ||
        fail "failed reload reported" "$(tail -1 "$nlog"); $(tail -3 "$slog")"
else
    fail "READY=1 after a failed reload" "$(cat "$nlog")"
fi
cp "$T_DIR/rc.good" "$rc"
"$AEMP" cal --timeout 5 seed info >/dev/null 2>"$T_DIR/cal.err" && pass "the node still answers after a failed reload" ||
    fail "node after failed reload" "$(tail -3 "$slog"); cal: $(head -c 3000 "$T_DIR/cal.err")"

# --- SIGTERM: STOPPING=1 and a clean exit
kill -TERM "$seed"
wait "$seed"
status=$?
tail -1 "$nlog" | grep -q '^STOPPING=1' && pass "SIGTERM: STOPPING=1" || fail "STOPPING=1" "$(cat "$nlog")"
[ "$status" = 0 ] && pass "SIGTERM: exit status 0" || fail "exit status after SIGTERM" "$status"
stop_pid "$other_pid"
finish
