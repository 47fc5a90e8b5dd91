/* node.h - the core's internals shared by the library's modules above the
 * transport: the node structure and the entry points of the transport's
 * reports.
 * Not part of the public API. */
#ifndef AEMP_NODE_H
#define AEMP_NODE_H

#include "aemp.h"
#include "strmap.h"

struct transport; /* transport.c */

#define BUILTIN_MAX 8 /* built-in services (builtin.h) */

struct aemp_node {
    struct event_base *base;
    int own_base;
    char *id;
    cJSON *cfg;                  /* effective configuration or NULL */
    struct transport *transport; /* owned by transport.c, NULL until started */
    void *builtin[BUILTIN_MAX];  /* each built-in service's state (builtin.h) */
    /* core fields: see node.c (port table, deferred queue, registry, ...) */
    struct node_core *core;
};

/* ---- what the transport reports, through its operations (transport_ops,
 * registered in node.c; never from inside a core callback) ---- */

/* A message `msg` (taken; array [PORTNAME, ...]) arrived from `srcnode`. */
void node_deliver(aemp_node *node, const char *srcnode, cJSON *msg);

/* An authenticated connection to `nodeid` is up. */
void node_remote_up(aemp_node *node, const char *nodeid);

/* The connection to `nodeid` is lost (or could not be made): fire every
 * monitor on its ports with ["transport_error", nodeid, text], forget remote
 * monitoring state for it, report it down to mon_nodes callbacks. */
void node_remote_down(aemp_node *node, const char *nodeid, const char *text);

/* `nodeid`, not up, could not be reached within monitor_timeout: fire the
 * monitors on its ports as node_remote_down does, but report no node-down
 * to mon_nodes callbacks (it was never up; as 1.30's transport_error
 * without a transport). */
void node_remote_unreachable(aemp_node *node, const char *nodeid, const char *text);

#endif
