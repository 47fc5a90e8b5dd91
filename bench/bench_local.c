/* bench_local.c - local figures of one node on one event loop: snd
 * throughput to one port (all queued first, and 1000 per loop turn) with
 * allocations per message, beside the baseline of building and freeing the
 * message alone; memory per port, local spawn rate.
 * Measures only; prints "NAME: VALUE UNIT" lines. */
#include "aemp.h"
#include "alloc_count.h"
#include "bench.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct counter {
    long n, want;
};

static int count_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct counter *c = ud;
    if (++c->n >= c->want) aemp_node_stop(node);
    return 0;
}

static int noop_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    return 0;
}

static int spawned(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct counter *c = ud;
    if (++c->n >= c->want) aemp_node_stop(node);
    return 0;
}

/* The baseline: what building and freeing the message alone costs (every
 * snd figure includes it). Returns messages per second; *allocs gets the
 * allocations per message. */
static double bench_msg_alone(long n, double *allocs)
{
    unsigned long a0 = bench_nalloc;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) cJSON_Delete(bench_msg());
    double t1 = bench_now();
    *allocs = (double)(bench_nalloc - a0) / n;
    return n / (t1 - t0);
}

static void bench_snd(aemp_node *node, long n, double base)
{
    char *p = aemp_port(node);
    struct counter c = {0, n};
    aemp_rcv(node, p, NULL, count_rcv, &c);
    unsigned long a0 = bench_nalloc;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) aemp_snd(node, p, bench_msg());
    double t1 = bench_now();
    aemp_node_run(node);
    double t2 = bench_now();
    printf("local snd (all queued first): %.0f msg/s (%ld msgs, enqueue %.3f s, deliver %.3f s, "
           "received %ld), %.2f allocations per message | ratio to building the message alone "
           "%.2f\n",
           n / (t2 - t0), n, t1 - t0, t2 - t1, c.n, (double)(bench_nalloc - a0) / n,
           n / (t2 - t0) / base);
    aemp_kil(node, p, NULL);
    free(p);
    /* let the kill settle */
    event_base_loop(aemp_node_base(node), EVLOOP_NONBLOCK);
}

/* The same, but 1000 messages per loop iteration, so the queue stays short
 * (steady state instead of N messages resident at once). */
struct pump {
    aemp_node *node;
    const char *port;
    long sent, total;
    struct event *ev;
};

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pump *p = arg;
    for (int i = 0; i < 1000 && p->sent < p->total; i++, p->sent++)
        aemp_snd(p->node, p->port, bench_msg());
    if (p->sent < p->total) event_active(p->ev, EV_TIMEOUT, 0);
}

static void bench_snd_batched(aemp_node *node, long n, double base)
{
    char *port = aemp_port(node);
    struct counter c = {0, n};
    aemp_rcv(node, port, NULL, count_rcv, &c);
    struct pump p = {node, port, 0, n, NULL};
    p.ev = event_new(aemp_node_base(node), -1, 0, pump_cb, &p);
    unsigned long a0 = bench_nalloc;
    double t0 = bench_now();
    event_active(p.ev, EV_TIMEOUT, 0);
    aemp_node_run(node);
    double t1 = bench_now();
    printf("local snd (1000 per loop iteration): %.0f msg/s (%ld msgs in %.3f s, received %ld), "
           "%.2f allocations per message | ratio to building the message alone %.2f\n",
           n / (t1 - t0), n, t1 - t0, c.n, (double)(bench_nalloc - a0) / n, n / (t1 - t0) / base);
    event_free(p.ev);
    aemp_kil(node, port, NULL);
    free(port);
    event_base_loop(aemp_node_base(node), EVLOOP_NONBLOCK);
}

static void bench_ports(aemp_node *node, long n)
{
    long before = bench_rss(0);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        char *p = aemp_port(node);
        aemp_rcv(node, p, NULL, noop_rcv, NULL);
        free(p); /* the caller keeps nothing: the delta is the library's */
    }
    double t1 = bench_now();
    long after = bench_rss(0);
    printf("memory per port: %.0f bytes (%ld ports, RSS +%ld bytes)\n",
           (double)(after - before) / n, n, after - before);
    printf("port create: %.0f ports/s\n", n / (t1 - t0));
}

static void bench_spawn(aemp_node *node, long n)
{
    struct counter c = {0, n};
    aemp_register(node, "bench::spawned", spawned, &c);
    const char *self = aemp_node_id(node);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) free(aemp_spawn(node, self, "bench::spawned", NULL));
    double t1 = bench_now();
    aemp_node_run(node);
    double t2 = bench_now();
    printf("local spawn: %.0f spawns/s (%ld spawns, issue %.3f s, run %.3f s, ran %ld)\n",
           n / (t2 - t0), n, t1 - t0, t2 - t1, c.n);
}

/* bench_local [N [ONLY]]: N messages (default 1,000,000); ONLY one of
 * ports, snd, batched, spawn runs just that one (for profiling). */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *only = argc > 2 ? argv[2] : NULL;
#define RUN(what) (!only || !strcmp(only, what))
    struct event_base *base = event_base_new();
    aemp_node *node = bench_node(base, "bench-local", 0, NULL, 0);
    /* ports first, on a heap no earlier benchmark has grown (freed memory
     * would be reused and hide the cost); they stay until the node is freed */
    if (RUN("ports")) bench_ports(node, 1000000);
    double allocs, alone = bench_msg_alone(n, &allocs);
    printf("baseline, building and freeing the message alone: %.0f msg/s, %.2f allocations per "
           "message\n",
           alone, allocs);
    if (RUN("snd")) bench_snd(node, n, alone);
    if (RUN("batched")) bench_snd_batched(node, n, alone);
    if (RUN("spawn")) bench_spawn(node, n / 5);
    aemp_node_free(node);
    event_base_free(base);
    return 0;
}
