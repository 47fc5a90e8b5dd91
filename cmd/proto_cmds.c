/* proto_cmds.c - the protocol subcommands of the aemp tool (PROTOCOL.md
 * section 9): run, snd, cal, mon, trace.
 *
 * snd, cal, mon and trace start an anonymous node from profile "aemp", do
 * their one job on its event loop and end it; run configures a node from the
 * given key/values and runs it until SIGINT or SIGTERM. Every failure is one
 * line "aemp: SUB: what failed" on stderr; results go to stdout. */
#include "cmds.h"

#include "aemp.h"

#include <event2/event.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT 5.0

/* State of one protocol subcommand run. */
struct pst {
    aemp_node *node;
    const char *sub;     /* subcommand name, for messages */
    double timeout;      /* seconds */
    int timeout_given;   /* --timeout on the command line */
    int done;            /* a result or failure was reported */
    int status;          /* exit status once done */
    char *target;        /* port or node the command talks to (owned) */
    aemp_guard *timer;   /* overall timeout, or NULL */
    /* trace */
    cJSON *results;      /* object NODE -> array of neighbours, or null */
    int pending;
    char *first;         /* first node of trace */
    int dot;             /* trace --dot: print a Graphviz graph */
};

static int msg(struct pst *st, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int msg(struct pst *st, int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "aemp: %s: ", st->sub);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* Report the end of the command and stop the loop. The first call wins. */
static void finish(struct pst *st, int status)
{
    if (st->done) return;
    st->done = 1;
    st->status = status;
    fflush(stdout);
    aemp_node_stop(st->node);
}

/* JSON of an array without its outer brackets (new string), "" for []. */
static char *unbracketed(const cJSON *arr)
{
    char *s = cJSON_PrintUnformatted(arr);
    if (!s) return NULL;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    return s;
}

static void print_unbracketed(FILE *out, const cJSON *arr)
{
    char *s = unbracketed(arr);
    fprintf(out, "%s\n", s ? s : "");
    free(s);
}

/* Parse the options before the positional arguments: `--timeout SECONDS`
 * (also `--timeout=SECONDS`) and `--` ending options. On success *first is
 * the index of the first positional argument. */
static int parse_opts(struct pst *st, int argc, char **argv, int *first)
{
    int i = 1;
    st->timeout = DEFAULT_TIMEOUT;
    while (i < argc && !strncmp(argv[i], "--", 2)) {
        const char *a = argv[i];
        const char *val = NULL;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--timeout")) {
            if (i + 1 >= argc) return msg(st, EXIT_USAGE, "--timeout needs a value in seconds");
            val = argv[i + 1];
            i += 2;
        } else if (!strncmp(a, "--timeout=", 10)) {
            val = a + 10;
            i++;
        } else if (!strcmp(a, "--dot") && !strcmp(st->sub, "trace")) {
            st->dot = 1;
            i++;
            continue;
        } else {
            return msg(st, EXIT_USAGE, "unknown option '%s' (only --timeout SECONDS%s)", a,
                       strcmp(st->sub, "trace") ? "" : " and --dot");
        }
        char *end = NULL;
        double t = strtod(val, &end);
        if (!*val || !end || *end || !(t > 0) || t > 1e6)
            return msg(st, EXIT_USAGE, "--timeout wants a positive number of seconds, not '%s'",
                       val);
        st->timeout = t;
        st->timeout_given = 1;
    }
    *first = i;
    return EXIT_OK;
}

static void trace_env(aemp_node *node)
{
    const char *t = getenv("AEMP_TRACE");
    if (t && *t && strcmp(t, "0")) aemp_trace_set(node, 1);
}

/* Start the anonymous node of snd/cal/mon/trace; print why and return an
 * exit status on failure. */
static int start_anon(struct pst *st)
{
    char err[512] = "";
    st->node = aemp_node_new(NULL);
    if (!st->node) return msg(st, EXIT_FAIL, "out of memory");
    trace_env(st->node);
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

static void on_timeout(aemp_node *node, void *ud)
{
    struct pst *st = ud;
    (void)node;
    st->timer = NULL; /* fired: the guard is inert but still ours to free */
    if (st->done) return;
    char *nid = aemp_node_of(st->target);
    msg(st, EXIT_FAIL, "no reply from %s within %g s: unreachable, not running, or refused our "
                       "secret",
        nid ? nid : st->target, st->timeout);
    free(nid);
    finish(st, EXIT_FAIL);
}

/* Run the loop until done; the loop ending by itself is a failure. */
static void run_loop(struct pst *st)
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

static int cleanup(struct pst *st, aemp_guard *timer_guard, int status)
{
    aemp_guard_free(timer_guard);
    aemp_node_free(st->node);
    free(st->target);
    free(st->first);
    cJSON_Delete(st->results);
    return status;
}

/* The message ARG... of snd/cal, JSON-decoded as 1.30 does. */
static cJSON *build_msg(struct pst *st, int argc, char **argv, int *status)
{
    cJSON *m = cJSON_CreateArray();
    char err[512] = "";
    if (!m) {
        *status = msg(st, EXIT_FAIL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < argc; i++) {
        cJSON *v = cmd_arg_json(argv[i], err, sizeof err);
        if (!v) {
            cJSON_Delete(m);
            *status = msg(st, EXIT_USAGE, "%s", err);
            return NULL;
        }
        cJSON_AddItemToArray(m, v);
    }
    return m;
}

static int valid_port(const char *p)
{
    return *p && *p != '#';
}

/* ------------------------------------------------------------------ snd */

static int snd_reply(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct pst *st = ud;
    const cJSON *it;
    int first = 1;
    aemp_kil(node, self, NULL);
    if (st->done) return 0; /* the monitor reported a failure in this loop turn */
    cJSON_ArrayForEach(it, m)
    {
        if (!first) fputc(' ', stdout);
        first = 0;
        if (cJSON_IsString(it)) {
            fputs(it->valuestring, stdout);
        } else {
            char *s = cJSON_PrintUnformatted(it);
            fputs(s ? s : "", stdout);
            free(s);
        }
    }
    fputc('\n', stdout);
    finish(st, EXIT_OK);
    return 0;
}

static void snd_mon(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    const cJSON *r0 = cJSON_GetArrayItem(reason, 0);
    /* Only a port that never existed means the message was not delivered; a
     * port that died after our message (maybe because of it) got it. */
    if (st->done || !cJSON_IsString(r0) || strcmp(r0->valuestring, "no_such_port")) return;
    char *s = unbracketed(reason);
    msg(st, EXIT_FAIL, "%s was not delivered: %s", port, s ? s : "no_such_port");
    free(s);
    finish(st, EXIT_FAIL);
}

/* The common start of snd and cal: options, PORT, the message from the
 * remaining arguments, the anonymous node. Returns the message (taken by the
 * caller) with *port set, or NULL with *rc the exit status. */
static cJSON *port_cmd_start(struct pst *st, int argc, char **argv, const char **port, int *rc)
{
    int first;
    char usage[96];
    snprintf(usage, sizeof usage, "usage: aemp %s PORT ARG...", st->sub);
    if ((*rc = parse_opts(st, argc, argv, &first))) return NULL;
    if (argc - first < 1) {
        *rc = msg(st, EXIT_USAGE, "missing PORT (%s)", usage);
        return NULL;
    }
    *port = argv[first];
    if (!valid_port(*port)) {
        *rc = msg(st, EXIT_USAGE, "'%s' is not a port ID", *port);
        return NULL;
    }
    cJSON *m = build_msg(st, argc - first - 1, argv + first + 1, rc);
    if (!m) return NULL;
    st->target = strdup(*port);
    if ((*rc = start_anon(st))) {
        cJSON_Delete(m);
        *rc = cleanup(st, NULL, *rc);
        return NULL;
    }
    return m;
}

int cmd_snd(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    const char *port;
    int rc;
    (void)ctx;
    cJSON *m = port_cmd_start(&st, argc, argv, &port, &rc);
    if (!m) return rc;
    aemp_guard *timer = NULL;
    char *nid = aemp_node_of(port);
    char *reply = aemp_port(st.node);
    if (!nid || !reply || !st.target) {
        cJSON_Delete(m);
        free(nid);
        free(reply);
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    }
    if ((rc = aemp_snd(st.node, port, m))) {
        msg(&st, EXIT_FAIL, "cannot send to %s: %s", port, aemp_strerror(rc));
        st.status = EXIT_FAIL;
        goto out;
    }
    if (strchr(port, '#') && strchr(port, '#')[1]) aemp_mon(st.node, port, snd_mon, &st, NULL);
    aemp_rcv(st.node, reply, NULL, snd_reply, &st);
    cJSON *proof = cJSON_CreateArray();
    cJSON_AddItemToArray(proof, cJSON_CreateString("snd"));
    cJSON_AddItemToArray(proof, cJSON_CreateString(reply));
    cJSON_AddItemToArray(proof, cJSON_CreateString("message sent successfully"));
    if ((rc = aemp_snd(st.node, nid, proof))) {
        msg(&st, EXIT_FAIL, "cannot send to node %s: %s", nid, aemp_strerror(rc));
        st.status = EXIT_FAIL;
        goto out;
    }
    aemp_after(st.node, st.timeout, on_timeout, &st, &timer);
    run_loop(&st);
out:
    free(nid);
    free(reply);
    return cleanup(&st, timer, st.status);
}

/* ------------------------------------------------------------------ cal */

static void cal_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct pst *st = ud;
    (void)node;
    if (st->done) return;
    if (reply) {
        print_unbracketed(stdout, reply);
        finish(st, EXIT_OK);
        return;
    }
    const cJSON *e0 = cJSON_GetArrayItem(error, 0);
    if (cJSON_IsString(e0) && !strcmp(e0->valuestring, "timeout") &&
        cJSON_GetArraySize(error) == 1) {
        char *nid = aemp_node_of(st->target);
        msg(st, EXIT_FAIL,
            "no reply from %s within %g s: unreachable, not running, or refused our secret",
            nid ? nid : st->target, st->timeout);
        free(nid);
    } else {
        char *s = unbracketed(error);
        msg(st, EXIT_FAIL, "%s died: %s", st->target, s && *s ? s : "(normal kill)");
        free(s);
    }
    finish(st, EXIT_FAIL);
}

/* An abnormal death of the called port before the reply ends cal (aemp_cal
 * with a timeout does not monitor); after a normal kill a reply may still
 * come from elsewhere, so the timeout decides. */
static void cal_mon(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    if (st->done || cJSON_GetArraySize(reason) == 0) return;
    char *s = unbracketed(reason);
    msg(st, EXIT_FAIL, "%s died: %s", port, s ? s : "?");
    free(s);
    finish(st, EXIT_FAIL);
}

int cmd_cal(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    const char *port;
    int rc;
    (void)ctx;
    cJSON *m = port_cmd_start(&st, argc, argv, &port, &rc);
    if (!m) return rc;
    if ((rc = aemp_cal(st.node, port, m, st.timeout, cal_done, &st)))
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "cannot send to %s: %s", port,
                                      aemp_strerror(rc)));
    if (strchr(port, '#') && strchr(port, '#')[1]) aemp_mon(st.node, port, cal_mon, &st, NULL);
    run_loop(&st);
    return cleanup(&st, NULL, st.status);
}

/* ------------------------------------------------------------------ mon */

static void mon_done(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    (void)port;
    if (st->done) return;
    print_unbracketed(stdout, reason);
    finish(st, EXIT_OK);
}

static void mon_timeout(aemp_node *node, void *ud)
{
    struct pst *st = ud;
    (void)node;
    if (st->done) return;
    msg(st, EXIT_FAIL, "%s still alive after %g s", st->target, st->timeout);
    finish(st, EXIT_FAIL);
}

/* Options and exactly one argument, a port or node ID (`what` names it in
 * messages): *arg points to it, or the exit status is returned. */
static int one_id_arg(struct pst *st, int argc, char **argv, const char *what,
                      const char **arg)
{
    int first, rc;
    if ((rc = parse_opts(st, argc, argv, &first))) return rc;
    if (argc - first < 1)
        return msg(st, EXIT_USAGE, "missing %s (usage: aemp %s %s)", what, st->sub, what);
    if (argc - first > 1)
        return msg(st, EXIT_USAGE, "too many arguments (usage: aemp %s %s)", st->sub, what);
    *arg = argv[first];
    if (!valid_port(*arg)) return msg(st, EXIT_USAGE, "'%s' is not a %s ID", *arg,
                                      strcmp(what, "NODE") ? "port" : "node");
    return EXIT_OK;
}

int cmd_mon(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    const char *port = NULL;
    int rc;
    (void)ctx;
    if ((rc = one_id_arg(&st, argc, argv, "PORT", &port))) return rc;
    st.target = strdup(port);
    if ((rc = start_anon(&st))) return cleanup(&st, NULL, rc);
    if (!st.target) return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    aemp_guard *timer = NULL;
    if ((rc = aemp_mon(st.node, port, mon_done, &st, NULL)))
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "cannot monitor %s: %s", port,
                                      aemp_strerror(rc)));
    if (st.timeout_given) aemp_after(st.node, st.timeout, mon_timeout, &st, &timer);
    run_loop(&st);
    return cleanup(&st, timer, st.status);
}

/* ---------------------------------------------------------------- trace */

struct trace_req {
    struct pst *st;
    char *nodeid;
};

static void trace_ask(struct pst *st, const char *nodeid);

static void trace_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct trace_req *rq = ud;
    struct pst *st = rq->st;
    (void)error;
    const char *self = aemp_node_id(node);
    if (reply) {
        cJSON *neigh = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, reply)
        {
            if (!cJSON_IsString(it) || !strcmp(it->valuestring, self)) continue;
            cJSON_AddItemToArray(neigh, cJSON_CreateString(it->valuestring));
        }
        cJSON_ReplaceItemInObjectCaseSensitive(st->results, rq->nodeid, neigh);
        cJSON_ArrayForEach(it, neigh) trace_ask(st, it->valuestring);
    }
    free(rq->nodeid);
    free(rq);
    if (--st->pending == 0) finish(st, EXIT_OK);
}

/* Ask `nodeid` for its up nodes unless it was asked already. */
static void trace_ask(struct pst *st, const char *nodeid)
{
    if (cJSON_GetObjectItemCaseSensitive(st->results, nodeid)) return;
    cJSON_AddItemToObject(st->results, nodeid, cJSON_CreateNull());
    struct trace_req *rq = calloc(1, sizeof *rq);
    if (!rq || !(rq->nodeid = strdup(nodeid))) {
        free(rq);
        return;
    }
    rq->st = st;
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("up_nodes"));
    st->pending++;
    if (aemp_cal(st->node, nodeid, m, st->timeout, trace_done, rq)) {
        st->pending--;
        free(rq->nodeid);
        free(rq);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Strings of a JSON array or the keys of an object, sorted (borrowed). */
static const char **sorted_strings(const cJSON *c, int keys, int *n)
{
    int len = cJSON_GetArraySize(c);
    const char **v = calloc((size_t)len + 1, sizeof *v);
    int i = 0;
    const cJSON *it;
    if (!v) return NULL;
    cJSON_ArrayForEach(it, c) v[i++] = keys ? it->string : it->valuestring;
    qsort(v, (size_t)i, sizeof *v, cmp_str);
    *n = i;
    return v;
}

/* One line per node: "NODE: NEIGHBOUR NEIGHBOUR..." (sorted), or
 * "NODE: (no answer)". */
static void print_trace(const cJSON *results, const char **nodes, int n)
{
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(results, nodes[i]);
        fputs(nodes[i], stdout);
        fputc(':', stdout);
        if (!cJSON_IsArray(neigh)) {
            fputs(" (no answer)\n", stdout);
            continue;
        }
        int m = 0;
        const char **nb = sorted_strings(neigh, 0, &m);
        for (int j = 0; nb && j < m; j++)
            printf(" %s", nb[j]);
        fputc('\n', stdout);
        free(nb);
    }
}

/* A node ID as a Graphviz string literal. */
static void dot_id(const char *s)
{
    fputc('"', stdout);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', stdout);
        fputc(*s, stdout);
    }
    fputc('"', stdout);
}

/* The mesh as an undirected Graphviz graph: one edge per connected pair
 * (seen from either side), unanswering nodes drawn dashed. */
static void print_dot(const cJSON *results, const char **nodes, int n)
{
    puts("graph aemp {");
    puts("  node [shape=box, style=rounded];");
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(results, nodes[i]);
        fputs("  ", stdout);
        dot_id(nodes[i]);
        puts(cJSON_IsArray(neigh) ? ";" : " [style=\"rounded,dashed\", label=\"(no answer)\"];");
    }
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(results, nodes[i]);
        int m = 0;
        const char **nb = cJSON_IsArray(neigh) ? sorted_strings(neigh, 0, &m) : NULL;
        for (int j = 0; nb && j < m; j++) {
            /* each pair once: from the smaller ID, or from the only side
             * that answered */
            const cJSON *back = cJSON_GetObjectItemCaseSensitive(results, nb[j]), *e;
            int mutual = 0;
            cJSON_ArrayForEach(e, back) mutual |= cJSON_IsString(e) && !strcmp(e->valuestring, nodes[i]);
            if (strcmp(nodes[i], nb[j]) > 0 && mutual) continue;
            fputs("  ", stdout);
            dot_id(nodes[i]);
            fputs(" -- ", stdout);
            dot_id(nb[j]);
            puts(";");
        }
        free(nb);
    }
    puts("}");
}

int cmd_trace(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    const char *node = NULL;
    int rc;
    (void)ctx;
    if ((rc = one_id_arg(&st, argc, argv, "NODE", &node))) return rc;
    st.first = aemp_node_of(node);
    st.target = st.first ? strdup(st.first) : NULL;
    st.results = cJSON_CreateObject();
    if (!st.first || !st.target || !st.results)
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    if ((rc = start_anon(&st))) return cleanup(&st, NULL, rc);
    trace_ask(&st, st.first);
    if (st.pending == 0)
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "cannot send to %s", st.first));
    run_loop(&st);
    if (st.status) return cleanup(&st, NULL, st.status);

    int n = 0;
    const char **nodes = sorted_strings(st.results, 1, &n);
    if (st.dot) print_dot(st.results, nodes, n);
    else print_trace(st.results, nodes, n);
    free(nodes);
    fflush(stdout);
    rc = EXIT_OK;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(st.results, st.first)))
        rc = msg(&st, EXIT_FAIL,
                 "no reply from %s within %g s: unreachable, not running, or refused our secret",
                 st.first, st.timeout);
    return cleanup(&st, NULL, rc);
}

/* ------------------------------------------------------------------ run */

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    struct pst *st = ud;
    (void)what;
    aemp_log(6, "signal %d: stopping node %s", (int)fd, aemp_node_id(st->node));
    st->done = 1;
    aemp_node_stop(st->node);
}

/* A comma list for the keys that hold lists, as the config subcommands
 * accept them; other values stay as decoded. */
static cJSON *run_value(const char *key, cJSON *v)
{
    if (!cJSON_IsString(v) || !cmd_key_is_list(key)) return v;
    cJSON *arr = cmd_comma_list(v->valuestring);
    if (!arr) return v;
    cJSON_Delete(v);
    return arr;
}

int cmd_run(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    char err[512] = "";
    int rc;
    const char *profile = ctx ? ctx->profile : NULL;
    if ((argc - 1) % 2)
        return msg(&st, EXIT_USAGE, "missing the value of '%s' (usage: aemp run [KEY VALUE...])",
                   argv[argc - 1]);
    cJSON *kv = cJSON_CreateObject();
    if (!kv) return msg(&st, EXIT_FAIL, "out of memory");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "profile")) {
            profile = argv[i + 1];
            continue;
        }
        cJSON *v = cmd_arg_json(argv[i + 1], err, sizeof err);
        if (!v) {
            cJSON_Delete(kv);
            return msg(&st, EXIT_USAGE, "%s: %s", argv[i], err);
        }
        v = run_value(argv[i], v);
        cJSON_DeleteItemFromObjectCaseSensitive(kv, argv[i]);
        cJSON_AddItemToObject(kv, argv[i], v);
    }
    st.node = aemp_node_new(NULL);
    if (!st.node) {
        cJSON_Delete(kv);
        return msg(&st, EXIT_FAIL, "out of memory");
    }
    trace_env(st.node);
    struct event_base *base = aemp_node_base(st.node);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, &st);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &st);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL)) {
        rc = msg(&st, EXIT_FAIL, "cannot install the signal handlers");
        goto out;
    }
    rc = aemp_configure(st.node, profile, kv, err, sizeof err);
    if (rc) {
        rc = msg(&st, EXIT_FAIL, "%s", *err ? err : aemp_strerror(rc));
        goto out;
    }
    cJSON *addrs = aemp_listen_addrs(st.node);
    char *at = addrs && addrs->child ? cJSON_PrintUnformatted(addrs) : NULL;
    aemp_log(5, "node %s running%s%s", aemp_node_id(st.node), at ? ", listening on " : " (no listeners)",
             at ? at : "");
    free(at);
    cJSON_Delete(addrs);
    rc = aemp_node_run(st.node);
    if (rc && !st.done)
        rc = msg(&st, EXIT_FAIL, "the event loop failed");
    else
        rc = EXIT_OK;
    if (rc == EXIT_OK) aemp_log(6, "node %s stopped", aemp_node_id(st.node));
out:
    if (sigint) event_free(sigint);
    if (sigterm) event_free(sigterm);
    aemp_node_free(st.node);
    cJSON_Delete(kv);
    return rc;
}
