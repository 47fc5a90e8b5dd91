#!/bin/bash
# validation.sh - what users type and what the configuration file holds is
# checked before it is used: bad bind/seed ports and wrong value types are
# refused by every subcommand that takes them, with the key (and profile) in
# the message and exit status 2 (typed) or 1 (in the file); the file stays
# byte for byte untouched. `aemp check` reports every problem and what a node
# would do.
T_LIMIT=120
. "$(dirname "$0")/lib.sh"

RC="$PERL_ANYEVENT_MP_RC"

sum() { sha256sum "$RC" | cut -d' ' -f1; }
# refused NAME STATUS MESSAGE CMD...: CMD exits STATUS, stderr is exactly
# MESSAGE, nothing on stdout, and the configuration file is unchanged.
refused() {
    local name=$1 st=$2 want=$3 before after; shift 3
    before=$(sum)
    expect_status "$name: exit $st" "$st" "$@"
    err_is "$name: message" "$want"
    [ ! -s "$T_DIR/last.out" ] && pass "$name: nothing on stdout" \
        || fail "$name: nothing on stdout" "$(head -c 200 "$T_DIR/last.out")"
    after=$(sum)
    [ "$before" = "$after" ] && pass "$name: file untouched" || fail "$name: file untouched" "changed"
}

expect_status "a configuration to protect" 0 "$AEMP" gensecret profile seed binds '*:4040' \
    seeds 127.0.0.1:4040
PORTMSG="a port is a number from 1 to 65535"
BINDMSG="$PORTMSG (or 0 or * for any free port)"

# --- typed values: exit 2, key in the message
refused "binds port 70000" 2 \
    "aemp: setbinds: binds: \"127.0.0.1:70000\": the port '70000' is out of range; $BINDMSG" \
    "$AEMP" binds 127.0.0.1:70000
refused "seeds port 107576" 2 \
    "aemp: setseeds: seeds: \"host:107576\": the port '107576' is out of range; $PORTMSG" \
    "$AEMP" seeds host:107576
refused "seeds port not a number" 2 \
    "aemp: setseeds: seeds: \"host:http\": the port 'http' is not a number; $PORTMSG" \
    "$AEMP" setseeds a:1,host:http
refused "addseed port 0" 2 \
    "aemp: addseed: seeds: \"host:0\": the port '0' is out of range; $PORTMSG" \
    "$AEMP" addseed host:0
refused "addbind 65536, in a chain after a good edit" 2 \
    "aemp: addbind: binds: \"[::1]:65536\": the port '65536' is out of range; $BINDMSG" \
    "$AEMP" profile seed nodeid changed addbind '[::1]:65536'
refused "seeds as JSON with a bad port" 2 \
    "aemp: setseeds: seeds: \"h:99999\": the port '99999' is out of range; $PORTMSG" \
    "$AEMP" seeds '["h:1","h:99999"]'
refused "a seed of *" 2 \
    "aemp: addseed: seeds: \"*:4040\": a seed needs a host name or address to connect to, not *" \
    "$AEMP" addseed '*:4040'
refused "secret as a JSON list" 2 \
    "aemp: setsecret: \"secret\" must be a string (the shared secret), not a list" \
    "$AEMP" secret '[5]'
refused "binds as a JSON object" 2 \
    "aemp: setbinds: \"binds\" must be a list (the listen addresses), not an object" \
    "$AEMP" binds '{"a":1}'
refused "monitor_timeout 0" 2 \
    "aemp: setmonitor_timeout: \"monitor_timeout\" must be a number of seconds above 0, not 0" \
    "$AEMP" monitor_timeout 0
refused "nodeid with a space" 2 \
    "aemp: setnodeid: node ID \"a b\" has the character ' '; use only letters, digits and _ - . : /" \
    "$AEMP" nodeid 'a b'
refused "showconfig KEY VALUE with a bad port" 2 \
    "aemp: showconfig: binds: \"x:70000\": the port '70000' is out of range; $BINDMSG" \
    "$AEMP" showconfig seed binds x:70000
refused "run binds with a bad port" 2 \
    "aemp: run: binds: \"127.0.0.1:70000\": the port '70000' is out of range; $BINDMSG" \
    "$AEMP" run binds 127.0.0.1:70000
refused "run seeds with a bad port" 2 \
    "aemp: run: seeds: \"host:107576\": the port '107576' is out of range; $PORTMSG" \
    "$AEMP" run profile seed seeds host:107576
refused "loglevel 12" 2 \
    "aemp: setloglevel: \"loglevel\" must be a whole number from 0 (nothing) to 9 (trace), not 12" \
    "$AEMP" loglevel 12
refused "run loglevel high" 2 \
    "aemp: run: \"loglevel\" must be a whole number from 0 (nothing) to 9 (trace), not \"high\"" \
    "$AEMP" run loglevel '"high"'
refused "showconfig heartbeat soon" 2 \
    "aemp: showconfig: \"heartbeat\" must be a number (seconds), not 'soon'" \
    "$AEMP" showconfig seed heartbeat soon
refused "run autorestart maybe" 2 \
    "aemp: run: \"autorestart\" must be a boolean (true/false, 1/0, yes/no, on/off), not 'maybe'" \
    "$AEMP" run autorestart maybe
refused "run secret as a number" 2 \
    "aemp: run: \"secret\" must be a string (the shared secret), not a number" \
    "$AEMP" '["run","secret",5]'

# --- values of the wrong type in the file: exit 1, key and profile named
cp "$RC" "$T_DIR/good.rc"
python3 - "$RC" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["profile"]["bad"] = {"secret": 5}
j["profile"]["badbinds"] = {"binds": "x"}
j["profile"]["badseed"] = {"seeds": ["h:70000"]}
j["profile"]["child"] = {"parent": "badseed"}
json.dump(j, open(sys.argv[1], "w"), indent=3)
PY
refused "file: secret 5 (showconfig)" 1 \
    "aemp: showconfig: profile 'bad': \"secret\" must be a string (the shared secret), not a number" \
    "$AEMP" showconfig bad
refused "file: binds \"x\" (run)" 1 \
    "aemp: run: profile 'badbinds': \"binds\" must be a list (the listen addresses), like [\"x\"], not a string" \
    "$AEMP" run profile badbinds
refused "file: seed port through a parent (run)" 1 \
    "aemp: run: profile 'badseed': seeds: \"h:70000\": the port '70000' is out of range; $PORTMSG" \
    "$AEMP" run profile child
refused "file: seeds of the bad profile (aemp seeds)" 1 \
    "aemp: seeds: profile 'badseed': seeds: \"h:70000\": the port '70000' is out of range; $PORTMSG" \
    "$AEMP" profile badseed seeds
# the client commands use profile "aemp": a bad global value stops them too
python3 - "$RC" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["profile"] = {"aemp": {"loglevel": "loud"}}
json.dump(j, open(sys.argv[1], "w"), indent=3)
PY
refused "file: loglevel \"loud\" (showconfig)" 1 \
    "aemp: showconfig: profile 'aemp': \"loglevel\" must be a whole number from 0 (nothing) to 9 (trace), not \"loud\"" \
    "$AEMP" showconfig aemp
python3 - "$RC" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["profile"] = {"aemp": {"monitor_timeout": []}}
json.dump(j, open(sys.argv[1], "w"), indent=3)
PY
refused "file: monitor_timeout [] (cal)" 1 \
    "aemp: cal: profile 'aemp': \"monitor_timeout\" must be a number of seconds, not a list" \
    "$AEMP" cal n1 info
echo '{"version":1,"secret":"s","profile":[]}' >"$RC"
refused "file: profile [] (showconfig)" 1 \
    "aemp: showconfig: \"profile\" must be an object of profiles {\"NAME\": {...}}, not a list" \
    "$AEMP" showconfig
refused "file: profile [] (snd)" 1 \
    "aemp: snd: \"profile\" must be an object of profiles {\"NAME\": {...}}, not a list" \
    "$AEMP" snd n1 x
refused "file: profile [] (a config edit of a profile)" 1 \
    "aemp: setbinds: $RC: \"profile\" is not an object; fix the file by hand" \
    "$AEMP" profile x binds 1

# --- aemp check: every problem, exit 1; a good profile: what it would do
cp "$T_DIR/good.rc" "$RC"
expect_status "check seed" 0 "$AEMP" check seed
want="file: $RC
profile: seed
node ID: seed
binds: *:4040
seeds: 127.0.0.1:4040
auth: shared secret, no certificate
auth offer: tls_md6_64_256 hmac_md6_64_256
auth accept: tls_md6_64_256 hmac_md6_64_256 tls_anon cleartext
services: (none)
timing: monitor_timeout 30 s, connect_interval 2 s
ok"
got=$(cat "$T_DIR/last.out")
[ "$got" = "$want" ] && pass "check seed: what the node would do" \
    || fail "check seed: what the node would do" "$got"
expect_status "check --json seed" 0 "$AEMP" check --json seed
python3 - "$T_DIR/last.out" <<'PY' && pass "check --json: one JSON object" || fail "check --json: one JSON object" "$(cat "$T_DIR/last.out")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1
j = json.loads(lines[0])
assert j["ok"] is True and j["problems"] == [] and j["nodeid"] == "seed", j
assert j["binds"] == ["*:4040"] and j["seeds"] == ["127.0.0.1:4040"], j
assert j["auth"]["secret"] is True and j["auth"]["cert"] is False, j
PY
expect_status "profile seed check (the chain's profile)" 0 "$AEMP" profile seed check
grep -qx "profile: seed" "$T_DIR/last.out" && pass "profile seed check: checks seed" \
    || fail "profile seed check: checks seed" "$(cat "$T_DIR/last.out")"

cat >"$RC" <<'EOF2'
{"secret": 5, "binds": "x",
 "profile": {"a": {"seeds": ["h:99999"], "monitor_timeout": "soon"}, "b": [],
             "svc": {"secret": "s", "services": ["/nonexistent/x.so:init", "named"]}}}
EOF2
before=$(sum)
expect_status "check of a broken file" 1 "$AEMP" check a
want="aemp: check: global part: \"secret\" must be a string (the shared secret), not a number
aemp: check: global part: \"binds\" must be a list (the listen addresses), like [\"x\"], not a string
aemp: check: profile 'a': seeds: \"h:99999\": the port '99999' is out of range; $PORTMSG
aemp: check: profile 'a': \"monitor_timeout\" must be a number of seconds above 0, not \"soon\"
aemp: check: profile 'b' must be an object {\"KEY\": VALUE, ...}, not a list"
err_is "check: every problem, one line each" "$want"
[ "$before" = "$(sum)" ] && pass "check: file untouched" || fail "check: file untouched" "changed"
expect_status "check --json of a broken file" 1 "$AEMP" check --json b
python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).read())
print(j["ok"], len(j["problems"]), j["problems"][-1])' "$T_DIR/last.out" >"$T_DIR/j.txt" 2>&1
[ "$(cat "$T_DIR/j.txt")" = "False 5 profile 'b' must be an object {\"KEY\": VALUE, ...}, not a list" ] \
    && pass "check --json: problems listed" || fail "check --json: problems listed" "$(cat "$T_DIR/j.txt")"
python3 - "$RC" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
del j["secret"], j["binds"], j["profile"]["a"], j["profile"]["b"]
json.dump(j, open(sys.argv[1], "w"))
PY
expect_status "check: services that cannot start" 1 "$AEMP" check svc
want="aemp: check: service /nonexistent/x.so:init: cannot read /nonexistent/x.so
aemp: check: service named: \`aemp run\` registers no function of that name; give PATH.so:SYMBOL (names work in programs that register them)"
err_is "check: services: message" "$want"
grep -qx "services: /nonexistent/x.so:init named" "$T_DIR/last.out" && pass "check: services listed" \
    || fail "check: services listed" "$(cat "$T_DIR/last.out")"
echo '{"secret": "s", "profile": {"served": {"services": [["AnyEvent::MP::LogCatcher::catch", 9], "aemp::put"]}}}' >"$RC"
expect_status "check: services every aemp run node serves (log catcher, aemp::put) are fine" 0 \
    "$AEMP" check served
echo '{}' >"$RC"
expect_status "check without a secret" 1 "$AEMP" check
err_is "check without a secret: message" "aemp: check: no shared secret and no certificate: the \
node would refuse to listen or to contact seeds; run \`aemp gensecret\` (or gencert)"
expect_status "addbind [::1]:4041 (an IPv6 address, not JSON)" 0 "$AEMP" addbind '[::1]:4041'
grep -qF '"[::1]:4041"' "$RC" && pass "addbind IPv6 stored" || fail "addbind IPv6 stored" "$(cat "$RC")"
expect_status "check: bad usage" 2 "$AEMP" check a b
err_is "check: bad usage: message" "aemp: check: too many arguments (usage: aemp check [--json] [PROFILE])"

finish
