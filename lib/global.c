/* global.c - AnyEvent::MP::Global (PROTOCOL.md section 7): every node that
 * comes up gets a rendezvous port spawned on it ("Global::connect"), through
 * which the two nodes exchange listen addresses, known nodes and port-group
 * members. A master chosen among the connected seeds forwards new nodes to
 * us, which gives a full mesh; groups live in every node's table.
 *
 * Built on the public API (spawn, rcv, snd, mon, mon_nodes) plus the
 * transport's address book. */
#include "global.h"

#include "core.h"
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

/* A local registration (grp_reg). */
struct reg {
    struct reg *next, *prev;
    char *group, *port;
    aemp_guard *mon;  /* our monitor on the port */
    aemp_guard *user; /* the guard handed to the caller, or NULL */
    struct global *g;
};

/* The groups with members on one node: group -> how many (uintptr_t). */
struct nodegroups {
    strmap groups;
};

/* A grp_mon watcher, in its group's list from the start; it hears of
 * changes once its first call (from the loop, as 1.30) has been made. */
struct gmon {
    struct gmon *next, *prev;
    struct group *gr;
    char *group;
    aemp_grp_fn fn;
    void *ud;
    aemp_guard *delay; /* the pending first call, NULL once made */
    aemp_guard *user;
};

/* A group as this node sees it network-wide. */
struct group {
    cJSON *members;    /* array of port IDs */
    struct gmon *mons; /* watchers */
};

/* The other side of a rendezvous port we serve (connect on our node). */
struct peerctx {
    struct peerctx *next, *prev; /* in the global's list */
    struct global *g;
    char *nodeid;    /* the node that spawned it */
    char *self;      /* the rendezvous port on our node */
    aemp_guard *mon; /* our monitor of that node */
    int introduced;  /* unknown nodes it told us of (MAX_INTRODUCED) */
};

/* An addr forward due 1-3 s after the addresses arrived. */
struct fwd {
    struct fwd *next, *prev;
    struct global *g;
    char *nodeid;
    cJSON *addrs;
    aemp_guard *timer;
};

struct global {
    aemp_node *node;
    strmap addr;   /* node ID -> cJSON array of its listen addresses */
    strmap port;   /* node ID -> our rendezvous port on it (char *) */
    strmap portmon;/* node ID -> aemp_guard of our monitor on that port */
    strmap seedme; /* node IDs that asked us to seed them (value unused) */
    strmap groups; /* group -> struct group */
    struct reg *regs;
    struct fwd *fwds;
    struct peerctx *pcs;
    char *master;
    int nodecnt;
    strmap memberships; /* node ID -> struct nodegroups: a node leaving costs
                         * the groups it has members in, nothing else */
    unsigned long connect_refused; /* refused Global::connect not yet logged */
    double connect_logged;          /* when one was last logged */
    strmap up;     /* node IDs that are up (value unused): picking a master
                    * costs the up nodes, not every node the transport knows */
    aemp_guard *nodemon;
};

static struct global *G(aemp_node *node)
{
    return node->global;
}

const cJSON *global_node_addrs(aemp_node *node, const char *nodeid)
{
    return node->global ? strmap_get(&node->global->addr, nodeid) : NULL;
}

static void send_to(struct global *g, const char *nodeid, cJSON *msg)
{
    const char *p = strmap_get(&g->port, nodeid);
    if (p) aemp_snd(g->node, p, msg);
    else cJSON_Delete(msg);
}

/* ["TAG"] or ["TAG", ARG (taken)] */
static cJSON *mk(const char *tag, cJSON *arg)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(tag));
    if (arg) cJSON_AddItemToArray(m, arg);
    return m;
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

/* {GROUP: [LOCALPORTS]...} of our own registrations, or NULL if none. */
static cJSON *lreg_object(struct global *g)
{
    if (!g->regs) return NULL;
    cJSON *o = cJSON_CreateObject();
    for (struct reg *r = g->regs; r; r = r->next) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(o, r->group);
        if (!a) a = cJSON_AddArrayToObject(o, r->group);
        cJSON_AddItemToArray(a, cJSON_CreateString(r->port));
    }
    return o;
}

/* ---------------------------------------------------------------- groups */

static int in_array(const cJSON *a, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return 1;
    return 0;
}

/* The group named `group`, created empty when new; NULL when out of memory. */
static struct group *group_get(struct global *g, const char *group)
{
    struct group *gr = strmap_get(&g->groups, group);
    if (gr) return gr;
    gr = calloc(1, sizeof *gr);
    if (!gr || !(gr->members = cJSON_CreateArray()) || strmap_put(&g->groups, group, gr, NULL)) {
        if (gr) cJSON_Delete(gr->members);
        free(gr);
        return NULL;
    }
    return gr;
}

static void nodegroups_free(struct nodegroups *ng)
{
    strmap_free(&ng->groups);
    free(ng);
}

/* Count one more (+1) or one less (-1) member of `group` on the node of
 * `port`. */
static void count_member(struct global *g, const char *group, const char *port, int delta)
{
    const char *h = strchr(port, '#');
    size_t n = h ? (size_t)(h - port) : strlen(port);
    char buf[256], *key = n < sizeof buf ? buf : malloc(n + 1);
    if (!key) return;
    memcpy(key, port, n);
    key[n] = 0;
    struct nodegroups *ng = strmap_get(&g->memberships, key);
    if (delta > 0) {
        if (!ng && (ng = calloc(1, sizeof *ng)) && strmap_put(&g->memberships, key, ng, NULL)) {
            free(ng);
            ng = NULL;
        }
        if (ng) {
            uintptr_t c = (uintptr_t)strmap_get(&ng->groups, group);
            strmap_put(&ng->groups, group, (void *)(c + 1), NULL);
        }
    } else if (ng) {
        uintptr_t c = (uintptr_t)strmap_get(&ng->groups, group);
        if (c > 1) strmap_put(&ng->groups, group, (void *)(c - 1), NULL);
        else strmap_del(&ng->groups, group);
        if (!ng->groups.len) nodegroups_free(strmap_del(&g->memberships, key));
    }
    if (key != buf) free(key);
}

/* Apply additions and removals (borrowed arrays of port IDs) to `group` and
 * tell its watchers what really changed. */
static void change(struct global *g, const char *group, const cJSON *add, const cJSON *del)
{
    struct group *gr = group_get(g, group);
    if (!gr) return;
    cJSON *added = cJSON_CreateArray(), *removed = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, del)
    {
        if (!cJSON_IsString(e)) continue;
        for (cJSON *m = gr->members->child; m; m = m->next)
            if (!strcmp(m->valuestring, e->valuestring)) {
                count_member(g, group, m->valuestring, -1);
                cJSON_AddItemToArray(removed, cJSON_DetachItemViaPointer(gr->members, m));
                break;
            }
    }
    cJSON_ArrayForEach(e, add)
    {
        if (!cJSON_IsString(e) || in_array(gr->members, e->valuestring)) continue;
        cJSON_AddItemToArray(gr->members, cJSON_CreateString(e->valuestring));
        cJSON_AddItemToArray(added, cJSON_CreateString(e->valuestring));
        count_member(g, group, e->valuestring, +1);
    }
    if (added->child || removed->child) {
        aemp_log(8, "group %s: %d added, %d removed, %d members", group,
                 cJSON_GetArraySize(added), cJSON_GetArraySize(removed),
                 cJSON_GetArraySize(gr->members));
        /* A watcher may release itself or others: walk by index on a copy. */
        cJSON *members = cJSON_Duplicate(gr->members, 1);
        for (struct gmon *w = gr->mons, *next; w; w = next) {
            next = w->next;
            if (!w->delay) w->fn(g->node, group, members, added, removed, w->ud);
        }
        cJSON_Delete(members);
    }
    cJSON_Delete(added);
    cJSON_Delete(removed);
}

/* Everything of `nodeid` leaves every group: only the groups it has members
 * in are looked at. */
static void unreg_groups(struct global *g, const char *nodeid)
{
    struct nodegroups *ng = strmap_get(&g->memberships, nodeid);
    if (!ng) return; /* the common case: no members */
    size_t n = strlen(nodeid), it = 0;
    const char *k;
    void *v;
    cJSON *todo = cJSON_CreateObject(); /* group -> ports to delete */
    while (strmap_next(&ng->groups, &it, &k, &v)) {
        struct group *gr = strmap_get(&g->groups, k);
        if (!gr) continue;
        const cJSON *m;
        cJSON *del = NULL;
        cJSON_ArrayForEach(m, gr->members)
        if (!strncmp(m->valuestring, nodeid, n) && (m->valuestring[n] == '#' || !m->valuestring[n])) {
            if (!del) del = cJSON_AddArrayToObject(todo, k);
            cJSON_AddItemToArray(del, cJSON_CreateString(m->valuestring));
        }
    }
    for (cJSON *d = todo->child; d; d = d->next) /* may free ng */
        change(g, d->string, NULL, d);
    cJSON_Delete(todo);
}

/* reg0/reg1 to every rendezvous port. */
static void broadcast_reg(struct global *g, const char *tag, const char *group, const char *port)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->port, &it, &k, &v)) {
        cJSON *m = mk(tag, cJSON_CreateString(group));
        cJSON_AddItemToArray(m, cJSON_CreateString(port));
        aemp_snd(g->node, v, m);
    }
}

static void reg_remove(struct reg *r, int announce)
{
    struct global *g = r->g;
    if (r->prev) r->prev->next = r->next;
    else g->regs = r->next;
    if (r->next) r->next->prev = r->prev;
    guard_detach(r->user);
    aemp_guard_free(r->mon);
    if (announce) {
        cJSON *del = cJSON_CreateArray();
        cJSON_AddItemToArray(del, cJSON_CreateString(r->port));
        change(g, r->group, NULL, del);
        cJSON_Delete(del);
        broadcast_reg(g, "reg0", r->group, r->port);
    }
    free(r->group);
    free(r->port);
    free(r);
}

static void reg_port_died(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct reg *r = ud;
    aemp_guard_free(r->mon); /* inert: it fired */
    r->mon = NULL;
    reg_remove(r, 1);
}

static void reg_guard_cancel(aemp_guard *guard)
{
    reg_remove(guard->target, 1);
}

int aemp_grp_reg(aemp_node *node, const char *group, const char *port, aemp_guard **guard)
{
    struct global *g = G(node);
    const char *name;
    if (guard) *guard = NULL;
    /* a local port, or the bare node ID (1.30's grp_reg GROUP => $NODE) */
    if (!g || !group || !port || !core_is_local(node, port, &name) || (!*name && strchr(port, '#')))
        return AEMP_EINVAL;
    for (struct reg *r = g->regs; r; r = r->next)
        if (!strcmp(r->group, group) && !strcmp(r->port, port)) return AEMP_EEXIST;
    struct reg *r = calloc(1, sizeof *r);
    if (!r || !(r->group = strdup(group)) || !(r->port = strdup(port))) {
        if (r) free(r->group);
        free(r);
        return AEMP_ENOMEM;
    }
    r->g = g;
    r->next = g->regs;
    if (r->next) r->next->prev = r;
    g->regs = r;
    aemp_mon(node, port, reg_port_died, r, &r->mon);
    if (guard) *guard = r->user = guard_new(node, reg_guard_cancel, r);
    broadcast_reg(g, "reg1", group, port);
    cJSON *add = cJSON_CreateArray();
    cJSON_AddItemToArray(add, cJSON_CreateString(port));
    change(g, group, add, NULL);
    cJSON_Delete(add);
    return 0;
}

cJSON *aemp_grp_get(aemp_node *node, const char *group)
{
    struct global *g = G(node);
    struct group *gr = g ? strmap_get(&g->groups, group) : NULL;
    return gr && gr->members->child ? cJSON_Duplicate(gr->members, 1) : NULL;
}

/* The first call of a watcher, from the loop as 1.30 does it: the current
 * members as added, if there are any. */
static void gmon_install(aemp_node *node, void *ud)
{
    struct gmon *w = ud;
    aemp_guard_free(w->delay); /* inert: it fired */
    w->delay = NULL;
    if (w->gr->members->child) {
        cJSON *members = cJSON_Duplicate(w->gr->members, 1), *none = cJSON_CreateArray();
        w->fn(node, w->group, members, members, none, w->ud);
        cJSON_Delete(members);
        cJSON_Delete(none);
    }
}

static void gmon_free(struct gmon *w)
{
    if (w->prev) w->prev->next = w->next;
    else w->gr->mons = w->next;
    if (w->next) w->next->prev = w->prev;
    free(w->group);
    free(w);
}

static void gmon_cancel(aemp_guard *guard)
{
    struct gmon *w = guard->target;
    aemp_guard_free(w->delay); /* a first call still pending is cancelled */
    gmon_free(w);
}

int aemp_grp_mon(aemp_node *node, const char *group, aemp_grp_fn fn, void *ud,
                 aemp_guard **guard)
{
    struct global *g = G(node);
    if (guard) *guard = NULL;
    if (!g || !group || !fn) return AEMP_EINVAL;
    struct group *gr = group_get(g, group);
    struct gmon *w = gr ? calloc(1, sizeof *w) : NULL;
    if (!w || !(w->group = strdup(group))) {
        free(w);
        return AEMP_ENOMEM;
    }
    w->gr = gr;
    w->fn = fn;
    w->ud = ud;
    w->next = gr->mons;
    if (w->next) w->next->prev = w;
    gr->mons = w;
    if (aemp_after(node, 0, gmon_install, w, &w->delay)) {
        gmon_free(w);
        return AEMP_ENOMEM;
    }
    if (guard) *guard = w->user = guard_new(node, gmon_cancel, w);
    return 0;
}

/* ------------------------------------------------------------ the mesh */

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
    aemp_snd(node, p, mk("addr", transport_listen_addrs(node)));
    if (g->addr.len) aemp_snd(node, p, mk("nodes", addr_object(g)));
    cJSON *l = lreg_object(g);
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
        unreg_groups(g, nodeid);
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
    if (g->master) {
        send_to(g, g->master, mk("seedme1", NULL));
        aemp_log(7, "selected new master: %s", g->master);
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
        if (transport_node_is_seed(g->node, k)) cJSON_AddItemToArray(seeds, cJSON_CreateString(k));
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
        if (transport_node_is_seed(node, nodeid)) {
            if (g->master && transport_node_is_seed(node, g->master)) {
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
        unreg_groups(g, nodeid);
        cJSON_Delete(strmap_del(&g->addr, nodeid));
        if (g->master) {
            aemp_log(8, "asking master %s to find %s", g->master, nodeid);
            send_to(g, g->master, mk("find", cJSON_CreateString(nodeid)));
        }
    }
}

/* --------------------------------------- the rendezvous port we serve */

static void fwd_free(struct fwd *f)
{
    struct global *g = f->g;
    if (f->prev) f->prev->next = f->next;
    else g->fwds = f->next;
    if (f->next) f->next->prev = f->prev;
    free(f->nodeid);
    cJSON_Delete(f->addrs);
    free(f);
}

/* 1-3 s after a node told us its addresses: pass them on to every node that
 * asked us to seed it. */
static void fwd_due(aemp_node *node, void *ud)
{
    struct fwd *f = ud;
    struct global *g = f->g;
    aemp_guard_free(f->timer);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->seedme, &it, &k, &v)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, f->nodeid, cJSON_Duplicate(f->addrs, 1));
        send_to(g, k, mk("nodes", o));
    }
    fwd_free(f);
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
    if (cJSON_GetArraySize(addrs)) transport_set_addrs(g->node, from, addrs);
    struct fwd *f = calloc(1, sizeof *f);
    if (!f) {
        cJSON_Delete(addrs);
        return;
    }
    f->g = g;
    f->nodeid = strdup(from);
    f->addrs = addrs;
    f->next = g->fwds;
    if (f->next) f->next->prev = f;
    g->fwds = f;
    aemp_after(g->node, 1 + randombytes_uniform(2000) / 1000.0, fwd_due, f, &f->timer);
}

static void on_nodes(struct peerctx *pc, const cJSON *kv)
{
    struct global *g = pc->g;
    for (const cJSON *e = cJSON_IsObject(kv) ? kv->child : NULL; e; e = e->next) {
        if (!strcmp(e->string, g->node->id)) continue;
        int up = aemp_node_is_up(g->node, e->string);
        /* A node without listen addresses (an `aemp snd` node) cannot be
         * dialed; it connects to whom it needs itself. */
        if (!up && (!cJSON_IsArray(e) || !cJSON_GetArraySize(e))) continue;
        if (!up && !transport_is_known(g->node, e->string) && pc->introduced++ >= MAX_INTRODUCED) {
            if (pc->introduced == MAX_INTRODUCED + 1)
                aemp_log(4, "%s told us of more than %d nodes we did not know: ignoring the "
                         "rest", pc->nodeid, MAX_INTRODUCED);
            continue;
        }
        if (!up) transport_set_addrs(g->node, e->string, e);
        start_node(g, e->string);
    }
}

static int connect_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct peerctx *pc = ud;
    struct global *g = pc->g;
    const cJSON *jt = cJSON_GetArrayItem(msg, 0), *a1 = jt ? jt->next : NULL;
    const char *tag = cJSON_IsString(jt) ? jt->valuestring : "";
    const char *from = pc->nodeid;
    if (!strcmp(tag, "setup")) {
        aemp_log(9, "global: %s is set up", from);
    } else if (!strcmp(tag, "addr")) {
        on_addr(g, from, a1);
    } else if (!strcmp(tag, "nodes")) {
        on_nodes(pc, a1);
    } else if (!strcmp(tag, "set")) {
        for (const cJSON *e = cJSON_IsObject(a1) ? a1->child : NULL; e; e = e->next)
            change(g, e->string, e, NULL);
    } else if (!strcmp(tag, "find")) {
        const cJSON *addrs = cJSON_IsString(a1) ? strmap_get(&g->addr, a1->valuestring) : NULL;
        if (addrs) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, a1->valuestring, cJSON_Duplicate(addrs, 1));
            send_to(g, from, mk("nodes", o));
        }
    } else if (!strcmp(tag, "reg0") || !strcmp(tag, "reg1")) {
        const cJSON *p = a1 ? a1->next : NULL;
        if (cJSON_IsString(a1) && cJSON_IsString(p)) {
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_CreateString(p->valuestring));
            change(g, a1->valuestring, tag[3] == '1' ? one : NULL, tag[3] == '0' ? one : NULL);
            cJSON_Delete(one);
        }
    } else if (!strcmp(tag, "seedme0")) {
        strmap_del(&g->seedme, from);
    } else if (!strcmp(tag, "seedme1")) {
        strmap_put(&g->seedme, from, g, NULL);
        if (g->addr.len) send_to(g, from, mk("nodes", addr_object(g)));
    } else {
        aemp_log(6, "global: unknown request \"%s\" from %s ignored", tag, from);
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

static void peerctx_release(void *ud)
{
    struct peerctx *pc = ud;
    struct global *g = pc->g;
    if (pc->prev) pc->prev->next = pc->next;
    else g->pcs = pc->next;
    if (pc->next) pc->next->prev = pc->prev;
    aemp_guard_free(pc->mon);
    free(pc->nodeid);
    free(pc->self);
    free(pc);
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

int global_start(struct aemp_node *node, char *err, size_t errlen)
{
    struct global *g = calloc(1, sizeof *g);
    if (!g) return AEMP_ENOMEM;
    g->node = node;
    node->global = g;
    int rc = aemp_register(node, CONNECT_FN, global_connect, g);
    if (rc == 0) rc = aemp_mon_nodes(node, node_changed, g, &g->nodemon);
    if (rc) snprintf(err, errlen, "cannot start the global service: %s", aemp_strerror(rc));
    return rc;
}

void global_free(struct aemp_node *node)
{
    struct global *g = node->global;
    if (!g) return;
    node->global = NULL;
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
    while (g->pcs) {
        guard_detach(g->pcs->mon);
        peerctx_release(g->pcs);
    }
    while (g->regs) {
        struct reg *r = g->regs;
        guard_detach(r->mon); /* its monitor goes with the core's */
        reg_remove(r, 0);
    }
    while (g->fwds) {
        guard_detach(g->fwds->timer);
        aemp_guard_free(g->fwds->timer);
        fwd_free(g->fwds);
    }
    it = 0;
    while (strmap_next(&g->groups, &it, &k, &v)) {
        struct group *gr = v;
        while (gr->mons) {
            struct gmon *w = gr->mons;
            guard_detach(w->delay); /* its timer goes with the core's */
            aemp_guard_free(w->delay);
            guard_detach(w->user);
            gmon_free(w);
        }
        cJSON_Delete(gr->members);
        free(gr);
    }
    strmap_free(&g->groups);
    it = 0;
    while (strmap_next(&g->memberships, &it, &k, &v))
        nodegroups_free(v);
    strmap_free(&g->memberships);
    guard_detach(g->nodemon);
    aemp_guard_free(g->nodemon);
    free(g->master);
    free(g);
}
