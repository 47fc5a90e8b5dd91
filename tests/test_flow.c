/* Flow control (issue 17, section 1): a sender faster than the network is
 * slowed, never cut off. A peer that reads is never dropped however much we
 * queue for it (only one that takes nothing for a stall period is:
 * test_limits_hold's test_output_high_water_mark); aemp_snd says AEMP_BUSY once a
 * node's queue is over the high-water mark, and aemp_on_drain calls back
 * when it is below the low-water mark again.
 *
 * The receiving node runs in a child process (its own loop, so it reads at
 * its own pace) and talks over real TCP on 127.0.0.1. */
#define T_TIMEOUT 280
#include "aemp.h"
#include "nettest.h"
#include "node.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_BYTES 65536 /* a blob_msg() (nettest.h) */
#define TOTAL (512u << 20)
#define NMSG (TOTAL / MSG_BYTES)

/* The receiver: "sink" counts messages; ["count", REPLY] answers [COUNT]. */
static int sink_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    long *count = ud;
    const cJSON *tag = cJSON_GetArrayItem(msg, 0);
    if (cJSON_IsString(tag) && !strcmp(tag->valuestring, "count")) {
        cJSON *r = cJSON_CreateArray();
        cJSON_AddItemToArray(r, cJSON_CreateNumber((double)*count));
        aemp_snd(node, cJSON_GetArrayItem(msg, 1)->valuestring, r);
    } else {
        ++*count;
    }
    return 0;
}

static pid_t start_receiver(struct event_base *base, aemp_node *a, const char *id)
{
    char seed[128];
    snprintf(seed, sizeof seed, "%s", addr_of(a));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(280);
        struct event_base *cb = event_base_new();
        aemp_node *b = mknode_small(cb, id, seed);
        static long count;
        char port[128];
        snprintf(port, sizeof port, "%s#sink", id);
        aemp_rcv(b, port, NULL, sink_rcv, &count);
        aemp_node_run(b);
        _exit(0);
    }
    CHECK(wait_up(base, a, id, 10));
    return pid;
}

static void count_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    long *got = ud;
    const cJSON *n = cJSON_GetArrayItem(reply, 0);
    *got = cJSON_IsNumber(n) ? (long)n->valuedouble : -2;
}

/* Ask the receiver how many it got (all sent before arrive first). */
static long receiver_count(struct event_base *base, aemp_node *a, const char *port)
{
    long got = -1;
    int done = 0;
    CHECK(aemp_cal(a, port, json("[\"count\"]"), 120, count_done, &got) >= 0);
    double dl = now() + 120;
    while (got == -1 && now() < dl) run_until(base, &done, 1, 0.05);
    return got;
}

/* 512 MB as 64 KB messages to a node that reads them, queued as fast as the
 * sender can, keeping 3 to 4 times the 16 MB output bound waiting: the
 * connection stays up and every message arrives. Before, the node was
 * dropped once 16 MB waited with the socket full ("the peer does not
 * read"). */
static void test_fast_sender_not_dropped(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "flow-a", NULL);
    pid_t pid = start_receiver(base, a, "flow-b");
    double t0, dl;
    struct downrec d = {0};
    aemp_guard *g = NULL;
    aemp_mon_nodes(a, down_rec, &d, &g);
    size_t sent = 0, peak = 0;
    t0 = now();
    dl = t0 + 200;
    while (!d.downs && sent < NMSG && now() < dl) {
        while (sent < NMSG && transport_pending(a->transport, "flow-b") < (48u << 20)) {
            aemp_snd(a, "flow-b#sink", blob_msg());
            sent++;
        }
        size_t q = transport_pending(a->transport, "flow-b");
        if (q > peak) peak = q;
        run_until(base, NULL, 0, 0.002);
    }
    long got = d.downs ? -1 : receiver_count(base, a, "flow-b#sink");
    printf("# %zu messages (%zu MB) in %.1f s, at most %zu MB waiting; received %ld; downs %d%s%s\n",
           sent, sent * MSG_BYTES >> 20, now() - t0, peak >> 20, got, d.downs,
           d.downs ? ": " : "", d.downs ? d.reason : "");
    CHECK_INT(d.downs, 0);
    CHECK(sent == NMSG);
    CHECK(peak > (16u << 20)); /* the bound was passed, and the peer read */
    CHECK(got == (long)NMSG);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    aemp_guard_free(g);
    aemp_node_free(a);
    event_base_free(base);
}

/* An event-driven sender: sends until aemp_snd says AEMP_BUSY, then waits
 * for aemp_on_drain. */
struct sender {
    aemp_node *node;
    const char *dest;
    size_t sent, n, peak;
    int busy, drains, done, in_pump;
    int drained_inside; /* a drain callback ran inside aemp_on_drain */
};

static void pump(struct sender *s);

static void on_drain(aemp_node *node, const char *nodeid, void *ud)
{
    struct sender *s = ud;
    if (s->in_pump) s->drained_inside++;
    s->drains++;
    pump(s);
}

static void pump(struct sender *s)
{
    s->in_pump = 1;
    while (s->sent < s->n) {
        int rc = aemp_snd(s->node, s->dest, blob_msg());
        CHECK(rc == 0 || rc == AEMP_BUSY);
        s->sent++;
        size_t q = aemp_queued(s->node, s->dest);
        if (q > s->peak) s->peak = q;
        if (rc == AEMP_BUSY) {
            s->busy++;
            CHECK_INT(aemp_on_drain(s->node, s->dest, on_drain, s), 0);
            s->in_pump = 0;
            return;
        }
    }
    s->in_pump = 0;
    s->done = 1;
}

/* 512 MB as 64 KB messages through a sender that waits when aemp_snd says
 * AEMP_BUSY: never more than the high-water mark and one message wait, the
 * drain callbacks come from the loop, nothing is lost, no disconnect. */
static void test_flow_controlled_sender(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "flow-c", NULL);
    CHECK_INT(aemp_flow_marks(a, 4u << 20, 1u << 20), 0);
    CHECK_INT(aemp_flow_marks(a, 1, 2), AEMP_EINVAL);
    pid_t pid = start_receiver(base, a, "flow-d");
    double t0;
    struct downrec d = {0};
    aemp_guard *g = NULL;
    aemp_mon_nodes(a, down_rec, &d, &g);
    struct sender s = {.node = a, .dest = "flow-d#sink", .n = NMSG};
    t0 = now();
    pump(&s);
    run_until(base, &s.done, 1, 200);
    long got = d.downs ? -1 : receiver_count(base, a, "flow-d#sink");
    printf("# %zu messages (%zu MB) in %.1f s: %d times busy, %d drains, at most %zu KB waiting; "
           "received %ld; downs %d\n",
           s.sent, s.sent * MSG_BYTES >> 20, now() - t0, s.busy, s.drains, s.peak >> 10, got,
           d.downs);
    CHECK_INT(d.downs, 0);
    CHECK(s.done);
    CHECK(s.busy > 0);
    CHECK_INT(s.drains, s.busy);
    CHECK_INT(s.drained_inside, 0);
    CHECK(s.peak <= (4u << 20) + MSG_BYTES + 1024);
    CHECK(got == (long)NMSG);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    aemp_guard_free(g);
    aemp_node_free(a);
    event_base_free(base);
}

static void count_drain(aemp_node *node, const char *nodeid, void *ud)
{
    ++*(int *)ud;
}

/* A waiter for a node that stops reading is not called while its queue is
 * full; it is called when the node goes down (its queue dropped), after the
 * monitors. A cancelled waiter is never called; local and unknown nodes
 * call back from the loop at once, and local sends never say AEMP_BUSY. */
static void test_drain_waiters(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "flow-e", NULL);
    CHECK_INT(aemp_on_drain(a, "", count_drain, NULL), AEMP_EINVAL);
    CHECK_INT(aemp_on_drain(a, "x#y", NULL, NULL), AEMP_EINVAL);
    int local = 0, unknown = 0, cancelled = 0;
    char *lp = aemp_port(a);
    aemp_rcv(a, lp, NULL, sink_rcv, &(long){0});
    for (int i = 0; i < 400; i++) CHECK_INT(aemp_snd(a, lp, blob_msg()), 0); /* 25 MB local */
    CHECK_INT(aemp_queued(a, lp), 0);
    CHECK_INT(aemp_on_drain(a, lp, count_drain, &local), 0);
    CHECK_INT(aemp_on_drain(a, "nowhere", count_drain, &unknown), 0);
    CHECK_INT(aemp_on_drain(a, "nowhere#p", count_drain, &cancelled), 0);
    CHECK_INT(aemp_drain_cancel(a, "nowhere", count_drain, &cancelled), 0);
    CHECK_INT(aemp_drain_cancel(a, "nowhere", count_drain, &cancelled), AEMP_ENOENT);
    CHECK_INT(local + unknown, 0); /* never inside the call */
    run_until(base, &local, 1, 5);
    run_until(base, &unknown, 1, 5);
    CHECK_INT(local, 1);
    CHECK_INT(unknown, 1);
    CHECK_INT(cancelled, 0);

    pid_t pid = start_receiver(base, a, "flow-f");
    kill(pid, SIGSTOP);
    struct downrec d = {0};
    aemp_guard *g = NULL;
    aemp_mon_nodes(a, down_rec, &d, &g);
    int rc = 0, n = 0;
    while (rc != AEMP_BUSY && n < 1000) {
        rc = aemp_snd(a, "flow-f#sink", blob_msg());
        n++;
    }
    CHECK_INT(rc, AEMP_BUSY);
    int drained = 0;
    CHECK_INT(aemp_on_drain(a, "flow-f", count_drain, &drained), 0);
    run_until(base, &drained, 1, 1);
    CHECK_INT(drained, 0); /* it does not read: the queue stays full */
    CHECK(aemp_queued(a, "flow-f#sink") > (2u << 20)); /* above the low-water mark */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    run_until(base, &drained, 1, 20);
    printf("# busy after %d messages; after SIGKILL: downs %d (%s), drained %d\n", n, d.downs,
           d.reason, drained);
    CHECK_INT(drained, 1);
    CHECK_INT(d.downs, 1);
    CHECK_INT(aemp_queued(a, "flow-f"), 0);
    run_until(base, NULL, 0, 0.1);
    CHECK_INT(local + unknown + cancelled, 2);
    free(lp);
    aemp_guard_free(g);
    aemp_node_free(a);
    event_base_free(base);
}

/* A node freed while big messages still wait for a peer that does not
 * read: the output blocks come back after the transport is gone (libevent
 * frees the buffers later, at the latest in event_base_free) and are freed
 * then (an ASan build checks that nothing is used after it was freed). */
static void test_free_with_output_pending(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_small(base, "flow-g", NULL);
    pid_t pid = start_receiver(base, a, "flow-h");
    kill(pid, SIGSTOP);
    static char text[200000];
    memset(text, 'y', sizeof text - 1);
    for (int i = 0; i < 200; i++) { /* 40 MB of texts over 64 KB, copied into output blocks */
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateStringReference(text));
        aemp_snd(a, "flow-h#sink", m);
        if (i % 20 == 0) run_until(base, NULL, 0, 0.01);
    }
    CHECK(aemp_queued(a, "flow-h") > (8u << 20));
    aemp_node_free(a);
    event_base_free(base);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

T_MAIN(T(test_fast_sender_not_dropped), T(test_flow_controlled_sender), T(test_drain_waiters),
       T(test_free_with_output_pending))
