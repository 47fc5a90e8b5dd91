/* What other nodes can make a node hold through data connections, with
 * nodes on one event loop over real TCP on 127.0.0.1: with a descriptor
 * limit of 256 a node holds at most 96 data connections others asked for
 * ((256 - 64) / 2) and 24 (a quarter) from one node, expected or in use;
 * held connections (a function that keeps them, as a stalled transfer
 * does) count until freed; what a node asked to expect goes when it goes
 * down (issue 17 section 4, issue 18). */
#include "aemp.h"
#include "nettest.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/resource.h>

#define FDS 256
#define SHARE 24

/* Lower the descriptor limit for the nodes made next; restores it. */
static rlim_t limit_fds(rlim_t n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = n;
    CHECK_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return old;
}

/* The receiving function: keeps every connection and reads nothing. */
struct hold {
    struct bufferevent *bev[64];
    int n;
};

static void hold_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)node, (void)args;
    struct hold *h = ud;
    if (h->n < 64) h->bev[h->n++] = bev;
    else bufferevent_free(bev);
}

/* The connecting side: counts successes and failures. */
struct tally {
    int ok, failed, done;
    char error[256];
    struct bufferevent *bev[64];
};

static void tally_up(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    (void)node;
    struct tally *t = ud;
    t->done++;
    if (bev) {
        if (t->ok < 64) t->bev[t->ok] = bev;
        else bufferevent_free(bev);
        t->ok++;
    } else {
        t->failed++;
        snprintf(t->error, sizeof t->error, "%s", error);
    }
}

static void tally_free(struct tally *t)
{
    for (int i = 0; i < t->ok && i < 64; i++)
        bufferevent_free(t->bev[i]);
}

/* dcl-b with the function test::hold (keeping into h), and dcl-a and dcl-c
 * seeded with it and seeing it up. */
static void three_nodes(struct event_base *base, aemp_node **a, aemp_node **b, aemp_node **c,
                        struct hold *h)
{
    *b = mknode(base, "dcl-b", 1, NULL, "s3cret", NULL, 10);
    *a = mknode(base, "dcl-a", 1, addr_of(*b), "s3cret", NULL, 10);
    *c = mknode(base, "dcl-c", 1, addr_of(*b), "s3cret", NULL, 10);
    CHECK_INT(aemp_dataconn_register(*b, "test::hold", hold_start, h), 0);
    CHECK(wait_up(base, *a, "dcl-b", 10));
    CHECK(wait_up(base, *c, "dcl-b", 10));
}

/* A time request answered: everything sent before it was handled. */
static void time_done(aemp_node *n, const cJSON *reply, const cJSON *error, void *ud)
{
    (void)n, (void)error;
    *(int *)ud = reply ? 1 : -1;
}

static int sync_with(struct event_base *base, aemp_node *a, const char *bid)
{
    int got = 0;
    aemp_cal(a, bid, json("[\"time\"]"), 10, time_done, &got);
    run_until(base, &got, 1, 12);
    return got == 1;
}

static void test_held_connections_count_toward_a_share_until_freed(void)
{
    rlim_t old = limit_fds(FDS);
    struct event_base *base = event_base_new();
    aemp_node *a, *b, *c;
    struct hold h = {0};
    three_nodes(base, &a, &b, &c, &h);
    /* 40 stalled connections from one node: its share is taken, no more */
    struct tally t = {0};
    for (int i = 0; i < 40; i++)
        CHECK_INT(aemp_dataconn_connect(a, "dcl-b", 10, "test::hold", NULL, tally_up, &t), 0);
    CHECK(run_until(base, &t.done, 40, 30));
    CHECK_INT(t.ok, SHARE);
    CHECK_INT(t.failed, 40 - SHARE);
    CHECK_INT(h.n, SHARE);
    CHECK(strstr(t.error, "too many data connections from dcl-a") != NULL);
    /* the node still answers, and another node still gets its own */
    CHECK(sync_with(base, c, "dcl-b"));
    struct tally u = {0};
    CHECK_INT(aemp_dataconn_connect(c, "dcl-b", 10, "test::hold", NULL, tally_up, &u), 0);
    CHECK(run_until(base, &u.done, 1, 10));
    CHECK_INT(u.ok, 1);
    /* connections the function frees no longer count */
    for (int i = 0; i < 4; i++)
        bufferevent_free(h.bev[i]);
    struct tally v = {0};
    for (int i = 0; i < 6; i++)
        aemp_dataconn_connect(a, "dcl-b", 10, "test::hold", NULL, tally_up, &v);
    CHECK(run_until(base, &v.done, 6, 20));
    CHECK_INT(v.ok, 4);
    CHECK_INT(v.failed, 2);
    for (int i = 4; i < h.n; i++)
        bufferevent_free(h.bev[i]);
    tally_free(&t);
    tally_free(&u);
    tally_free(&v);
    aemp_node_free(c);
    aemp_node_free(a);
    aemp_node_free(b);
    event_base_free(base);
    limit_fds(old);
}

/* `n` raw _expect requests from `a` to `bid` (timeout an hour), each with a
 * port of its own whose death (the refusal) counts in r. */
static void expect_many(aemp_node *a, const char *bid, int n, struct rec *r)
{
    char id[128];
    for (int i = 0; i < n; i++) {
        char *p = aemp_port(a);
        aemp_mon(a, p, rec_mon, r, NULL);
        snprintf(id, sizeof id, "x%d.%d@%s", n, i, aemp_node_id(a));
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("AnyEvent::MP::DataConn::_expect"));
        cJSON_AddItemToArray(m, cJSON_CreateString(id));
        cJSON_AddItemToArray(m, cJSON_CreateString(p));
        cJSON_AddItemToArray(m, cJSON_CreateNumber(3600));
        cJSON_AddItemToArray(m, cJSON_CreateString("test::hold"));
        aemp_snd(a, bid, m);
        free(p);
    }
}

static void test_a_departed_node_leaves_no_expectations(void)
{
    rlim_t old = limit_fds(FDS);
    struct event_base *base = event_base_new();
    aemp_node *a, *b, *c;
    struct hold h = {0};
    three_nodes(base, &a, &b, &c, &h);
    /* 300 expectations for an hour: one node's share is kept, the rest
     * refused at once */
    struct rec r = {0};
    expect_many(a, "dcl-b", 300, &r);
    CHECK(sync_with(base, a, "dcl-b"));
    CHECK(run_until(base, &r.calls, 300 - SHARE, 10));
    CHECK_INT(r.calls, 300 - SHARE);
    char *why = cJSON_PrintUnformatted(r.last);
    CHECK(why && strstr(why, "too many data connections from dcl-a"));
    free(why);
    /* another node is not locked out */
    struct tally t = {0};
    aemp_dataconn_connect(c, "dcl-b", 10, "test::hold", NULL, tally_up, &t);
    CHECK(run_until(base, &t.done, 1, 10));
    CHECK_INT(t.ok, 1);
    rec_free(&r);
    /* a goes; its 24 expectations go with it: a node of the same name
     * gets a whole share again */
    aemp_node_free(a);
    int never = 0;
    for (int i = 0; i < 200 && aemp_node_is_up(b, "dcl-a"); i++)
        run_until(base, &never, 1, 0.05);
    CHECK(!aemp_node_is_up(b, "dcl-a"));
    a = mknode(base, "dcl-a", 1, addr_of(b), "s3cret", NULL, 10);
    CHECK(wait_up(base, a, "dcl-b", 10));
    struct rec r2 = {0};
    expect_many(a, "dcl-b", SHARE, &r2);
    CHECK(sync_with(base, a, "dcl-b"));
    run_until(base, &never, 1, 0.2);
    CHECK_INT(r2.calls, 0);
    rec_free(&r2);
    for (int i = 0; i < h.n; i++)
        bufferevent_free(h.bev[i]);
    tally_free(&t);
    aemp_node_free(c);
    aemp_node_free(a);
    aemp_node_free(b);
    event_base_free(base);
    limit_fds(old);
}

T_MAIN(T(test_held_connections_count_toward_a_share_until_freed),
       T(test_a_departed_node_leaves_no_expectations))
