/* bench.h - what the benchmarks share: the clock, the benchmark message,
 * a node with a benchmark configuration, CPU pinning, percentiles, the
 * resident set size. */
#ifndef AEMP_BENCH_H
#define AEMP_BENCH_H

#include "aemp.h"
#include "config.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

struct event_base;

/* Seconds on the monotonic clock (the same clock in every process). */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The message of every benchmark: ["tag",1,"abc"] (new, caller owns). */
static inline cJSON *bench_msg(void)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("tag"));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(m, cJSON_CreateString("abc"));
    return m;
}

/* A node on `base` with the built-in defaults, ID `id`, listening on an
 * ephemeral port of 127.0.0.1 when `listen`, seeded with `seed` (or none),
 * connect_interval `interval` when > 0. Exits the process if that fails. */
static inline aemp_node *bench_node(struct event_base *base, const char *id, int listen,
                                    const char *seed, double interval)
{
    cJSON *cfg = config_defaults();
    cJSON_ReplaceItemInObject(cfg, "binds", cJSON_CreateArray());
    cJSON_ReplaceItemInObject(cfg, "seeds", cJSON_CreateArray());
    if (interval > 0)
        cJSON_ReplaceItemInObject(cfg, "connect_interval", cJSON_CreateNumber(interval));
    if (listen)
        cJSON_AddItemToArray(cJSON_GetObjectItem(cfg, "binds"), cJSON_CreateString("127.0.0.1:0"));
    if (seed) cJSON_AddItemToArray(cJSON_GetObjectItem(cfg, "seeds"), cJSON_CreateString(seed));
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON_AddStringToObject(cfg, "secret", "bench-secret");
    aemp_node *n = aemp_node_new(base);
    char err[256] = "";
    if (!n || aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "bench: configure %s: %s\n", id, n ? err : "out of memory");
        fflush(NULL);
        _exit(1);
    }
    cJSON_Delete(cfg);
    return n;
}

/* Run this process on CPU 0 only. */
static inline void bench_pin_cpu0(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n) in microseconds; sorts v. */
static inline double bench_pct_us(double *v, long n, double p)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    long i = (long)(p / 100 * (double)(n - 1) + 0.5);
    return v[i] * 1e6;
}

/* Resident set size in bytes of process `pid` (0: this one). */
static inline long bench_rss(pid_t pid)
{
    char path[64];
    long size = 0, res = 0;
    if (pid) snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    else snprintf(path, sizeof path, "/proc/self/statm");
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

#endif
