/* svc_watch.c - a service for the e2e tests of the mesh (mesh_form.sh,
 * partition.sh), loaded with
 *     aemp run services '["PATH/libsvc_watch.so:svc_watch_init"]'
 * It writes one stderr line per event, whatever the log level:
 *   "WATCH up NODE"            a node came up
 *   "WATCH down NODE REASON"   a node went down
 *   "WATCH fired PORT REASON"  a monitor fired
 *   "WATCH got MSG"            a message arrived at port NODEID#watch
 * each followed by " t=SECONDS" (wall clock, for measuring detection times).
 * When a node comes up it monitors a port on it (the node's node port, the
 * bare node ID), so every node-down is also seen as a monitor firing.
 * With AEMP_WATCH_RESEND=1 in the environment, when a node goes down it also
 * sends ["lost", OURID, SEQ] to NODE#watch (SEQ counting from 1) with a
 * monitor on that port: the message is either delivered (a "WATCH got" line
 * there) or its monitor fires ("WATCH lost NODE#watch SEQ REASON" here). Built as a shared module without
 * libaemp: the aemp_* symbols come from the aemp binary. */
#include "aemp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int svc_watch_init(aemp_node *node, const cJSON *args);

static void watch_line(const char *what, const char *id, const cJSON *reason)
{
    char *r = reason ? cJSON_PrintUnformatted(reason) : NULL;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    fprintf(stderr, "WATCH %s %s%s%s t=%ld.%03ld\n", what, id, r ? " " : "", r ? r : "",
            (long)tv.tv_sec, (long)tv.tv_usec / 1000);
    fflush(stderr);
    free(r);
}

static void watch_fired(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    (void)node;
    (void)ud;
    watch_line("fired", port, reason);
}

static void watch_lost(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    char what[600];
    (void)node;
    snprintf(what, sizeof what, "%s %ld", port, (long)(intptr_t)ud);
    watch_line("lost", what, reason);
}

static void watch_nodes(aemp_node *node, const char *nodeid, int up, const cJSON *reason,
                        void *ud)
{
    (void)ud;
    watch_line(up ? "up" : "down", nodeid, up ? NULL : reason);
    if (up) aemp_mon(node, nodeid, watch_fired, NULL, NULL);
    const char *resend = getenv("AEMP_WATCH_RESEND");
    if (!up && resend && !strcmp(resend, "1")) {
        static long seq;
        char port[512];
        snprintf(port, sizeof port, "%s#watch", nodeid);
        seq++;
        aemp_mon(node, port, watch_lost, (void *)(intptr_t)seq, NULL);
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("lost"));
        cJSON_AddItemToArray(m, cJSON_CreateString(aemp_node_id(node)));
        cJSON_AddItemToArray(m, cJSON_CreateNumber((double)seq));
        aemp_snd(node, port, m);
    }
}

static int watch_got(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    (void)node;
    (void)self;
    (void)ud;
    watch_line("got", "", msg);
    return 0;
}

int svc_watch_init(aemp_node *node, const cJSON *args)
{
    (void)args;
    char port[512];
    snprintf(port, sizeof port, "%s#watch", aemp_node_id(node));
    int rc = aemp_rcv(node, port, NULL, watch_got, NULL);
    return rc ? rc : aemp_mon_nodes(node, watch_nodes, NULL, NULL);
}
