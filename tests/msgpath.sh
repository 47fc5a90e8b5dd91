#!/usr/bin/env bash
# msgpath.sh - the message path enters each layer of lib/ once: node B
# sends one message to a port of node A (tests/msgpath.c, two nodes in one
# process over 127.0.0.1; once with a shared secret, once over TLS), and
# gdb prints the call stack at four points:
#   encode    the json framing's encoder (framing_write), inside aemp_snd
#   write     the socket write (evbuffer_write, from the end-of-turn flush)
#   decode    the json framing's parser (framing_parse_value), on A
#   callback  A's port callback (msgpath_received)
# Each frame's source file gives its layer (lib/LAYER/...; libevent, libc
# and the test program have none). The layers of one stack, from where the
# event loop or the test program called into lib/ to the breakpoint, with
# consecutive frames of one layer collapsed, must be:
#   encode   core net wire   (aemp_snd -> transport -> framing, a leaf)
#   write    net
#   decode   net wire        (the transport asks the framing for a message)
#   callback net core        (the framing returned it; the transport hands
#                             it to the kernel, which calls the port)
# so no layer is entered twice. First the checker is tried on a planted
# stack that re-enters net/ (as the read path did when the framing called
# back into the transport), so a checker that can no longer fail fails.
# Skips (77) without gdb or when gdb cannot trace (no ptrace here).
set -u
prog=${1:?usage: msgpath.sh PATH/TO/build/tests/msgpath}
layers=" util wire config net core mesh services observe builtins "

if ! command -v gdb >/dev/null; then
    echo "1..0 # SKIP gdb is not installed (bash tools/deps.sh --tests)"
    exit 77
fi

# seq_of: a backtrace (gdb `bt`, innermost frame first) on stdin; prints
# the layers its lib/ frames pass through, outermost first, consecutive
# frames of one layer collapsed. Frames before the first lib/ frame (the
# callback in the test program, libevent's write) are the leaf; the walk
# ends at the event loop or the test program; other frames without a layer
# (libevent calling back) are passed over. With the argument "files": the
# files (LAYER/FILE) instead of the layers, joined by " > ".
seq_of() {
    local line layer file started='' out=() f sep=' '
    [ "${1:-}" = files ] && sep=' > '
    while IFS= read -r line; do
        case $line in '#'*) ;; *) continue ;; esac
        layer=
        if [[ $line =~ \ at\ (.*/)?lib/([a-z]+)/([^/]+\.[ch]):[0-9]+$ ]]; then
            layer=${BASH_REMATCH[2]} file=${BASH_REMATCH[2]}/${BASH_REMATCH[3]}
            case $layers in *" $layer "*) ;; *) layer= ;; esac
        elif [[ $line =~ \ at\ (.*/)?lib/builtins\.c:[0-9]+$ ]]; then
            layer=builtins file=builtins.c
        fi
        if [ -z "$layer" ]; then
            [ -n "$started" ] || continue
            if [[ $line =~ \ in\ event_base_(loop|dispatch)\  ]] ||
               [[ $line =~ \ at\ (.*/)?tests/[^/]+:[0-9]+$ ]]; then
                break
            fi
            continue
        fi
        started=1
        [ "${1:-}" = files ] && layer=$file
        [ "${#out[@]}" -gt 0 ] && [ "${out[-1]}" = "$layer" ] && continue
        out+=("$layer")
    done
    for ((f = ${#out[@]} - 1; f >= 0; f--)); do
        printf '%s%s' "${out[$f]}" "$([ "$f" -gt 0 ] && echo "$sep")"
    done
    echo
}

# check NAME WANT SEQ: the sequence is WANT and enters no layer twice
check() {
    local name=$1 want=$2 seq=$3 l seen=" "
    for l in $seq; do
        case $seen in *" $l "*) echo "$name: $seq enters $l/ twice"; return 1 ;; esac
        seen="$seen$l "
    done
    [ "$seq" = "$want" ] || { echo "$name: $seq, want $want"; return 1; }
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/trace.gdb" <<'GDB'
set pagination off
set confirm off
set print frame-arguments none
set print entry-values no
set breakpoint pending on
break msgpath_send
commands
  silent
  enable 2 3 4 5
  continue
end
break framing_write
break evbuffer_write
break framing_parse_value
break msgpath_received
disable 2 3 4 5
commands 2
  silent
  echo @@ encode\n
  bt
  disable 2
  continue
end
commands 3
  silent
  echo @@ write\n
  bt
  disable 3
  continue
end
commands 4
  silent
  echo @@ decode\n
  bt
  disable 4
  continue
end
commands 5
  silent
  echo @@ callback\n
  bt
  disable 5
  continue
end
run
GDB
# trace MODE: run the test case test_msgpath_MODE under gdb into $tmp/MODE
trace() {
    timeout 90 gdb -batch -nx -x "$tmp/trace.gdb" --args "$prog" "test_msgpath_$1" > "$tmp/$1" 2>&1
}
trace plain
if ! grep -q '^@@ ' "$tmp/plain" && grep -qiE 'ptrace|Operation not permitted|could not trace' "$tmp/plain"; then
    echo "1..0 # SKIP gdb cannot trace here: $(grep -iE -m1 'ptrace|not permitted' "$tmp/plain")"
    exit 77
fi
trace tls

# stack MODE NAME: the backtrace gdb printed at point NAME
stack() {
    awk -v want="@@ $2" '/^@@ / { on = ($0 == want); next } on && /^#/' "$tmp/$1"
}

echo "1..11"
n=0
fail=0

# the checker itself: a callback stack with the framing calling back into
# the transport (net wire net core) must fail
n=$((n + 1))
planted=$(stack plain callback | awk '{ print } /\/lib\/net\// && !done {
    print "#90 0x0 in framing_reader_feed () at ../lib/wire/framing.c:1"
    print "#91 0x0 in conn_read_more () at ../lib/net/conn_in.c:1"; done = 1 }' | seq_of)
if [ -n "$(stack plain callback)" ] && ! check planted "net core" "$planted" >/dev/null; then
    echo "ok $n - the checker refuses a planted re-entry ($planted)"
else
    echo "not ok $n - the checker passed a planted re-entry ('$planted')"
    fail=1
fi

for mode in plain tls; do
    n=$((n + 1))
    if grep -q "^ok [0-9]* - test_msgpath_$mode\$" "$tmp/$mode"; then
        echo "ok $n - $mode: the message arrived"
    else
        echo "not ok $n - $mode: the message did not arrive (or the program failed):"
        sed 's/^/# /' "$tmp/$mode" | tail -20
        fail=1
    fi
    for point in "encode:core net wire" "write:net" "decode:net wire" "callback:net core"; do
        name=${point%%:*} want=${point#*:}
        n=$((n + 1))
        if [ -z "$(stack "$mode" "$name")" ]; then
            echo "not ok $n - $mode $name: gdb stopped nowhere there (a function renamed? see the breakpoints in msgpath.sh)"
            fail=1
            continue
        fi
        seq=$(stack "$mode" "$name" | seq_of)
        if why=$(check "$mode $name" "$want" "$seq"); then
            echo "ok $n - $mode $name: $seq"
            echo "#   $(stack "$mode" "$name" | seq_of files)"
        else
            echo "not ok $n - $why"
            stack "$mode" "$name" | sed 's/^/# /'
            fail=1
        fi
    done
done
exit $fail
