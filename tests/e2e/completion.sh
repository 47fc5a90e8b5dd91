#!/bin/bash
# completion.sh - the bash completion (completions/aemp.bash) sourced in bash:
# COMP_WORDS split as bash splits them (':' and '=' are word breaks), the
# completion function called, COMPREPLY compared. Profiles come from a real
# configuration file, subcommands, keys and options from the binary.
T_LIMIT=60
. "$(dirname "$0")/lib.sh"
script=$(cd "$(dirname "$0")/../../completions" && pwd)/aemp.bash

"$AEMP" profile web binds 127.0.0.1:4040 profile db parent web >/dev/null ||
    fail "configure" "aemp failed"

# comp LINE: what completing at the end of LINE offers, sorted, one line
comp() {
    bash -c '
        . "$1" || exit 1
        line=$2 words=() w="" i=0 c=""
        for ((i = 0; i < ${#line}; i++)); do
            c=${line:i:1}
            case $c in
            " ") [ -n "$w" ] && words+=("$w"); w="" ;;
            ":" | "=") [ -n "$w" ] && words+=("$w"); words+=("$c"); w="" ;;
            *) w+=$c ;;
            esac
        done
        words+=("$w")
        words[0]=$3
        COMP_WORDS=("${words[@]}") COMP_CWORD=$((${#words[@]} - 1))
        COMP_LINE=$line COMP_POINT=${#line}
        _aemp
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ $//"
    ' _ "$script" "$1" "$AEMP" 2>"$T_DIR/comp.err"
}
# is NAME LINE WANT: completing LINE offers exactly WANT
is() {
    local got
    got=$(comp "$2")
    if [ "$got" = "$3" ] && [ ! -s "$T_DIR/comp.err" ]; then pass "$1: '$2' -> $3"; else
        fail "$1" "'$2' offered '$got', wanted '$3'; stderr: $(head -c 200 "$T_DIR/comp.err")"; fi
}
# has NAME LINE WORD...: completing LINE offers at least these words
has() {
    local n=$1 line=$2 got w; shift 2
    got=" $(comp "$line") "
    [ -s "$T_DIR/comp.err" ] && { fail "$n" "stderr: $(head -c 200 "$T_DIR/comp.err")"; return; }
    for w in "$@"; do
        case $got in *" $w "*) ;; *) fail "$n" "'$line' lacks $w: $got"; return ;; esac
    done
    pass "$n: '$line' offers $*"
}

bash -c '. "$1" && complete -p aemp' _ "$script" | grep -q -- '-F _aemp aemp' &&
    pass "sourcing it registers _aemp for aemp" || fail "complete -p aemp" "not registered"
has "subcommands" "aemp " gensecret profile run snd cal mon trace showconfig setseeds seeds help
is "subcommand prefix" "aemp showp" "showprofile"
is "profiles from the file and the shipped ones" "aemp profile " "aemp db seed web"
is "profile prefix" "aemp profile w" "web"
is "chain: after profile NAME comes a subcommand" "aemp profile web sho" "showconfig showprofile"
is "chain: host:port counts as one argument" "aemp profile web binds 127.0.0.1:4040 gen" "gencert gensecret"
is "no completion inside an argument" "aemp addseed 127.0.0.1:" ""
is "setparent takes a profile" "aemp profile db setparent s" "seed"
is "showconfig takes a profile" "aemp showconfig d" "db"
has "run: configuration keys" "aemp run " profile binds seeds secret nodeid loglevel services monitor_timeout
# the keys come from the one table of key types (lib/config/config_check.c)
has "run: every known key" "aemp run " cert heartbeat autorestart max_message_size nodelay
is "run: key prefix" "aemp run binds 127.0.0.1:1 lo" "loglevel"
is "run profile NAME" "aemp run profile " "aemp db seed web"
has "run: a profile first (1.30: an odd count starts with it)" "aemp run " db seed web
is "run: a value is not completed" "aemp run secret " ""
is "options of cal" "aemp cal --" "$("$AEMP" --complete options cal | sort | tr '\n' ' ' | sed 's/ $//')"
has "options of trace" "aemp trace --" --dot --timeout
is "help takes a subcommand" "aemp help gen" "gencert gensecret"

# A broken configuration file: still the shipped profiles, nothing on stderr.
echo '{ broken' >"$PERL_ANYEVENT_MP_RC"
is "broken configuration file: shipped profiles only, quietly" "aemp profile " "aemp seed"
finish
