/* svc_stall.c - a service for the e2e test hostbeat.sh, loaded with
 *     aemp run services '["PATH/libsvc_stall.so:svc_stall_init"]'
 * It makes the node's event loop stop running the way a faulty callback
 * would, on request: a message ["spin", SECONDS] (a number or a string, as
 * `aemp snd NODEID#stall spin 6` sends it) to NODEID#stall runs a
 * busy loop for that long inside the callback (a callback that does not
 * return), ["sleep", SECONDS] sleeps that long (a callback blocked in a
 * system call). Built as a shared module without libaemp: the aemp_*
 * symbols come from the aemp binary. */
#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int svc_stall_init(aemp_node *node, const cJSON *args);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int stall(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    (void)node, (void)self, (void)ud;
    const cJSON *how = cJSON_GetArrayItem(msg, 0), *secs = cJSON_GetArrayItem(msg, 1);
    if (!cJSON_IsString(how) || !(cJSON_IsNumber(secs) || cJSON_IsString(secs))) return 0;
    double s = cJSON_IsNumber(secs) ? secs->valuedouble : atof(secs->valuestring);
    double end = now() + s;
    fprintf(stderr, "STALL %s %.1f\n", how->valuestring, s);
    fflush(stderr);
    if (!strcmp(how->valuestring, "spin")) {
        volatile unsigned long n = 0;
        while (now() < end) n++;
    } else if (!strcmp(how->valuestring, "sleep")) {
        while (now() < end) usleep(10000);
    }
    return 0;
}

int svc_stall_init(aemp_node *node, const cJSON *args)
{
    (void)args;
    char port[512];
    snprintf(port, sizeof port, "%s#stall", aemp_node_id(node));
    return aemp_rcv(node, port, NULL, stall, NULL);
}
