/* proto_common.c - what the protocol subcommands share (proto.h): options,
 * the anonymous node they talk through, failure messages that say what our
 * node saw, and output helpers. */
#include "proto.h"

#include "cmds.h"

#include <event2/event.h>

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int msg(struct pst *st, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_verror(st->sub, status, fmt, ap);
    va_end(ap);
    return status;
}

void finish(struct pst *st, int status)
{
    if (st->done) return;
    st->done = 1;
    st->status = status;
    cmd_flush_stdout();
    aemp_node_stop(st->node);
}

static int opt_number(struct pst *st, const char *opt, const char *val, double max, double *out)
{
    char *end = NULL;
    double t = strtod(val, &end);
    if (!*val || !end || *end || !(t > 0) || t > max)
        return msg(st, EXIT_USAGE, "%s wants a positive number%s, not '%s'", opt,
                   strcmp(opt, "--count") ? " of seconds" : "", val);
    *out = t;
    return EXIT_OK;
}

/* The options a subcommand takes, for the unknown-option message. */
static void options_text(const struct pst *st, char *buf, size_t len)
{
    snprintf(buf, len, "--timeout SECONDS%s%s%s%s, --verbose",
             st->allowed & OPT_JSON ? ", --json" : "", st->allowed & OPT_DOT ? ", --dot" : "",
             st->allowed & OPT_QUIET ? ", --quiet" : "",
             st->allowed & OPT_WATCH ? ", --watch, --count N, --interval SECONDS" : "");
}

/* The options, and the OPT_* bit a subcommand needs to accept each (0: all). */
static const struct {
    const char *name;
    unsigned need;
    int has_value;
} options[] = {
    {"--timeout", 0, 1},          {"--dot", OPT_DOT, 0},     {"--json", OPT_JSON, 0},
    {"--quiet", OPT_QUIET, 0},    {"--watch", OPT_WATCH, 0}, {"--count", OPT_WATCH, 1},
    {"--interval", OPT_WATCH, 1}, {"--verbose", 0, 0},
};

/* Set the option options[k] with its value (NULL for flags). */
static int set_opt(struct pst *st, size_t k, const char *val)
{
    const char *name = options[k].name;
    double d = 0; /* -O3 cannot see opt_number() sets it on success */
    int rc;
    if (!val) {
        if (!strcmp(name, "--verbose")) st->verbose = 1;
        if (options[k].need == OPT_DOT) st->dot = 1;
        if (options[k].need == OPT_JSON) st->json = 1;
        if (options[k].need == OPT_QUIET) st->quiet = 1;
        if (options[k].need == OPT_WATCH) st->watch = 1;
        return EXIT_OK;
    }
    if (!strcmp(name, "--timeout")) {
        if ((rc = opt_number(st, name, val, 1e6, &st->timeout))) return rc;
        st->timeout_given = 1;
    } else if (!strcmp(name, "--interval")) {
        if ((rc = opt_number(st, name, val, 3600, &st->interval))) return rc;
        st->interval_given = 1;
    } else {
        if ((rc = opt_number(st, name, val, 1e9, &d))) return rc;
        if (d != (int)d) return msg(st, EXIT_USAGE, "--count wants a whole number, not '%s'", val);
        st->count = (int)d;
    }
    return EXIT_OK;
}

int parse_opts(struct pst *st, int argc, char **argv, int anywhere, char **pos, int *npos)
{
    int i = 1, opts_over = 0, literal = 0;
    st->timeout = DEFAULT_TIMEOUT;
    st->interval = 1;
    *npos = 0;
    st->literal_from = argc; /* no `--`: nothing is literal */
    while (i < argc) {
        const char *a = argv[i];
        /* The first `--` ends the options, also after a message started:
         * what follows it is taken as it is (`snd P -- --quiet`). */
        if (!literal && !strcmp(a, "--")) {
            opts_over = literal = 1;
            st->literal_from = *npos;
            i++;
            continue;
        }
        if (opts_over || strncmp(a, "--", 2)) {
            if (!anywhere) opts_over = 1; /* a message starts here */
            pos[(*npos)++] = argv[i++];
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a), k;
        for (k = 0; k < sizeof options / sizeof options[0]; k++)
            if (strlen(options[k].name) == nlen && !strncmp(a, options[k].name, nlen) &&
                (!options[k].need || (options[k].need & st->allowed)))
                break;
        if (k == sizeof options / sizeof options[0]) {
            char opts[128];
            options_text(st, opts, sizeof opts);
            return msg(st, EXIT_USAGE, "unknown option '%s' (%s takes %s)", a, st->sub, opts);
        }
        const char *val = NULL;
        if (!options[k].has_value) {
            if (eq) return msg(st, EXIT_USAGE, "%s takes no value", options[k].name);
            i++;
        } else if (eq) {
            val = eq + 1;
            i++;
        } else {
            if (i + 1 >= argc)
                return msg(st, EXIT_USAGE, "%s needs a value%s", options[k].name,
                           strcmp(options[k].name, "--count") ? " in seconds" : "");
            val = argv[i + 1];
            i += 2;
        }
        int rc = set_opt(st, k, val);
        if (rc) return rc;
    }
    return EXIT_OK;
}

int stop_signals_add(struct event_base *base, event_callback_fn fn, void *arg, struct event *ev[2])
{
    static const int sig[2] = {SIGINT, SIGTERM};
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        ev[i] = evsignal_new(base, sig[i], fn, arg);
        if (!ev[i] || evsignal_add(ev[i], NULL)) rc = -1;
    }
    return rc;
}

void stop_signals_free(struct event *ev[2])
{
    for (int i = 0; i < 2; i++) {
        if (ev[i]) event_free(ev[i]);
        ev[i] = NULL;
    }
}

/* The last name our own node could not resolve, from its log line
 * "connection to HOST:PORT (...) closed: cannot resolve: WHY" (a log
 * handler: the library says it nowhere else), as "HOST:PORT\0WHY". */
static char unresolved[512];

static void note_unresolved(int level, const char *text, void *ud)
{
    static const char head[] = "connection to ", mid[] = " closed: cannot resolve: ";
    const char *why = strstr(text, mid), *sp;
    (void)level;
    (void)ud;
    if (!why || strncmp(text, head, sizeof head - 1)) return;
    const char *addr = text + sizeof head - 1;
    sp = strchr(addr, ' ');
    if (!sp || sp > why) return;
    int n = snprintf(unresolved, sizeof unresolved, "%.*s", (int)(sp - addr), addr);
    if (n > 0 && (size_t)n + 1 < sizeof unresolved)
        snprintf(unresolved + n + 1, sizeof unresolved - (size_t)n - 1, "%s", why + sizeof mid - 1);
}

void cli_log_level(int verbose)
{
    const char *a = getenv("AEMP_WARNLEVEL"), *p = getenv("PERL_ANYEVENT_MP_WARNLEVEL");
    if ((a && *a) || (p && *p)) return;
    aemp_log_set_level(verbose ? 7 : 3);
}

int start_anon(struct pst *st)
{
    char err[512] = "";
    cli_log_level(st->verbose);
    aemp_log_set_handler(note_unresolved, NULL, 9);
    st->node = aemp_node_new(NULL);
    if (!st->node) return msg(st, EXIT_FAIL, "out of memory");
    int rc = aemp_configure(st->node, "aemp", NULL, err, sizeof err);
    if (rc) return msg(st, EXIT_FAIL, "%s", *err ? err : aemp_strerror(rc));
    const cJSON *cfg = aemp_node_config(st->node);
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(cfg, "secret");
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive(cfg, "cert");
    int has_secret = cJSON_IsString(secret) && *secret->valuestring;
    int has_cert = cert && !cJSON_IsNull(cert) && !cJSON_IsFalse(cert) &&
                   !(cJSON_IsString(cert) && !*cert->valuestring);
    if (!has_secret && !has_cert)
        return msg(st, EXIT_FAIL,
                   "no shared secret or certificate configured; run `aemp gensecret` "
                   "(and give the other nodes the same secret)");
    return EXIT_OK;
}

void run_loop(struct pst *st)
{
    int rc = aemp_node_run(st->node);
    if (!st->done) {
        if (rc)
            msg(st, EXIT_FAIL, "the event loop failed");
        else
            msg(st, EXIT_FAIL, "nothing left to wait for and no answer from %s", st->target);
        st->done = 1;
        st->status = EXIT_FAIL;
    }
}

int cleanup(struct pst *st, aemp_guard *timer_guard, int status)
{
    aemp_guard_free(timer_guard);
    aemp_node_free(st->node);
    free(st->target);
    free(st->first);
    cJSON_Delete(st->results);
    return status;
}

/* What our node's own connections ran into (its handshake failure
 * counters), most telling first, as the end of a sentence. */
static const char *handshake_cause(aemp_node *node)
{
    static const struct {
        const char *cause, *text;
    } causes[] = {
        {"auth", "authentication failed: the seed and this node have different secrets"},
        {"tls", "the TLS handshake failed: the certificates do not share a CA"},
        {"refused", "the seed closed the connection before greeting us: it refuses connections "
                    "now (too many from this host in its handshake, strangers holding them?); "
                    "its log says why"},
        {"closed_by_peer", "the seed closed the connection during the handshake: it refused our "
                           "greeting, secret or certificate"},
        {"protocol", "the seed does not speak this protocol"},
        {"timeout", "the handshake made no progress"},
        {"connect", "the connection was refused or the address is unreachable (is the seed "
                    "running?)"},
    };
    static char buf[700];
    cJSON *s = aemp_stats(node);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "total"),
                                                      "handshake_failure_causes");
    const char *text = "unreachable, not running, or refused our secret";
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, causes[i].cause);
        if (cJSON_IsNumber(n) && n->valuedouble > 0) {
            text = causes[i].text;
            /* connecting failed because a name does not resolve: say so */
            if (!strcmp(causes[i].cause, "connect") && unresolved[0]) {
                const char *why = unresolved + strlen(unresolved) + 1;
                snprintf(buf, sizeof buf, "the host name of %s does not resolve%s%s%s",
                         unresolved, *why ? " (" : "", why, *why ? ")" : "");
                text = buf;
            }
            break;
        }
    }
    cJSON_Delete(s);
    return text;
}

/* Why st->target gave no answer, as a sentence without the leading
 * "aemp: SUB: " (new string, caller frees). */
static char *why_no_answer(struct pst *st)
{
    char buf[1024];
    char *nodeid = aemp_node_of(st->target);
    if (!nodeid) return NULL;
    if (aemp_node_is_up(st->node, nodeid)) {
        if (st->request)
            snprintf(buf, sizeof buf,
                     "%s is up but did not answer the request '%s' within %g s: it has no "
                     "node request or registered function of that name (requests every node "
                     "answers: info, time, up_nodes, known_nodes), or the function sent no "
                     "reply",
                     nodeid, st->request, st->timeout);
        else if (strchr(st->target, '#'))
            snprintf(buf, sizeof buf, "%s is up and %s exists, but it sent no reply within %g s",
                     nodeid, st->target, st->timeout);
        else
            snprintf(buf, sizeof buf, "%s is up but sent no reply within %g s", nodeid,
                     st->timeout);
        free(nodeid);
        return strdup(buf);
    }
    cJSON *up = aemp_up_nodes(st->node);
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(aemp_node_config(st->node), "seeds");
    char *seedtext = seeds ? cJSON_PrintUnformatted(seeds) : NULL;
    if (cJSON_GetArraySize(seeds) == 0)
        snprintf(buf, sizeof buf,
                 "cannot reach %s within %g s: no seeds are configured (profile \"aemp\"), so "
                 "this node cannot find it; set them with `aemp seeds HOST:PORT`",
                 nodeid, st->timeout);
    else if (cJSON_GetArraySize(up) == 0)
        snprintf(buf, sizeof buf, "cannot reach %s within %g s: no seed answered (%s): %s", nodeid,
                 st->timeout, seedtext ? seedtext : "?", handshake_cause(st->node));
    else
        snprintf(buf, sizeof buf,
                 "cannot reach %s within %g s: the seeds answered, but %s did not come up: "
                 "not part of this network, not running, or unreachable from here",
                 nodeid, st->timeout, nodeid);
    free(seedtext);
    free(nodeid);
    cJSON_Delete(up);
    return strdup(buf);
}

/* A port ID with an empty port name ("node#"): 1. */
static int empty_port_name(const char *id)
{
    const char *h = strchr(id, '#');
    return h && !h[1];
}

void put_text(FILE *out, const char *s)
{
    for (const char *c; (c = strstr(s, "\xc0\x80")); s = c + 2) {
        fwrite(s, 1, (size_t)(c - s), out);
        fputc('\0', out);
    }
    fputs(s, out);
}

void print_json_line(const cJSON *v)
{
    char *s = aemp_json_print(v); /* U+0000 written as \u0000 again */
    printf("%s\n", s ? s : "null");
    free(s);
}

/* JSON of an array without its outer brackets (new string), "" for []. */
static char *unbracketed(const cJSON *arr)
{
    char *s = aemp_json_print(arr);
    if (!s) return NULL;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    return s;
}

void print_unbracketed(FILE *out, const cJSON *arr)
{
    char *s = unbracketed(arr);
    fprintf(out, "%s\n", s ? s : "");
    free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char **sorted_strings(const cJSON *c, int keys, int *n)
{
    int len = cJSON_GetArraySize(c);
    const char **v = calloc((size_t)len + 1, sizeof *v);
    int i = 0;
    const cJSON *it;
    *n = 0;
    if (!v) return NULL;
    cJSON_ArrayForEach(it, c)
    {
        const char *s = keys ? it->string : it->valuestring;
        if (s) v[i++] = s;
    }
    qsort(v, (size_t)i, sizeof *v, cmp_str);
    *n = i;
    return v;
}

int fail_no_answer(struct pst *st)
{
    char *why = why_no_answer(st);
    msg(st, EXIT_FAIL, "%s", why ? why : "no answer (and out of memory)");
    free(why);
    return EXIT_FAIL;
}

int check_id(struct pst *st, const char *id, const char *what)
{
    if (!*id || *id == '#')
        return msg(st, EXIT_USAGE, "'%s' is not a %s ID (NODE or NODE#PORT)", id, what);
    if (empty_port_name(id))
        return msg(st, EXIT_USAGE,
                   "'%s' has an empty port name: write the node ID alone ('%.*s') for its node "
                   "port, or NODE#PORT",
                   id, (int)(strlen(id) - 1), id);
    return EXIT_OK;
}

int parse_one(struct pst *st, int argc, char **argv, const char *what, const char **arg)
{
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, rc;
    if (!pos) return msg(st, EXIT_FAIL, "out of memory");
    rc = parse_opts(st, argc, argv, 1, pos, &npos);
    *arg = pos[0];
    free(pos);
    if (rc) return rc;
    if (npos < 1) return msg(st, EXIT_USAGE, "missing %s (usage: aemp %s %s)", what, st->sub, what);
    if (npos > 1)
        return msg(st, EXIT_USAGE, "too many arguments (usage: aemp %s %s)", st->sub, what);
    return check_id(st, *arg, strcmp(what, "NODE") ? "port" : "node");
}
