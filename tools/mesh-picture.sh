#!/usr/bin/env bash
# mesh-picture.sh - draw what `aemp trace --dot` sees of a small mesh:
# starts a seed and three nodes on 127.0.0.1 (ephemeral ports, a throw-away
# configuration in a temporary directory), waits until they form a full
# mesh, and renders `aemp trace --dot seed` with Graphviz into
# docs/mesh.svg (or the file given as $1). Needs graphviz (`dot`) and a
# build in build/ (made if missing). Stops every node it started.
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:-$repo/docs/mesh.svg}
command -v dot >/dev/null || { echo "mesh-picture.sh: needs Graphviz's dot (apt-get install graphviz)" >&2; exit 1; }
tool_build
tool_tmp mesh
unset AEMP_WARNLEVEL PERL_ANYEVENT_MP_WARNLEVEL

port=$(free_port)
"$aemp" gensecret seeds "127.0.0.1:$port" profile seed binds "127.0.0.1:$port" \
    profile aemp nodeid you >/dev/null    # the tracing client appears as "you"
nodes=(seed web db worker)
for n in "${nodes[@]}"; do
    if [ "$n" = seed ]; then "$aemp" run profile seed 2>"$tmp/$n.log" &
    else "$aemp" run nodeid "$n" binds 127.0.0.1:0 2>"$tmp/$n.log" & fi
    pids+=($!)
done

# Full mesh: every node names the three others.
full() {
    local t n
    t=$("$aemp" trace --timeout 2 seed 2>/dev/null) || return 1
    for n in "${nodes[@]}"; do
        [ "$(grep "^$n:" <<<"$t" | tr ' ' '\n' | grep -cxE "$(IFS='|'; echo "${nodes[*]}")")" -ge 3 ] || return 1
    done
}
for _ in $(seq 100); do full && break; sleep 0.2; done
full || { echo "mesh-picture.sh: no full mesh within 20 s" >&2; tail -3 "$tmp"/*.log >&2; exit 1; }

"$aemp" trace --dot seed >"$tmp/mesh.dot"
dot -Tsvg "$tmp/mesh.dot" >"$out"
cat "$tmp/mesh.dot"
echo "mesh-picture.sh: wrote $out" >&2
