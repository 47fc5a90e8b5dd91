#!/usr/bin/env bash
# mesh-page.sh - a screenshot of the monitoring page (/ of the "http"
# listener): starts a seed serving HTTP and four nodes on 127.0.0.1
# (ephemeral ports, a throw-away configuration in a temporary directory),
# sends a few calls, kills one node so that it shows down, and has headless
# Chromium draw the page into docs/mesh-page.png (or the file given as $1).
# Needs chromium and a build in build/ (made if missing). Stops every node
# it started.
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:-$repo/docs/mesh-page.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "mesh-page.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
tool_build
tool_tmp page
unset AEMP_WARNLEVEL PERL_ANYEVENT_MP_WARNLEVEL
port=$(free_port)
http=$(free_port)
"$aemp" gensecret seeds "127.0.0.1:$port" setmonitor_timeout 5 \
    profile seed binds "127.0.0.1:$port" sethttp "127.0.0.1:$http" >/dev/null
nodes=(seed web db worker cache)
for n in "${nodes[@]}"; do
    if [ "$n" = seed ]; then "$aemp" run profile seed 2>"$tmp/$n.log" &
    else "$aemp" run nodeid "$n" binds 127.0.0.1:0 2>"$tmp/$n.log" & fi
    pids+=($!)
done
up() { [ "$(curl -s "http://127.0.0.1:$http/metrics" | grep -c '^aemp_peer_up{peer="[a-z]*"} 1')" -ge 4 ]; }
for _ in $(seq 100); do up && break; sleep 0.2; done
up || { echo "mesh-page.sh: the nodes did not connect within 20 s" >&2; exit 1; }
# traffic on the links of the seed: calls answered by each node
for _ in 1 2 3; do
    for n in web db worker; do "$aemp" cal --timeout 2 "$n" info >/dev/null || true; done
done
kill -9 "${pids[4]}" # cache goes down
sleep 1
ud=$(mktemp -d "$tmp/chromium.XXXXXX")
# two loads of the page 2 s apart (virtual time): the second has rates
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$ud" --hide-scrollbars --window-size=1280,760 --virtual-time-budget=4500 \
    --screenshot="$out" "http://127.0.0.1:$http/" 2>/dev/null
echo "mesh-page.sh: wrote $out" >&2
