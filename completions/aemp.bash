# bash completion for aemp: subcommands (chains of them), profile names from
# the configuration file, configuration keys of `aemp run`, options of the
# protocol subcommands. The tool itself says what exists (`aemp --complete`),
# so the completion follows the installed version. Installed as
# share/bash-completion/completions/aemp; zsh can use it through bashcompinit.

_aemp() {
    local aemp=${COMP_WORDS[0]} words=() cword=0 j w glue=0
    # Words as the user typed them: bash splits "host:4040" at ':' (and '='),
    # glue those pieces back together.
    for ((j = 0; j < ${#COMP_WORDS[@]}; j++)); do
        w=${COMP_WORDS[j]}
        if ((j > 0)) && { [ "$w" = : ] || [ "$w" = = ] || ((glue)); }; then
            words[${#words[@]} - 1]+=$w
            glue=0
            { [ "$w" = : ] || [ "$w" = = ]; } && glue=1
        else
            words+=("$w")
        fi
        ((j == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    local cur=${words[cword]:-}
    # COMPREPLY replaces only the piece after the last ':' or '='.
    local keep=""
    [[ $cur == *[:=]* ]] && keep=${cur%"${cur##*[:=]}"}

    # Walk the finished words: the current subcommand and how many of its
    # arguments are still due (-1: it takes all the rest).
    local -A nargs=()
    local name n
    while read -r name n; do nargs[$name]=$n; done < <("$aemp" --complete subcommands 2>/dev/null)
    local sub="" left=0 pos=0 i
    for ((i = 1; i < cword; i++)); do
        if ((left != 0)); then
            ((left > 0)) && left=$((left - 1))
            pos=$((pos + 1))
        else
            sub=${words[i]} pos=0 left=${nargs[${words[i]}]:-0}
            [ "$sub" = seeds ] && ((i == cword - 1)) && left=1
        fi
    done

    local cands="" subs
    subs=$(printf '%s\n' "${!nargs[@]}")
    if [ -z "$sub" ] || ((left == 0)); then
        cands=$subs
    else
        case $sub in
        profile | delprofile | showprofile | setparent | parent)
            cands=$("$aemp" --complete profiles 2>/dev/null) ;;
        showconfig)
            ((pos == 0)) && cands=$("$aemp" --complete profiles 2>/dev/null) ;;
        help)
            ((pos == 0)) && cands=$subs ;;
        setcert)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        run)
            if ((pos % 2 == 0)); then
                cands="profile"$'\n'"$("$aemp" --complete keys 2>/dev/null)"
                # an odd count starts with the profile (1.30): `aemp run seed2`
                ((pos == 0)) && cands+=$'\n'"$("$aemp" --complete profiles 2>/dev/null)"
            elif [ "${words[cword - 1]}" = profile ]; then
                cands=$("$aemp" --complete profiles 2>/dev/null)
            fi ;;
        *)
            [[ $cur == -* ]] && cands=$("$aemp" --complete options "$sub" 2>/dev/null) ;;
        esac
    fi
    local IFS=$'\n'
    mapfile -t COMPREPLY < <(compgen -W "$(sort -u <<<"$cands")" -- "$cur")
    if [ -n "$keep" ]; then
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$keep"}; done
    fi
}
complete -F _aemp aemp
