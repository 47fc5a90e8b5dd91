/* nodemon.c - other nodes as the core sees them: the transport reports a
 * node up or down (monitors of its ports fire, aemp_mon_nodes listeners
 * hear of it), and the node lists of the public API. */
#include "core.h"

#include "transport.h"

#include <stdlib.h>
#include <string.h>

static void nodemons_call(aemp_node *node, const char *nodeid, int up, const cJSON *reason)
{
    /* A callback may release its own or another listener: released ones are
     * only marked while we walk, and swept afterwards. */
    struct node_core *c = node->core;
    c->nm_busy++;
    for (struct nodemon *nm = c->nodemons; nm; nm = nm->next)
        if (nm->fn) nm->fn(node, nodeid, up, reason, nm->ud);
    if (--c->nm_busy) return;
    for (struct nodemon *nm = c->nodemons, *next; nm; nm = next) {
        next = nm->next;
        if (nm->fn) continue;
        if (nm->prev) nm->prev->next = nm->next;
        else c->nodemons = nm->next;
        if (nm->next) nm->next->prev = nm->prev;
        free(nm);
    }
}

void node_remote_up(aemp_node *node, const char *nodeid)
{
    aemp_log(7, "node %s is up", nodeid);
    nodemons_call(node, nodeid, 1, NULL);
}

void node_remote_down(aemp_node *node, const char *nodeid, const char *text)
{
    aemp_log(7, "node %s is down: %s", nodeid, text);
    cJSON *reason = cJSON_CreateArray();
    cJSON_AddItemToArray(reason, cJSON_CreateString("transport_error"));
    cJSON_AddItemToArray(reason, cJSON_CreateString(nodeid));
    cJSON_AddItemToArray(reason, cJSON_CreateString(text));
    mon_fire_node(node, nodeid, reason);
    nodemons_call(node, nodeid, 0, reason);
    cJSON_Delete(reason);
}

void node_remote_unreachable(aemp_node *node, const char *nodeid, const char *text)
{
    aemp_log(7, "node %s is unreachable: %s", nodeid, text);
    cJSON *reason = cJSON_CreateArray();
    cJSON_AddItemToArray(reason, cJSON_CreateString("transport_error"));
    cJSON_AddItemToArray(reason, cJSON_CreateString(nodeid));
    cJSON_AddItemToArray(reason, cJSON_CreateString(text));
    mon_fire_node(node, nodeid, reason);
    cJSON_Delete(reason);
}

/* ---------------------------------------------------------- node lists */

static void nodemon_cancel(aemp_guard *g)
{
    struct node_core *c = g->node->core;
    struct nodemon *nm = g->target;
    if (c->nm_busy) {
        nm->fn = NULL; /* swept by nodemons_call */
        return;
    }
    if (nm->prev) nm->prev->next = nm->next;
    else c->nodemons = nm->next;
    if (nm->next) nm->next->prev = nm->prev;
    free(nm);
}

int aemp_mon_nodes(aemp_node *node, aemp_node_mon_fn fn, void *ud, aemp_guard **guard)
{
    struct nodemon *nm = calloc(1, sizeof *nm);
    if (!nm) return AEMP_ENOMEM;
    nm->fn = fn;
    nm->ud = ud;
    if (guard) {
        *guard = guard_new(node, nodemon_cancel, nm);
        if (!*guard) {
            free(nm);
            return AEMP_ENOMEM;
        }
    }
    nm->next = node->core->nodemons;
    if (nm->next) nm->next->prev = nm;
    node->core->nodemons = nm;
    return 0;
}

cJSON *aemp_listen_addrs(aemp_node *node)
{
    return transport_listen_addrs(node->transport);
}

cJSON *aemp_up_nodes(aemp_node *node)
{
    cJSON *a = cJSON_CreateArray();
    if (a) transport_up_nodes(node->transport, a);
    return a;
}

cJSON *aemp_known_nodes(aemp_node *node)
{
    cJSON *a = cJSON_CreateArray();
    if (a) {
        cJSON_AddItemToArray(a, cJSON_CreateString(node->id));
        transport_known_nodes(node->transport, a);
    }
    return a;
}

int aemp_node_is_up(aemp_node *node, const char *nodeid)
{
    return !strcmp(nodeid, node->id) || transport_is_up(node->transport, nodeid);
}
