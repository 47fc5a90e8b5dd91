/* dataconn.h - data connections (1.30's AnyEvent::MP::DataConn): the
 * bookkeeping behind aemp_dataconn_connect(). The transport makes the
 * sockets (protocol "aemp-dataconn" on the ordinary listening port) and
 * hands them here once authenticated; the node port hands over the
 * AnyEvent::MP::DataConn::_expect and _connect requests. Not public. */
#ifndef AEMP_DATACONN_H
#define AEMP_DATACONN_H

#include "aemp.h"

struct bufferevent;
struct evbuffer;
struct tls;

/* An authenticated data connection `id` with node `peer` (both borrowed).
 * Takes `bev` (socket bufferevent without callbacks, raw bytes after the
 * auth line still in its input), `tls` (the session, or NULL without TLS)
 * and `plain` (decrypted bytes already read, or NULL); frees all of them
 * when nobody expects `id` from `peer`. */
void dataconn_ready(aemp_node *node, const char *id, const char *peer, struct bufferevent *bev,
                    struct tls *tls, struct evbuffer *plain);

/* Our outgoing data connection attempt `id` failed (`why` borrowed): try the
 * next address or give up. */
void dataconn_dial_failed(aemp_node *node, const char *id, const char *why);

struct core_builtin;

/* The built-in service (builtin.h): takes the node-port requests
 * AnyEvent::MP::DataConn::*; its pending state goes with the node. */
extern const struct core_builtin dataconn_builtin;

#endif
