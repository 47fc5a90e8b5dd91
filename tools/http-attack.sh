#!/usr/bin/env bash
# http-attack.sh - hostile HTTP clients against a node's monitoring
# listener (not in CI; tests/e2e/http.sh runs a smaller version): a node A
# serving "http" and a node B meshed with it; then, one after another,
# 1,000 idle connections, 50 slowloris clients (a byte every 0.5 s for
# 20 s), a 1 MB request line, and 100,000 requests (GET /healthz on 20
# keep-alive connections). Throughout, node B calls A every 100 ms
# (tests/e2e/svc_ping.c) and `aemp cal A info` runs in a loop;
# printed: A's RSS and descriptors before, at the worst and after, how the
# attacks ended, and the worst time of a cal (a whole client process:
# start, handshake, call; its node-to-node part is a fraction of it).
# Exits 1 if a cal failed, A died, or A's RSS grew by more than 20 MB.
set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tool_build
[ -f "$repo/build/tests/libsvc_ping.so" ] || { echo "http-attack.sh: needs a build with tests (build/tests/libsvc_ping.so)" >&2; exit 1; }
tool_tmp httpatk
port=$(free_port)
http=$(free_port)
"$aemp" gensecret seeds "127.0.0.1:$port" >/dev/null
"$aemp" run nodeid A binds "127.0.0.1:$port" http "127.0.0.1:$http" 2>"$tmp/a.log" &
pids+=($!)
apid=$!
# B calls A every 100 ms (tests/e2e/svc_ping.c) and logs the slowest
# answer of each second
"$aemp" run nodeid B binds 127.0.0.1:0 \
    services "[[\"$repo/build/tests/libsvc_ping.so:svc_ping_init\",\"A\"]]" 2>"$tmp/b.log" &
pids+=($!)
for _ in $(seq 100); do "$aemp" cal --timeout 1 A info >/dev/null 2>&1 && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$apid/status"; }
fds() { find "/proc/$apid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
echo "before: RSS $(rss) kB, $(fds) descriptors"
rss0=$(rss)
python3 - "$http" >"$tmp/attack.out" <<'PY' &
import socket, sys, threading, time
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=10)
idle = []
for i in range(1000):
    try: idle.append(conn())
    except OSError: break
print("1000 idle: %d connected" % len(idle), flush=True)
time.sleep(3)
for s in idle: s.close()
cut = []
def slow():
    s = conn(); t0 = time.time()
    for i in range(40):
        try: s.send(b"G" if i == 0 else b"x")
        except OSError: cut.append(time.time() - t0); return
        time.sleep(0.5)
ts = [threading.Thread(target=slow) for _ in range(50)]
for t in ts: t.start()
for t in ts: t.join()
print("50 slowloris: %d cut off, after %.0f-%.0f s" % (len(cut), min(cut or [0]), max(cut or [0])), flush=True)
s = conn()
try: s.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n")
except OSError: pass
try: r = s.recv(64).split(b"\r\n")[0].decode()
except OSError: r = "closed"
print("1 MB request line: %s" % (r or "closed"), flush=True)
n = [0]
def many(k):
    s = conn(); f = s.makefile("rb")
    for i in range(k):
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            line = f.readline()
            while f.readline() not in (b"\r\n", b""): pass
            f.read(3)
            n[0] += 1
        except OSError:
            s.close(); s = conn(); f = s.makefile("rb")
t0 = time.time()
ts = [threading.Thread(target=many, args=(5000,)) for _ in range(20)]
for t in ts: t.start()
for t in ts: t.join()
print("100,000 requests: %d answered in %.1f s" % (n[0], time.time() - t0), flush=True)
PY
atk=$!
worst=0 fails=0 calls=0 peak_rss=0 peak_fds=0
while kill -0 "$atk" 2>/dev/null; do
    t0=$(date +%s%N)
    "$aemp" cal --timeout 2 A info >/dev/null 2>&1 || fails=$((fails + 1))
    ms=$(( ($(date +%s%N) - t0) / 1000000 )); calls=$((calls + 1))
    [ "$ms" -gt "$worst" ] && worst=$ms
    r=$(rss); f=$(fds)
    [ "$r" -gt "$peak_rss" ] && peak_rss=$r
    [ "$f" -gt "$peak_fds" ] && peak_fds=$f
    sleep 0.1
done
wait "$atk" || true
cat "$tmp/attack.out"
sleep 12
echo "peak during the attacks: RSS $peak_rss kB, $peak_fds descriptors; after: RSS $(rss) kB, $(fds) descriptors"
echo "aemp cal A info during the attacks: $calls calls, $fails failed, worst $worst ms (whole client process)"
pmax=$(grep '^PING ' "$tmp/b.log" | tail -n +3 | sed 's/.*max_ms=\([0-9]*\).*/\1/' | sort -n | tail -1)
echo "B's calls to A every 100 ms: slowest answer $pmax ms; $(grep '^PING ' "$tmp/b.log" | tail -1)"
kill -0 "$apid" || { echo "A died"; exit 1; }
[ "$fails" = 0 ] && [ $((peak_rss - rss0)) -lt 20000 ]
