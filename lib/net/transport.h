/* transport.h - connections between nodes: listeners, outgoing connects,
 * per-node send queues, the handshake driver and framing on sockets.
 *
 * The layers above talk to other nodes only through these functions, and
 * the transport reports back only through the operations it was started
 * with (struct transport_ops, registered by the kernel) and the data
 * connection operations the data connection service registers. It names
 * nothing above it. */
#ifndef AEMP_TRANSPORT_H
#define AEMP_TRANSPORT_H

#include "aemp.h"

#include <stddef.h>
#include <cjson/cJSON.h>

struct event_base;
struct bufferevent;
struct evbuffer;
struct tls;
struct transport;

/* What the transport tells the layer above it (the kernel), each with the
 * `ctx` given at start; never called from inside a transport_* call. */
struct transport_ops {
    /* A message `msg` (taken; array [PORTNAME, ...]) arrived from `srcnode`. */
    void (*deliver)(void *ctx, const char *srcnode, cJSON *msg);
    /* An authenticated connection to `nodeid` is up. */
    void (*node_up)(void *ctx, const char *nodeid);
    /* The connection to `nodeid` is lost or could not be made (`why`). */
    void (*node_down)(void *ctx, const char *nodeid, const char *why);
    /* `nodeid`, not up, could not be reached within monitor_timeout (`why`):
     * its monitors fire, but it was never up, so it did not go down. */
    void (*node_unreachable)(void *ctx, const char *nodeid, const char *why);
};

/* Where data connections go (aemp-dataconn greetings; dataconn.c). */
struct transport_dataconn_ops {
    /* Authenticated data connection `id` with node `peer` (both borrowed):
     * takes `bev` (no callbacks, raw bytes after the auth line in its
     * input), `tls` (or NULL) and `plain` (decrypted bytes read, or NULL). */
    void (*ready)(void *ctx, const char *id, const char *peer, struct bufferevent *bev,
                  struct tls *tls, struct evbuffer *plain);
    /* Our dial for data connection `id` failed (`why` borrowed). */
    void (*dial_failed)(void *ctx, const char *id, const char *why);
};

/* How a transport starts: everything borrowed and living until
 * transport_free(). */
struct transport_conf {
    struct event_base *base;
    const char *id;                  /* our node ID */
    const cJSON *cfg;                /* the node's effective configuration */
    const struct transport_ops *ops; /* all set */
    void *ctx;
    struct aemp_node *node;          /* opaque: handed to the program's callbacks */
};

/* Start listeners on the configured binds and connect to the configured
 * seeds. *out is set even on failure (free it with transport_free). 0, or an
 * AEMP_E* code with a message. */
int transport_start(struct transport **out, const struct transport_conf *conf, char *err,
                    size_t errlen);

/* Data connections go to `ops` with `ctx` (borrowed; until the transport is
 * freed); without, an incoming one is closed. */
void transport_set_dataconn_ops(struct transport *t, const struct transport_dataconn_ops *ops,
                                void *ctx);

/* Every function below takes the transport, or NULL before it started
 * (nothing is known then; a send is dropped with a log line). */

/* Send `msg` (taken; array [PORTNAME, ...]) to remote node `nodeid`. Queues
 * while connecting; connects if needed. Never calls back into the core
 * synchronously. AEMP_BUSY when more than the high-water mark now waits for
 * the node (flow.c), else 0. */
int transport_send(struct transport *t, const char *nodeid, cJSON *msg);
/* The same for port `name` of `nodeid`: msg (taken) holds only the
 * elements after the port name; the writer puts the name in front. */
int transport_send_named(struct transport *t, const char *nodeid, const char *name,
                         cJSON *msg);

/* Write what waits for `nodeid`'s connection now instead of at the end of
 * the loop turn: a message that 1.30 writes at once (its own write(2),
 * ahead of what the following requests cause). Only a cleartext connection
 * that is up and not backlogged; errors and a full socket are left to the
 * end of the turn, so nothing is closed and the core is never called. */
void transport_flush_node(struct transport *t, const char *nodeid);

/* 1 when an authenticated connection to `nodeid` exists. */
int transport_is_up(struct transport *t, const char *nodeid);

/* Append the IDs of nodes that are up / known (not ourselves) to `arr`
 * (borrowed). */
void transport_up_nodes(struct transport *t, cJSON *arr);
void transport_known_nodes(struct transport *t, cJSON *arr);

/* At most this many addresses are kept per node. */
#define TRANSPORT_MAX_ADDRS 16
/* Dials to learned addresses in their handshake at once, at most (admit.c). */
#define ADMIT_DIALS_MAX 64

/* Remember `addrs` (borrowed array of "host:port") as ways to reach `nodeid`
 * (the first TRANSPORT_MAX_ADDRS). */
void transport_set_addrs(struct transport *t, const char *nodeid, const cJSON *addrs);

/* 1 when `nodeid` was reached through one of the configured seed addresses
 * (Global prefers seeds as masters). */
int transport_node_is_seed(struct transport *t, const char *nodeid);

/* Replace the configured seeds with `seeds` (borrowed array of
 * "host:port"): new ones are dialed at once, removed ones no longer. 0,
 * AEMP_ESTATE before transport_start(), AEMP_ENOMEM. */
int transport_set_seeds(struct transport *t, const cJSON *seeds);

/* Our listen addresses as a new array of "host:port" (caller owns). */
cJSON *transport_listen_addrs(struct transport *t);

/* 1 when `nodeid` has a record here (up, connecting, or with addresses). */
int transport_is_known(struct transport *t, const char *nodeid);

/* Bytes waiting to go to `nodeid` (its queue and its connection's output
 * buffers); 0 for an unknown node. */
size_t transport_pending(struct transport *t, const char *nodeid);
/* Dial `addr` for data connection `id` (dataconn.c): greeting with protocol
 * aemp-dataconn, authenticated like a node connection, then handed to the
 * data connection ops' ready(); a failure later is reported to dial_failed().
 * 0, or an AEMP_E* code when the dial could not even start. */
int transport_dial_dataconn(struct transport *t, const char *addr, const char *id);

/* aemp_on_drain, aemp_drain_cancel, aemp_queued and aemp_flow_marks
 * (aemp.h) for the node whose transport is `t` (flow.c). */
int transport_on_drain(struct transport *t, const char *dest, aemp_drain_fn fn, void *ud);
int transport_drain_cancel(struct transport *t, const char *dest, aemp_drain_fn fn, void *ud);
size_t transport_queued(struct transport *t, const char *dest);
int transport_flow_marks(struct transport *t, size_t high, size_t low);

/* Close everything, free the transport state; no callbacks. */
void transport_free(struct transport *t);

#endif
