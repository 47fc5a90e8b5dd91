/* global.h - AnyEvent::MP::Global: the mesh protocol between nodes, master
 * and seeding, port groups (PROTOCOL.md section 7). Uses only the public API
 * plus the transport's address book. */
#ifndef AEMP_GLOBAL_H
#define AEMP_GLOBAL_H

#include <stddef.h>

struct aemp_node;

/* Register AnyEvent::MP::Global::connect and start following node up/down
 * events. Called by aemp_configure() after the transport started. 0 or an
 * AEMP_E* code with a message. */
int global_start(struct aemp_node *node, char *err, size_t errlen);

/* Free the node's global state (node->global); no callbacks. NULL-safe. */
void global_free(struct aemp_node *node);

/* The listen addresses node `nodeid` announced (borrowed array, valid until
 * the next event; empty when it has none), or NULL when it has not told us
 * yet. */
#include <cjson/cJSON.h>
const cJSON *global_node_addrs(struct aemp_node *node, const char *nodeid);

#endif
