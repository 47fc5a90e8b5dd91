/* aemp.c - the aemp command: one table of subcommands and a dispatcher that
 * runs a chain of them (PROTOCOL.md section 9). Configuration subcommands
 * consume their arguments and the next word is the next subcommand; the
 * configuration file is saved once, at the end, and only when every part
 * of the chain succeeded. */
#include "cmds.h"

#include "aemp.h"
#include "config_check.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_CONFIG, K_PROTO, K_REFUSED, K_HELP };

typedef int proto_fn(struct cmd_ctx *ctx, int argc, char **argv);

struct subcmd {
    const char *name;
    enum kind kind;
    cmd_cfg_fn *cfg;   /* K_CONFIG */
    proto_fn *proto;   /* K_PROTO */
    const char *key;   /* configuration key the row edits, or NULL */
    int nargs;         /* arguments consumed; -1: all that follow */
    const char *usage; /* arguments, after the name */
    const char *help;  /* one line; for K_REFUSED the reason */
    int opts_anywhere; /* K_PROTO: options may follow positional arguments */
};

/* clang-format off */
#define SET(name, key, arg, help) {"set" name, K_CONFIG, cmd_cfg_set, NULL, key, 1, arg, help}
#define DEL(name, key, help) {"del" name, K_CONFIG, cmd_cfg_del, NULL, key, 0, "", help}
#define CFG(name, fn, key, n, arg, help) {name, K_CONFIG, fn, NULL, key, n, arg, help}
#define PROTO(name, fn, arg, help) {name, K_PROTO, NULL, fn, NULL, -1, arg, help}
#define PROTO_ANY(name, fn, arg, help) {name, K_PROTO, NULL, fn, NULL, -1, arg, help, 1}
#define REFUSED(name, arg, why) {name, K_REFUSED, NULL, NULL, NULL, -1, arg, why}
/* clang-format on */

static const struct subcmd subcmds[] = {
    CFG("profile", cmd_cfg_profile, NULL, 1, "NAME",
        "following configuration subcommands act on profile NAME"),
    SET("nodeid", "nodeid", "NODEID", "set the node ID (\"anon/\" for a random one)"),
    DEL("nodeid", "nodeid", "remove the node ID (the profile name is used)"),
    CFG("gensecret", cmd_cfg_gensecret, NULL, 0, "", "generate a random shared secret"),
    SET("secret", "secret", "SECRET", "set the shared secret"),
    DEL("secret", "secret", "remove the shared secret"),
    CFG("gencert", cmd_cfg_gencert, NULL, 0, "", "generate a self-signed key and certificate"),
    CFG("setcert", cmd_cfg_setcert, NULL, 1, "FILE", "use the key and certificate PEM in FILE"),
    DEL("cert", "cert", "remove the certificate"),
    SET("seeds", "seeds", "HOST:PORT,...", "set the seed nodes (`aemp seeds [--json]` alone shows them)"),
    DEL("seeds", "seeds", "remove the seed nodes"),
    CFG("addseed", cmd_cfg_add, "seeds", 1, "HOST:PORT", "add a seed node"),
    CFG("delseed", cmd_cfg_remove, "seeds", 1, "HOST:PORT", "remove a seed node"),
    SET("binds", "binds", "HOST:PORT,...", "set the listen addresses"),
    DEL("binds", "binds", "remove the listen addresses (default [\"*\"])"),
    CFG("addbind", cmd_cfg_add, "binds", 1, "HOST:PORT", "add a listen address"),
    CFG("delbind", cmd_cfg_remove, "binds", 1, "HOST:PORT", "remove a listen address"),
    SET("http", "http", "HOST:PORT,...",
        "serve read-only HTTP there: /metrics (Prometheus), /healthz, /readyz, /, ..."),
    DEL("http", "http", "serve no HTTP (the default)"),
    SET("services", "services", "SERVICE,...", "set the services to start"),
    DEL("services", "services", "remove all services"),
    CFG("addservice", cmd_cfg_add, "services", 1, "SERVICE", "add one instance of a service"),
    CFG("delservice", cmd_cfg_remove, "services", 1, "SERVICE", "remove one instance of a service"),
    SET("parent", "parent", "PROFILE", "inherit values from PROFILE"),
    DEL("parent", "parent", "inherit from the global part again"),
    SET("monitor_timeout", "monitor_timeout", "SECONDS",
        "seconds without traffic before a node is lost"),
    DEL("monitor_timeout", "monitor_timeout", "back to the default (30)"),
    SET("connect_interval", "connect_interval", "SECONDS", "seconds between connect attempts"),
    DEL("connect_interval", "connect_interval", "back to the default (2)"),
    SET("framing_format", "framing_format", "FORMAT,...", "framings offered (json)"),
    DEL("framing_format", "framing_format", "back to the default"),
    SET("auth_offer", "auth_offer", "METHOD,...", "authentication methods we send"),
    DEL("auth_offer", "auth_offer", "back to the default"),
    SET("auth_accept", "auth_accept", "METHOD,...", "authentication methods we accept"),
    DEL("auth_accept", "auth_accept", "back to the default"),
    SET("autocork", "autocork", "BOOL", "batch writes until the end of a loop turn"),
    DEL("autocork", "autocork", "back to the default (false)"),
    SET("nodelay", "nodelay", "BOOL", "disable Nagle's algorithm"),
    DEL("nodelay", "nodelay", "back to the default (true)"),
    SET("autorestart", "autorestart", "BOOL",
        "aemp run restarts its node when it crashes or hangs (watchdog)"),
    DEL("autorestart", "autorestart", "back to the default (false)"),
    SET("allow_restart", "allow_restart", "BOOL",
        "take restart requests from other nodes (aemp restart; at most one per 10 s)"),
    DEL("allow_restart", "allow_restart", "back to the default (true)"),
    SET("heartbeat", "heartbeat", "SECONDS", "a node silent that long is hung (watchdog)"),
    DEL("heartbeat", "heartbeat", "back to the default (300)"),
    SET("loglevel", "loglevel", "0..9",
        "log level of `aemp run` (5 warnings, 7 info; AEMP_WARNLEVEL wins; reloads on SIGHUP)"),
    DEL("loglevel", "loglevel", "back to the default (5)"),
    CFG("delprofile", cmd_cfg_delprofile, NULL, 1, "NAME", "remove profile NAME"),
    CFG("showprofile", cmd_cfg_showprofile, NULL, 1, "NAME", "print profile NAME's own values"),
    CFG("showconfig", cmd_cfg_showconfig, NULL, -1, "[NAME [KEY VALUE...]]",
        "print the effective configuration of a profile"),
    CFG("check", cmd_cfg_check, NULL, -1, "[--json] [PROFILE]",
        "validate the configuration file; show what a node of PROFILE would do"),
    PROTO("run", cmd_run, "[PROFILE] [profile NAME] [KEY VALUE...]",
          "run a node configured with KEY VALUE... until SIGINT/SIGTERM"),
    PROTO("snd", cmd_snd, "[--timeout S] [--quiet|--json] PORT ARG...",
          "send a message and prove it was delivered (timeout 5 s)"),
    PROTO("cal", cmd_cal, "[--timeout S] [--json] PORT ARG...",
          "send a message with a reply port, print the reply"),
    PROTO_ANY("mon", cmd_mon, "[--timeout S] [--json] PORT",
          "wait until PORT dies, print the reason (no timeout by default)"),
    PROTO_ANY("trace", cmd_trace, "[--timeout S] [--dot|--json] NODE",
          "print each node reachable from NODE and its neighbours (--dot: as Graphviz)"),
    PROTO("logs", cmd_logs, "[--level N] [--timeout S] [NODE...]",
          "follow the log lines of every node (or of NODE...) until interrupted"),
    PROTO("put", cmd_put, "[--timeout S] [--replace] NODE FUNC FILE",
          "stream FILE over a data connection to FUNC on NODE (e.g. aemp::put)"),
    PROTO_ANY("stats", cmd_stats,
          "[--timeout S] [--json] NODE... | --watch [--count N] [--interval S] [NODE...]",
          "print each node's counters (messages, bytes, connections, failures)"),
    PROTO_ANY("top", cmd_stats, "[--timeout S] [--count N] [--interval S] [NODE...]",
          "the counters of the whole network with rates, refreshed (q quits)"),
    REFUSED("eval", "NODE EXPR", "evaluates Perl code on a Perl node; use the Perl aemp"),
    REFUSED("shell", "", "opens a Perl shell on a node; use the Perl aemp"),
    PROTO("restart", cmd_restart, "[--timeout S] NODE",
          "make a node of aemp run start again (same node ID, configuration read again)"),
    {"help", K_HELP, NULL, NULL, NULL, -1, "[SUBCOMMAND]", "list subcommands or explain one"},
};

#define N_SUBCMDS (sizeof subcmds / sizeof subcmds[0])

static const struct subcmd *find_exact(const char *name)
{
    for (size_t i = 0; i < N_SUBCMDS; i++)
        if (!strcmp(subcmds[i].name, name)) return &subcmds[i];
    return NULL;
}

/* NAME, else the alias: X for setX, and 1.x's clrX for delX. */
static const struct subcmd *find_subcmd(const char *name)
{
    if (!name) return NULL;
    const struct subcmd *s = find_exact(name);
    char alt[128];
    if (s) return s;
    if (strlen(name) > 100) return NULL;
    snprintf(alt, sizeof alt, "set%s", name);
    if ((s = find_exact(alt))) return s;
    if (!strncmp(name, "clr", 3)) {
        snprintf(alt, sizeof alt, "del%s", name + 3);
        return find_exact(alt);
    }
    return NULL;
}

static void print_group(FILE *out, const char *title, enum kind kind)
{
    fprintf(out, "\n%s\n", title);
    for (size_t i = 0; i < N_SUBCMDS; i++) {
        const struct subcmd *s = &subcmds[i];
        if (s->kind != kind) continue;
        char line[128];
        snprintf(line, sizeof line, "%s %s", s->name, s->usage);
        fprintf(out, "  %-34s %s\n", line, s->help);
    }
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: aemp SUBCOMMAND [ARGS...] [SUBCOMMAND [ARGS...]]...\n"
                 "       aemp '[\"SUBCOMMAND\", ARGS...]'   (one JSON array of all arguments)\n"
                 "       aemp --help | --version | help SUBCOMMAND\n");
    print_group(out,
                "configuration subcommands (chainable; they edit the global part, or the "
                "profile\nchosen by a preceding `profile NAME`; every setX is also called X):",
                K_CONFIG);
    print_group(out, "protocol subcommands (take every remaining argument):", K_PROTO);
    print_group(out, "not supported by this C tool:", K_REFUSED);
    print_group(out, "other:", K_HELP);
    fprintf(out, "\nArguments starting with [, { or \" are JSON. See aemp(1).\n");
}

static int help_one(const char *name)
{
    const struct subcmd *s = find_subcmd(name);
    if (!s) {
        fprintf(stderr, "aemp: unknown subcommand '%s' (see aemp --help)\n", name);
        return EXIT_USAGE;
    }
    printf("usage: aemp %s%s%s\n  %s\n", s->name, *s->usage ? " " : "", s->usage, s->help);
    if (s->kind == K_CONFIG && !strncmp(s->name, "set", 3) && s->cfg == cmd_cfg_set)
        printf("  alias: %s\n", s->name + 3);
    return EXIT_OK;
}

static int is_help(const char *a)
{
    return a && (!strcmp(a, "--help") || !strcmp(a, "-h"));
}

/* A protocol subcommand's arguments ask for its usage: --help or -h where
 * an option may stand (before `--`, and for those whose positional
 * arguments are a message, KEY VALUE pairs or a file, before the first). */
static int proto_wants_help(const struct subcmd *s, int argc, char **argv)
{
    static const char *const with_value[] = {"--timeout", "--count", "--interval", "--level"};
    for (int i = 0; i < argc && argv[i] && strcmp(argv[i], "--"); i++) {
        if (is_help(argv[i])) return 1;
        if (argv[i][0] != '-') {
            if (!s->opts_anywhere) return 0;
            continue;
        }
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (!strcmp(argv[i], with_value[k])) {
                i++; /* its value is no option */
                break;
            }
    }
    return 0;
}

/* The argument list: a first argument starting with `[` is a JSON array that
 * replaces all arguments (non-string elements become their JSON text). New
 * array of new strings in *out (free with free_args), NULL-terminated. */
static int build_args(int argc, char **argv, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (argc < 2 || argv[1][0] != '[') {
        char **a = calloc((size_t)argc + 1, sizeof *a);
        if (!a) return -1;
        for (int i = 1; i < argc; i++)
            a[i - 1] = strdup(argv[i]);
        *out = a;
        *n = argc - 1;
        return 0;
    }
    cJSON *arr = aemp_json_parse(argv[1]); /* \u0000 kept as C0 80 (aemp.h) */
    if (!cJSON_IsArray(arr) || argc > 2) {
        cJSON_Delete(arr);
        fprintf(stderr, "aemp: the first argument starts with '[' but is not a JSON array "
                        "of all arguments\n");
        return -2;
    }
    int len = cJSON_GetArraySize(arr);
    char **a = calloc((size_t)len + 1, sizeof *a);
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (!a) break;
        if (cJSON_IsString(it)) {
            a[i++] = strdup(it->valuestring);
        } else {
            /* Non-strings keep their JSON type: marked, so that
             * cmd_arg_json() decodes them (a number stays a number). */
            char *j = aemp_json_print(it);
            size_t jl = j ? strlen(j) : 0;
            a[i] = j ? malloc(jl + 2) : NULL;
            if (a[i]) {
                a[i][0] = CMD_JSON_MARK;
                memcpy(a[i] + 1, j, jl + 1);
            }
            free(j);
            i++;
        }
    }
    cJSON_Delete(arr);
    if (!a) return -1;
    *out = a;
    *n = len;
    return 0;
}

static void free_args(char **a, int n)
{
    for (int i = 0; a && i < n; i++)
        free(a[i]);
    free(a);
}

/* run_config() asked for a subcommand's usage: it was printed, the chain
 * ends with exit status 0 and nothing saved. */
#define HELP_SHOWN (-1)

/* Run one configuration row with the arguments that follow; *used gets how
 * many it consumed. Its values: `--help`/`-h` print its usage; a word
 * beginning with '-' (not a number) is refused as a misplaced option
 * unless `--` comes before it (`setsecret -- -x`; for rows taking all the
 * rest, `--` makes every later word a value). Returns an exit status or
 * HELP_SHOWN. */
static int run_config(struct cmd_ctx *ctx, const struct subcmd *s, int left, char **args, int *used)
{
    char **vals = calloc((size_t)left + 1, sizeof *vals);
    int nvals = 0, k = 0, literal = 0, rc;
    if (!vals) return cmd_error("aemp", EXIT_FAIL, "out of memory");
    while (s->nargs < 0 ? k < left : nvals < s->nargs) {
        if (k >= left) {
            free(vals);
            return cmd_error(s->name, EXIT_USAGE, "missing argument (usage: aemp %s %s)",
                             s->name, s->usage);
        }
        char *a = args[k++];
        if (!a) {
            free(vals);
            return cmd_error("aemp", EXIT_FAIL, "out of memory");
        }
        if (!literal && !strcmp(a, "--")) {
            literal = 1;
            continue;
        }
        if (!literal && is_help(a)) {
            free(vals);
            help_one(s->name);
            return HELP_SHOWN;
        }
        if (!literal && cmd_looks_like_option(a) &&
            !(s->cfg == cmd_cfg_check && a[1] == '-')) { /* check's own options */
            free(vals);
            return cmd_error(s->name, EXIT_USAGE,
                             "'%s' is not an option of %s; a value beginning with '-' goes "
                             "after `--` (aemp %s -- %s)",
                             a, s->name, s->name, a);
        }
        vals[nvals++] = a;
        if (s->nargs >= 0) literal = 0;
    }
    *used = k;
    rc = cmd_load_rc(ctx);
    ctx->cmd = s->name;
    if (!rc) rc = s->cfg(ctx, s->key, nvals, vals);
    free(vals);
    return rc;
}

/* Execute the chain args[0..n-1]; returns the exit status. */
static int run_chain(struct cmd_ctx *ctx, int n, char **args)
{
    for (int i = 0; i < n;) {
        const char *word = args[i];
        if (!word) return EXIT_FAIL;
        /* `seeds` as the last word shows them (`seeds --json` as one JSON
         * array); with another argument it sets them. */
        int json = i == n - 2 && args[i + 1] && !strcmp(args[i + 1], "--json");
        if (!strcmp(word, "seeds") && (i == n - 1 || json)) {
            int rc = cmd_load_rc(ctx);
            ctx->cmd = "seeds";
            return rc ? rc : cmd_cfg_showseeds(ctx, "seeds", json, NULL);
        }
        const struct subcmd *s = find_subcmd(word);
        if (!s) {
            fprintf(stderr, "aemp: unknown subcommand '%s' (see aemp --help)\n", word);
            return EXIT_USAGE;
        }
        /* `SUB --help` for every kind (rows without arguments too), and
         * where a protocol subcommand takes options */
        if ((s->kind != K_HELP && i + 1 < n && args[i + 1] && is_help(args[i + 1])) ||
            (s->kind == K_PROTO && proto_wants_help(s, n - i - 1, args + i + 1))) {
            ctx->rc_dirty = 0; /* asking for help changes nothing */
            return help_one(s->name);
        }
        switch (s->kind) {
        case K_HELP:
            if (i + 1 < n) return help_one(is_help(args[i + 1]) ? "help" : args[i + 1]);
            print_help(stdout);
            return EXIT_OK;
        case K_REFUSED:
            fprintf(stderr, "aemp: %s: not supported by the C aemp: it %s\n", s->name, s->help);
            return EXIT_FAIL;
        case K_PROTO: {
            /* Save first: the node reads the file the chain just edited. */
            int rc = cmd_save_rc(ctx);
            if (rc) return rc;
            ctx->cmd = s->name;
            return s->proto(ctx, n - i, args + i);
        }
        case K_CONFIG: {
            int used = 0;
            int rc = run_config(ctx, s, n - i - 1, args + i + 1, &used);
            if (rc == HELP_SHOWN) {
                ctx->rc_dirty = 0; /* asking for help changes nothing */
                return EXIT_OK;
            }
            if (rc) return rc;
            i += 1 + used;
            break;
        }
        }
    }
    return EXIT_OK;
}

/* `aemp --complete WHAT`, for shell completion (completions/aemp.bash):
 * subcommands "NAME NARGS" (NARGS -1: takes all the rest), aliases included;
 * keys (configuration keys, for `run KEY VALUE`); options SUB (the --options
 * in SUB's usage); profiles. One item per line. */
static int complete(int argc, char **argv)
{
    const char *what = argc > 2 ? argv[2] : "";
    if (!strcmp(what, "profiles")) return cmd_complete_profiles();
    for (size_t i = 0; i < N_SUBCMDS; i++) {
        const struct subcmd *s = &subcmds[i];
        if (!strcmp(what, "subcommands")) {
            printf("%s %d\n", s->name, s->nargs);
            if (s->kind == K_CONFIG && s->cfg == cmd_cfg_set) printf("%s %d\n", s->name + 3, s->nargs);
        } else if (!strcmp(what, "options") && argc > 3 && !strcmp(s->name, argv[3])) {
            printf("--help\n"); /* every subcommand's */
            for (const char *u = strstr(s->usage, "--"); u; u = strstr(u + 2, "--"))
                printf("%.*s\n", (int)strspn(u, "-abcdefghijklmnopqrstuvwxyz_"), u);
        }
    }
    /* the table of key types, lib/config/config_check.c */
    for (size_t k = 0; !strcmp(what, "keys") && config_key_at(k); k++)
        printf("%s\n", config_key_at(k));
    return EXIT_OK;
}

/* The end of every run: what stdout still buffers is written, and output
 * that could not be written (a full disk, /dev/full, a closed pipe) fails
 * the command even when the subcommand itself succeeded. */
static int finish_output(const char *sub, int rc)
{
    int e = cmd_flush_stdout() ? errno : cmd_stdout_errno();
    if (!e && !ferror(stdout)) return rc;
    fprintf(stderr, "aemp: %s%scannot write the output: %s\n", sub ? sub : "", sub ? ": " : "",
            e ? strerror(e) : "write error");
    return rc == EXIT_USAGE ? rc : EXIT_FAIL;
}

/* libevent's own messages (its DNS resolver's "[msg] Nameserver ... has
 * failed") go through our log, at its levels, instead of bare lines on
 * stderr. */
static void libevent_log(int severity, const char *text)
{
    aemp_log(severity >= EVENT_LOG_ERR ? 4 : severity >= EVENT_LOG_WARN ? 5
             : severity >= EVENT_LOG_MSG ? 7 : 9, "libevent: %s", text);
}

int main(int argc, char **argv)
{
    event_set_log_callback(libevent_log);
    if (argc < 2) {
        fprintf(stderr, "usage: aemp SUBCOMMAND [ARGS...] (see aemp --help)\n");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help(stdout);
        return finish_output(NULL, EXIT_OK);
    }
    if (!strcmp(argv[1], "--complete")) return finish_output(NULL, complete(argc, argv));
    if (!strcmp(argv[1], "--version")) {
        printf("aemp %s (C implementation of AnyEvent::MP 1.30)\n", AEMP_VERSION);
        return finish_output(NULL, EXIT_OK);
    }
    char **args = NULL;
    int n = 0;
    int brc = build_args(argc, argv, &args, &n);
    if (brc) {
        if (brc == -1) fprintf(stderr, "aemp: out of memory\n");
        return brc == -1 ? EXIT_FAIL : EXIT_USAGE;
    }
    if (n == 0) {
        fprintf(stderr, "aemp: the JSON array of arguments is empty (see aemp --help)\n");
        free_args(args, n);
        return EXIT_USAGE;
    }
    struct cmd_ctx ctx = {0};
    int rc = run_chain(&ctx, n, args);
    if (!rc) rc = cmd_save_rc(&ctx);
    rc = finish_output(ctx.cmd, rc);
    free_args(args, n);
    cJSON_Delete(ctx.rc);
    free(ctx.rc_path);
    free(ctx.profile);
    return rc;
}
