/* svc_watch.c - a service for the e2e tests of the mesh (mesh_form.sh,
 * partition.sh), loaded with
 *     aemp run services '["PATH/libsvc_watch.so:svc_watch_init"]'
 * It writes one stderr line per event, whatever the log level:
 *   "WATCH up NODE"            a node came up
 *   "WATCH down NODE REASON"   a node went down
 *   "WATCH fired PORT REASON"  a monitor fired
 * When a node comes up it monitors a port on it (the node's node port, the
 * bare node ID), so every node-down is also seen as a monitor firing. Built
 * as a shared module without libaemp: the aemp_* symbols come from the aemp
 * binary. */
#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>

int svc_watch_init(aemp_node *node, const cJSON *args);

static void watch_line(const char *what, const char *id, const cJSON *reason)
{
    char *r = reason ? cJSON_PrintUnformatted(reason) : NULL;
    fprintf(stderr, "WATCH %s %s%s%s\n", what, id, r ? " " : "", r ? r : "");
    fflush(stderr);
    free(r);
}

static void watch_fired(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    (void)node;
    (void)ud;
    watch_line("fired", port, reason);
}

static void watch_nodes(aemp_node *node, const char *nodeid, int up, const cJSON *reason,
                        void *ud)
{
    (void)ud;
    watch_line(up ? "up" : "down", nodeid, up ? NULL : reason);
    if (up) aemp_mon(node, nodeid, watch_fired, NULL, NULL);
}

int svc_watch_init(aemp_node *node, const cJSON *args)
{
    (void)args;
    return aemp_mon_nodes(node, watch_nodes, NULL, NULL);
}
