/* dataconn.h - data connections (1.30's AnyEvent::MP::DataConn): the
 * bookkeeping behind aemp_dataconn_connect(). The transport makes the
 * sockets (protocol "aemp-dataconn" on the ordinary listening port) and
 * hands them here once authenticated (transport_set_dataconn_ops); the node
 * port hands over the
 * AnyEvent::MP::DataConn::_expect and _connect requests. Not public. */
#ifndef AEMP_DATACONN_H
#define AEMP_DATACONN_H

#include "aemp.h"

struct core_builtin;

/* The built-in service (builtin.h): takes the node-port requests
 * AnyEvent::MP::DataConn::*; its pending state goes with the node. */
extern const struct core_builtin dataconn_builtin;

/* The data connections of `node` for the metrics: *open in use now,
 * *opened since the start, user bytes *in and *out through them. */
struct aemp_node;
void dataconn_figures(struct aemp_node *node, unsigned long long *open, unsigned long long *opened,
                      unsigned long long *in, unsigned long long *out);

#endif
