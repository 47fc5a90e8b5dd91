/* http.h - the monitoring listener: read-only HTTP (libevent's evhttp) on
 * the addresses of the configuration key "http", serving the node's
 * health, metrics and a picture of the mesh. Nothing it serves changes the
 * node, and nothing shows the secret or the certificates.
 *
 * What a client can make the node hold is bounded: past HTTP_MAX_CONNS
 * connections a new client ends the oldest one that has not made a
 * request yet, and at twice that many the listeners pause (clients wait in
 * the kernel's backlog), requests of at most
 * HTTP_MAX_HEADERS bytes of request line and headers and no body, and
 * HTTP_DEADLINE seconds from a connection's start (or its last answer) to
 * its next complete request, however slowly it trickles in. */
#ifndef AEMP_OBSERVE_HTTP_H
#define AEMP_OBSERVE_HTTP_H

#include "aemp.h"

#include <stddef.h>

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_HEADERS 8192
#define HTTP_DEADLINE 10

struct core_builtin;

/* A built-in service of every node (services/builtins.c): once the
 * transport has started, it serves on the addresses of the node's "http"
 * key (a list of "host:port"; "*:port" is every IPv4 and IPv6 address,
 * "port" alone 127.0.0.1) when the configuration has one, and nothing
 * otherwise; a listener that cannot be made fails aemp_configure() with a
 * sentence naming the address. */
extern const struct core_builtin observe_builtin;

/* The addresses actually listened on ("host:port", a new array the caller
 * frees), empty when nothing listens. */
cJSON *observe_addrs(aemp_node *node);

/* Append what GET /metrics serves to `out` (for the benchmark: the time to
 * render it). AEMP_ESTATE when the node does not serve HTTP. */
struct evbuffer;
int observe_metrics(aemp_node *node, struct evbuffer *out);

#endif
