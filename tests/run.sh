#!/usr/bin/env bash
# run.sh - every test: a gcc build, a clang build with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the fuzz targets for a few seconds each.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1
bash tools/deps.sh --tests || { echo "run.sh: installing dependencies failed" >&2; exit 1; }

passed=0
failed=0
count() { # count BUILDDIR: add meson's per-test results
    local log="$1/meson-logs/testlog.json"
    [ -f "$log" ] || { failed=$((failed + 1)); return; }
    local ok bad
    ok=$(grep -c '"result": "OK"' "$log")
    bad=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
    passed=$((passed + ok))
    failed=$((failed + bad))
}
setup() { # setup DIR ARGS...: configure once, reconfigure when it exists
    local dir=$1; shift
    if [ -d "$dir/meson-private" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
    else meson setup "$dir" "$@" >/dev/null; fi
}

echo "== gcc build and tests"
if setup build-test --buildtype=debugoptimized -Dwerror=true && ninja -C build-test >/dev/null; then
    meson test -C build-test --print-errorlogs --num-processes 2 || true
    count build-test
else
    echo "gcc build failed"; failed=$((failed + 1))
fi

echo "== clang + AddressSanitizer + UndefinedBehaviorSanitizer"
if CC=clang setup build-san -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug -Dwerror=true &&
   ninja -C build-san >/dev/null; then
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-san --print-errorlogs --num-processes 2 --timeout-multiplier 3 || true
    count build-san
else
    echo "sanitizer build failed"; failed=$((failed + 1))
fi

echo "== fuzz targets (libFuzzer, a few seconds each)"
if CC=clang setup build-fuzz -Dfuzz=true --buildtype=debug && ninja -C build-fuzz >/dev/null; then
    for f in build-fuzz/tests/fuzz/fuzz_*; do
        if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
        name=$(basename "$f")
        corpus=build-fuzz/corpus-$name     # libFuzzer adds to it: keep it out of the tree
        mkdir -p "$corpus"
        cp -f tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null || true
        if "$f" -max_total_time=10 -rss_limit_mb=1024 "$corpus" >"build-fuzz/$name.log" 2>&1; then
            echo "ok - $name"; passed=$((passed + 1))
        else
            echo "not ok - $name (see build-fuzz/$name.log)"; tail -20 "build-fuzz/$name.log"
            failed=$((failed + 1))
        fi
    done
else
    echo "fuzz build failed"; failed=$((failed + 1))
fi

echo "== static analysis (tools/analyze.sh: scan-build, cppcheck, shellcheck)"
if bash tools/analyze.sh >build-analyze.log 2>&1; then
    echo "ok - analyze"; passed=$((passed + 1))
else
    echo "not ok - analyze (build-analyze.log)"; grep -E 'warning|error|^In |findings' build-analyze.log | head -40
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
