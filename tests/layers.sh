#!/usr/bin/env bash
# layers.sh - the library's layers depend downward only: every
# `#include "X"` in lib/LAYER/ names a header of LAYER itself, of a layer
# below it, or lib/aemp.h (the layers, lowest first, as lib/meson.build
# builds them). An upward include fails here (and does not compile).
# First the checker is tried on a copy with one upward include planted, so
# a checker that can no longer fail fails too.
set -u
src=${AEMP_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
layers=(util wire config net core mesh services observe)

# check DIR: print each upward include under DIR/lib; status 1 if any
check() {
    local lib=$1/lib bad=0 i j f h found
    for i in "${!layers[@]}"; do
        for f in "$lib/${layers[$i]}"/*.[ch]; do
            [ -e "$f" ] || continue
            while read -r h; do
                [ -e "$lib/$h" ] && continue           # aemp.h
                found=
                for j in "${!layers[@]}"; do
                    if [ -e "$lib/${layers[$j]}/$h" ]; then found=$j; break; fi
                done
                # not in lib/: generated in the build dir (aemp_build.h)
                if [ -n "$found" ] && [ "$found" -gt "$i" ]; then
                    echo "${f#"$lib"/}: includes \"$h\" of ${layers[$found]}/, above ${layers[$i]}/"
                    bad=1
                fi
            done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
        done
    done
    return $bad
}

# every folder of lib/ is a known layer
for d in "$src"/lib/*/; do
    d=$(basename "$d")
    case " ${layers[*]} " in *" $d "*) ;; *) echo "not ok - lib/$d/ is no layer this test knows"; exit 1 ;; esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib"
cp -r "$src/lib/." "$tmp/lib/"
printf '#include "node.h"\n' >> "$tmp/lib/net/conn_in.c"
if check "$tmp" >/dev/null; then
    echo "not ok 1 - the checker finds a planted upward include (net/ -> core/node.h)"
    exit 1
fi
echo "ok 1 - the checker finds a planted upward include"
if out=$(check "$src"); then
    echo "ok 2 - every include of lib/ goes to its own layer or one below"
else
    echo "not ok 2 - includes that go up a layer:"
    echo "$out" | sed 's/^/# /'
    exit 1
fi
