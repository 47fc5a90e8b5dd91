/* svc_ping.c - a service for the e2e test http.sh, loaded with
 *     aemp run services '[["PATH/libsvc_ping.so:svc_ping_init","NODE"]]'
 * Every 100 ms it calls NODE's node port with ["info"] (what `aemp cal
 * NODE info` sends) and times the answer; each second it writes
 *     "PING n=CALLS max_ms=SLOWEST fails=FAILED"
 * to stderr (n and fails since the start, max_ms of the answers in that
 * second; a call still unanswered counts with its time so far), so a test can watch how a node
 * answers another node while something else happens to it. Built as a
 * shared module without libaemp: the aemp_* symbols come from the aemp
 * binary. */
#include "aemp.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int svc_ping_init(aemp_node *node, const cJSON *args);

static struct {
    char target[256];
    long n, fails, ticks;
    double max, sent;
    int busy;
} ping;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void answered(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    (void)node, (void)ud;
    double d = now() - ping.sent;
    ping.busy = 0;
    if (error || !reply) {
        ping.fails++;
        return;
    }
    ping.n++;
    if (d > ping.max) ping.max = d;
}

static void tick(aemp_node *node, void *ud)
{
    (void)ud;
    if (!ping.busy) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("info"));
        ping.sent = now();
        ping.busy = 1;
        if (aemp_cal(node, ping.target, m, 2.0, answered, NULL)) ping.busy = 0, ping.fails++;
    }
    if (++ping.ticks % 10 == 0) {
        double pending = ping.busy ? now() - ping.sent : 0;
        double m = pending > ping.max ? pending : ping.max;
        fprintf(stderr, "PING n=%ld max_ms=%.0f fails=%ld\n", ping.n, m * 1000, ping.fails);
        fflush(stderr);
        ping.max = 0;
    }
    aemp_after(node, 0.1, tick, NULL, NULL);
}

int svc_ping_init(aemp_node *node, const cJSON *args)
{
    const cJSON *t = cJSON_GetArrayItem(args, 0);
    if (!cJSON_IsString(t)) return -1;
    snprintf(ping.target, sizeof ping.target, "%s", t->valuestring);
    return aemp_after(node, 0.1, tick, NULL, NULL);
}
