/* conn_out.c - the write path of connections. Writes are appended to the
 * bufferevent's output and written straight to the socket once per loop turn
 * (wflush_cb), so many messages share one write(2); libevent's write event is
 * used only while the socket is full.
 *
 * A peer that reads nothing is told apart from one we only write to faster
 * than it reads: output over the high-water mark (admit_out_limit) is
 * tolerated while the socket takes at least STALL_BYTES every stall period
 * (admit_stall_time); a connection over the mark that makes no such
 * progress for a whole period is closed ("the peer does not read"). */
#include "transport_int.h"

#include "tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

/* Bytes written to the connection but not yet to the socket. */
static size_t pending_out(const struct conn *c)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
    return c->plain_out ? n + evbuffer_get_length(c->plain_out) : n;
}

static void dirty_link(struct conn *c)
{
    c->dirty = 1;
    c->dprev = NULL;
    c->dnext = c->t->dirty;
    if (c->dnext) c->dnext->dprev = c;
    c->t->dirty = c;
    event_active(c->t->wflush, 0, 0);
}

/* Bytes the socket must take in a stall period to count as progress: a
 * peer cannot keep a connection over the mark by reading a byte now and
 * then. */
#define STALL_BYTES 65536

static void stall_cb(evutil_socket_t fd, short what, void *arg);

/* A connection over the high-water mark with a full socket: closed from the
 * next flush when the socket took too little for a stall period; else the
 * stall timer looks again when the period since the last progress ends. */
static void check_high_water(struct conn *c)
{
    if (!c->backlog || c->doomed || pending_out(c) <= admit_out_limit(c->t)) return;
    double stall = admit_stall_time(c->t), idle = now_of(c->t) - c->progress_at;
    if (idle >= stall) {
        c->doomed = 1;
        if (!c->dirty) dirty_link(c);
        return;
    }
    if (!c->stall) c->stall = evtimer_new(c->t->base, stall_cb, c);
    if (c->stall && !evtimer_pending(c->stall, NULL)) {
        struct timeval tv = tv_of(stall - idle + 0.01);
        evtimer_add(c->stall, &tv);
    }
}

static void stall_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (!c->dead) check_high_water(c);
}

/* `n` bytes of output went to the socket. */
static void progress(struct conn *c, size_t n)
{
    c->drained += n;
    if (c->drained >= STALL_BYTES) {
        c->drained = 0;
        c->progress_at = now_of(c->t);
    }
}

/* Append `len` bytes of framed output to the connection. A peer that does
 * not read while its socket is full is dropped once its output passes the
 * high-water mark and the socket took nothing for a stall period (from the
 * flush, never inside a send). */
void conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->dead || c->doomed) return;
    c->last_write = now_of(c->t);
    if (c->tls) {
        evbuffer_add(c->plain_out, data, len);
        event_active(c->flush_ev, 0, 0);
    } else {
        bufferevent_write(c->bev, data, len);
    }
    check_high_water(c);
}

/* Large texts: the output buffer references the encoder's block and gives
 * it back once written (outblocks.c), so it is written straight from where
 * it was encoded and then reused. */
void conn_write_owned(struct conn *c, char *data, size_t len)
{
    if (c->dead || c->doomed) {
        outblocks_back(data, len, c->t->outblocks);
        return;
    }
    c->last_write = now_of(c->t);
    struct evbuffer *out = c->tls ? c->plain_out : bufferevent_get_output(c->bev);
    if (evbuffer_add_reference(out, data, len, outblocks_back, c->t->outblocks)) {
        outblocks_back(data, len, c->t->outblocks);
        return;
    }
    if (c->tls) event_active(c->flush_ev, 0, 0);
    check_high_water(c);
}

void conn_write_buffer(struct conn *c, struct evbuffer *buf)
{
    if (c->dead || c->doomed) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return;
    }
    c->last_write = now_of(c->t);
    struct evbuffer *out = c->tls ? c->plain_out : bufferevent_get_output(c->bev);
    if (evbuffer_add_buffer(out, buf)) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return;
    }
    if (c->tls) event_active(c->flush_ev, 0, 0);
    check_high_water(c);
}

void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char err[256];
    if (c->tls && tls_write(c->tls, c->plain_out, err, sizeof err))
        conn_close(c, CONN_TLS, 5, "%s", err);
}

void dirty_unlink(struct conn *c)
{
    if (!c->dirty) return;
    if (c->dprev) c->dprev->dnext = c->dnext;
    else c->t->dirty = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dnext = c->dprev = NULL;
    c->dirty = 0;
}

/* Output is written by us at the end of the loop turn, straight to the
 * socket: no EV_WRITE (and its epoll_ctl calls) while the socket takes it.
 * Only when it is full does libevent's write event take over until the
 * backlog is gone. */
void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (info->n_deleted) {
        progress(c, info->n_deleted);
        if (c->peer && c->peer->waiting) flow_check(c->peer);
    }
    /* the socket was full and took more: the peer reads */
    if (info->n_deleted && c->backlog && c->state == C_UP) probe_heard(c);
    if (!info->n_added || c->dirty || c->backlog || c->dead) return;
    dirty_link(c);
}

void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    /* the backlog is written: back to writing at the end of each turn */
    if (c->backlog && !evbuffer_get_length(bufferevent_get_output(bev))) {
        c->backlog = 0;
        bufferevent_disable(bev, EV_WRITE);
    }
}

/* A connection over the high-water mark whose socket took too little for
 * a stall period (check_high_water) closes here, from the flush. */
static void close_not_reading(struct conn *c)
{
    conn_close(c, CONN_NOT_READING, 4,
               "the peer does not read: more than %zu bytes of output wait and it took "
               "none for %g s",
               admit_out_limit(c->t), admit_stall_time(c->t));
}

void wflush_cb(evutil_socket_t fd_, short what, void *arg)
{
    struct transport *t = arg;
    while (t->dirty) {
        struct conn *c = t->dirty;
        dirty_unlink(c);
        if (c->dead || c->state == C_CONNECTING) continue;
        if (c->doomed) {
            close_not_reading(c);
            continue;
        }
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        int err = 0;
        evbuffer_unfreeze(out, 1);
        while (evbuffer_get_length(out)) {
            int n = evbuffer_write(out, fd);
            if (n < 0) {
                err = EVUTIL_SOCKET_ERROR();
                break;
            }
        }
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) == 0) continue;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            conn_close(c, conn_cause_of_errno(err), c->state == C_UP ? 6 : 5, "write: %s",
                       evutil_socket_error_to_string(err));
            continue;
        }
        if (!c->backlog) { /* the stall period starts when the socket is full */
            c->progress_at = now_of(t);
            c->drained = 0;
        }
        c->backlog = 1;
        bufferevent_enable(c->bev, EV_WRITE);
        check_high_water(c);
        if (c->doomed) close_not_reading(c);
    }
}

void transport_flush_node(struct transport *t, const char *nodeid)
{
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    struct conn *c = p ? p->conn : NULL;
    if (!c || c->dead || c->tls || c->state != C_UP || c->backlog || !c->dirty || c->doomed)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) && evbuffer_write(out, fd) > 0)
        ;
    evbuffer_freeze(out, 1);
    if (!evbuffer_get_length(out)) dirty_unlink(c); /* else wflush_cb goes on */
}
