/* bench_remote.c - remote figures between real processes over 127.0.0.1:
 * one-way throughput for messages of 16 B, 1 KB, 64 KB and 1 MB, ping-pong
 * round trips with latency percentiles (free and both on CPU 0), each
 * beside the raw-TCP baseline measured in the same run (rawtcp.c) with the
 * ratio; allocations per message on both ends; remote spawn rate, handshake
 * rate, memory per connection. Measures only; prints "NAME: VALUE" lines.
 *
 * The one-way sender sends the way a program with flow control does: until
 * aemp_snd says AEMP_BUSY, then it waits for aemp_on_drain (a bounded
 * window, the memory of its messages reused). Beside each one-way figure:
 * page faults and system time per message on both ends (getrusage: the
 * same minor+major faults `perf stat -e page-faults` counts).
 *
 * All listener processes are fork()ed first, before this process creates
 * any node; each creates its own node and event loop and reports
 * "ADDR SINKPORT ECHOPORT" through a pipe. Every process is bounded by
 * alarm(); the parent kills and reaps its children at the end. */
#include "aemp.h"
#include "alloc_count.h"
#include "bench.h"
#include "rawtcp.h"
#include "config.h"
#include "handshake.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_PINGPONG 20000L
#define N_HANDSHAKE 200
#define N_CONN 200
#define N_SPAWN 50000L
#define BATCH 1000 /* one-way: at most this many messages sent per loop turn */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run `base` until *flag >= want or `seconds` passed; 1 when reached. */
static int run_until(struct event_base *base, const long *flag, long want, double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
    struct event *ev = evtimer_new(base, deadline_cb, NULL);
    evtimer_add(ev, &tv);
    double end = bench_now() + seconds;
    while ((!flag || *flag < want) && bench_now() < end) event_base_loop(base, EVLOOP_ONCE);
    event_free(ev);
    return flag && *flag >= want;
}

/* ------------------------------------------------------------ listener */

struct rx {
    char *reply; /* where "done" / echoes go, set by ["hello", PORT, N, PIN] */
    long count, want;
    unsigned long alloc0; /* bench_nalloc at the first message */
    struct rusage ru0;    /* at the first message */
};

/* Page faults (minor + major) and system seconds of this process. */
static void usage_now(struct rusage *ru)
{
    getrusage(RUSAGE_SELF, ru);
}

static double faults_since(const struct rusage *a)
{
    struct rusage b;
    usage_now(&b);
    return (double)(b.ru_minflt - a->ru_minflt + b.ru_majflt - a->ru_majflt);
}

static double stime_since(const struct rusage *a)
{
    struct rusage b;
    usage_now(&b);
    return (double)(b.ru_stime.tv_sec - a->ru_stime.tv_sec) +
           (double)(b.ru_stime.tv_usec - a->ru_stime.tv_usec) / 1e6;
}

static int rx_hello(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct rx *r = ud;
    const cJSON *p = cJSON_GetArrayItem(m, 1);
    const cJSON *w = cJSON_GetArrayItem(m, 2);
    if (cJSON_IsString(p)) {
        free(r->reply);
        r->reply = strdup(p->valuestring);
    }
    r->want = cJSON_IsNumber(w) ? (long)w->valuedouble : 0;
    r->count = 0;
    /* ["hello", PORT, N, 1]: run on CPU 0 from now on; 0: on any */
    const cJSON *pin = cJSON_GetArrayItem(m, 3);
    if (cJSON_IsNumber(pin)) {
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, &all);
        if (pin->valueint) bench_pin_cpu0();
        else sched_setaffinity(0, sizeof all, &all);
    }
    return 0;
}

static int sink_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct rx *r = ud;
    if (++r->count == 1) {
        r->alloc0 = bench_nalloc;
        usage_now(&r->ru0);
    }
    if (r->count == r->want && r->reply) {
        /* ["done", N, ALLOCATIONS, PAGE FAULTS, SYSTEM SECONDS], all from
         * the first to the last message */
        cJSON *d = cJSON_CreateArray();
        cJSON_AddItemToArray(d, cJSON_CreateString("done"));
        cJSON_AddItemToArray(d, cJSON_CreateNumber(r->count));
        cJSON_AddItemToArray(d, cJSON_CreateNumber((double)(bench_nalloc - r->alloc0)));
        cJSON_AddItemToArray(d, cJSON_CreateNumber(faults_since(&r->ru0)));
        cJSON_AddItemToArray(d, cJSON_CreateNumber(stime_since(&r->ru0)));
        aemp_snd(node, r->reply, d);
    }
    return 0;
}

static int echo_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct rx *r = ud;
    if (r->reply) aemp_snd(node, r->reply, cJSON_Duplicate(m, 1));
    return 0;
}

/* bench::spawned: the remote spawn target; tells args[0] it runs, then
 * lives as a port that ignores messages. */
static int spawned_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    return 0;
}

static int spawned_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    const cJSON *to = cJSON_GetArrayItem(args, 0);
    if (cJSON_IsString(to)) {
        cJSON *up = cJSON_CreateArray();
        cJSON_AddItemToArray(up, cJSON_CreateString(self));
        aemp_snd(node, to->valuestring, up);
    }
    return aemp_rcv(node, self, NULL, spawned_rcv, NULL);
}

static void listener(int k, int wfd)
{
    alarm(300);
    char id[64];
    snprintf(id, sizeof id, "bench-rx-%d", k);
    struct event_base *base = event_base_new();
    aemp_node *node = bench_node(base, id, 1, NULL, 0.2);
    aemp_register(node, "bench::spawned", spawned_fn, NULL);
    struct rx sink = {0}, echo = {0};
    char *ps = aemp_port(node), *pe = aemp_port(node);
    aemp_rcv(node, ps, NULL, sink_rcv, &sink);
    aemp_rcv(node, ps, "hello", rx_hello, &sink);
    aemp_rcv(node, pe, NULL, echo_rcv, &echo);
    aemp_rcv(node, pe, "hello", rx_hello, &echo);
    cJSON *a = aemp_listen_addrs(node);
    char line[512];
    int len = snprintf(line, sizeof line, "%s %s %s\n", cJSON_GetArrayItem(a, 0)->valuestring,
                       ps, pe);
    cJSON_Delete(a);
    if (write(wfd, line, len) != len) _exit(1);
    close(wfd);
    for (;;) event_base_loop(base, EVLOOP_ONCE);
}

struct child {
    pid_t pid;
    char addr[128], sink[256], echo[256], id[64];
};

static void start_listener(struct child *c, int k)
{
    int fds[2];
    if (pipe(fds)) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    c->pid = fork();
    if (c->pid < 0) {
        perror("fork");
        exit(1);
    }
    if (c->pid == 0) {
        close(fds[0]);
        listener(k, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char line[700];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += r;
        if (memchr(line, '\n', len)) break;
    }
    line[len] = 0;
    close(fds[0]);
    if (sscanf(line, "%127s %255s %255s", c->addr, c->sink, c->echo) != 3) {
        fprintf(stderr, "bench_remote: listener %d did not report its address\n", k);
        exit(1);
    }
    snprintf(c->id, sizeof c->id, "bench-rx-%d", k);
}

/* -------------------------------------------------------------- sender */

struct tx {
    aemp_node *node;
    const char *dest;
    const char *pad; /* the message is ["tag", 1, pad] */
    size_t padlen;
    long sent, total, got, done, batch;
    double rallocs; /* receiver's allocations, from "done" */
    double rfaults, rstime; /* receiver's page faults and system seconds */
    long waits;     /* AEMP_BUSY answers (one-way) */
    struct event *pump;
    double *rtt, t_sent; /* ping-pong: each round trip */
};

/* ["tag",1,PAD]: with pad "abc" the benchmark message of every figure.
 * Pads of 64 KB and more are borrowed (cJSON_CreateStringReference), as a
 * bulk sender of one buffer would hand it: no copy of it per message (the
 * copy into fresh memory cost the 1 MB sender 67 page faults a message). */
static cJSON *pad_msg(const char *pad, size_t padlen)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("tag"));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(m, padlen >= 65536 - 12 ? cJSON_CreateStringReference(pad)
                                                 : cJSON_CreateString(pad));
    return m;
}

static void pump_cb(evutil_socket_t fd, short what, void *arg);

static void drained(aemp_node *node, const char *nodeid, void *ud)
{
    pump_cb(-1, 0, ud);
}

/* Up to `batch` messages a turn; after AEMP_BUSY wait for the drain. */
static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tx *t = arg;
    for (int i = 0; i < t->batch && t->sent < t->total; i++) {
        int rc = aemp_snd(t->node, t->dest, pad_msg(t->pad, t->padlen));
        t->sent++;
        if (rc == AEMP_BUSY && t->sent < t->total) {
            t->waits++;
            aemp_on_drain(t->node, t->dest, drained, t);
            return;
        }
    }
    if (t->sent < t->total) event_active(t->pump, EV_TIMEOUT, 0);
}

static int done_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct tx *t = ud;
    const cJSON *n = cJSON_GetArrayItem(m, 1), *a = cJSON_GetArrayItem(m, 2);
    t->got = cJSON_IsNumber(n) ? (long)n->valuedouble : 0;
    t->rallocs = cJSON_IsNumber(a) ? a->valuedouble : -1;
    const cJSON *f = cJSON_GetArrayItem(m, 3), *s = cJSON_GetArrayItem(m, 4);
    t->rfaults = cJSON_IsNumber(f) ? f->valuedouble : -1;
    t->rstime = cJSON_IsNumber(s) ? s->valuedouble : -1;
    t->done = 1;
    return 0;
}

static int pong_rcv(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct tx *t = ud;
    double now = bench_now();
    t->rtt[t->got++] = now - t->t_sent;
    if (t->sent < t->total) {
        t->sent++;
        t->t_sent = bench_now();
        aemp_snd(node, t->dest, bench_msg());
    }
    return 0;
}

static void hello(aemp_node *node, const char *dest, const char *reply, long want, int pin)
{
    cJSON *h = cJSON_CreateArray();
    cJSON_AddItemToArray(h, cJSON_CreateString("hello"));
    cJSON_AddItemToArray(h, cJSON_CreateString(reply));
    cJSON_AddItemToArray(h, cJSON_CreateNumber(want));
    cJSON_AddItemToArray(h, cJSON_CreateNumber(pin));
    aemp_snd(node, dest, h);
}

struct calwait {
    long n;
};

static void cal_cb(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct calwait *w = ud;
    if (reply) w->n++;
    else w->n += 1000000; /* error: counted so the loop ends; reported below */
}

/* Connect `node` to `peer` and wait for the reply to one cal ["info"]. */
static int cal_info(aemp_node *node, struct event_base *base, const char *peer, double secs)
{
    struct calwait w = {0};
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("info"));
    aemp_cal(node, peer, m, secs, cal_cb, &w);
    run_until(base, &w.n, 1, secs + 1);
    return w.n == 1;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* One-way: n messages ["tag",1,PAD] with a pad of `size` - 12 bytes, so
 * that the JSON text of the message (what the raw-TCP baseline sends) is
 * `size` bytes. Printed beside raw TCP with one write per message and with
 * batched writes (64 KB or one message per write, whichever is larger). */
static void oneway(aemp_node *node, struct event_base *base, struct child *c, size_t size, long n)
{
    size_t padlen = size > 15 ? size - 12 : 3;
    char *pad = malloc(padlen + 1);
    for (size_t i = 0; i < padlen; i++) pad[i] = "abcdefghijklmnopqrstuvwxyz"[i % 26];
    pad[padlen] = 0;
    long batch = (long)((4u << 20) / size);
    struct tx t = {node, c->sink, pad, padlen, 0, n, 0, 0, batch < 1 ? 1 : batch > BATCH ? BATCH : batch};
    char *rp = aemp_port(node);
    aemp_rcv(node, rp, NULL, done_rcv, &t);
    hello(node, c->sink, rp, n, 0);
    run_until(base, NULL, 0, 0.05); /* the hello is in before the first message */
    t.pump = event_new(base, -1, 0, pump_cb, &t);
    unsigned long a0 = bench_nalloc;
    struct rusage ru0;
    usage_now(&ru0);
    double t0 = bench_now();
    event_active(t.pump, EV_TIMEOUT, 0);
    run_until(base, &t.done, 1, 120);
    double t1 = bench_now();
    double sfaults = faults_since(&ru0), sstime = stime_since(&ru0);
    unsigned long allocs = bench_nalloc - a0;
    event_free(t.pump);
    aemp_kil(node, rp, NULL);
    free(rp);
    double rate = t.done ? n / (t1 - t0) : 0, mb = rate * (double)size / 1e6;
    double each = rawtcp_oneway(size, n, size);
    double batched = rawtcp_oneway(size, size >= 65536 ? n : n * 4, size > 65536 ? size : 65536);
    char label[32];
    if (size >= 1 << 20) snprintf(label, sizeof label, "%zu MB", size >> 20);
    else if (size >= 1024) snprintf(label, sizeof label, "%zu KB", size >> 10);
    else snprintf(label, sizeof label, "%zu B", size);
    if (!t.done) printf("remote one-way %s: FAILED (no \"done\" after 120 s, sent %ld)\n", label,
                        t.sent);
    else
        printf("remote one-way %s: %.0f msg/s, %.1f MB/s (%ld msgs in %.3f s) | raw TCP one write "
               "per message: %.0f msg/s, %.1f MB/s, ratio %.2f | raw TCP batched: %.0f msg/s, "
               "%.1f MB/s, ratio %.2f\n",
               label, rate, mb, n, t1 - t0, each, each * (double)size / 1e6, ratio(rate, each),
               batched, batched * (double)size / 1e6, ratio(rate, batched));
    if (t.done)
        printf("  one-way %s per message: page faults sender %.2f, receiver %.2f; system time "
               "sender %.2f us, receiver %.2f us; sender waited for the drain %ld times\n",
               label, sfaults / n, t.rfaults / (n - 1), sstime / n * 1e6,
               t.rstime / (n - 1) * 1e6, t.waits);
    unsigned long m0 = bench_nalloc;
    cJSON_Delete(pad_msg(pad, padlen));
    unsigned long build = bench_nalloc - m0;
    if (t.done && size == 16)
        printf("allocations per message, remote one-way 16 B: sender %.2f (%lu of them build "
               "the message), receiver %.2f\n",
               (double)allocs / n, build, t.rallocs / (n - 1));
    free(pad);
}

/* Ping-pong: one message in flight, each round trip timed; beside raw TCP
 * ping-pong of 16 bytes. With `pin` both processes run on CPU 0. */
static void pingpong(aemp_node *node, struct event_base *base, struct child *c, int pin)
{
    double *rtt = calloc(N_PINGPONG, sizeof *rtt), *raw = calloc(N_PINGPONG, sizeof *raw);
    cpu_set_t saved;
    sched_getaffinity(0, sizeof saved, &saved);
    if (pin) bench_pin_cpu0();
    struct tx p = {node, c->echo, "abc", 3, 0, N_PINGPONG, 0, 0, 1};
    p.rtt = rtt;
    char *pp = aemp_port(node);
    aemp_rcv(node, pp, NULL, pong_rcv, &p);
    hello(node, c->echo, pp, 0, pin);
    run_until(base, NULL, 0, 0.05); /* the hello is in before the first ping */
    double p0 = bench_now();
    p.sent = 1;
    p.t_sent = bench_now();
    aemp_snd(node, c->echo, bench_msg());
    run_until(base, &p.got, N_PINGPONG, 120);
    double p1 = bench_now();
    aemp_kil(node, pp, NULL);
    free(pp);
    hello(node, c->echo, "", 0, 0); /* the listener runs anywhere again */
    run_until(base, NULL, 0, 0.05);
    sched_setaffinity(0, sizeof saved, &saved);
    double rate = p.got / (p1 - p0);
    double rraw = rawtcp_pingpong(N_PINGPONG, pin, raw);
    long n = p.got ? p.got : 1;
    printf("remote ping-pong%s: %.0f round trips/s, latency p50 %.1f us, p99 %.1f us, p99.9 "
           "%.1f us | raw TCP: %.0f round trips/s, p50 %.1f us, p99 %.1f us, p99.9 %.1f us | "
           "ratio %.2f\n",
           pin ? " (both on CPU 0)" : "", rate, bench_pct_us(rtt, n, 50), bench_pct_us(rtt, n, 99),
           bench_pct_us(rtt, n, 99.9), rraw, bench_pct_us(raw, N_PINGPONG, 50),
           bench_pct_us(raw, N_PINGPONG, 99), bench_pct_us(raw, N_PINGPONG, 99.9),
           ratio(rate, rraw));
    free(rtt);
    free(raw);
}

/* With only > 0: just the one-way figure of that size, or with 1 just the
 * ping-pong figures (for profiling). */
static void bench_oneway_pingpong(struct event_base *base, struct child *c, long only)
{
    aemp_node *node = bench_node(base, "bench-tx", 0, c->addr, 0.2);
    if (!cal_info(node, base, c->id, 10)) {
        printf("remote one-way: FAILED (no connection)\n");
        aemp_node_free(node);
        return;
    }
    static const struct {
        size_t size;
        long n;
    } runs[] = {{16, 1000000}, {1024, 200000}, {65536, 8000}, {1 << 20, 500}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        if (!only || (size_t)only == runs[i].size) oneway(node, base, c, runs[i].size, runs[i].n);
    if (!only || only == 1) {
        pingpong(node, base, c, 0);
        pingpong(node, base, c, 1);
    }
    aemp_node_free(node);
    run_until(base, NULL, 0, 0.01);
}

/* Remote spawn: spawns in batches, each spawned port reports back. */
struct sp {
    aemp_node *node;
    const char *peer, *reply;
    long issued, total, up;
    struct event *pump;
};

static int spawn_up(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    ((struct sp *)ud)->up++;
    return 0;
}

static void spawn_pump(evutil_socket_t fd, short what, void *arg)
{
    struct sp *s = arg;
    for (int i = 0; i < 1000 && s->issued < s->total; i++, s->issued++) {
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cJSON_CreateString(s->reply));
        free(aemp_spawn(s->node, s->peer, "bench::spawned", args));
    }
    if (s->issued < s->total) event_active(s->pump, EV_TIMEOUT, 0);
}

static void bench_remote_spawn(struct event_base *base, struct child *c)
{
    aemp_node *node = bench_node(base, "bench-spawner", 0, c->addr, 0.2);
    if (!cal_info(node, base, c->id, 10)) {
        printf("remote spawn: FAILED (no connection)\n");
        aemp_node_free(node);
        return;
    }
    char *rp = aemp_port(node);
    struct sp s = {node, c->id, rp, 0, N_SPAWN, 0, NULL};
    aemp_rcv(node, rp, NULL, spawn_up, &s);
    s.pump = event_new(base, -1, 0, spawn_pump, &s);
    double t0 = bench_now();
    event_active(s.pump, EV_TIMEOUT, 0);
    run_until(base, &s.up, N_SPAWN, 120);
    double t1 = bench_now();
    event_free(s.pump);
    printf("remote spawn: %.0f spawns/s (%ld spawned on another process in %.3f s, %ld reported)\n",
           s.up / (t1 - t0), (long)N_SPAWN, t1 - t0, s.up);
    free(rp);
    aemp_node_free(node);
    run_until(base, NULL, 0, 0.01);
}

/* Microseconds of one hmac_md6_64_256 token over greeting lines of the
 * usual length (each side computes two: its own and the one it expects). */
static double token_us(void)
{
    const char *L = "aemp;1;bench-hs-12345-67;0123456789abcdef0123456789abcdef01234567;"
                    "hmac_md6_64_256,cleartext;json\nnodeid=bench-hs-12345-67,peeraddr=127.0.0.1:4"
                    "0404\n";
    const char *R = "aemp;1;bench-rx-1;fedcba9876543210fedcba9876543210fedcba98;"
                    "hmac_md6_64_256,cleartext;json\nnodeid=bench-rx-1,peeraddr=127.0.0.1:50505\n";
    char out[80];
    int n = 2000;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) hs_token("hmac_md6_64_256", "bench-secret", L, R, out, sizeof out);
    return (bench_now() - t0) / n * 1e6;
}

static void bench_handshake(struct event_base *base, struct child *c)
{
    int ok = 0;
    char id[64];
    struct rusage ru0, ru1;
    unsigned long a0 = bench_nalloc;
    usage_now(&ru0);
    double t0 = bench_now();
    for (int i = 0; i < N_HANDSHAKE; i++) {
        snprintf(id, sizeof id, "bench-hs-%d-%d", (int)getpid(), i);
        aemp_node *node = bench_node(base, id, 0, c->addr, 0.2);
        ok += cal_info(node, base, c->id, 10);
        aemp_node_free(node);
    }
    double t1 = bench_now();
    usage_now(&ru1);
    unsigned long allocs = bench_nalloc - a0;
    printf("handshake: %.0f handshakes/s (%d fresh nodes connected + cal in %.3f s, %d ok)\n",
           N_HANDSHAKE / (t1 - t0), N_HANDSHAKE, t1 - t0, ok);
    double us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec);
    double ss = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    printf("  handshake cost on the dialing side, per handshake (a fresh node: configure, "
           "connect, greet, authenticate, one cal, free): wall %.0f us; user %.0f us, of which "
           "crypto (2 HMAC-MD6 tokens, timed alone) %.0f us; system (syscalls) %.0f us; "
           "%.0f allocations\n",
           (t1 - t0) / N_HANDSHAKE * 1e6, us / N_HANDSHAKE, 2 * token_us(), ss / N_HANDSHAKE,
           (double)allocs / N_HANDSHAKE);
}

static void bench_conn_memory(struct event_base *base, struct child *c)
{
    aemp_node *nodes[N_CONN];
    char id[64];
    run_until(base, NULL, 0, 0.2);
    long before = bench_rss(c->pid);
    struct calwait w = {0};
    for (int i = 0; i < N_CONN; i++) {
        snprintf(id, sizeof id, "bench-mem-%d-%d", (int)getpid(), i);
        nodes[i] = bench_node(base, id, 0, c->addr, 0.2);
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("info"));
        aemp_cal(nodes[i], c->id, m, 30, cal_cb, &w);
    }
    run_until(base, &w.n, N_CONN, 40);
    run_until(base, NULL, 0, 0.5); /* let the listener settle */
    long after = bench_rss(c->pid);
    printf("memory per connection: %.0f bytes (%ld connected of %d, listener RSS %ld -> %ld)\n",
           (double)(after - before) / N_CONN, w.n, N_CONN, before, after);
    for (int i = 0; i < N_CONN; i++) aemp_node_free(nodes[i]);
}

/* bench_remote [SIZE]: everything, or only the one-way run of SIZE bytes
 * (1: only ping-pong, 2: only handshakes). */
int main(int argc, char **argv)
{
    long only = argc > 1 ? atol(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    /* every listener first, while this process has no node */
    struct child c[3];
    for (int k = 0; k < 3; k++) start_listener(&c[k], k);
    alarm(600);
    struct event_base *base = event_base_new();
    if (only != 2) bench_oneway_pingpong(base, &c[0], only);
    if (only == 2) bench_handshake(base, &c[1]);
    if (!only) {
        bench_remote_spawn(base, &c[0]);
        bench_handshake(base, &c[1]);
        bench_conn_memory(base, &c[2]);
    }
    event_base_free(base);
    for (int k = 0; k < 3; k++) {
        kill(c[k].pid, SIGTERM);
        waitpid(c[k].pid, NULL, 0);
    }
    return 0;
}
