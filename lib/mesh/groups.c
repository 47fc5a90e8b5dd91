/* groups.c - AnyEvent::MP::Global's port groups (PROTOCOL.md section 7):
 * every node keeps the members of every group network-wide, learns of
 * changes through reg0/reg1 on the rendezvous ports (global.c), registers
 * local ports (grp_reg) and tells watchers (grp_mon). A node leaving costs
 * the groups it has members in. */
#include "global.h"
#include "global_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* See global_int.h. */
void groups_change(struct global *g, const char *group, const cJSON *add, const cJSON *del)
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
void groups_unreg_node(struct global *g, const char *nodeid)
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
        groups_change(g, d->string, NULL, d);
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

/* Take `r` out of the list of `g` (its owner's), tell the mesh when
 * `announce`, and free it. */
static void reg_remove_in(struct global *g, struct reg *r, int announce)
{
    if (g->regs == r) g->regs = r->next; /* the head */
    else if (r->prev) r->prev->next = r->next;
    if (r->next) r->next->prev = r->prev;
    guard_detach(r->user);
    aemp_guard_free(r->mon);
    if (announce) {
        cJSON *del = cJSON_CreateArray();
        cJSON_AddItemToArray(del, cJSON_CreateString(r->port));
        groups_change(g, r->group, NULL, del);
        cJSON_Delete(del);
        broadcast_reg(g, "reg0", r->group, r->port);
    }
    free(r->group);
    free(r->port);
    free(r);
}

static void reg_remove(struct reg *r, int announce)
{
    reg_remove_in(r->g, r, announce);
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
    struct global *g = global_of(node);
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
    groups_change(g, group, add, NULL);
    cJSON_Delete(add);
    return 0;
}

cJSON *aemp_grp_get(aemp_node *node, const char *group)
{
    struct global *g = global_of(node);
    struct group *gr = g ? strmap_get(&g->groups, group) : NULL;
    return gr && gr->members->child ? cJSON_Duplicate(gr->members, 1) : NULL;
}

void global_groups_each(aemp_node *node,
                        void (*fn)(const char *group, const cJSON *members, void *ud), void *ud)
{
    struct global *g = global_of(node);
    size_t it = 0;
    const char *k;
    void *v;
    while (g && strmap_next(&g->groups, &it, &k, &v)) {
        struct group *gr = v;
        if (gr->members && gr->members->child) fn(k, gr->members, ud);
    }
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

/* Take `w` out of the watchers of `gr` (its group) and free it. */
static void gmon_free_in(struct group *gr, struct gmon *w)
{
    if (gr->mons == w) gr->mons = w->next; /* the head */
    else if (w->prev) w->prev->next = w->next;
    if (w->next) w->next->prev = w->prev;
    free(w->group);
    free(w);
}

static void gmon_free(struct gmon *w)
{
    gmon_free_in(w->gr, w);
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
    struct global *g = global_of(node);
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

/* {GROUP: [LOCALPORTS]...} of our own registrations, or NULL if none. */
cJSON *groups_local_object(struct global *g)
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

void groups_free(struct global *g)
{
    while (g->regs) {
        struct reg *r = g->regs;
        guard_detach(r->mon); /* its monitor goes with the core's */
        reg_remove_in(g, r, 0);
    }
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&g->groups, &it, &k, &v)) {
        struct group *gr = v;
        while (gr->mons) {
            struct gmon *w = gr->mons;
            guard_detach(w->delay); /* its timer goes with the core's */
            aemp_guard_free(w->delay);
            guard_detach(w->user);
            gmon_free_in(gr, w);
        }
        cJSON_Delete(gr->members);
        free(gr);
    }
    strmap_free(&g->groups);
    it = 0;
    while (strmap_next(&g->memberships, &it, &k, &v))
        nodegroups_free(v);
    strmap_free(&g->memberships);
}
