/* meshview.h - this node's view of the network for the monitoring pages:
 * GET /mesh.json (what the page at / draws) and the readiness of GET
 * /readyz. */
#ifndef AEMP_OBSERVE_MESHVIEW_H
#define AEMP_OBSERVE_MESHVIEW_H

#include "aemp.h"

#include <stddef.h>

struct metrics;

#define MESHVIEW_MAX_NODES 500
#define MESHVIEW_MAX_GROUPS 100
#define MESHVIEW_MAX_MEMBERS 50

/* {"self": ID, "time": unix seconds, "monitor_timeout": S,
 *  "nodes": [{"id", "up", "self", "addrs": [...], "seed"}...],
 *  "links": [{"a": ID, "b": ID, "up", "msgs_in", "msgs_out", "bytes_in",
 *             "bytes_out", "queued_bytes", "tls"}...],
 *  "groups": [{"name", "size", "members": [port IDs]}...]}
 * Nodes: this one, every named node it has a record of (anonymous ones
 * counted in "anonymous") and those that went down lately; links: this
 * node's connections (from a node's "a" view, "msgs_out" goes a -> b).
 * New object, the caller frees it; NULL when out of memory. */
cJSON *meshview_json(aemp_node *node, struct metrics *m);

/* 1 when the node is ready for traffic: configured, listening on its
 * binds, and in contact with the network (another node is up, or it has
 * no seeds, or it is one of its seeds itself); else 0 with the reason in
 * why. */
int meshview_ready(aemp_node *node, char *why, size_t len);

#endif
