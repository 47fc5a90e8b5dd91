/* mon.c - monitors and guards. Monitors are kept per watched port ID (local
 * or remote) in one list each; the first local monitor on a remote port
 * sends "mon1" to its node and removing the last one sends "mon0". A list is
 * taken out of the table before it fires, so every monitor fires once.
 *
 * An index by node (struct nodeidx) holds the lists of each node's ports and
 * the mon1 monitors each node holds on our ports, so that a node going down
 * costs the work of that node's monitors only, however many others exist. */
#include "core.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

enum mon_kind { MON_CB, MON_KIL, MON_SND, MON_GUARD, MON_REMOTE };

struct monlist;
struct nodeidx;

struct monitor {
    struct monitor *next, *prev;
    struct monitor *rnext, *rprev; /* MON_REMOTE: in its srcnode's index */
    struct nodeidx *ridx;          /* MON_REMOTE: that index, or NULL */
    struct monlist *list;
    enum mon_kind kind;
    aemp_mon_fn fn;              /* MON_CB */
    void (*release)(void *ud);   /* MON_GUARD */
    void *ud;
    char *victim;                /* MON_KIL */
    char *dest;                  /* MON_SND: destination port */
    cJSON *msg;                  /* MON_SND: message before the reason */
    char *srcnode;               /* MON_REMOTE: the node that sent mon1 */
    aemp_guard *guard;           /* or NULL */
};

struct monlist {
    struct monitor *head;
    char *port;   /* the watched port ID (owned) */
    int firing;   /* out of the table, being fired */
    int remote;   /* mon1 was sent for it */
    struct monlist *nnext, *nprev; /* in the index of the port's node */
    struct nodeidx *nidx;          /* that index, or NULL */
};

/* What one node ID has in the monitor tables (node_core.monnodes). Freed as
 * soon as both lists are empty. */
struct nodeidx {
    strmap *map;             /* the table it is in */
    char *nodeid;            /* its key (owned copy) */
    struct monlist *lists;   /* lists of ports of this node (and its bare ID) */
    size_t nlists;
    struct monitor *remotes; /* mon1 monitors this node holds on our ports */
};

/* ------------------------------------------------------- the node index */

/* The index of the node of `port` (the part before '#'), created when new;
 * NULL when out of memory. */
static struct nodeidx *idx_get(strmap *map, const char *port)
{
    const char *h = strchr(port, '#');
    size_t n = h ? (size_t)(h - port) : strlen(port);
    char stackbuf[256], *key = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
    if (!key) return NULL;
    memcpy(key, port, n);
    key[n] = 0;
    struct nodeidx *x = strmap_get(map, key);
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x || !(x->nodeid = strdup(key)) || strmap_put(map, key, x, NULL)) {
            if (x) free(x->nodeid);
            free(x);
            x = NULL;
        } else {
            x->map = map;
        }
    }
    if (key != stackbuf) free(key);
    return x;
}

static void idx_maybe_free(struct nodeidx *x)
{
    if (x->lists || x->remotes) return;
    strmap_del(x->map, x->nodeid);
    free(x->nodeid);
    free(x);
}

static void idx_add_list(struct nodeidx *x, struct monlist *l)
{
    l->nidx = x;
    l->nprev = NULL;
    l->nnext = x->lists;
    if (l->nnext) l->nnext->nprev = l;
    x->lists = l;
    x->nlists++;
}

/* Take list `l` out of its node's index (which may be freed). */
static void idx_del_list(struct monlist *l)
{
    struct nodeidx *x = l->nidx;
    if (!x) return;
    if (l->nprev) l->nprev->nnext = l->nnext;
    else x->lists = l->nnext;
    if (l->nnext) l->nnext->nprev = l->nprev;
    l->nnext = l->nprev = NULL;
    l->nidx = NULL;
    x->nlists--;
    idx_maybe_free(x);
}

static void idx_add_remote(struct nodeidx *x, struct monitor *m)
{
    m->ridx = x;
    m->rprev = NULL;
    m->rnext = x->remotes;
    if (m->rnext) m->rnext->rprev = m;
    x->remotes = m;
}

static void idx_del_remote(struct monitor *m)
{
    struct nodeidx *x = m->ridx;
    if (!x) return;
    if (m->rprev) m->rprev->rnext = m->rnext;
    else x->remotes = m->rnext;
    if (m->rnext) m->rnext->rprev = m->rprev;
    m->rnext = m->rprev = NULL;
    m->ridx = NULL;
    idx_maybe_free(x);
}

/* ---------------------------------------------------------------- guards */

aemp_guard *guard_new(aemp_node *node, void (*cancel)(aemp_guard *), void *target)
{
    aemp_guard *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->node = node;
    g->target = target;
    g->cancel = cancel;
    g->next = node->core->guards;
    if (g->next) g->next->prev = g;
    node->core->guards = g;
    return g;
}

void guard_detach(aemp_guard *guard)
{
    if (guard) guard->target = NULL;
}

void aemp_guard_free(aemp_guard *guard)
{
    if (!guard) return;
    if (guard->node) {
        if (guard->target) guard->cancel(guard);
        struct node_core *c = guard->node->core;
        if (c->guards == guard) c->guards = guard->next; /* the head */
        else if (guard->prev) guard->prev->next = guard->next;
        if (guard->next) guard->next->prev = guard->prev;
    }
    free(guard);
}

/* -------------------------------------------------------------- the lists */

static void monitor_free(struct monitor *m)
{
    free(m->victim);
    free(m->dest);
    free(m->srcnode);
    cJSON_Delete(m->msg);
    free(m);
}

/* Take `m` off `l`, its own list. */
static void unlink_monitor_in(struct monlist *l, struct monitor *m)
{
    idx_del_remote(m);
    if (l->head == m) l->head = m->next; /* the head */
    else if (m->prev) m->prev->next = m->next;
    if (m->next) m->next->prev = m->prev;
    m->next = m->prev = NULL;
}

static void unlink_monitor(struct monitor *m)
{
    unlink_monitor_in(m->list, m);
}

/* ["", TAG, PORTNAME] to node `nodeid`. */
static void send_tag(aemp_node *node, const char *nodeid, const char *tag, const char *name)
{
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString(""));
    cJSON_AddItemToArray(msg, cJSON_CreateString(tag));
    cJSON_AddItemToArray(msg, cJSON_CreateString(name));
    core_send_node(node, nodeid, msg);
}

/* Forget list `l` (empty, in the table). Sends mon0 for a remote port. */
static void list_drop(aemp_node *node, struct monlist *l)
{
    strmap_del(&node->core->mons, l->port);
    idx_del_list(l);
    if (l->remote) {
        char *nodeid = aemp_node_of(l->port);
        if (nodeid) send_tag(node, nodeid, "mon0", strchr(l->port, '#') + 1);
        free(nodeid);
    }
    free(l->port);
    free(l);
}

static void mon_cancel(aemp_guard *g)
{
    struct monitor *m = g->target;
    struct monlist *l = m->list;
    unlink_monitor(m);
    if (m->kind == MON_GUARD) m->release(m->ud); /* mon_guard: release now */
    monitor_free(m);
    if (!l->head && !l->firing) list_drop(g->node, l);
}

/* Add `m` (taken) to the monitors of `port`. For a remote port the first
 * monitor sends mon1; for a local port that does not exist a check is
 * queued that fires no_such_port from the loop. */
static int add_monitor(aemp_node *node, const char *port, struct monitor *m, aemp_guard **guard)
{
    struct node_core *c = node->core;
    if (guard) *guard = NULL;
    if (!port || !*port || *port == '#') {
        monitor_free(m);
        return AEMP_EINVAL;
    }
    struct monlist *l = strmap_get(&c->mons, port);
    int fresh = !l;
    if (fresh) {
        struct nodeidx *x = idx_get(&c->monnodes, port);
        l = x ? calloc(1, sizeof *l) : NULL;
        if (!l || !(l->port = strdup(port)) || strmap_put(&c->mons, port, l, NULL)) {
            if (l) free(l->port);
            free(l);
            if (x) idx_maybe_free(x);
            monitor_free(m);
            return AEMP_ENOMEM;
        }
        idx_add_list(x, l);
    }
    if (m->kind == MON_REMOTE) {
        struct nodeidx *x = idx_get(&c->monnodes, m->srcnode);
        if (!x) {
            monitor_free(m);
            if (!l->head) list_drop(node, l);
            return AEMP_ENOMEM;
        }
        idx_add_remote(x, m);
    }
    if (guard) {
        m->guard = *guard = guard_new(node, mon_cancel, m);
        if (!*guard) {
            monitor_free(m);
            if (!l->head) list_drop(node, l);
            return AEMP_ENOMEM;
        }
    }
    m->list = l;
    m->next = l->head;
    if (l->head) l->head->prev = m;
    l->head = m;
    const char *name;
    if (core_is_local(node, port, &name)) {
        if (*name && !strmap_get(&c->ports, name)) core_enqueue_check(node, name);
    } else if (fresh && strchr(port, '#')) {
        char *nodeid = aemp_node_of(port);
        l->remote = 1;
        if (nodeid) send_tag(node, nodeid, "mon1", strchr(port, '#') + 1);
        free(nodeid);
    }
    return 0;
}

/* Run what monitor `m` was set up to do when its port died with `reason`. */
static void run_monitor(aemp_node *node, struct monitor *m, const char *port,
                        const cJSON *reason)
{
    switch (m->kind) {
    case MON_CB:
        m->fn(node, port, reason, m->ud);
        break;
    case MON_KIL:
        if (cJSON_GetArraySize(reason) > 0)
            aemp_kil(node, m->victim, cJSON_Duplicate(reason, 1));
        break;
    case MON_SND: {
        cJSON *msg = m->msg;
        m->msg = NULL;
        for (const cJSON *r = reason ? reason->child : NULL; r; r = r->next)
            cJSON_AddItemToArray(msg, cJSON_Duplicate(r, 1));
        aemp_snd(node, m->dest, msg);
        break;
    }
    case MON_GUARD:
        m->release(m->ud);
        break;
    case MON_REMOTE: {
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString(""));
        cJSON_AddItemToArray(msg, cJSON_CreateString("kil0"));
        cJSON_AddItemToArray(msg, cJSON_CreateString(strchr(port, '#') + 1));
        for (const cJSON *r = reason ? reason->child : NULL; r; r = r->next)
            cJSON_AddItemToArray(msg, cJSON_Duplicate(r, 1));
        core_send_node(node, m->srcnode, msg);
        break;
    }
    }
}

void mon_fire(aemp_node *node, const char *port, const cJSON *reason)
{
    struct monlist *l = strmap_del(&node->core->mons, port);
    if (!l) return;
    idx_del_list(l);
    l->firing = 1;
    struct monitor *m;
    while ((m = l->head)) {
        unlink_monitor_in(l, m);
        guard_detach(m->guard);
        run_monitor(node, m, l->port, reason);
        monitor_free(m);
    }
    free(l->port);
    free(l);
}

void mon_fire_node(aemp_node *node, const char *nodeid, const cJSON *reason)
{
    struct node_core *c = node->core;
    struct nodeidx *x = strmap_get(&c->monnodes, nodeid);
    if (!x) return;
    /* The lost node no longer monitors our ports. */
    while ((x = strmap_get(&c->monnodes, nodeid)) && x->remotes) {
        struct monitor *m = x->remotes;
        struct monlist *l = m->list;
        unlink_monitor(m); /* may free x */
        monitor_free(m);
        if (!l->head && !l->firing) list_drop(node, l);
    }
    /* Fire the monitors on its ports: the ports as they are now (monitors
     * set up by the callbacks wait for the next event). */
    x = strmap_get(&c->monnodes, nodeid);
    size_t n = x ? x->nlists : 0, k = 0;
    char **ports = n ? calloc(n, sizeof *ports) : NULL;
    if (n && !ports) return;
    for (struct monlist *l = x ? x->lists : NULL; l && k < n; l = l->nnext) {
        l->remote = 0; /* the node is gone: no mon0 later */
        ports[k++] = strdup(l->port);
    }
    for (size_t i = 0; i < k; i++) {
        if (ports[i]) mon_fire(node, ports[i], reason);
        free(ports[i]);
    }
    free(ports);
}

void mon_remote_add(aemp_node *node, const char *srcnode, const char *name)
{
    char *id = core_port_id(node->id, name);
    if (!id) return;
    if (!*name || !strmap_get(&node->core->ports, name)) {
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString(""));
        cJSON_AddItemToArray(msg, cJSON_CreateString("kil0"));
        cJSON_AddItemToArray(msg, cJSON_CreateString(name));
        cJSON_AddItemToArray(msg, cJSON_CreateString("no_such_port"));
        cJSON_AddItemToArray(msg, cJSON_CreateString("cannot monitor nonexistent port"));
        cJSON_AddItemToArray(msg, cJSON_CreateString(id));
        core_send_node(node, srcnode, msg);
        /* 1.30 writes this kil0 at once, ahead of what the requests after
         * the mon1 cause (the Perl tool's `aemp snd` tells a missing port
         * by the kil0 reaching it before the relayed proof) */
        transport_flush_node(node->transport, srcnode);
        free(id);
        return;
    }
    struct monlist *l = strmap_get(&node->core->mons, id);
    for (struct monitor *m = l ? l->head : NULL; m; m = m->next)
        if (m->kind == MON_REMOTE && !strcmp(m->srcnode, srcnode)) {
            free(id);
            return;
        }
    struct monitor *m = calloc(1, sizeof *m);
    if (m && (m->srcnode = strdup(srcnode))) {
        m->kind = MON_REMOTE;
        add_monitor(node, id, m, NULL);
    } else {
        free(m);
    }
    free(id);
}

void mon_remote_del(aemp_node *node, const char *srcnode, const char *name)
{
    char *id = core_port_id(node->id, name);
    if (!id) return;
    struct monlist *l = strmap_get(&node->core->mons, id);
    for (struct monitor *m = l ? l->head : NULL; m; m = m->next)
        if (m->kind == MON_REMOTE && !strcmp(m->srcnode, srcnode)) {
            unlink_monitor(m);
            monitor_free(m);
            if (!l->head) list_drop(node, l);
            break;
        }
    free(id);
}

void mon_free_all(aemp_node *node)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&node->core->mons, &it, &k, &v)) {
        struct monlist *l = v;
        while (l->head) {
            struct monitor *m = l->head;
            unlink_monitor_in(l, m);
            monitor_free(m);
        }
        idx_del_list(l);
        free(l->port);
        free(l);
    }
    strmap_free(&node->core->mons);
    strmap_free(&node->core->monnodes); /* empty now */
}

/* ------------------------------------------------------------ public API */

static struct monitor *monitor_new(enum mon_kind kind)
{
    struct monitor *m = calloc(1, sizeof *m);
    if (m) m->kind = kind;
    return m;
}

int aemp_mon(aemp_node *node, const char *port, aemp_mon_fn fn, void *ud, aemp_guard **guard)
{
    struct monitor *m = monitor_new(MON_CB);
    if (!m || !fn) {
        free(m);
        return m ? AEMP_EINVAL : AEMP_ENOMEM;
    }
    m->fn = fn;
    m->ud = ud;
    return add_monitor(node, port, m, guard);
}

int aemp_mon_kil(aemp_node *node, const char *port, const char *victim, aemp_guard **guard)
{
    struct monitor *m = monitor_new(MON_KIL);
    if (!m) return AEMP_ENOMEM;
    if (!victim || !(m->victim = strdup(victim))) {
        free(m);
        return victim ? AEMP_ENOMEM : AEMP_EINVAL;
    }
    return add_monitor(node, port, m, guard);
}

int aemp_mon_self(aemp_node *node, const char *port, aemp_guard **guard)
{
    if (!node->core->self) return AEMP_ESTATE;
    return aemp_mon_kil(node, port, node->core->self, guard);
}

int aemp_mon_snd(aemp_node *node, const char *port, const char *dest, cJSON *msg,
                 aemp_guard **guard)
{
    struct monitor *m = monitor_new(MON_SND);
    if (!m || !dest || !cJSON_IsArray(msg) || !(m->dest = strdup(dest))) {
        int rc = m && (!dest || !cJSON_IsArray(msg)) ? AEMP_EINVAL : AEMP_ENOMEM;
        free(m);
        cJSON_Delete(msg);
        return rc;
    }
    m->msg = msg;
    return add_monitor(node, port, m, guard);
}

int aemp_mon_guard(aemp_node *node, const char *port, void (*release)(void *ud), void *ud,
                   aemp_guard **guard)
{
    struct monitor *m = monitor_new(MON_GUARD);
    if (!m || !release) {
        free(m);
        return m ? AEMP_EINVAL : AEMP_ENOMEM;
    }
    m->release = release;
    m->ud = ud;
    return add_monitor(node, port, m, guard);
}
