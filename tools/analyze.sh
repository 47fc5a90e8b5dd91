#!/usr/bin/env bash
# analyze.sh - static analysis of the whole tree: clang's scan-build over a
# build of lib/ and cmd/, cppcheck over the same sources, shellcheck over the
# scripts of tools/, bench/, the completion and the CI entry points. Prints
# every finding and exits 1 if there is any (2 when a tool is missing:
# `bash tools/deps.sh --tests` installs them).
set -u
cd "$(dirname "$0")/.." || exit 1
for tool in scan-build-14 cppcheck shellcheck meson ninja; do
    command -v "$tool" >/dev/null || { echo "analyze.sh: $tool is missing (bash tools/deps.sh --tests)" >&2; exit 2; }
done
out=${AEMP_ANALYZE_DIR:-build-analyze}
findings=0

echo "== scan-build (clang static analyzer)"
rm -rf "$out"
if ! scan-build-14 meson setup "$out" -Dtests=false >"$out.setup.log" 2>&1; then
    echo "analyze.sh: meson setup under scan-build failed:" >&2; tail -20 "$out.setup.log" >&2; exit 1
fi
rm -f "$out.setup.log"
scan-build-14 -o "$out/report" --status-bugs ninja -C "$out" >"$out/scan.log" 2>&1
rc=$?
grep -E '^[^ ].*: warning: ' "$out/scan.log" | sed "s|^[./]*||" | sort -u
n=$(grep -cE '^[^ ].*: warning: ' "$out/scan.log")
if [ "$rc" != 0 ] || [ "$n" != 0 ]; then
    echo "# scan-build: $n findings (reports in $out/report)"
    [ "$n" = 0 ] && tail -20 "$out/scan.log"
    findings=$((findings + (n > 0 ? n : 1)))
else
    echo "# scan-build: no findings"
fi

echo "== cppcheck"
inc=()
for d in lib lib/*/; do inc+=(-I "$d"); done
# cJSON's header is read for its macros (cJSON_ArrayForEach); other system
# headers are not needed for these checks.
cppcheck --quiet --enable=warning,portability --std=c11 -D_GNU_SOURCE \
    --include=/usr/include/cjson/cJSON.h "${inc[@]}" -I "$out" --error-exitcode=1 \
    lib cmd 2>"$out/cppcheck.log"
rc=$?
cat "$out/cppcheck.log"
if [ "$rc" != 0 ]; then
    n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: ' "$out/cppcheck.log")
    echo "# cppcheck: $n findings"; findings=$((findings + (n > 0 ? n : 1)))
else
    echo "# cppcheck: no findings"
fi

echo "== shellcheck"
scripts=(tools/*.sh bench/*.sh tests/run.sh .ci/run completions/aemp.bash)
if shellcheck -x -s bash "${scripts[@]}" >"$out/shellcheck.log" 2>&1; then
    echo "# shellcheck: no findings in ${#scripts[@]} scripts"
else
    cat "$out/shellcheck.log"
    n=$(grep -cE '^In .* line [0-9]+:' "$out/shellcheck.log")
    echo "# shellcheck: $n findings"; findings=$((findings + (n > 0 ? n : 1)))
fi

if [ "$findings" != 0 ]; then echo "analyze.sh: $findings findings"; exit 1; fi
echo "analyze.sh: no findings"
