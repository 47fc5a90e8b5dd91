/* global.h - AnyEvent::MP::Global: the mesh protocol between nodes, master
 * and seeding, port groups (PROTOCOL.md section 7). Uses only the public API
 * plus the transport's address book. */
#ifndef AEMP_GLOBAL_H
#define AEMP_GLOBAL_H

#include <stddef.h>

struct aemp_node;

struct core_builtin;

/* The built-in service (builtin.h): once the transport started it registers
 * AnyEvent::MP::Global::connect and follows node up/down events; its state
 * (struct global, global_int.h) goes with the node. */
extern const struct core_builtin global_builtin;

/* The listen addresses node `nodeid` announced (borrowed array, valid until
 * the next event; empty when it has none), or NULL when it has not told us
 * yet. */
#include <cjson/cJSON.h>
const cJSON *global_node_addrs(struct aemp_node *node, const char *nodeid);

/* Call fn for every group this node knows network-wide that has members,
 * with its name and its members (an array of port IDs), both borrowed for
 * the call; fn must not change groups. For the monitoring pages. */
void global_groups_each(struct aemp_node *node,
                        void (*fn)(const char *group, const cJSON *members, void *ud), void *ud);

#endif
