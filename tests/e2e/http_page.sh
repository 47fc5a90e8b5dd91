#!/bin/bash
# http_page.sh - the page at / of the monitoring listener, drawn by a real
# browser: five `aemp run` nodes (one seed serving HTTP, monitor_timeout
# 3 s) and headless Chromium loading http://SEED/ (--dump-dom after the
# page's own fetches of /mesh.json have run). The drawn SVG has all five
# nodes, up, the seed marked as this node, and a link from it to each of
# the four others; after one node is killed with SIGKILL, the page shows
# it down within monitor_timeout (and its link down). Skips (77) without
# chromium.
T_LIMIT=200
. "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "1..0 # SKIP chromium not installed (tools/deps.sh --tests installs it)"
    exit 77
fi
PS=$(free_port)
HP=$(free_port)
MT=3
expect_status "gensecret" 0 "$AEMP" gensecret
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$PS" setmonitor_timeout "$MT"
start_bg "$T_DIR/n0.log" "$AEMP" run nodeid n0 binds "127.0.0.1:$PS" http "127.0.0.1:$HP"
PIDS=("$BG_PID")
for i in 1 2 3 4; do
    start_bg "$T_DIR/n$i.log" "$AEMP" run nodeid "n$i" binds 127.0.0.1:0
    PIDS+=("$BG_PID")
done
meshed() { [ "$(curl -s -m 5 "http://127.0.0.1:$HP/metrics" | grep -c '^aemp_peer_up{peer="n[1-4]"} 1')" = 4 ]; }
wait_for 60 meshed && pass "the seed sees four nodes up" || fail "four nodes up" "$(curl -s "http://127.0.0.1:$HP/mesh.json")"

# dom FILE: the page as Chromium has drawn it after its first fetches.
dom() {
    local ud
    ud=$(mktemp -d "$T_DIR/chromium.XXXXXX")
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$ud" --virtual-time-budget=3000 --dump-dom "http://127.0.0.1:$HP/" \
        >"$1" 2>"$T_DIR/chromium.err"
    rm -rf "$ud"
}
# what FILE: "ID:up:self" per drawn node and "A-B:up" per drawn link, sorted.
what() {
    python3 - "$1" <<'EOF'
import re, sys
d = open(sys.argv[1]).read()
out = []
for m in re.finditer(r'<g class="node"([^>]*)>', d):
    a = dict(re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1)))
    out.append("%s:%s:%s" % (a["id"], a["up"], a["self"]))
for m in re.finditer(r'<line class="link"([^>]*)>', d):
    a = dict(re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1)))
    out.append("%s-%s:%s" % (a["a"], a["b"], a["up"]))
print(" ".join(sorted(out)))
EOF
}
dom "$T_DIR/page1.html"
got=$(what "$T_DIR/page1.html")
want="n0-n1:true n0-n2:true n0-n3:true n0-n4:true n0:true:true n1:true:false n2:true:false n3:true:false n4:true:false"
[ "$got" = "$want" ] && pass "Chromium draws the five nodes up, n0 as this node, and its four links" ||
    fail "the drawn page" "got '$got' wanted '$want'; $(tail -3 "$T_DIR/chromium.err")"
grep -q 'external\|https\?://[a-z]' <(grep -oE '(src|href)="[^"]*"' "$T_DIR/page1.html") &&
    fail "nothing loaded from elsewhere" "$(grep -oE '(src|href)="[^"]*"' "$T_DIR/page1.html")" ||
    pass "the page refers to nothing elsewhere"

stop_pid "${PIDS[3]}" KILL
t0=$(date +%s%N)
# the page's source, /mesh.json, has n3 down within monitor_timeout
n3_down() {
    curl -s -m 5 "http://127.0.0.1:$HP/mesh.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert any(n["id"] == "n3" and not n["up"] for n in d["nodes"])'
}
if wait_for $((MT + 5)) n3_down; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    # the poll itself (curl and python each 0.1 s) may add up to 1 s on a
    # busy machine; an ASan/UBSan debug build is slower throughout
    lim=$((MT * 1000 + 1000))
    grep -qa __asan_init "$AEMP" && lim=$((2 * MT * 1000 + 1000))
    [ "$ms" -le "$lim" ] && pass "n3 (SIGKILL) is down in /mesh.json after $ms ms (monitor_timeout ${MT} s)" ||
        fail "n3 down within monitor_timeout" "$ms ms"
else
    fail "n3 down in /mesh.json" "$(curl -s "http://127.0.0.1:$HP/mesh.json")"
fi
dom "$T_DIR/page2.html"
got=$(what "$T_DIR/page2.html")
case " $got " in
*" n0-n3:false "*" n3:false:false "*) pass "Chromium draws n3 and its link down, the others up ($got)" ;;
*) fail "the page shows n3 down" "$got" ;;
esac
gone() { curl -s -m 5 "http://127.0.0.1:$HP/metrics" | grep -qx 'aemp_peer_up{peer="n3"} 0'; }
gone && pass "n0's metrics keep n3's series, at aemp_peer_up 0" || fail "n3 down in metrics" "$(curl -s "http://127.0.0.1:$HP/metrics" | grep peer_up)"
for p in "${PIDS[@]}"; do stop_pid "$p"; done
finish
