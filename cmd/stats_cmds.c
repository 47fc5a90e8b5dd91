/* stats_cmds.c - `aemp stats NODE...` (the counters of each node, from the
 * node-port request ["devnull","aemp_stats",R]) and `aemp top` (`aemp
 * stats --watch`): those figures for the whole network, refreshed, one line
 * per node with rates, until q, SIGINT or SIGTERM, or --count rounds. */
#include "cmds.h"
#include "proto.h"

#include <event2/event.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Ask `nodeid` for its stats; the reply (or NULL) goes to fn. */
static int ask_stats(struct pst *st, const char *nodeid, double timeout, aemp_cal_fn fn, void *ud)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("devnull"));
    cJSON_AddItemToArray(m, cJSON_CreateString("aemp_stats"));
    return aemp_cal(st->node, nodeid, m, timeout, fn, ud);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "closed_by_peer 1, auth 2" of the non-zero members of `o`. */
static void nonzero(const cJSON *o, char *buf, size_t len)
{
    const cJSON *it;
    size_t off = 0;
    buf[0] = 0;
    cJSON_ArrayForEach(it, o)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble == 0 || off >= len) continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s %.0f", off ? ", " : "", it->string,
                                it->valuedouble);
    }
}

/* One line of counters (the total or a peer). */
static void print_counts(const char *label, const cJSON *c)
{
    char disc[256], hs[256];
    nonzero(cJSON_GetObjectItemCaseSensitive(c, "disconnect_reasons"), disc, sizeof disc);
    nonzero(cJSON_GetObjectItemCaseSensitive(c, "handshake_failure_causes"), hs, sizeof hs);
    printf("  %s: in %.0f msgs %.0f B, out %.0f msgs %.0f B, queued %.0f B, connects %.0f, "
           "disconnects %.0f%s%s%s, handshake failures %.0f%s%s%s\n",
           label, num(c, "msgs_in"), num(c, "bytes_in"), num(c, "msgs_out"), num(c, "bytes_out"),
           num(c, "queued_bytes"), num(c, "connects"), num(c, "disconnects"), *disc ? " (" : "",
           disc, *disc ? ")" : "", num(c, "handshake_failures"), *hs ? " (" : "", hs,
           *hs ? ")" : "");
}

/* The text form: a heading line per node, the total, one line per peer
 * (sorted). */
static void print_stats(const cJSON *s)
{
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(s, "total");
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(s, "peers");
    char *listen = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(s, "listen"));
    printf("%s: up %.1f s, %.0f ports, %.0f monitored ports, %.0f peers up, listening on %s\n",
           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "node")), num(s, "uptime"),
           num(s, "ports"), num(s, "monitored_ports"), num(total, "peers_up"),
           listen ? listen : "[]");
    free(listen);
    print_counts("total", total);
    int n = 0;
    const char **ids = sorted_strings(peers, 1, &n);
    for (int i = 0; ids && i < n; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(peers, ids[i]);
        char label[300];
        snprintf(label, sizeof label, "%s (%s)", ids[i],
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "up")) ? "up" : "down");
        print_counts(label, p);
    }
    free(ids);
}

/* ---------------------------------------------------------------- stats */

struct stats_req {
    struct pst *st;
    char *nodeid;
};

static void stats_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct stats_req *rq = ud;
    struct pst *st = rq->st;
    (void)node;
    (void)error;
    const cJSON *s = cJSON_GetArrayItem(reply, 0);
    if (cJSON_IsObject(s))
        cJSON_ReplaceItemInObjectCaseSensitive(st->results, rq->nodeid, cJSON_Duplicate(s, 1));
    free(rq->nodeid);
    free(rq);
    if (--st->pending == 0) finish(st, EXIT_OK);
}

static int cmd_top_run(struct pst *st, char **nodes, int n);

int cmd_stats(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0], .allowed = OPT_JSON | OPT_WATCH};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, rc;
    (void)ctx;
    if (!pos) return msg(&st, EXIT_FAIL, "out of memory");
    if ((rc = parse_opts(&st, argc, argv, 1, pos, &npos))) goto out;
    for (int i = 0; i < npos; i++)
        if ((rc = check_id(&st, pos[i], "node"))) goto out;
    if (st.watch || !strcmp(st.sub, "top")) {
        if (st.json) {
            rc = msg(&st, EXIT_USAGE, "--json is for `aemp stats NODE...`, not for watching");
            goto out;
        }
        rc = cmd_top_run(&st, pos, npos);
        goto out;
    }
    if (st.count || st.interval_given) {
        rc = msg(&st, EXIT_USAGE, "--count and --interval go with --watch");
        goto out;
    }
    if (npos < 1) {
        rc = msg(&st, EXIT_USAGE, "missing NODE (usage: aemp stats [--json] NODE...)");
        goto out;
    }
    st.results = cJSON_CreateObject();
    st.target = strdup(pos[0]);
    if (!st.results || !st.target) {
        rc = cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
        goto out;
    }
    if ((rc = start_anon(&st))) {
        rc = cleanup(&st, NULL, rc);
        goto out;
    }
    for (int i = 0; i < npos; i++) {
        char *nid = aemp_node_of(pos[i]);
        struct stats_req *rq = calloc(1, sizeof *rq);
        if (!nid || !rq || cJSON_GetObjectItemCaseSensitive(st.results, nid)) {
            free(nid);
            free(rq);
            continue;
        }
        cJSON_AddItemToObject(st.results, nid, cJSON_CreateNull());
        rq->st = &st;
        rq->nodeid = nid;
        st.pending++;
        if (ask_stats(&st, nid, st.timeout, stats_done, rq)) {
            st.pending--;
            free(rq->nodeid);
            free(rq);
        }
    }
    if (st.pending) run_loop(&st);
    rc = EXIT_OK;
    /* in the order given; a node that did not answer says why */
    const cJSON *it;
    cJSON_ArrayForEach(it, st.results)
    {
        if (cJSON_IsObject(it)) {
            if (st.json)
                print_json_line(it);
            else
                print_stats(it);
            continue;
        }
        free(st.target);
        st.target = strdup(it->string);
        if (st.target && aemp_node_is_up(st.node, st.target))
            msg(&st, EXIT_FAIL,
                "%s is up but did not answer the stats request within %g s: a "
                "Perl node, or an aemp without stats, ignores it",
                it->string, st.timeout);
        else
            fail_no_answer(&st);
        rc = EXIT_FAIL;
    }
    cmd_flush_stdout();
    rc = cleanup(&st, NULL, rc);
out:
    free(pos);
    return rc;
}

/* ------------------------------------------------------------------ top */

/* The state of `aemp top`: the nodes seen, the samples of this round and
 * the last one, the terminal. */
struct top {
    struct pst *st;
    cJSON *known;      /* node ID -> true, in discovery order (owned) */
    cJSON *cur, *prev; /* node ID -> stats object of this round / the last (owned) */
    int round;         /* rounds printed */
    int tty_out;       /* stdout is a terminal: clear it each round */
    int tty_in;        /* stdin is a terminal: q quits */
    struct termios saved;
    struct event *key, *sigs[2];
    aemp_guard *tick;
    int pending;
    int printed;        /* this round was printed */
    int answered;       /* some node answered, ever */
    aemp_guard *first;  /* --timeout (default 5 s) for the first answer */
};

static void top_round(aemp_node *node, void *ud);
static void top_ask(struct top *tp, const char *nodeid);

struct top_req {
    struct top *tp;
    int round;
    char *nodeid;
};

static double rate(const cJSON *cur, const cJSON *prev, const char *key, int *ok)
{
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cur, "total");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(prev, "total");
    double dt = num(cur, "uptime") - num(prev, "uptime");
    *ok = prev && dt > 0 && num(ct, key) >= num(pt, key);
    return *ok ? (num(ct, key) - num(pt, key)) / dt : 0;
}

static void print_rate(const cJSON *cur, const cJSON *prev, const char *key, double div, int w)
{
    int ok;
    double r = rate(cur, prev, key, &ok);
    if (ok)
        printf(" %*.1f", w, r / div);
    else
        printf(" %*s", w, "-");
}

/* One table: a heading, then one line per node in sorted order. */
static void top_print(struct top *tp)
{
    struct pst *st = tp->st;
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    if (tp->tty_out) fputs("\033[H\033[2J", stdout);
    tp->round++;
    printf("aemp top - %s - %d nodes - round %d, every %g s%s\n", when,
           cJSON_GetArraySize(tp->known), tp->round, st->interval, tp->tty_in ? " (q quits)" : "");
    printf("%-24s %8s %5s %6s %9s %9s %8s %8s %8s %5s %5s %6s\n", "NODE", "UPTIME", "PEERS",
           "PORTS", "MSG/S-IN", "MSG/S-OUT", "KB/S-IN", "KB/S-OUT", "QUEUED", "CONN", "DISC",
           "HSFAIL");
    int n = 0;
    const char **ids = sorted_strings(tp->known, 1, &n);
    for (int i = 0; ids && i < n; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(tp->cur, ids[i]);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(tp->prev, ids[i]);
        if (!cJSON_IsObject(s)) {
            printf("%-24s (no answer: down, unreachable, or a node without stats)\n", ids[i]);
            continue;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "total");
        printf("%-24s %7.0fs %5.0f %6.0f", ids[i], num(s, "uptime"), num(t, "peers_up"),
               num(s, "ports"));
        print_rate(s, p, "msgs_in", 1, 9);
        print_rate(s, p, "msgs_out", 1, 9);
        print_rate(s, p, "bytes_in", 1024, 8);
        print_rate(s, p, "bytes_out", 1024, 8);
        printf(" %8.0f %5.0f %5.0f %6.0f\n", num(t, "queued_bytes"), num(t, "connects"),
               num(t, "disconnects"), num(t, "handshake_failures"));
    }
    free(ids);
    cmd_flush_stdout();
    tp->printed = 1;
    if (st->count && tp->round >= st->count) finish(st, EXIT_OK);
}

static void top_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct top_req *rq = ud;
    struct top *tp = rq->tp;
    (void)error;
    const cJSON *s = cJSON_GetArrayItem(reply, 0);
    if (cJSON_IsObject(s)) tp->answered = 1;
    if (rq->round == tp->round && cJSON_IsObject(s)) {
        cJSON_DeleteItemFromObjectCaseSensitive(tp->cur, rq->nodeid);
        cJSON_AddItemToObject(tp->cur, rq->nodeid, cJSON_Duplicate(s, 1));
        /* the peers it is connected to join the table (anonymous clients,
         * like this one, come and go and are left out) */
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "peers"))
        {
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "up")) &&
                strncmp(p->string, "anon/", 5) && strcmp(p->string, aemp_node_id(node)))
                top_ask(tp, p->string);
        }
    }
    free(rq->nodeid);
    free(rq);
    if (--tp->pending == 0 && !tp->printed && !tp->st->done) top_print(tp);
}

/* Ask `nodeid` this round unless it was asked already. */
static void top_ask(struct top *tp, const char *nodeid)
{
    if (!cJSON_GetObjectItemCaseSensitive(tp->known, nodeid))
        cJSON_AddItemToObject(tp->known, nodeid, cJSON_CreateTrue());
    if (cJSON_GetObjectItemCaseSensitive(tp->cur, nodeid)) return;
    cJSON_AddItemToObject(tp->cur, nodeid, cJSON_CreateNull());
    struct top_req *rq = calloc(1, sizeof *rq);
    if (!rq || !(rq->nodeid = strdup(nodeid))) {
        free(rq);
        return;
    }
    rq->tp = tp;
    rq->round = tp->round;
    double t = tp->st->interval * 0.9;
    if (tp->st->timeout_given && tp->st->timeout < t) t = tp->st->timeout;
    tp->pending++;
    if (ask_stats(tp->st, nodeid, t, top_done, rq)) {
        tp->pending--;
        free(rq->nodeid);
        free(rq);
    }
}

/* A new round: keep the last samples for the rates, ask every known node. */
static void top_round(aemp_node *node, void *ud)
{
    struct top *tp = ud;
    (void)node;
    aemp_guard_free(tp->tick);
    tp->tick = NULL;
    if (tp->st->done) return;
    if (!tp->printed && cJSON_GetArraySize(tp->cur)) top_print(tp); /* late answers: as they are */
    if (tp->st->done) return;
    cJSON_Delete(tp->prev);
    tp->prev = tp->cur;
    tp->cur = cJSON_CreateObject();
    tp->printed = 0;
    /* with no node given, start from whatever this node reached (a seed) */
    if (!cJSON_GetArraySize(tp->known)) {
        cJSON *up = aemp_up_nodes(tp->st->node);
        const cJSON *u;
        cJSON_ArrayForEach(u, up) if (strcmp(u->valuestring, aemp_node_id(tp->st->node)) &&
                                      strncmp(u->valuestring, "anon/", 5))
            top_ask(tp, u->valuestring);
        cJSON_Delete(up);
    } else {
        const cJSON *k;
        cJSON_ArrayForEach(k, tp->known) top_ask(tp, k->string);
    }
    aemp_after(tp->st->node, tp->st->interval, top_round, tp, &tp->tick);
}

/* No node answered within --timeout: nothing to watch, and waiting on
 * would not tell the user why. */
static void top_first_timeout(aemp_node *node, void *ud)
{
    struct top *tp = ud;
    (void)node;
    aemp_guard_free(tp->first);
    tp->first = NULL;
    if (!tp->answered && !tp->st->done) finish(tp->st, fail_no_answer(tp->st));
}

static void top_key(evutil_socket_t fd, short what, void *ud)
{
    struct top *tp = ud;
    char c;
    (void)what;
    if (read(fd, &c, 1) != 1 || c == 'q' || c == 'Q' || c == 3 /* Ctrl-C */)
        finish(tp->st, EXIT_OK);
}

static void top_signal(evutil_socket_t fd, short what, void *ud)
{
    struct top *tp = ud;
    (void)fd;
    (void)what;
    finish(tp->st, EXIT_OK);
}

static int cmd_top_run(struct pst *st, char **nodes, int n)
{
    struct top tp = {.st = st};
    int rc;
    st->target = strdup(n ? nodes[0] : "the seeds");
    tp.known = cJSON_CreateObject();
    tp.cur = cJSON_CreateObject();
    if (!st->target || !tp.known || !tp.cur) {
        rc = msg(st, EXIT_FAIL, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char *nid = aemp_node_of(nodes[i]);
        if (nid && !cJSON_GetObjectItemCaseSensitive(tp.known, nid))
            cJSON_AddItemToObject(tp.known, nid, cJSON_CreateTrue());
        free(nid);
    }
    if ((rc = start_anon(st))) goto out;
    struct event_base *base = aemp_node_base(st->node);
    tp.tty_out = isatty(1);
    tp.tty_in = isatty(0) && tcgetattr(0, &tp.saved) == 0;
    if (tp.tty_in) {
        struct termios raw = tp.saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &raw);
        tp.key = event_new(base, 0, EV_READ | EV_PERSIST, top_key, &tp);
        if (tp.key) event_add(tp.key, NULL);
    }
    stop_signals_add(base, top_signal, &tp, tp.sigs); /* q still ends it without them */
    /* the first round once our node had a moment to reach the seeds (an
     * empty start set is filled from them) */
    tp.printed = 1;
    aemp_after(st->node, n ? 0 : (st->interval < 1 ? st->interval : 1), top_round, &tp, &tp.tick);
    aemp_after(st->node, st->timeout, top_first_timeout, &tp, &tp.first);
    run_loop(st);
    if (tp.tty_in) tcsetattr(0, TCSANOW, &tp.saved);
    rc = st->status;
    if (!rc && !tp.answered) /* --count rounds without one answer */
        rc = fail_no_answer(st);
    if (tp.key) event_free(tp.key);
    stop_signals_free(tp.sigs);
out:
    aemp_guard_free(tp.tick);
    aemp_guard_free(tp.first);
    cJSON_Delete(tp.known);
    cJSON_Delete(tp.cur);
    cJSON_Delete(tp.prev);
    return cleanup(st, NULL, rc);
}
