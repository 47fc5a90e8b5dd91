#!/bin/bash
# install.sh - `meson install` of this build into a staging directory: exactly
# the files a user gets; the installed binary finds its shipped profiles (and
# warns once when it cannot); an outside program (the README's example) builds
# with pkg-config against the shared and the static library and runs.
T_LIMIT=300
. "$(dirname "$0")/lib.sh"

: "${AEMP_BUILD_DIR:?}" "${AEMP_SOURCE_DIR:?}"
unset AEMP_PROFILE_DIR
CC=${AEMP_CC:-cc}
stage=$T_DIR/stage

# The build's directory options (prefix /usr/local, libdir lib/x86_64-linux-gnu, ...).
eval "$(meson introspect "$AEMP_BUILD_DIR" --buildoptions | python3 -c '
import json, sys
d = {o["name"]: o["value"] for o in json.load(sys.stdin)}
for k in ("prefix", "bindir", "libdir", "includedir", "datadir", "mandir", "b_sanitize",
          "systemdunitdir"):
    print("opt_%s=%s" % (k, d[k]))')"
unitdir=${opt_systemdunitdir:-$opt_prefix/lib/systemd/system}
P=$stage$opt_prefix
lib=$P/$opt_libdir

if meson install -C "$AEMP_BUILD_DIR" --no-rebuild --destdir "$stage" >"$T_DIR/install.log" 2>&1; then
    pass "meson install --destdir"
else
    fail "meson install --destdir" "$(tail -5 "$T_DIR/install.log")"
    finish
fi

# --- exactly these files, nothing else (paths below the prefix)
{
    echo "$opt_bindir/aemp"
    echo "$opt_includedir/aemp.h"
    echo "$opt_libdir/libaemp.a"
    echo "$opt_libdir/libaemp.so"
    echo "$opt_libdir/libaemp.so.0"
    echo "$opt_libdir/libaemp.so.0.1.0"
    echo "$opt_libdir/pkgconfig/aemp.pc"
    echo "$opt_mandir/man1/aemp.1"
    echo "$opt_mandir/man3/libaemp.3"
    echo "${unitdir#"$opt_prefix"/}/aemp@.service"
    echo "$opt_datadir/bash-completion/completions/aemp"
    for f in "$AEMP_SOURCE_DIR"/profiles/*.json; do
        echo "$opt_datadir/aemp/profiles/$(basename "$f")"
    done
} | sort >"$T_DIR/want"
(cd "$P" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$T_DIR/got"
if [ "$(find "$stage" \( -type f -o -type l \) | grep -vc "^$P/")" = 0 ] &&
   diff -u "$T_DIR/want" "$T_DIR/got" >"$T_DIR/diff"; then
    pass "installed files: exactly binary, header, libraries, .pc, man pages, profiles, unit, completion ($(wc -l <"$T_DIR/got") files)"
else
    fail "installed file list" "$(cat "$T_DIR/diff")"
fi

# --- the installed binary: no build-tree paths, finds its shipped profiles
bin=$P/$opt_bindir/aemp
if readelf -d "$bin" | grep -E 'RUNPATH|RPATH' | grep -qF "$AEMP_BUILD_DIR"; then
    fail "installed binary has no build-tree run path" "$(readelf -d "$bin" | grep -E 'RUNPATH|RPATH')"
else
    pass "installed binary has no build-tree run path"
fi
"$bin" showconfig aemp >"$T_DIR/sc.out" 2>"$T_DIR/sc.err"
if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodeid"])' "$T_DIR/sc.out")" = "anon/" ] &&
   [ ! -s "$T_DIR/sc.err" ]; then
    pass "installed binary finds its shipped profile aemp (nodeid anon/), no warning"
else
    fail "installed binary and its profiles" "$(cat "$T_DIR/sc.out" "$T_DIR/sc.err" | head -c 400)"
fi

# A copy without profiles nearby (and outside the build tree) says so, once.
if [ -d "$opt_prefix/$opt_datadir/aemp/profiles" ]; then
    echo "ok - # SKIP missing-profiles warning: aemp is installed in $opt_prefix on this machine"
else
    mkdir -p "$T_DIR/moved/bin"
    cp "$bin" "$T_DIR/moved/bin/aemp"
    "$T_DIR/moved/bin/aemp" showconfig aemp >"$T_DIR/mv.out" 2>"$T_DIR/mv.err"
    n=$(grep -c 'shipped profiles .* are not installed' "$T_DIR/mv.err")
    if [ "$n" = 1 ] && [ "$(wc -l <"$T_DIR/mv.err")" = 1 ] &&
       grep -q '"nodeid" : "aemp"' "$T_DIR/mv.out"; then
        pass "without its profiles the binary warns once: $(cut -c21- "$T_DIR/mv.err" | head -c 90)..."
    else
        fail "warning when the shipped profiles are missing" "$(head -c 400 "$T_DIR/mv.err")"
    fi
fi

# --- the systemd unit: runs the installed binary; notify type iff libsystemd
unit=$stage$unitdir/aemp@.service
grep -qx "ExecStart=$opt_prefix/$opt_bindir/aemp run profile %i" "$unit" &&
    pass "aemp@.service runs $opt_prefix/$opt_bindir/aemp run profile %i" ||
    fail "unit ExecStart" "$(grep ExecStart "$unit")"
want_type=simple
ldd "$bin" | grep -q libsystemd && want_type=notify
grep -qx "Type=$want_type" "$unit" && pass "aemp@.service Type=$want_type" ||
    fail "unit type" "$(grep Type= "$unit"), wanted $want_type"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$T_DIR/units"
    sed "s|^ExecStart=[^ ]*|ExecStart=$bin|" "$unit" >"$T_DIR/units/aemp@seed.service"
    if systemd-analyze verify --man=no "$T_DIR/units/aemp@seed.service" >"$T_DIR/verify.out" 2>&1 &&
       [ ! -s "$T_DIR/verify.out" ]; then
        pass "systemd-analyze verify aemp@seed.service: no complaints"
    else
        fail "systemd-analyze verify" "$(head -c 400 "$T_DIR/verify.out")"
    fi
fi

# --- an outside program: the README's example, built with pkg-config
sed -n '/^```c$/,/^```$/p' "$AEMP_SOURCE_DIR/README.md" | sed '1d;$d' >"$T_DIR/prog.c"
grep -q aemp_node_new "$T_DIR/prog.c" || fail "README example found" "no C block in README.md"
# The staged aemp.pc, pointed at the staging directory (as if installed there).
sed -i "s|^prefix=.*|prefix=$P|" "$lib/pkgconfig/aemp.pc"
export PKG_CONFIG_PATH=$lib/pkgconfig
pc() { pkg-config "$@" aemp; }
san=()
[ "$opt_b_sanitize" != none ] && san=("-fsanitize=$opt_b_sanitize")
echo "# shared: $CC prog.c $(pc --cflags --libs)"
# shellcheck disable=SC2046
if "$CC" "${san[@]}" -o "$T_DIR/prog_shared" "$T_DIR/prog.c" $(pc --cflags --libs) 2>"$T_DIR/cc.err"; then
    pass "outside program builds against libaemp.so with pkg-config --cflags --libs"
else
    fail "build against libaemp.so" "$(head -c 600 "$T_DIR/cc.err")"
fi
if readelf -d "$T_DIR/prog_shared" 2>/dev/null | grep -q 'NEEDED.*\[libaemp\.so\.0\]'; then
    pass "it needs libaemp.so.0 (the soname)"
else
    fail "soname" "$(readelf -d "$T_DIR/prog_shared" 2>&1 | grep NEEDED)"
fi
out=$(LD_LIBRARY_PATH=$lib timeout 30 "$T_DIR/prog_shared" 2>&1)
[ "$out" = "[5]" ] && pass "shared: it runs and prints [5]" || fail "shared program output" "$out"

# The README's line for the static library.
static_flags=$(pc --cflags --libs --static | sed 's/-laemp\b/-l:libaemp.a/')
echo "# static: $CC prog.c $static_flags"
# shellcheck disable=SC2086
if "$CC" "${san[@]}" -o "$T_DIR/prog_static" "$T_DIR/prog.c" $static_flags 2>"$T_DIR/cc.err"; then
    pass "outside program builds against libaemp.a with pkg-config --static (private deps listed)"
else
    fail "build against libaemp.a" "$(head -c 600 "$T_DIR/cc.err")"
fi
if readelf -d "$T_DIR/prog_static" 2>/dev/null | grep -q 'libaemp'; then
    fail "static program does not need libaemp.so" "$(readelf -d "$T_DIR/prog_static" | grep NEEDED)"
else
    pass "static program does not need libaemp.so"
fi
out=$(timeout 30 "$T_DIR/prog_static" 2>&1)
[ "$out" = "[5]" ] && pass "static: it runs and prints [5]" || fail "static program output" "$out"

# The shared library exports the public API only; so does the binary (its
# functions are what services loaded with dlopen() may call). A sanitizer's
# runtime exports its own interceptors from the binary: checked without one.
other=$(nm -D --defined-only "$lib/libaemp.so.0" | awk '$2 ~ /[TDBR]/ && $3 !~ /^aemp_/ {print $3}' | head -5)
[ -z "$other" ] && pass "libaemp.so exports only aemp_* symbols" || fail "exports" "$other"
if [ "$opt_b_sanitize" = none ]; then
    other=$(nm -D --defined-only "$bin" | awk '$2 ~ /[TD]/ && $3 !~ /^aemp_/ {print $3}' | head -5)
    n=$(nm -D --defined-only "$bin" | awk '$2 ~ /[TD]/' | wc -l)
    [ -z "$other" ] && pass "the aemp binary exports only aemp_* functions ($n)" ||
        fail "binary exports internal symbols" "$other"
else
    echo "ok - # SKIP binary exports: $opt_b_sanitize runtime exports its own"
fi

# Reproducible: no path of the source or build tree in what is installed
# (debug information included); the build tree's own binary finds the source's
# profiles at run time, not through a compiled-in path.
leaks=""
for f in "$bin" "$lib/libaemp.so.0" "$lib/libaemp.a"; do
    grep -qaF -e "$AEMP_SOURCE_DIR" -e "$AEMP_BUILD_DIR" "$f" && leaks="$leaks ${f#"$P"/}"
done
[ -z "$leaks" ] && pass "no source or build path in the binary and libraries" ||
    fail "build paths baked in" "$leaks contain $AEMP_SOURCE_DIR or $AEMP_BUILD_DIR"
"$AEMP_BIN" showconfig seed >"$T_DIR/bt.out" 2>"$T_DIR/bt.err"
if grep -q '"binds"' "$T_DIR/bt.out" && [ ! -s "$T_DIR/bt.err" ]; then
    pass "the build tree's aemp finds the source's shipped profiles without AEMP_PROFILE_DIR"
else
    fail "build tree profiles" "$(cat "$T_DIR/bt.out" "$T_DIR/bt.err" | head -c 400)"
fi

finish
