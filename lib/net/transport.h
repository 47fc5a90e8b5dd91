/* transport.h - connections between nodes: listeners, outgoing connects,
 * per-node send queues, the handshake driver and framing on sockets.
 *
 * The core (node.c) talks to other nodes only through these functions, and
 * the transport reports back only through the node_remote_* functions of
 * node.h. */
#ifndef AEMP_TRANSPORT_H
#define AEMP_TRANSPORT_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct aemp_node;

/* Start listeners on the configured binds and connect to the seeds of the
 * node's effective configuration. 0, or an AEMP_E* code with a message. */
int transport_start(struct aemp_node *node, char *err, size_t errlen);

/* Send `msg` (taken; array [PORTNAME, ...]) to remote node `nodeid`. Queues
 * while connecting; connects if needed. Never calls back into the core
 * synchronously. AEMP_BUSY when more than the high-water mark now waits for
 * the node (flow.c), else 0. */
int transport_send(struct aemp_node *node, const char *nodeid, cJSON *msg);
/* The same for port `name` of `nodeid`: msg (taken) holds only the
 * elements after the port name; the writer puts the name in front. */
int transport_send_named(struct aemp_node *node, const char *nodeid, const char *name,
                         cJSON *msg);

/* 1 when an authenticated connection to `nodeid` exists. */
int transport_is_up(struct aemp_node *node, const char *nodeid);

/* Append the IDs of nodes that are up / known to `arr` (borrowed). */
void transport_up_nodes(struct aemp_node *node, cJSON *arr);
void transport_known_nodes(struct aemp_node *node, cJSON *arr);

/* At most this many addresses are kept per node. */
#define TRANSPORT_MAX_ADDRS 16

/* Remember `addrs` (borrowed array of "host:port") as ways to reach `nodeid`
 * (the first TRANSPORT_MAX_ADDRS). */
void transport_set_addrs(struct aemp_node *node, const char *nodeid, const cJSON *addrs);

/* 1 when `nodeid` was reached through one of the configured seed addresses
 * (Global prefers seeds as masters). */
int transport_node_is_seed(struct aemp_node *node, const char *nodeid);

/* Replace the configured seeds with `seeds` (borrowed array of
 * "host:port"): new ones are dialed at once, removed ones no longer. 0,
 * AEMP_ESTATE before transport_start(), AEMP_ENOMEM. */
int transport_set_seeds(struct aemp_node *node, const cJSON *seeds);

/* Our listen addresses as a new array of "host:port" (caller owns). */
cJSON *transport_listen_addrs(struct aemp_node *node);

/* 1 when `nodeid` has a record here (up, connecting, or with addresses). */
int transport_is_known(struct aemp_node *node, const char *nodeid);

/* Bytes waiting to go to `nodeid` (its queue and its connection's output
 * buffers); 0 for an unknown node. */
size_t transport_pending(struct aemp_node *node, const char *nodeid);
/* Dial `addr` for data connection `id` (dataconn.c): greeting with protocol
 * aemp-dataconn, authenticated like a node connection, then handed to
 * dataconn_ready(); a failure later is reported to dataconn_dial_failed().
 * 0, or an AEMP_E* code when the dial could not even start. */
int transport_dial_dataconn(struct aemp_node *node, const char *addr, const char *id);

/* Close everything, free the transport state; no callbacks. */
void transport_free(struct aemp_node *node);

#endif
