#!/bin/bash
# tool_edges.sh - the edges of the aemp tool (issue 13, part 3), as real
# processes on 127.0.0.1 with real configuration files in a temp dir: what
# a node logs when the other side refuses its handshake.
T_LIMIT=200
. "$(dirname "$0")/lib.sh"

RC="$PERL_ANYEVENT_MP_RC"

expect_status "gensecret" 0 "$AEMP" gensecret
sum() { sha256sum "$RC" | cut -d' ' -f1; }
SUM0=$(sum)

# --- every subcommand answers --help: its usage on stdout, exit 0, and the
# file is untouched (`setsecret --help` used to store "--help" as the secret)
subs=$("$AEMP" --complete subcommands | cut -d' ' -f1)
for sub in $subs; do
    for h in --help -h; do
        "$AEMP" "$sub" "$h" >"$T_DIR/h.out" 2>"$T_DIR/h.err"
        st=$?
        if [ "$st" = 0 ] && grep -q "^usage: aemp " "$T_DIR/h.out" && [ ! -s "$T_DIR/h.err" ]; then
            pass "$sub $h: usage, exit 0"
        else fail "$sub $h: usage, exit 0" "exit $st: $(head -c 200 "$T_DIR/h.out" "$T_DIR/h.err")"; fi
    done
done
[ "$(sum)" = "$SUM0" ] && pass "--help changed nothing in the file" \
    || fail "--help changed nothing in the file" "$(cat "$RC")"
expect_status "help after a change in the chain" 0 "$AEMP" setsecret other setnodeid --help
[ "$(sum)" = "$SUM0" ] && pass "help after a change: nothing saved" || fail "help after a change: nothing saved"
for args in "snd --timeout 3 --help" "cal --json -h" "mon n1#x --help" "trace --timeout 1 n1 --help" \
    "stats --watch --count 1 --help" "logs --level 5 --help" "put --timeout 2 --help" "check --json --help"; do
    # shellcheck disable=SC2086
    expect_status "aemp $args: usage" 0 "$AEMP" $args
    grep -q "^usage: aemp ${args%% *} " "$T_DIR/last.out" && pass "aemp $args: usage on stdout" \
        || fail "aemp $args: usage on stdout" "$(cat "$T_DIR/last.out" "$T_DIR/last.err")"
done

# --- a value beginning with '-' is refused unless it follows `--`
for sub in setsecret setnodeid setbinds setseeds setservices setparent profile addseed; do
    expect_status "$sub -x: bad usage" 2 "$AEMP" "$sub" -x
    err_has "$sub -x: message" "aemp: $sub: '-x' is not an option of $sub; a value beginning with '-' goes after \`--\` (aemp $sub -- -x)"
done
[ "$(sum)" = "$SUM0" ] && pass "refused values: nothing saved" || fail "refused values: nothing saved"
expect_status "setsecret -- -x" 0 "$AEMP" setsecret -- -x
expect_status "the secret -x" 0 "$AEMP" showconfig
grep -q '"secret" : "-x"' "$T_DIR/last.out" && pass "setsecret -- -x stores -x" \
    || fail "setsecret -- -x stores -x" "$(grep secret "$T_DIR/last.out")"
for args in "nodeid -x" "-x" "profile -x" "-x nodeid n1"; do
    # shellcheck disable=SC2086
    expect_status "run $args: bad usage, no node" 2 timeout 10 "$AEMP" run $args
    err_has "run $args: message" "aemp: run: '-x' is not an option of run; a profile or value beginning with '-' goes after \`--\` (aemp run -- ... -x)"
done
# after `--` -x is a value: the next pair's check speaks (no node starts)
expect_status "run -- nodeid -x monitor_timeout -5" 2 timeout 10 "$AEMP" run -- nodeid -x monitor_timeout -5
err_has "run -- nodeid -x: -x taken, -5 refused by its check" \
    "aemp: run: \"monitor_timeout\" must be a number of seconds above 0, not -5"
expect_status "a negative number is a value (refused by its check)" 2 "$AEMP" setmonitor_timeout -5
err_has "negative number: its check's message" \
    "aemp: setmonitor_timeout: \"monitor_timeout\" must be a number of seconds above 0, not -5"
expect_status "gensecret again" 0 "$AEMP" gensecret

# --- setparent refuses a missing profile, the profile itself and a cycle;
# nothing is saved
expect_status "profiles p1 <- p2 <- p3" 0 "$AEMP" profile p1 nodeid p1 profile p2 parent p1 profile p3 parent p2
SUM1=$(sum)
expect_status "setparent: missing profile" 2 "$AEMP" profile p1 setparent nosuch
err_has "setparent: missing profile: message" "aemp: setparent: no profile named 'nosuch' (create it first: aemp profile nosuch ...)"
expect_status "setparent: itself" 2 "$AEMP" profile p1 setparent p1
err_has "setparent: itself: message" "aemp: setparent: profile 'p1' cannot be its own parent"
expect_status "setparent: a cycle" 2 "$AEMP" profile p1 parent p3
err_has "setparent: a cycle: message" "aemp: setparent: profile 'p1' cannot have the parent 'p3': 'p3' already inherits from 'p1' (a cycle)"
[ "$(sum)" = "$SUM1" ] && pass "refused parents: nothing saved" || fail "refused parents: nothing saved"
expect_status "showconfig p3 after the refusals" 0 "$AEMP" showconfig p3
expect_status "a shipped profile as parent" 0 "$AEMP" profile p4 setparent seed

# --- options after the port of snd and cal: bad usage (aemp(1)), also
# after the message's first word; `--` sends them as text
for args in "cal seed info --json" "snd seed devnull --quiet" "snd seed a b --timeout=3"; do
    # shellcheck disable=SC2086
    timed expect_status "aemp $args: bad usage" 2 "$AEMP" $args
    took_at_most "aemp $args: at once" 1
    set -- $args
    opt=${*: -1}
    err_has "aemp $args: message" "aemp: $1: options go before PORT (what follows PORT is the \
message); to send the text $opt write it after \`--\` or as JSON: '\"$opt\"'"
done

# --- output that cannot be written is a failure (exit 1, one line saying so)
for args in "showconfig seed" "showprofile seed" "check seed" "--version" "--help" "help snd" \
    "seeds --json" "--complete subcommands"; do
    # shellcheck disable=SC2086
    expect_status "aemp $args >/dev/full: exit 1" 1 sh -c '"$0" "$@" >/dev/full' "$AEMP" $args
    grep -q "cannot write the output: No space left on device" "$T_DIR/last.err" \
        && pass "aemp $args >/dev/full: message" || fail "aemp $args >/dev/full: message" "$(cat "$T_DIR/last.err")"
done

# --- nobody reachable: top, stats --watch and logs end within their bound
# with one line saying why (they used to wait until killed); check of a
# profile that does not exist fails
DEAD=$(free_port)
expect_status "seeds nobody listens on" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$DEAD"
NOSEED="no seed answered ([\"127.0.0.1:$DEAD\"]): the connection was refused or the address is unreachable (is the seed running?)"
timed expect_status "top --count 1 --timeout 2, nobody there" 1 timeout 20 "$AEMP" top --count 1 --timeout 2 </dev/null
took_at_most "top --count 1 --timeout 2: bounded" 4
err_has "top: message" "aemp: top: cannot reach the seeds within 2 s: $NOSEED"
timed expect_status "stats --watch, nobody there" 1 timeout 20 "$AEMP" stats --watch </dev/null
took_at_most "stats --watch: bounded by the default timeout" 7
err_has "stats --watch: message" "aemp: stats: cannot reach the seeds within 5 s: $NOSEED"
timed expect_status "stats --watch --count 2 NODE, nobody there" 1 timeout 20 "$AEMP" stats --watch --count 2 --interval 0.5 n9 </dev/null
took_at_most "stats --watch NODE: bounded" 4
grep -q "^n9 .*(no answer" "$T_DIR/last.out" && pass "stats --watch NODE: the table says no answer" \
    || fail "stats --watch NODE: the table says no answer" "$(cat "$T_DIR/last.out")"
err_has "stats --watch NODE: message" "aemp: stats: cannot reach n9 within 5 s: $NOSEED"
timed expect_status "logs NOSUCHNODE, nobody there" 1 timeout 20 "$AEMP" logs --timeout 2 NOSUCHNODE
took_at_most "logs NOSUCHNODE: bounded" 4
err_has "logs NOSUCHNODE: message" "aemp: logs: cannot reach NOSUCHNODE within 2 s: $NOSEED"
expect_status "logs --verbose, nobody there" 1 timeout 20 "$AEMP" logs --verbose --timeout 1 NOSUCHNODE
grep -q "<7> node anon/.* configured" "$T_DIR/last.err" && pass "logs --verbose: its node's log lines" \
    || fail "logs --verbose: its node's log lines" "$(cat "$T_DIR/last.err")"
timed expect_status "logs, nobody there" 1 timeout 20 "$AEMP" logs --timeout=1
took_at_most "logs: bounded" 3
err_has "logs: message" "aemp: logs: cannot reach the seeds within 1 s: $NOSEED"
# a seed whose name does not resolve is reported as such (it was "the
# connection was refused ... (is the seed running?)")
# (the resolver asked is 127.0.0.1, in a mount namespace of its own: no
# query leaves the machine)
expect_status "a seed that does not resolve" 0 "$AEMP" profile aemp setseeds nosuchhost.invalid:4040
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$T_DIR/resolv.conf"
if unshare -m true 2>/dev/null; then
    timed expect_status "cal through a seed that does not resolve" 1 timeout 20 unshare -m sh -c \
        'mount --bind "$1" /etc/resolv.conf && exec "$0" cal --timeout 4 n1 info' "$AEMP" "$T_DIR/resolv.conf"
    took_at_most "cal through a seed that does not resolve: bounded" 6
    grep -q "^aemp: cal: cannot reach n1 within 4 s: no seed answered (\[\"nosuchhost.invalid:4040\"\]): the host name of nosuchhost.invalid:4040 does not resolve" "$T_DIR/last.err" \
        && pass "unresolved seed: message" || fail "unresolved seed: message" "$(cat "$T_DIR/last.err")"
    [ "$(wc -l <"$T_DIR/last.err")" = 1 ] && pass "unresolved seed: one line (no libevent lines)" \
        || fail "unresolved seed: one line (no libevent lines)" "$(cat "$T_DIR/last.err")"
else
    echo "# skipped the unresolved seed: no mount namespace here (unshare -m)"
fi
expect_status "seeds nobody listens on, again" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$DEAD"
expect_status "check NOSUCHPROFILE" 1 "$AEMP" check NOSUCHPROFILE
err_has "check NOSUCHPROFILE: message" "aemp: check: no profile named 'NOSUCHPROFILE' in $RC or among the shipped profiles (a node of it would run on the global part alone)"
grep -qx ok "$T_DIR/last.out" && fail "check NOSUCHPROFILE: no ok" "$(cat "$T_DIR/last.out")" || pass "check NOSUCHPROFILE: no ok"
expect_status "check of a shipped profile" 0 "$AEMP" check seed

# --- no HOME and no AEMP_RC/PERL_ANYEVENT_MP_RC: the tool refuses to guess
# (it used ./.perl-anyevent-mp of whatever the current directory was)
mkdir -p "$T_DIR/cwd"
NOFILE="no configuration file: HOME is not set, nor AEMP_RC (or PERL_ANYEVENT_MP_RC); set AEMP_RC to the file's path (under systemd: Environment=AEMP_RC=FILE)"
for args in "gensecret" "showconfig" "check" "run nodeid x binds 127.0.0.1:0" "cal --timeout 1 x info"; do
    # shellcheck disable=SC2086
    expect_status "no HOME: $args refuses" 1 sh -c 'cd "$1" && shift && exec env -u HOME -u AEMP_RC -u PERL_ANYEVENT_MP_RC "$@"' \
        sh "$T_DIR/cwd" "$AEMP" $args
    grep -qF "$NOFILE" "$T_DIR/last.err" && pass "no HOME: $args: message" || fail "no HOME: $args: message" "$(cat "$T_DIR/last.err")"
done
[ -z "$(ls -A "$T_DIR/cwd")" ] && pass "no HOME: no file in the current directory" \
    || fail "no HOME: no file in the current directory" "$(ls -A "$T_DIR/cwd")"

# --- the systemd unit names its file: run the tool with the environment
# systemd gives a system service (no HOME, USER or LOGNAME without User=,
# PATH, and the unit's Environment= lines), read back from the built unit
UNIT="$AEMP_BUILD_DIR/systemd/aemp@.service"
if [ -f "$UNIT" ]; then
    envs=$(sed -n 's/^Environment=//p' "$UNIT")
    unitrc=$(printf '%s\n' "$envs" | sed -n 's/^AEMP_RC=//p')
    [ "$unitrc" = /root/.perl-anyevent-mp ] && pass "unit: Environment=AEMP_RC=/root/.perl-anyevent-mp" \
        || fail "unit: Environment=AEMP_RC=/root/.perl-anyevent-mp" "$envs"
    grep -qF "Environment=AEMP_RC=$unitrc" "$(dirname "$0")/../../README.md" && pass "README names the unit's file" \
        || fail "README names the unit's file" "$unitrc"
    if command -v systemd-analyze >/dev/null; then
        # systemd's own reading of the unit file (its syntax), when it can
        systemd-analyze verify --man=no "$UNIT" >"$T_DIR/verify.txt" 2>&1 || true
        grep -i "environment" "$T_DIR/verify.txt" && fail "systemd-analyze: Environment= reads" "$(cat "$T_DIR/verify.txt")" \
            || pass "systemd-analyze: no complaint about Environment="
    fi
    # shellcheck disable=SC2086
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin $envs \
        "$AEMP" check --json >"$T_DIR/unit.json" 2>"$T_DIR/unit.err"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$T_DIR/unit.json" >"$T_DIR/unit.file" 2>&1
    [ "$(cat "$T_DIR/unit.file")" = "$unitrc" ] && pass "unit's environment: the tool reads $unitrc" \
        || fail "unit's environment: the tool reads $unitrc" "$(cat "$T_DIR/unit.file" "$T_DIR/unit.err")"
    # the same environment without the unit's Environment=: refused
    expect_status "systemd's environment without AEMP_RC: refused" 1 env -i PATH=/usr/bin:/bin "$AEMP" check
    err_has "systemd's environment without AEMP_RC: message" "aemp: $NOFILE"
else
    fail "unit built" "$UNIT missing"
fi

# --- a handshake the other side refuses: the log says the likely cause
# (n2 accepts only cleartext, which the seed never offers: the seed closes
# after the greetings, before its auth line)
PS=$(free_port)
start_bg "$T_DIR/seed.log" "$AEMP" run nodeid s1 binds "127.0.0.1:$PS"
SEEDPID=$BG_PID
start_bg "$T_DIR/n2.log" "$AEMP" run nodeid n2 binds "127.0.0.1:$(free_port)" \
    seeds "127.0.0.1:$PS" auth_accept cleartext connect_interval 0.5
N2PID=$BG_PID
refusal() { grep -q "closed: connection closed by the peer before its auth line: it refused our greeting, most likely because it offers no auth method our auth_accept lists" "$T_DIR/n2.log"; }
if wait_for 20 refusal; then pass "refused handshake: the cause is logged"; else
    fail "refused handshake: the cause is logged" "$(tail -3 "$T_DIR/n2.log")"; fi
stop_pid "$N2PID"
# a wrong secret: cal prints exactly one line (more with --verbose)
cp "$RC" "$T_DIR/rc.good"
expect_status "a wrong secret" 0 "$AEMP" profile aemp setsecret wrong-secret setseeds "127.0.0.1:$PS"
expect_status "cal with a wrong secret" 1 "$AEMP" cal --timeout 2 s1 info
[ "$(wc -l <"$T_DIR/last.err")" = 1 ] && pass "cal with a wrong secret: one line" \
    || fail "cal with a wrong secret: one line" "$(cat "$T_DIR/last.err")"
err_has "cal with a wrong secret: the line" "aemp: cal: cannot reach s1 within 2 s: no seed answered ([\"127.0.0.1:$PS\"]): authentication failed: the seed and this node have different secrets"
expect_status "cal --verbose with a wrong secret" 1 "$AEMP" cal --verbose --timeout 2 s1 info
grep -q "<4> connection to 127.0.0.1:$PS (s1) closed: authentication failed" "$T_DIR/last.err" \
    && pass "cal --verbose: the log lines too" || fail "cal --verbose: the log lines too" "$(cat "$T_DIR/last.err")"
cp "$T_DIR/rc.good" "$RC"

# protocol subcommands whose output cannot be written fail too
expect_status "seeds: s1" 0 "$AEMP" profile aemp setseeds "127.0.0.1:$PS"
for args in "cal s1 info" "snd s1 devnull x" "trace s1" "stats s1" "top --count 1 s1"; do
    # shellcheck disable=SC2086
    expect_status "aemp $args >/dev/full: exit 1" 1 sh -c '"$0" "$@" >/dev/full </dev/null' "$AEMP" $args
    grep -q "cannot write the output: No space left on device" "$T_DIR/last.err" \
        && pass "aemp $args >/dev/full: message" || fail "aemp $args >/dev/full: message" "$(cat "$T_DIR/last.err")"
done
# a node that is there: logs goes on following it past the timeout
timed expect_status "logs --timeout 1 s1 follows it" 124 timeout 4 "$AEMP" logs --timeout 1 s1
[ ! -s "$T_DIR/last.err" ] && pass "logs of a node that is up: no error" || fail "logs of a node that is up: no error" "$(cat "$T_DIR/last.err")"
stop_pid "$SEEDPID"

finish
