/* Tests of the Global service inside one process: two or three nodes on one
 * event loop, connected over real TCP on 127.0.0.1 with the real handshake
 * (HMAC-MD6): the mesh through one seed, port groups, node loss.
 * Multi-process versions with the aemp binary are in tests/e2e. */
#include "aemp.h"
#include "certgen.h"
#include "nettest.h"

/* 1 when every node of `v` has all the others up. */
static int meshed(aemp_node **v, int n)
{
    for (int i = 0; i < n; i++) {
        cJSON *up = aemp_up_nodes(v[i]);
        int k = cJSON_GetArraySize(up);
        cJSON_Delete(up);
        if (k != n - 1) return 0;
    }
    return 1;
}

struct meshwait {
    aemp_node **v;
    int n;
    int done;
};

static void mesh_poll(evutil_socket_t fd, short what, void *arg)
{
    struct meshwait *m = arg;
    m->done = meshed(m->v, m->n);
}

static int wait_mesh(struct event_base *base, aemp_node **v, int n, double seconds)
{
    struct meshwait m = {v, n, 0};
    struct event *ev = event_new(base, -1, EV_PERSIST, mesh_poll, &m);
    struct timeval tv = {0, 10000};
    event_add(ev, &tv);
    run_until(base, &m.done, 1, seconds);
    event_free(ev);
    return m.done;
}

static void test_five_nodes_one_seed_full_mesh(void)
{
    struct event_base *base = event_base_new();
    aemp_node *v[5];
    char id[16];
    v[0] = mknode(base, "seed", 1, NULL, "s3cret", NULL, 5);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", addr_of(v[0]));
    for (int i = 1; i < 5; i++) {
        snprintf(id, sizeof id, "n%d", i);
        v[i] = mknode(base, id, 1, seed, "s3cret", NULL, 5);
    }
    double t0 = now();
    CHECK(wait_mesh(base, v, 5, 20));
    printf("# full mesh of 5 nodes in %.3f s\n", now() - t0);
    for (int i = 4; i >= 0; i--)
        aemp_node_free(v[i]);
    event_base_free(base);
}

/* What the seed's trace shows it sent: "nodes" messages, and the node
 * entries in them. */
struct sent {
    int msgs, entries;
};

static void count_nodes_sent(int level, const char *text, void *ud)
{
    struct sent *c = ud;
    const char *m = strstr(text, ",\"nodes\",{");
    if (level != 9 || strncmp(text, "snd to ", 7) || !m) return;
    c->msgs++;
    for (const char *p = m; (p = strstr(p, "\":[")); p++)
        c->entries++;
}

/* 24 nodes start at once through one seed: the seed passes each node's
 * addresses on to every other (the mesh forms), but in a few messages per
 * node, not one per node and node (576 before batching). */
static void test_the_seed_batches_what_it_passes_on(void)
{
    enum { N = 25 };
    raise_fd_limit();
    struct event_base *base = event_base_new();
    aemp_node *v[N];
    char id[16], seed[128];
    v[0] = mknode(base, "seed", 1, NULL, "s3cret", NULL, 5);
    snprintf(seed, sizeof seed, "%s", addr_of(v[0]));
    struct sent c = {0};
    aemp_trace_set(v[0], 1);
    CHECK_INT(aemp_log_set_handler(count_nodes_sent, &c, 9), 0);
    for (int i = 1; i < N; i++) {
        snprintf(id, sizeof id, "n%d", i);
        v[i] = mknode(base, id, 1, seed, "s3cret", NULL, 5);
    }
    CHECK(wait_mesh(base, v, N, 30));
    /* the last forwards are due 1-3 s after the last node's addresses */
    int never = 0;
    run_until(base, &never, 1, 3.5);
    aemp_log_set_handler(NULL, NULL, 0);
    printf("# the seed sent %d \"nodes\" messages with %d entries\n", c.msgs, c.entries);
    CHECK(c.entries >= (N - 2) * (N - 1)); /* everyone learned of everyone */
    CHECK(c.msgs <= 6 * (N - 1)); /* a table each, a few batches each */
    for (int i = N - 1; i >= 0; i--)
        aemp_node_free(v[i]);
    event_base_free(base);
}

struct grec {
    int calls;
    cJSON *members, *added, *removed;
};

static void grp_cb(aemp_node *node, const char *group, const cJSON *members, const cJSON *added,
                   const cJSON *removed, void *ud)
{
    struct grec *g = ud;
    g->calls++;
    cJSON_Delete(g->members);
    cJSON_Delete(g->added);
    cJSON_Delete(g->removed);
    g->members = cJSON_Duplicate(members, 1);
    g->added = cJSON_Duplicate(added, 1);
    g->removed = cJSON_Duplicate(removed, 1);
}

static void grec_free(struct grec *g)
{
    cJSON_Delete(g->members);
    cJSON_Delete(g->added);
    cJSON_Delete(g->removed);
}

static int has_member(aemp_node *n, const char *group, const char *port)
{
    cJSON *m = aemp_grp_get(n, group);
    int found = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, m) found |= !strcmp(e->valuestring, port);
    cJSON_Delete(m);
    return found;
}

struct memberwait {
    aemp_node **v;
    int n;
    const char *group, *port;
    int want; /* 1: present everywhere, 0: gone everywhere */
    int done;
};

static void member_poll(evutil_socket_t fd, short what, void *arg)
{
    struct memberwait *m = arg;
    int ok = 1;
    for (int i = 0; i < m->n; i++)
        if (m->v[i] && has_member(m->v[i], m->group, m->port) != m->want) ok = 0;
    m->done = ok;
}

static int wait_member(struct event_base *base, aemp_node **v, int n, const char *group,
                       const char *port, int want, double seconds)
{
    struct memberwait m = {v, n, group, port, want, 0};
    struct event *ev = event_new(base, -1, EV_PERSIST, member_poll, &m);
    struct timeval tv = {0, 10000};
    event_add(ev, &tv);
    run_until(base, &m.done, 1, seconds);
    event_free(ev);
    return m.done;
}

static int ignore(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    return 0;
}

static void test_groups_across_the_mesh(void)
{
    struct event_base *base = event_base_new();
    aemp_node *v[3];
    v[0] = mknode(base, "seed", 1, NULL, "s3cret", NULL, 2);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", addr_of(v[0]));
    v[1] = mknode(base, "n1", 1, seed, "s3cret", NULL, 2);
    v[2] = mknode(base, "n2", 0, seed, "s3cret", NULL, 2); /* no listener */
    CHECK(wait_mesh(base, v, 3, 20));
    struct grec watch = {0};
    aemp_guard *wg;
    CHECK_INT(aemp_grp_mon(v[0], "eg_receivers", grp_cb, &watch, &wg), 0);
    /* a member on n1 is seen everywhere */
    char *p = aemp_port(v[1]);
    aemp_rcv(v[1], p, NULL, ignore, NULL);
    aemp_guard *rg;
    CHECK_INT(aemp_grp_reg(v[1], "eg_receivers", p, &rg), 0);
    CHECK_INT(aemp_grp_reg(v[1], "eg_receivers", p, NULL), AEMP_EEXIST);
    CHECK_INT(aemp_grp_reg(v[1], "eg_receivers", "seed#x", NULL), AEMP_EINVAL);
    CHECK(wait_member(base, v, 3, "eg_receivers", p, 1, 5));
    CHECK(watch.calls >= 1 && cJSON_GetArraySize(watch.added) == 1);
    /* a late watcher first gets the current members as added */
    struct grec late = {0};
    aemp_grp_mon(v[2], "eg_receivers", grp_cb, &late, NULL);
    run_until(base, &late.calls, 1, 5);
    CHECK(late.calls == 1 && cJSON_GetArraySize(late.members) == 1 &&
          cJSON_GetArraySize(late.added) == 1 && cJSON_GetArraySize(late.removed) == 0);
    /* killing the port removes it everywhere; the watcher is told */
    aemp_kil(v[1], p, NULL);
    CHECK(wait_member(base, v, 3, "eg_receivers", p, 0, 5));
    CHECK(cJSON_GetArraySize(watch.removed) == 1 &&
          !strcmp(cJSON_GetArrayItem(watch.removed, 0)->valuestring, p));
    aemp_guard_free(rg); /* inert: the port is gone */
    /* releasing the guard removes a member */
    char *q = aemp_port(v[2]);
    aemp_rcv(v[2], q, NULL, ignore, NULL);
    CHECK_INT(aemp_grp_reg(v[2], "eg_receivers", q, &rg), 0);
    CHECK(wait_member(base, v, 3, "eg_receivers", q, 1, 5));
    aemp_guard_free(rg);
    CHECK(wait_member(base, v, 3, "eg_receivers", q, 0, 5));
    /* a member whose node goes away leaves the group */
    char *r = aemp_port(v[1]);
    aemp_rcv(v[1], r, NULL, ignore, NULL);
    aemp_grp_reg(v[1], "eg_receivers", r, NULL);
    CHECK(wait_member(base, v, 3, "eg_receivers", r, 1, 5));
    aemp_node_free(v[1]);
    v[1] = NULL;
    CHECK(wait_member(base, v, 3, "eg_receivers", r, 0, 5));
    CHECK(cJSON_GetArraySize(watch.removed) == 1 &&
          !strcmp(cJSON_GetArrayItem(watch.removed, 0)->valuestring, r));
    aemp_guard_free(wg);
    grec_free(&watch);
    grec_free(&late);
    free(p);
    free(q);
    free(r);
    aemp_node_free(v[2]);
    aemp_node_free(v[0]);
    event_base_free(base);
}

T_MAIN(T(test_five_nodes_one_seed_full_mesh), T(test_the_seed_batches_what_it_passes_on),
       T(test_groups_across_the_mesh))
