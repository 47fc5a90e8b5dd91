#!/bin/bash
# dropin.sh - habits of Perl AnyEvent::MP 1.30 users that must work with the
# C tool alone (no Perl needed): `aemp run PROFILE` (an odd number of
# arguments starts with the profile, as 1.30's configure reads them),
# PERL_ANYEVENT_MP_TRACE; a file with # comments and trailing commas; and the framing_format and auth names of a shared
# file (only names that exist; only framings we read offered).
T_LIMIT=120
. "$(dirname "$0")/lib.sh"

P1=$(free_port)
expect_status "config" 0 "$AEMP" gensecret profile seed2 nodeid s2 binds "127.0.0.1:$P1" \
    profile other nodeid o2 binds 127.0.0.1:0

# --- `aemp run seed2`: the profile seed2, as `aemp run profile seed2`
start_bg "$T_DIR/run1.log" "$AEMP" run seed2
R=$BG_PID
if wait_for 20 grep -q "node s2 running, listening on \\[\"127.0.0.1:$P1\"\\]" "$T_DIR/run1.log"; then
    pass "run seed2: runs profile seed2"
else fail "run seed2: runs profile seed2" "$(head -5 "$T_DIR/run1.log")"; fi
stop_pid "$R"
# an odd list with pairs after the profile; a later profile pair wins
start_bg "$T_DIR/run2.log" "$AEMP" run other monitor_timeout 7 profile seed2
R=$BG_PID
if wait_for 20 grep -q "node s2 running" "$T_DIR/run2.log"; then
    pass "run other ... profile seed2: the later profile wins"
else fail "run other ... profile seed2: the later profile wins" "$(head -5 "$T_DIR/run2.log")"; fi
stop_pid "$R"

# --- a file with # comments and trailing commas (1.30 reads it with JSON::XS
# relaxed) is read; written back it keeps every key and value, exactly
# (integers past 2^53 digit for digit, \u0000)
RX="$T_DIR/relaxed.rc"
cat >"$RX" <<'RC'
# written by hand, as 1.30 allows
{
   "version" : 1,
   "secret" : "s3cret",   # the shared secret
   "profile" : {
      "seed" : { "binds" : [ "127.0.0.1:4040", ], "nodeid" : "rx", },
   },
   "x_mine" : [ 1, { "k" : "a	b" }, ],
   "x_exact" : [ 9007199254740993, 18446744073709551615, "a\u0000b", ],
}
RC
cp "$RX" "$T_DIR/relaxed.orig"
expect_status "relaxed file: showconfig" 0 env PERL_ANYEVENT_MP_RC="$RX" "$AEMP" showconfig seed
if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (j["nodeid"] == "rx" and j["binds"] == ["127.0.0.1:4040"] and j["secret"] == "s3cret"))' "$T_DIR/last.out"
then pass "relaxed file: the profile's values"; else fail "relaxed file: the profile's values" "$(cat "$T_DIR/last.out")"; fi
expect_status "relaxed file: a set rewrites it" 0 env PERL_ANYEVENT_MP_RC="$RX" "$AEMP" setmonitor_timeout 9
want='{"monitor_timeout":9,"profile":{"seed":{"binds":["127.0.0.1:4040"],"nodeid":"rx"}},"secret":"s3cret","version":1,"x_exact":[9007199254740993,18446744073709551615,"a\u0000b"],"x_mine":[1,{"k":"a\tb"}]}'
got=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True, separators=(",", ":")))' "$RX")
if [ "$got" = "$want" ]; then pass "relaxed file: every key and value kept"; else
    fail "relaxed file: every key and value kept" "$got"; fi
# what 1.30's own reader (JSON::XS relaxed) makes of the original is what we kept
if perl -MJSON::XS -e 1 2>/dev/null; then
    perl_got=$(perl -MJSON::XS -e 'local $/; open my $f, "<", $ARGV[0] or die; my $c = JSON::XS->new->utf8->relaxed->decode(<$f>); $c->{monitor_timeout} = 9; print JSON::XS->new->canonical->encode($c)' "$T_DIR/relaxed.orig")
    if [ "$perl_got" = "$want" ]; then pass "relaxed file: read as JSON::XS relaxed reads it"; else
        fail "relaxed file: read as JSON::XS relaxed reads it" "$perl_got"; fi
fi

# --- PERL_ANYEVENT_MP_TRACE=1 (1.30's switch, as its Intro uses it) traces
# every message, in `aemp run` and in the protocol subcommands' node
expect_status "seeds" 0 "$AEMP" setseeds "127.0.0.1:$P1"
start_bg "$T_DIR/run3.log" env PERL_ANYEVENT_MP_TRACE=1 "$AEMP" run seed2
R=$BG_PID
wait_for 20 grep -q "node s2 running" "$T_DIR/run3.log"
expect_status "cal with PERL_ANYEVENT_MP_TRACE=1" 0 env PERL_ANYEVENT_MP_TRACE=1 "$AEMP" cal s2 info
out_is "cal: the reply" '"s2"'
if grep -q '<9> snd to s2 \["",\s*"info"' "$T_DIR/last.err"; then pass "cal: the request is traced"
else fail "cal: the request is traced" "$(head -c 400 "$T_DIR/last.err")"; fi
if wait_for 10 grep -q '<9> rcv from anon/[A-Za-z0-9]* \["",\s*"info"' "$T_DIR/run3.log"; then
    pass "run: the request is traced"
else fail "run: the request is traced" "$(tail -5 "$T_DIR/run3.log")"; fi
expect_status "cal with PERL_ANYEVENT_MP_TRACE=0" 0 env PERL_ANYEVENT_MP_TRACE=0 "$AEMP" cal s2 info
if grep -q '<9>' "$T_DIR/last.err"; then fail "0 is off" "$(head -c 400 "$T_DIR/last.err")"
else pass "PERL_ANYEVENT_MP_TRACE=0 traces nothing"; fi
stop_pid "$R"

# --- framing_format and auth names: only names that exist; a node offers
# only the framings it reads, and one that reads none does not start
expect_status "setframing_format jsn: no such framing" 2 "$AEMP" setframing_format jsn
err_has "setframing_format jsn: says so" \
    'aemp: setframing_format: "framing_format": "jsn" is not a framing; this node reads json, 1.30 nodes also storable, cbor and Perl::Package formats'
expect_status "setauth_offer hmac: no such method" 2 "$AEMP" setauth_offer hmac
expect_status "setauth_accept md5: no such method" 2 "$AEMP" setauth_accept cleartext,md5
expect_status "setauth_accept of real methods" 0 "$AEMP" profile seed2 setauth_accept hmac_md6_64_256,tls_anon
NOFR='framing_format ["storable"] leaves no framing this node reads: it reads only json (add "json", or remove the key for the default ["json"])'
expect_status "setframing_format storable (a Perl framing) is stored" 0 "$AEMP" profile st nodeid st \
    binds 127.0.0.1:0 setframing_format storable
expect_status "check: storable alone cannot start" 1 "$AEMP" check st
err_has "check: says why" "aemp: check: $NOFR"
expect_status "run: storable alone does not start" 1 "$AEMP" run st
err_has "run: says why" "aemp: run: $NOFR"
P2=$(free_port)
expect_status "profile st2: storable,json" 0 "$AEMP" profile st2 nodeid st binds "127.0.0.1:$P2" \
    framing_format storable,json
start_bg "$T_DIR/run4.log" "$AEMP" run st2
R=$BG_PID
if wait_for 20 grep -q "node st running" "$T_DIR/run4.log"; then
    greeting=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
b = b""
while b"\n" not in b:
    d = s.recv(4096)
    if not d: break
    b += d
print(b.split(b"\n")[0].decode())' "$P2")
    case $greeting in
    "aemp;1;st;"*";json;"*) pass "storable,json: the greeting offers json only" ;;
    *) fail "storable,json: the greeting offers json only" "$greeting" ;;
    esac
else fail "run with storable,json starts" "$(head -5 "$T_DIR/run4.log")"; fi
stop_pid "$R"
finish
