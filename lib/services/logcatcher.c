/* logcatcher.c - 1.30's AnyEvent::MP::LogCatcher, both halves.
 *
 * Sending half, on every node: the node-port function
 * "AnyEvent::MP::LogCatcher::connect" (VERSION, REPLY_PORT, MAX_LEVEL) makes
 * the node send each of its log lines at or below MAX_LEVEL as [LEVEL, TEXT]
 * to REPLY_PORT until that port dies (monitored). Lines are taken from a log
 * tap (logtap.c) into a bounded queue and sent from the event loop, never
 * from inside aemp_log(): the code that logs may be the transport itself.
 * A line is dropped (and the drops are reported later) when the queue is
 * full or when more than LC_MAX_BACKLOG bytes already wait for the
 * catcher's node, so a slow catcher costs a bounded amount of memory.
 * REPLY_PORT must be a named port of the node that asks: a catcher on our
 * own node or on a node port would make every line cause another. Lines
 * about log delivery are never themselves delivered.
 *
 * Catching half: aemp_log_catch() (and the function
 * "AnyEvent::MP::LogCatcher::catch" for `services`) makes one local port per
 * up node, asks that node to connect it, and kills the port when the node
 * goes; every node that comes up gets a new one. */
#include "logcatcher.h"

#include "builtin.h"
#include "core.h"

#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LC_MAX_SINKS 64                  /* catchers one node serves */
#define LC_MAX_QUEUED (1024u * 1024)     /* bytes of lines not yet sent */
#define LC_MAX_BACKLOG (1024u * 1024)    /* bytes waiting for a catcher's node */

/* A catcher connected to this node. */
struct sink {
    struct sink *next;
    struct logcatch *lc;
    char *port;   /* the catcher's reply port */
    char *nodeid; /* its node */
    int level;
    unsigned long dropped; /* lines not sent since the last report */
    aemp_guard *mon;
    int dead;
};

/* A queued log line. */
struct line {
    struct line *next;
    int level;
    char text[];
};

/* A catching port for one node. */
struct lport {
    struct logcatch *lc;
    char *nodeid;
    char *port; /* full ID */
    aemp_guard *mon;
};

struct logcatch {
    aemp_node *node;
    /* sending half */
    struct sink *sinks;
    int nsinks;
    struct logtap *tap;
    struct line *head, *tail;
    size_t queued;
    unsigned long dropped; /* lines the full queue refused */
    unsigned long long dropped_total; /* every line dropped: queue full or a sink behind */
    struct event *flush;
    /* catching half */
    int level; /* -1: not catching */
    aemp_logline_fn fn;
    void *ud;
    cJSON *only;  /* node IDs to catch, NULL: every node */
    strmap bynode; /* node ID -> struct lport */
    strmap byname; /* local port name -> struct lport */
    aemp_guard *nodemon;
};

/* ------------------------------------------------------------ sending half */

static int max_level(struct logcatch *lc)
{
    int m = -1;
    for (struct sink *s = lc->sinks; s; s = s->next)
        if (!s->dead && s->level > m) m = s->level;
    return m;
}

static void sink_free(struct sink *s)
{
    aemp_guard_free(s->mon);
    free(s->port);
    free(s->nodeid);
    free(s);
}

/* Take dead sinks out; drop the tap when none is left. */
static void sinks_sweep(struct logcatch *lc)
{
    for (struct sink **p = &lc->sinks; *p;) {
        if ((*p)->dead) {
            struct sink *s = *p;
            *p = s->next;
            lc->nsinks--;
            sink_free(s);
        } else {
            p = &(*p)->next;
        }
    }
    if (!lc->sinks) {
        logtap_del(lc->tap);
        lc->tap = NULL;
    } else {
        logtap_set_max(lc->tap, max_level(lc));
    }
}

static void send_line(struct logcatch *lc, struct sink *s, int level, const char *text)
{
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateNumber(level));
    cJSON_AddItemToArray(msg, cJSON_CreateString(text));
    aemp_snd(lc->node, s->port, msg);
}

/* Send the queued lines to every sink that wants them (from the loop). */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct logcatch *lc = arg;
    struct line *l = lc->head;
    unsigned long refused = lc->dropped;
    lc->head = lc->tail = NULL;
    lc->queued = 0;
    lc->dropped = 0;
    logtap_mute(1); /* what sending logs is not caught again */
    for (struct sink *s = lc->sinks; s; s = s->next)
        if (!s->dead) s->dropped += refused;
    while (l) {
        struct line *next = l->next;
        for (struct sink *s = lc->sinks; s; s = s->next) {
            if (s->dead || l->level > s->level) continue;
            if (transport_pending(lc->node->transport, s->nodeid) > LC_MAX_BACKLOG) {
                s->dropped++;
                lc->dropped_total++;
                continue;
            }
            if (s->dropped) {
                char note[128];
                snprintf(note, sizeof note,
                         "%lu log lines dropped: the catcher did not keep up", s->dropped);
                s->dropped = 0;
                send_line(lc, s, 4, note);
            }
            send_line(lc, s, l->level, l->text);
        }
        free(l);
        l = next;
    }
    logtap_mute(0);
}

/* The log tap: queue the line, send it from the loop. */
static void on_log(int level, const char *text, void *ud)
{
    struct logcatch *lc = ud;
    size_t n = strlen(text);
    struct line *l = lc->queued + n > LC_MAX_QUEUED ? NULL : malloc(sizeof *l + n + 1);
    if (!l) {
        lc->dropped++;
        lc->dropped_total++;
        return;
    }
    l->next = NULL;
    l->level = level;
    memcpy(l->text, text, n + 1);
    if (lc->tail) lc->tail->next = l;
    else lc->head = l;
    lc->tail = l;
    lc->queued += n;
    event_active(lc->flush, 0, 0);
}

static void on_sink_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct sink *s = ud;
    s->dead = 1;
    logtap_mute(1); /* lines about log delivery are not delivered */
    aemp_log_peer(8, "log catcher %s is gone: no more log lines to it", s->port);
    logtap_mute(0);
    sinks_sweep(s->lc);
}

static int level_arg(const cJSON *v, int dflt)
{
    double d = dflt;
    if (cJSON_IsNumber(v)) d = v->valuedouble;
    else if (cJSON_IsString(v) && *v->valuestring) d = strtod(v->valuestring, NULL);
    return d < 0 ? 0 : d > 9 ? 9 : (int)d;
}

/* AnyEvent::MP::LogCatcher::connect VERSION, REPLY_PORT, MAX_LEVEL */
static int lc_connect(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct logcatch *lc = ud;
    const cJSON *port = cJSON_GetArrayItem(args, 1);
    if (!cJSON_IsString(port) || !strchr(port->valuestring, '#')) {
        aemp_fail(node, "AnyEvent::MP::LogCatcher::connect wants (0, PORT, LEVEL)");
        return -1;
    }
    /* The reply port must be a port of the node that asks: lines sent to
     * our own node (its node port would log each as a bad request, which
     * is sent again) or to a third node's node port loop or flood. */
    const char *asker = aemp_caller(node);
    const char *hash = strchr(port->valuestring, '#');
    size_t idlen = (size_t)(hash - port->valuestring);
    if (!asker || !strcmp(asker, node->id) || strlen(asker) != idlen ||
        strncmp(asker, port->valuestring, idlen) || !hash[1]) {
        aemp_fail(node,
                  "log catcher %.200s refused: the reply port must be a port of the asking "
                  "node %.100s",
                  port->valuestring, asker ? asker : "(this node)");
        return -1;
    }
    if (lc->nsinks >= LC_MAX_SINKS) {
        aemp_fail(node, "log catcher %s refused: %d catchers are connected already",
                  port->valuestring, LC_MAX_SINKS);
        return -1;
    }
    struct sink *s = calloc(1, sizeof *s);
    if (!s || !(s->port = strdup(port->valuestring)) ||
        !(s->nodeid = aemp_node_of(port->valuestring))) {
        if (s) free(s->port);
        free(s);
        return -1;
    }
    s->lc = lc;
    s->level = level_arg(cJSON_GetArrayItem(args, 2), 5);
    if (!lc->tap && !(lc->tap = logtap_add(on_log, lc, s->level))) {
        sink_free(s);
        return -1;
    }
    s->next = lc->sinks;
    lc->sinks = s;
    lc->nsinks++;
    logtap_set_max(lc->tap, max_level(lc));
    if (aemp_mon(node, s->port, on_sink_dead, s, &s->mon)) {
        s->dead = 1;
        sinks_sweep(lc);
        return -1;
    }
    logtap_mute(1);
    aemp_log_peer(7, "log catcher %s connected (levels up to %d)", s->port, s->level);
    logtap_mute(0);
    return 0;
}

/* ----------------------------------------------------------- catching half */

int logcatcher_print(FILE *out, const char *nodeid, int level, const char *text)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    return fprintf(out, "%s [%s] <%d> %s\n", stamp, nodeid, level, text);
}

static void print_line(aemp_node *node, const char *nodeid, int level, const char *text,
                       void *ud)
{
    logcatcher_print(stderr, nodeid, level, text);
}

/* ["restart"], the reason 1.30 kills its catching ports with. */
static cJSON *restart_reason(void)
{
    cJSON *r = cJSON_CreateArray();
    cJSON_AddItemToArray(r, cJSON_CreateString("restart"));
    return r;
}

static void lport_free(struct lport *p)
{
    aemp_guard_free(p->mon);
    free(p->nodeid);
    free(p->port);
    free(p);
}

/* Forget the catching port of `p`'s node (the port is dead or dying). */
static void lport_forget(struct logcatch *lc, struct lport *p)
{
    if (strmap_get(&lc->bynode, p->nodeid) == p) strmap_del(&lc->bynode, p->nodeid);
    strmap_del(&lc->byname, strchr(p->port, '#') + 1);
    lport_free(p);
}

static int on_caught(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct lport *p = ud;
    const cJSON *lv = cJSON_GetArrayItem(msg, 0), *text = cJSON_GetArrayItem(msg, 1);
    if (!cJSON_IsString(text)) return 0;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", text->valuestring);
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n') buf[n - 1] = 0; /* Perl lines may end in one */
    p->lc->fn(node, p->nodeid, level_arg(lv, 0), buf, p->lc->ud);
    return 0;
}

static void on_lport_dead(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct lport *p = ud;
    aemp_guard_free(p->mon); /* fired: inert */
    p->mon = NULL;
    lport_forget(p->lc, p);
}

static int wanted(struct logcatch *lc, const char *nodeid)
{
    if (!strcmp(nodeid, lc->node->id)) return 0;
    if (!lc->only) return 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, lc->only)
    {
        if (cJSON_IsString(e) && !strcmp(e->valuestring, nodeid)) return 1;
    }
    return 0;
}

/* Start catching `nodeid`: a port, the connect request, node mon -> kil. */
static void catch_node(struct logcatch *lc, const char *nodeid)
{
    aemp_node *node = lc->node;
    struct lport *old = strmap_get(&lc->bynode, nodeid);
    if (old) aemp_kil(node, old->port, restart_reason());
    struct lport *p = calloc(1, sizeof *p);
    if (!p) return;
    p->lc = lc;
    p->nodeid = strdup(nodeid);
    p->port = aemp_port(node);
    if (!p->nodeid || !p->port || aemp_rcv(node, p->port, NULL, on_caught, p) ||
        strmap_put(&lc->bynode, nodeid, p, NULL) ||
        strmap_put(&lc->byname, strchr(p->port, '#') + 1, p, NULL)) {
        if (p->port) aemp_kil(node, p->port, NULL);
        strmap_del(&lc->bynode, nodeid);
        if (p->port) strmap_del(&lc->byname, strchr(p->port, '#') + 1);
        lport_free(p);
        return;
    }
    aemp_mon(node, p->port, on_lport_dead, p, &p->mon);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(args, cJSON_CreateString(p->port));
    cJSON_AddItemToArray(args, cJSON_CreateNumber(lc->level));
    aemp_snd_to_func(node, nodeid, "AnyEvent::MP::LogCatcher::connect", args);
    /* When the node goes, so does its catching port. */
    aemp_mon_kil(node, nodeid, p->port, NULL);
}

static void on_node(aemp_node *node, const char *nodeid, int up, const cJSON *reason, void *ud)
{
    struct logcatch *lc = ud;
    /* A port still there was made while the node was coming up (its
     * connect request waited for this connection): a node going down kills
     * its port at once (mon_kil), so no stale one is left at an up. */
    if (up && wanted(lc, nodeid) && !strmap_get(&lc->bynode, nodeid)) catch_node(lc, nodeid);
}

/* Kill every catching port (their monitors forget them). */
static void catch_stop(struct logcatch *lc)
{
    aemp_guard_free(lc->nodemon);
    lc->nodemon = NULL;
    lc->level = -1;
    size_t it = 0;
    const char *k;
    void *v;
    cJSON *ports = cJSON_CreateArray();
    while (strmap_next(&lc->bynode, &it, &k, &v))
        cJSON_AddItemToArray(ports, cJSON_CreateString(((struct lport *)v)->port));
    const cJSON *e;
    cJSON_ArrayForEach(e, ports)
    {
        aemp_kil(lc->node, e->valuestring, restart_reason());
    }
    cJSON_Delete(ports);
    cJSON_Delete(lc->only);
    lc->only = NULL;
}

int aemp_log_catch(aemp_node *node, int level, const cJSON *nodes, aemp_logline_fn fn,
                   void *ud)
{
    struct logcatch *lc = builtin_state(node, &logcatcher_builtin);
    if (!lc) return AEMP_ESTATE;
    if (nodes && !cJSON_IsArray(nodes)) return AEMP_EINVAL;
    catch_stop(lc);
    if (level < 0) return 0;
    lc->level = level > 9 ? 9 : level;
    lc->fn = fn ? fn : print_line;
    lc->ud = fn ? ud : NULL;
    if (nodes && !(lc->only = cJSON_Duplicate(nodes, 1))) return AEMP_ENOMEM;
    int rc = aemp_mon_nodes(node, on_node, lc, &lc->nodemon);
    if (rc) return rc;
    cJSON *up = aemp_up_nodes(node);
    const cJSON *e;
    cJSON_ArrayForEach(e, up)
    {
        if (cJSON_IsString(e) && wanted(lc, e->valuestring)) catch_node(lc, e->valuestring);
    }
    /* Named nodes that are not up yet: asking them connects to them. */
    cJSON_ArrayForEach(e, lc->only)
    {
        if (cJSON_IsString(e) && wanted(lc, e->valuestring) &&
            !strmap_get(&lc->bynode, e->valuestring))
            catch_node(lc, e->valuestring);
    }
    cJSON_Delete(up);
    return 0;
}

/* AnyEvent::MP::LogCatcher::catch [LEVEL]: null or no level stops. */
static int lc_catch(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    const cJSON *lv = cJSON_GetArrayItem(args, 0);
    int level = !lv || cJSON_IsNull(lv) ? -1 : level_arg(lv, 9);
    if (level >= 0) aemp_log(7, "starting log catcher service (levels up to %d)", level);
    return aemp_log_catch(node, level, NULL, NULL, NULL) ? -1 : 0;
}

unsigned long long logcatcher_dropped(aemp_node *node)
{
    struct logcatch *lc = builtin_state(node, &logcatcher_builtin);
    return lc ? lc->dropped_total : 0;
}

/* 1 when local port `name` is one of this node's catcher ports. */
static int logcatcher_is_port(aemp_node *node, const char *name)
{
    struct logcatch *lc = builtin_state(node, &logcatcher_builtin);
    return lc && lc->byname.len && strmap_get(&lc->byname, name);
}

/* ------------------------------------------------------------- lifetime */

static void logcatch_free(void *ud)
{
    struct logcatch *lc = ud;
    aemp_guard_free(lc->nodemon);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&lc->bynode, &it, &k, &v))
        lport_free(v);
    strmap_free(&lc->bynode);
    strmap_free(&lc->byname);
    cJSON_Delete(lc->only);
    for (struct sink *s = lc->sinks; s; s = s->next)
        s->dead = 1;
    sinks_sweep(lc);
    while (lc->head) {
        struct line *l = lc->head;
        lc->head = l->next;
        free(l);
    }
    event_free(lc->flush);
    builtin_set_state(lc->node, &logcatcher_builtin, NULL);
    free(lc);
}

static int logcatcher_init(aemp_node *node)
{
    struct logcatch *lc = calloc(1, sizeof *lc);
    if (!lc) return AEMP_ENOMEM;
    lc->node = node;
    lc->level = -1;
    lc->flush = event_new(node->base, -1, 0, flush_cb, lc);
    if (!lc->flush || aemp_at_free(node, logcatch_free, lc)) {
        if (lc->flush) event_free(lc->flush);
        free(lc);
        return AEMP_ENOMEM;
    }
    builtin_set_state(node, &logcatcher_builtin, lc); /* freed with the node from here on */
    if (aemp_register(node, "AnyEvent::MP::LogCatcher::connect", lc_connect, lc) ||
        aemp_register(node, "AnyEvent::MP::LogCatcher::catch", lc_catch, lc))
        return AEMP_ENOMEM;
    return 0;
}

const struct core_builtin logcatcher_builtin = {
    .name = "logcatcher", .init = logcatcher_init, .quiet_port = logcatcher_is_port};
