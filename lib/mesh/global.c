/* global.c - AnyEvent::MP::Global (PROTOCOL.md section 7): every node that
 * comes up gets a rendezvous port spawned on it ("Global::connect"), through
 * which the two nodes exchange listen addresses, known nodes and port-group
 * members. A master chosen among the connected seeds forwards new nodes to
 * us, which gives a full mesh. The groups that travel over the same ports
 * are in groups.c.
 *
 * Built on the public API (spawn, rcv, snd, mon, mon_nodes) plus the
 * transport's address book. */
#include "global.h"
#include "global_int.h"

#include "transport.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOBAL_VERSION 0
#define CONNECT_FN "AnyEvent::MP::Global::connect"
/* How many nodes we did not know one peer may introduce to us (its "nodes"
 * messages): a master of a big mesh lists every node once; more is an
 * attempt to make us dial the world. */
#define MAX_INTRODUCED 1024
/* Our address table goes to every node that comes up, as 1.30 does, while
 * it holds at most this many nodes. A larger one goes only to seeds: when
 * hundreds of nodes start at once, a table on every connection is N tables
 * of N entries per node (N^3 in all), and each node's master already gives
 * it its table (seedme1) and every node that connects later. Instead, what
 * we know that our master did not tell us goes to the master (report_due),
 * which passes it on to all its subscribers. */
#define FULL_TABLE_MAX 16
/* The report waits this long plus up to 1 s: the master forwards a node to
 * us 1-3 s after that node told it its addresses, and what it told us by
 * then needs no report. */
#define REPORT_DELAY 3.0

const cJSON *global_node_addrs(aemp_node *node, const char *nodeid)
{
    struct global *g = global_of(node);
    return g ? strmap_get(&g->addr, nodeid) : NULL;
}

static void send_to(struct global *g, const char *nodeid, cJSON *msg)
{
    const char *p = strmap_get(&g->port, nodeid);
    if (p) aemp_snd(g->node, p, msg);
    else cJSON_Delete(msg);
}

/* {NODE: [ADDRS]...} of every node whose addresses we know. */
static cJSON *addr_object(struct global *g)
{
    cJSON *o = cJSON_CreateObject();
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->addr, &it, &k, &v))
        cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
    return o;
}

/* ------------------------------------------------------------ the mesh */

/* Is our table small enough to go to every node that comes up? */
static int table_small(const struct global *g)
{
    return g->addr.len <= FULL_TABLE_MAX;
}

/* The nodes whose addresses we know that our master did not tell us of go
 * to it in one `nodes` message (it dials those it does not know and passes
 * them on to its subscribers once they connected to it): what a node
 * learned outside its master (a node that dialed it, another mesh through a
 * second seed) reaches the whole mesh without full tables on every
 * connection. */
static void report_due(aemp_node *node, void *ud)
{
    struct global *g = ud;
    aemp_guard_free(g->report); /* inert: it fired */
    g->report = NULL;
    if (!g->master || !aemp_node_is_up(node, g->master)) return;
    cJSON *o = NULL;
    int n = 0;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->addr, &it, &k, &v)) {
        if (!strcmp(k, g->master) || strmap_get(&g->told, k) || !cJSON_GetArraySize(v)) continue;
        if (!o && !(o = cJSON_CreateObject())) return;
        cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
        strmap_put(&g->told, k, g, NULL);
        n++;
    }
    if (!o) return;
    aemp_log(8, "global: telling master %s of %d nodes it did not tell us of", g->master, n);
    send_to(g, g->master, mk("nodes", o));
}

/* Report to the master in REPORT_DELAY s unless a report is pending; only
 * while our table is too large to go to every node (else it does that). */
static void report_arm(struct global *g)
{
    if (g->report || table_small(g) || !g->master) return;
    aemp_after(g->node, REPORT_DELAY + randombytes_uniform(1000) / 1000.0, report_due, g,
               &g->report);
}

static void portmon_fired(aemp_node *node, const char *port, const cJSON *reason, void *ud);

/* Spawn our rendezvous port on `nodeid` and tell it what we know. */
static void start_node(struct global *g, const char *nodeid)
{
    aemp_node *node = g->node;
    if (strmap_get(&g->port, nodeid) || !strcmp(nodeid, node->id)) return;
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber(GLOBAL_VERSION));
    cJSON_AddItemToArray(args, cJSON_CreateString(node->id));
    char *p = aemp_spawn(node, nodeid, CONNECT_FN, args);
    if (!p) return;
    strmap_put(&g->port, nodeid, p, NULL);
    aemp_guard *mg = NULL;
    aemp_mon(node, p, portmon_fired, g, &mg);
    strmap_put(&g->portmon, nodeid, mg, NULL);
    aemp_snd(node, p, mk("addr", transport_listen_addrs(node->transport)));
    if (g->addr.len && (table_small(g) || transport_node_is_seed(node->transport, nodeid)))
        aemp_snd(node, p, mk("nodes", addr_object(g)));
    cJSON *l = groups_local_object(g);
    if (l) aemp_snd(node, p, mk("set", l));
    aemp_snd(node, p, mk("setup", NULL));
}

static void portmon_fired(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct global *g = ud;
    char *nodeid = aemp_node_of(port);
    if (!nodeid) return;
    char *p = strmap_get(&g->port, nodeid);
    if (p && !strcmp(p, port)) {
        aemp_guard_free(strmap_del(&g->portmon, nodeid)); /* inert: it fired */
        free(strmap_del(&g->port, nodeid));
        groups_unreg_node(g, nodeid);
    }
    free(nodeid);
}

static void set_master(struct global *g, const char *m)
{
    if ((!g->master && !m) || (g->master && m && !strcmp(g->master, m))) return;
    if (g->master && aemp_node_is_up(g->node, g->master))
        send_to(g, g->master, mk("seedme0", NULL));
    free(g->master);
    g->master = m ? strdup(m) : NULL;
    strmap_free(&g->told); /* what the old master told us, the new one may not know */
    if (g->master) {
        send_to(g, g->master, mk("seedme1", NULL));
        aemp_log(7, "selected new master: %s", g->master);
        report_arm(g);
    } else {
        aemp_log(7, "no contact to any other node, cannot seed");
    }
}

/* Up nodes that are seeds (new array). */
static cJSON *up_seeds(struct global *g)
{
    cJSON *seeds = cJSON_CreateArray();
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->up, &it, &k, &v))
        if (transport_node_is_seed(g->node->transport, k)) cJSON_AddItemToArray(seeds, cJSON_CreateString(k));
    return seeds;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void pick_master(struct global *g)
{
    if (g->master && aemp_node_is_up(g->node, g->master)) return;
    cJSON *seeds = up_seeds(g);
    int ns = cJSON_GetArraySize(seeds);
    if (ns) {
        set_master(g, cJSON_GetArrayItem(seeds, (int)randombytes_uniform((uint32_t)ns))->valuestring);
    } else {
        /* the "last" of the up nodes in sort order */
        size_t n = g->up.len, i = 0, it = 0;
        const char **v = n ? malloc(n * sizeof *v) : NULL;
        const char *k;
        void *val;
        if (v) {
            while (i < n && strmap_next(&g->up, &it, &k, &val)) v[i++] = k;
            qsort(v, i, sizeof *v, cmp_str);
        }
        char *last = v && i ? strdup(v[i - 1]) : NULL;
        set_master(g, last);
        free(last);
        free(v);
    }
    cJSON_Delete(seeds);
}

static void node_changed(aemp_node *node, const char *nodeid, int up, const cJSON *reason,
                         void *ud)
{
    struct global *g = ud;
    if (up) strmap_put(&g->up, nodeid, g, NULL);
    else strmap_del(&g->up, nodeid);
    if (up) {
        g->nodecnt++;
        start_node(g, nodeid);
        if (transport_node_is_seed(node->transport, nodeid)) {
            if (g->master && transport_node_is_seed(node->transport, g->master)) {
                /* switch with a lower chance, for an even spread over seeds */
                cJSON *seeds = up_seeds(g);
                int ns = cJSON_GetArraySize(seeds);
                if (ns > 1 && randombytes_uniform((uint32_t)ns) >= 1) set_master(g, nodeid);
                cJSON_Delete(seeds);
            } else {
                set_master(g, nodeid); /* a seed always beats a non-seed */
            }
        }
    }
    pick_master(g);
    if (!up) {
        g->nodecnt--;
        groups_unreg_node(g, nodeid);
        cJSON_Delete(strmap_del(&g->addr, nodeid));
        strmap_del(&g->told, nodeid);
        if (g->master) {
            aemp_log(8, "asking master %s to find %s", g->master, nodeid);
            send_to(g, g->master, mk("find", cJSON_CreateString(nodeid)));
        }
    }
}

/* --------------------------------------- the rendezvous port we serve */

/* At most this many nodes in one forwarded "nodes" message. */
#define FWD_BATCH_MAX 256

/* {NODE: [ADDRS]...} `batch` (taken) to every node that asked us to seed it. */
static void fwd_send(struct global *g, cJSON *batch)
{
    size_t it = 0;
    const char *k;
    void *unused;
    while (strmap_next(&g->seedme, &it, &k, &unused))
        send_to(g, k, mk("nodes", cJSON_Duplicate(batch, 1)));
    cJSON_Delete(batch);
}

/* 1-3 s after a node told us its addresses: pass them on, with those of
 * every node that told us since, to every node that asked us to seed it.
 * When hundreds of nodes start at once, each of them gets a few messages
 * from its seed instead of one per node (a 1.30 seed sends one per node; a
 * "nodes" message has always been able to carry many). */
static void fwd_due(aemp_node *node, void *ud)
{
    (void)node;
    struct global *g = ud;
    aemp_guard_free(g->fwd_timer);
    g->fwd_timer = NULL;
    strmap due = g->fwd; /* what arrives while we send waits for the next */
    g->fwd = (strmap)STRMAP_INIT;
    size_t it = 0;
    const char *k;
    void *v;
    cJSON *batch = NULL;
    int n = 0;
    while (strmap_next(&due, &it, &k, &v)) {
        if (!batch && !(batch = cJSON_CreateObject())) {
            cJSON_Delete(v);
            continue;
        }
        cJSON_AddItemToObject(batch, k, v); /* takes the addresses */
        if (++n == FWD_BATCH_MAX) {
            fwd_send(g, batch);
            batch = NULL;
            n = 0;
        }
    }
    if (batch) fwd_send(g, batch);
    strmap_free(&due);
}

/* The first TRANSPORT_MAX_ADDRS strings of `addrs` (new array). */
static cJSON *some_addrs(const cJSON *addrs)
{
    cJSON *a = cJSON_CreateArray();
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, addrs)
    if (cJSON_IsString(e) && n++ < TRANSPORT_MAX_ADDRS)
        cJSON_AddItemToArray(a, cJSON_CreateString(e->valuestring));
    return a;
}

static void on_addr(struct global *g, const char *from, const cJSON *addrs_in)
{
    if (!cJSON_IsArray(addrs_in)) return;
    aemp_log(9, "%s told us its addresses", from);
    cJSON *addrs = some_addrs(addrs_in); /* what we keep and pass on */
    cJSON *old = NULL;
    strmap_put(&g->addr, from, cJSON_Duplicate(addrs, 1), (void **)&old);
    cJSON_Delete(old);
    if (cJSON_GetArraySize(addrs)) transport_set_addrs(g->node->transport, from, addrs);
    if (g->master && strcmp(from, g->master) && !strmap_get(&g->told, from)) report_arm(g);
    old = NULL; /* a node that tells us twice is passed on once, as it is now */
    if (strmap_put(&g->fwd, from, addrs, (void **)&old)) {
        cJSON_Delete(addrs);
        return;
    }
    cJSON_Delete(old);
    if (!g->fwd_timer)
        aemp_after(g->node, 1 + randombytes_uniform(2000) / 1000.0, fwd_due, g, &g->fwd_timer);
}

static void on_nodes(struct peerctx *pc, const cJSON *kv)
{
    struct global *g = pc->g;
    int from_master = g->master && !strcmp(pc->nodeid, g->master), n = 0;
    for (const cJSON *e = cJSON_IsObject(kv) ? kv->child : NULL; e; e = e->next, n++) {
        if (!strcmp(e->string, g->node->id)) continue;
        int up = aemp_node_is_up(g->node, e->string);
        /* A node without listen addresses (an `aemp snd` node) cannot be
         * dialed; it connects to whom it needs itself. */
        if (!up && (!cJSON_IsArray(e) || !cJSON_GetArraySize(e))) continue;
        if (!up && !transport_is_known(g->node->transport, e->string) && pc->introduced++ >= MAX_INTRODUCED) {
            if (pc->introduced == MAX_INTRODUCED + 1)
                aemp_log_peer(4, "%s told us of more than %d nodes we did not know: ignoring the "
                         "rest", pc->nodeid, MAX_INTRODUCED);
            continue;
        }
        if (!up) transport_set_addrs(g->node->transport, e->string, e);
        start_node(g, e->string);
        if (from_master) strmap_put(&g->told, e->string, g, NULL);
    }
    aemp_log(9, "global: %s told us of %d nodes", pc->nodeid, n);
}

static int connect_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct peerctx *pc = ud;
    struct global *g = pc->g;
    const cJSON *jt = cJSON_GetArrayItem(msg, 0), *a1 = jt ? jt->next : NULL;
    const char *tag = jt && cJSON_IsString(jt) ? jt->valuestring : "";
    const char *from = pc->nodeid;
    if (!strcmp(tag, "setup")) {
        aemp_log(9, "global: %s is set up", from);
    } else if (!strcmp(tag, "addr")) {
        on_addr(g, from, a1);
    } else if (!strcmp(tag, "nodes")) {
        on_nodes(pc, a1);
    } else if (!strcmp(tag, "set")) {
        for (const cJSON *e = cJSON_IsObject(a1) ? a1->child : NULL; e; e = e->next)
            groups_change(g, e->string, e, NULL);
    } else if (!strcmp(tag, "find")) {
        const cJSON *addrs = cJSON_IsString(a1) ? strmap_get(&g->addr, a1->valuestring) : NULL;
        if (addrs) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, a1->valuestring, cJSON_Duplicate(addrs, 1));
            send_to(g, from, mk("nodes", o));
        }
    } else if (!strcmp(tag, "reg0") || !strcmp(tag, "reg1")) {
        const cJSON *p = a1 ? a1->next : NULL;
        if (p && cJSON_IsString(a1) && cJSON_IsString(p)) {
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_CreateString(p->valuestring));
            groups_change(g, a1->valuestring, tag[3] == '1' ? one : NULL, tag[3] == '0' ? one : NULL);
            cJSON_Delete(one);
        }
    } else if (!strcmp(tag, "seedme0")) {
        strmap_del(&g->seedme, from);
    } else if (!strcmp(tag, "seedme1")) {
        strmap_put(&g->seedme, from, g, NULL);
        if (g->addr.len) send_to(g, from, mk("nodes", addr_object(g)));
    } else {
        aemp_log_peer(6, "global: unknown request \"%s\" from %s ignored", tag, from);
    }
    return 0;
}

static void peer_node_down(aemp_node *node, const char *nodeid, const cJSON *reason, void *ud)
{
    struct peerctx *pc = ud;
    aemp_guard_free(pc->mon); /* inert: it fired */
    pc->mon = NULL;
    strmap_del(&pc->g->seedme, pc->nodeid);
    aemp_kil(node, pc->self, NULL);
}

/* Take `pc` out of the list of `g` (its owner's) and free it. */
static void peerctx_free_in(struct global *g, struct peerctx *pc)
{
    if (g->pcs == pc) g->pcs = pc->next; /* the head */
    else if (pc->prev) pc->prev->next = pc->next;
    if (pc->next) pc->next->prev = pc->prev;
    aemp_guard_free(pc->mon);
    free(pc->nodeid);
    free(pc->self);
    free(pc);
}

static void peerctx_release(void *ud)
{
    struct peerctx *pc = ud;
    peerctx_free_in(pc->g, pc);
}

/* AnyEvent::MP::Global::connect(VERSION, NODE), spawned on us by NODE. */
static int global_connect(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct global *g = ud;
    const cJSON *ver = cJSON_GetArrayItem(args, 0), *who = cJSON_GetArrayItem(args, 1);
    if (!self) {
        aemp_fail(node, "Global::connect must be spawned");
        return -1;
    }
    if (!cJSON_IsNumber(ver) || (int)ver->valuedouble != GLOBAL_VERSION) {
        aemp_fail(node, "node version mismatch (we have %d)", GLOBAL_VERSION);
        return -1;
    }
    if (!cJSON_IsString(who)) {
        aemp_fail(node, "Global::connect needs the node ID");
        return -1;
    }
    /* Only the node that sent the spawn may connect as itself: a NODE naming
     * another (or no) node would leave a port monitoring a node that never
     * comes up, living for good. */
    const char *caller = aemp_caller(node);
    if (!caller || strcmp(caller, who->valuestring)) {
        /* one line a second at most: a peer can send many of these */
        struct timeval tv;
        event_base_gettimeofday_cached(aemp_node_base(node), &tv);
        double t = tv.tv_sec + tv.tv_usec / 1e6;
        g->connect_refused++;
        if (t - g->connect_logged >= 1) {
            aemp_log(5, "Global::connect for %s requested by %s refused: a node may only "
                     "connect as itself (%lu refused since the last such line)",
                     who->valuestring, caller ? caller : "?", g->connect_refused);
            g->connect_refused = 0;
            g->connect_logged = t;
        }
        aemp_fail(node, "Global::connect: node %s is not the caller", who->valuestring);
        return -1;
    }
    struct peerctx *pc = calloc(1, sizeof *pc);
    if (!pc || !(pc->nodeid = strdup(who->valuestring)) || !(pc->self = strdup(self))) {
        if (pc) free(pc->nodeid);
        free(pc);
        return -1;
    }
    pc->g = g;
    pc->next = g->pcs;
    if (pc->next) pc->next->prev = pc;
    g->pcs = pc;
    aemp_rcv(node, self, NULL, connect_rcv, pc);
    aemp_mon_guard(node, self, peerctx_release, pc, NULL);
    aemp_mon(node, pc->nodeid, peer_node_down, pc, &pc->mon);
    return 0;
}

/* ------------------------------------------------------------ lifetime */

static int global_start(struct aemp_node *node, char *err, size_t errlen)
{
    struct global *g = calloc(1, sizeof *g);
    if (!g) return AEMP_ENOMEM;
    g->node = node;
    builtin_set_state(node, &global_builtin, g);
    int rc = aemp_register(node, CONNECT_FN, global_connect, g);
    if (rc == 0) rc = aemp_mon_nodes(node, node_changed, g, &g->nodemon);
    if (rc) snprintf(err, errlen, "cannot start the global service: %s", aemp_strerror(rc));
    return rc;
}

/* No callbacks. */
static void global_free(struct aemp_node *node)
{
    struct global *g = global_of(node);
    if (!g) return;
    builtin_set_state(node, &global_builtin, NULL);
    /* No callbacks and no messages: the guards' targets are freed with the
     * core's monitors and timers. */
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->addr, &it, &k, &v))
        cJSON_Delete(v);
    strmap_free(&g->addr);
    it = 0;
    while (strmap_next(&g->port, &it, &k, &v))
        free(v);
    strmap_free(&g->port);
    it = 0;
    while (strmap_next(&g->portmon, &it, &k, &v)) {
        guard_detach(v);
        aemp_guard_free(v);
    }
    strmap_free(&g->portmon);
    strmap_free(&g->seedme);
    strmap_free(&g->up);
    strmap_free(&g->told);
    guard_detach(g->report);
    aemp_guard_free(g->report);
    while (g->pcs) {
        struct peerctx *pc = g->pcs;
        guard_detach(pc->mon);
        peerctx_free_in(g, pc);
    }
    groups_free(g);
    guard_detach(g->fwd_timer);
    aemp_guard_free(g->fwd_timer);
    it = 0;
    while (strmap_next(&g->fwd, &it, &k, &v))
        cJSON_Delete(v);
    strmap_free(&g->fwd);
    guard_detach(g->nodemon);
    aemp_guard_free(g->nodemon);
    free(g->master);
    free(g);
}

const struct core_builtin global_builtin = {
    .name = "global", .start = global_start, .free = global_free};
