# lib.sh - shared helpers for the multi-process tests. Source it first.
#
# Gives each test a temporary HOME and config file, a time bound for the whole
# script, and reaps every process started with `start_bg` on exit.
# Counting: `pass NAME` / `fail NAME WHY`; `finish` prints "N passed, N failed"
# and exits 1 if anything failed.
set -u

: "${AEMP_BIN:?AEMP_BIN must point at the built aemp binary}"
AEMP="$AEMP_BIN"
# The profiles and the build: meson's test environment names both; run by
# hand, they are found beside this script and above $AEMP.
: "${AEMP_PROFILE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../profiles" && pwd)}"
export AEMP_PROFILE_DIR
: "${AEMP_BUILD_DIR:=$(dirname "$(dirname "$AEMP")")}"
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/aemp-test.XXXXXX")
# Perl AnyEvent::MP 1.30 for the tests that talk to it: $AEMP_PERL_LIB, else
# ~/aemp-perl of the real home (before HOME is replaced below).
PERL_LIB=${AEMP_PERL_LIB:-${HOME:-/nonexistent}/aemp-perl/local/lib/perl5}
export HOME="$T_DIR/home"
mkdir -p "$HOME"
export PERL_ANYEVENT_MP_RC="$HOME/.perl-anyevent-mp"
unset AEMP_RC
# Sanitizer reports of every process the script starts go to files in
# $T_DIR: a report from a process whose exit status or stderr the script
# does not look at (a poll in wait_for, output to /dev/null) still fails it.
[ -n "${ASAN_OPTIONS+x}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T_DIR/sanitizer"
[ -n "${UBSAN_OPTIONS+x}" ] && export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T_DIR/sanitizer"
T_PIDS=()
T_PASS=0
T_FAIL=0
T_LIMIT=${T_LIMIT:-300}

# t_cleanup ends the script (exit with its status, 1 on a late sanitizer
# report): a script with its own EXIT trap calls it last.
t_cleanup() {
    local st=$? p f
    for p in "${T_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
    done
    # Let them end (up to 5 s in all): under ASan a node's leak check at exit
    # takes a while on a busy machine, and a SIGKILL in the middle of it
    # leaves a report of its own ("Unable to get registers from thread").
    local until=$((SECONDS + 5)) st3
    for p in "${T_PIDS[@]:-}"; do
        while [ -n "$p" ] && [ "$SECONDS" -lt "$until" ]; do
            read -r _ _ st3 _ 2>/dev/null <"/proc/$p/stat" || break # gone
            [ "$st3" = Z ] && break                                # ended, not reaped
            sleep 0.05
        done
    done
    for p in "${T_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    [ -n "${T_WATCHDOG:-}" ] && kill "$T_WATCHDOG" 2>/dev/null && wait "$T_WATCHDOG" 2>/dev/null
    # reports of processes that ended after finish (the nodes stopped above)
    for f in "$T_DIR"/sanitizer.*; do
        case $f in *.seen) continue ;; esac
        [ -f "$f" ] || continue
        echo "not ok - no sanitizer report: $f:"
        sed 's/^/#   /' "$f" | head -60
        st=1
    done
    if [ "${T_KEEP:-0}" = 1 ]; then echo "# kept $T_DIR"; else rm -rf "$T_DIR"; fi
    exit "$st"
}
trap t_cleanup EXIT
trap 'echo "# interrupted"; exit 1' INT TERM

# Watchdog: the whole script ends after T_LIMIT seconds.
# Its sleep must not hold the test runner's output pipe open, and it must end
# when the watchdog is ended, so it gets no stdout and a TERM trap.
(
    trap 'kill "$t_sleep" 2>/dev/null; exit 0' TERM
    sleep "$T_LIMIT" </dev/null >/dev/null 2>&1 &
    t_sleep=$!
    wait "$t_sleep"
    echo "# test script exceeded ${T_LIMIT}s" >&2
    kill -TERM $$
    # bash runs the TERM trap only after its foreground command: end that
    # command (our own child processes, by PID) so the trap runs now.
    for p in $(ps -o pid= --ppid $$); do
        [ "$p" != "$BASHPID" ] && kill -TERM "$p" 2>/dev/null
    done
) >/dev/null &
T_WATCHDOG=$!

pass() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $1: ${2:-}"; }

# check NAME CMD...: pass if CMD succeeds.
check() { local n=$1; shift; if "$@"; then pass "$n"; else fail "$n" "command failed: $*"; fi; }

# expect_status NAME STATUS CMD...: run CMD, compare its exit status.
expect_status() {
    local n=$1 want=$2; shift 2
    "$@" >"$T_DIR/last.out" 2>"$T_DIR/last.err"
    local got=$?
    if [ "$got" = "$want" ]; then pass "$n"; else
        fail "$n" "exit $got, wanted $want; stderr: $(head -c 300 "$T_DIR/last.err")"; fi
}

# start_bg LOGFILE CMD...: start CMD in the background, remember its PID in $BG_PID.
start_bg() {
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    BG_PID=$!
    T_PIDS+=("$BG_PID")
}

# stop_pid PID [SIGNAL]: end one process we started and reap it.
stop_pid() {
    kill "-${2:-TERM}" "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# notify_listener SOCK LOG: a datagram socket at SOCK (a NOTIFY_SOCKET, as
# systemd's) writing each datagram it gets as one line of LOG (its newlines
# as " | "); returns 0 once the socket is there.
notify_listener() {
    : >"$2"
    start_bg "$T_DIR/listener.log" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    out.write(s.recv(4096).decode().replace("\n", " | ") + "\n")
' "$1" "$2"
    wait_for 10 test -S "$1"
}

# need_svc_watch: SO is the svc_watch service (tests/e2e/svc_watch.c: a
# stderr line per node up/down and monitor firing); the test ends, failed,
# when it is not built.
need_svc_watch() {
    SO="$AEMP_BUILD_DIR/tests/libsvc_watch.so"
    if [ ! -f "$SO" ]; then
        fail "svc_watch built" "$SO missing"
        finish
    fi
}

# start_mesh N SEEDPORT: `aemp run` nodes n0 .. n(N-1) at once, each with
# the svc_watch service (need_svc_watch first), n0 listening on
# 127.0.0.1:SEEDPORT, the others on ephemeral ports; logs in $T_DIR/nI.log,
# PIDs in the array PIDS.
start_mesh() {
    local i bind svc="[\"$SO:svc_watch_init\"]"
    export AEMP_WARNLEVEL=${AEMP_WARNLEVEL:-5}
    PIDS=()
    for i in $(seq 0 $(($1 - 1))); do
        bind="127.0.0.1:0"
        [ "$i" = 0 ] && bind="127.0.0.1:$2"
        start_bg "$T_DIR/n$i.log" "$AEMP" run nodeid "n$i" binds "$bind" services "$svc"
        PIDS+=("$BG_PID")
    done
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -gt "$deadline" ] && return 1
        sleep 0.1
    done
}

# free_port: a TCP port on 127.0.0.1 that nothing uses right now, picked at
# random below the kernel's ephemeral range (ip_local_port_range): a port from
# that range can be taken by any outgoing connection on the machine between
# this check and the bind of the node it is meant for (seen on a busy machine:
# "cannot listen on 127.0.0.1:N: Address already in use").
free_port() {
    python3 -c '
import random, socket
try: low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception: low = 32768
for _ in range(200):
    port = random.randrange(10000, max(low, 10001))
    s = socket.socket()
    try: s.bind(("127.0.0.1", port))
    except OSError: continue
    finally: s.close()
    print(port); break
else:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
'
}

# require_perl: end the script as skipped (exit 77) unless perl finds
# AnyEvent::MP 1.30 in $PERL_LIB.
require_perl() {
    perl -I"$PERL_LIB" -MAnyEvent::MP -e 'exit($AnyEvent::MP::VERSION >= 1.30 ? 0 : 1)' \
        2>/dev/null && return 0
    echo "1..0 # SKIP Perl AnyEvent::MP 1.30 not found (set AEMP_PERL_LIB)"
    exit 77
}

# sanitizer_reports: fail once for the reports written so far (printed).
sanitizer_reports() {
    local f
    for f in "$T_DIR"/sanitizer.*; do
        case $f in *.seen) continue ;; esac
        [ -f "$f" ] || continue
        fail "no sanitizer report" "$f:"
        sed 's/^/#   /' "$f" | head -60
        mv "$f" "$f.seen"
    done
}

# --- checks of the last expect_status command (its stdout and stderr are
# $T_DIR/last.out and last.err) and of how long a `timed` command took.

# err_is NAME WANT: the last command's stderr is exactly WANT.
err_is() {
    local got
    got=$(cat "$T_DIR/last.err")
    if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "stderr '$got', wanted '$2'"; fi
}

# out_is NAME WANT: the last command's stdout is exactly WANT.
out_is() {
    local got
    got=$(cat "$T_DIR/last.out")
    if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "stdout '$got', wanted '$2'"; fi
}
# err_has NAME LINE: the last command's stderr has exactly the line LINE.
err_has() {
    if grep -qxF -- "$2" "$T_DIR/last.err"; then pass "$1"; else
        fail "$1" "stderr '$(head -c 400 "$T_DIR/last.err")', wanted the line '$2'"; fi
}
# timed CMD...: run CMD, its whole seconds in T_ELAPSED.
timed() {
    local t0=$SECONDS
    "$@"
    T_ELAPSED=$((SECONDS - t0))
}
# took_at_most NAME SECONDS: the last timed command ended within SECONDS.
took_at_most() {
    if [ "$T_ELAPSED" -le "$2" ]; then pass "$1"; else fail "$1" "took ${T_ELAPSED}s"; fi
}
# dump FILE...: the first lines of each file, as TAP comments (scripts that
# want the last lines define their own).
dump() { local f; for f in "$@"; do echo "# --- $f"; sed 's/^/#   /' "$f" | head -20; done; }


finish() {
    sanitizer_reports
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" = 0 ]
    exit $?
}
