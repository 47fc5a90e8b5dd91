/* dataconn_io.h - the bufferevent a data connection's user gets (a filter,
 * plain or TLS, over the socket's bufferevent), the list of those still in
 * use (so a node knows how many a peer holds), and aemp_dataconn_close()'s
 * flushing close. Used by dataconn.c; not public. */
#ifndef AEMP_DATACONN_IO_H
#define AEMP_DATACONN_IO_H

#include "aemp.h"

#include <stddef.h>

struct bufferevent;
struct evbuffer;
struct tls;
struct dcio_live;
struct dcio_closing;

/* One node's data connections in use and being closed. */
struct dcio_set {
    aemp_node *node;              /* borrowed */
    struct dcio_live *live;       /* handed to a user, not yet freed by it */
    struct dcio_closing *closing; /* in aemp_dataconn_close() */
    unsigned long long opened;    /* connections handed to users */
    unsigned long long bytes_in, bytes_out; /* user bytes through them (after TLS) */
};

/* Bulk reads and writes on a socket bufferevent. */
void dcio_socket_tune(struct bufferevent *bev);

/* The bufferevent for the user of a connection with node `peer`
 * (borrowed): a filter over `bev` (taken) that decrypts and encrypts with
 * `tls` (taken, or NULL: bytes pass unchanged), with `plain` (taken, or
 * NULL: bytes already read) in its input. It stays in `s` until the user
 * frees it; `counted` says it counts toward the peer's share. NULL on
 * ENOMEM (everything taken freed). */
struct bufferevent *dcio_user_bev(struct dcio_set *s, const char *peer, int counted,
                                  struct bufferevent *bev, struct tls *tls,
                                  struct evbuffer *plain);

/* Counted connections in use with `peer`, or with all peers when NULL. */
size_t dcio_count(const struct dcio_set *s, const char *peer);

/* aemp_dataconn_close() on `s`. */
int dcio_close(struct dcio_set *s, struct bufferevent *bev, double timeout,
               aemp_dataconn_closed_cb cb, void *ud);

/* Free the connections being closed (no callbacks) and forget the ones in
 * use (their users still free them, later). */
void dcio_free_all(struct dcio_set *s);

#endif
