/* dataconn_io.c - the bufferevents of data connections (see dataconn_io.h).
 *
 * A user always gets a bufferevent filter over the socket's bufferevent:
 * with TLS it encrypts and decrypts through the session of the handshake
 * (tls.c), without it passes bytes unchanged. Either way the filter's
 * context is a record in the node's list that goes when the user frees the
 * bufferevent, so the node knows what each peer holds; and the user's
 * output buffer is where unsent data waits (the socket side is bounded by a
 * watermark), which aemp_dataconn_close() drains before it ends the TLS
 * session and the socket. */
#include "dataconn_io.h"

#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Socket buffering per connection: bulk reads and writes, bounded. */
#define DC_SINGLE_IO (256 * 1024)
#define DC_WBUF_HIGH (1024 * 1024)
#define DC_WBUF_LOW (256 * 1024)

struct dcio_live {
    struct dcio_set *set; /* NULL once the node is freed */
    struct dcio_live *prev, *next;
    struct bufferevent *user; /* the filter (owned by the user) */
    struct tls *tls;          /* owned; NULL without TLS */
    char *peer;
    int counted;
};

struct dcio_closing {
    struct dcio_set *set;
    struct dcio_closing *prev, *next;
    struct bufferevent *bev;        /* taken from the user */
    struct evbuffer_cb_entry *watch; /* on the socket's output */
    struct event *check, *timer;
    aemp_dataconn_closed_cb cb;
    void *ud;
    int bye;     /* our close_notify is queued */
    int written; /* everything is out and the sending side shut down */
    int eof;     /* the other side closed */
};

/* ------------------------------------------------------------- filters */

static enum bufferevent_filter_result move(struct evbuffer *src, struct evbuffer *dst,
                                           ev_ssize_t lim)
{
    size_t n = evbuffer_get_length(src);
    if (lim >= 0 && n > (size_t)lim) n = (size_t)lim;
    if (!n) return BEV_NEED_MORE;
    return evbuffer_remove_buffer(src, dst, n) < 0 ? BEV_ERROR : BEV_OK;
}

/* Ciphertext in the socket bufferevent's buffers (the session was made on
 * them), plaintext in the filter's. */
static enum bufferevent_filter_result f_in(struct evbuffer *src, struct evbuffer *dst,
                                           ev_ssize_t lim, enum bufferevent_flush_mode mode,
                                           void *ctx)
{
    (void)mode;
    struct dcio_live *l = ctx;
    size_t before = evbuffer_get_length(dst);
    if (!l->tls) {
        enum bufferevent_filter_result r = move(src, dst, lim);
        if (l->set) l->set->bytes_in += evbuffer_get_length(dst) - before;
        return r;
    }
    char err[256];
    int rc = tls_read(l->tls, dst, err, sizeof err);
    int got = evbuffer_get_length(dst) > before;
    if (l->set) l->set->bytes_in += evbuffer_get_length(dst) - before;
    /* close_notify is a clean end: the socket's EOF reports it. */
    if (rc && !tls_peer_closed(l->tls)) {
        aemp_log(6, "data connection with %s: %s", l->peer, err);
        return got ? BEV_OK : BEV_ERROR;
    }
    return got ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result f_out(struct evbuffer *src, struct evbuffer *dst,
                                            ev_ssize_t lim, enum bufferevent_flush_mode mode,
                                            void *ctx)
{
    (void)mode;
    struct dcio_live *l = ctx;
    /* Only what the socket side has room for (lim: room below its mark):
     * the rest waits in the user's output buffer, where the user's
     * watermarks see it. */
    size_t n = evbuffer_get_length(src);
    if (lim >= 0 && n > (size_t)lim) n = (size_t)lim;
    if (l->set) l->set->bytes_out += n;
    if (!l->tls) return move(src, dst, lim);
    if (!n) return BEV_NEED_MORE;
    struct evbuffer *chunk = evbuffer_new();
    if (!chunk) return BEV_ERROR;
    evbuffer_remove_buffer(src, chunk, n);
    char err[256];
    int rc = tls_write(l->tls, chunk, err, sizeof err);
    evbuffer_free(chunk);
    if (rc) {
        aemp_log(6, "data connection with %s: %s", l->peer, err);
        return BEV_ERROR;
    }
    return BEV_OK;
}

/* The user freed the filter: the connection is no longer held. */
static void live_free(void *ctx)
{
    struct dcio_live *l = ctx;
    if (l->set) {
        if (l->prev) l->prev->next = l->next;
        else l->set->live = l->next;
        if (l->next) l->next->prev = l->prev;
    }
    tls_free(l->tls);
    free(l->peer);
    free(l);
}

void dcio_socket_tune(struct bufferevent *bev)
{
    bufferevent_set_max_single_read(bev, DC_SINGLE_IO);
    bufferevent_set_max_single_write(bev, DC_SINGLE_IO);
}

struct bufferevent *dcio_user_bev(struct dcio_set *s, const char *peer, int counted,
                                  struct bufferevent *bev, struct tls *tls,
                                  struct evbuffer *plain)
{
    dcio_socket_tune(bev);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_setwatermark(bev, EV_WRITE, DC_WBUF_LOW, DC_WBUF_HIGH);
    struct dcio_live *l = calloc(1, sizeof *l);
    struct bufferevent *u = NULL;
    if (l) {
        l->tls = tls;
        l->counted = counted;
        l->peer = strdup(peer);
        if (l->peer)
            u = bufferevent_filter_new(bev, f_in, f_out, BEV_OPT_CLOSE_ON_FREE, live_free, l);
    }
    if (!u) {
        if (l) free(l->peer);
        free(l);
        tls_free(tls);
        bufferevent_free(bev);
        if (plain) evbuffer_free(plain);
        return NULL;
    }
    l->user = u;
    l->set = s;
    s->opened++;
    l->next = s->live;
    if (l->next) l->next->prev = l;
    s->live = l;
    bufferevent_enable(u, EV_READ | EV_WRITE);
    if (plain) { /* what came with the handshake counts as received too */
        s->bytes_in += evbuffer_get_length(plain);
        evbuffer_add_buffer(bufferevent_get_input(u), plain);
        evbuffer_free(plain);
    }
    return u;
}

size_t dcio_count(const struct dcio_set *s, const char *peer)
{
    size_t n = 0;
    for (const struct dcio_live *l = s->live; l; l = l->next)
        n += l->counted && (!peer || !strcmp(peer, l->peer));
    return n;
}

/* ------------------------------------------------------------- closing */

/* Frees c and its bufferevent; calls back with `status` unless quiet. */
static void closing_end(struct dcio_closing *c, int status, int quiet)
{
    struct dcio_set *s = c->set;
    if (c->prev) c->prev->next = c->next;
    else s->closing = c->next;
    if (c->next) c->next->prev = c->prev;
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (c->watch && under) evbuffer_remove_cb_entry(bufferevent_get_output(under), c->watch);
    bufferevent_free(c->bev);
    event_free(c->check);
    event_free(c->timer);
    if (!quiet && c->cb) c->cb(s->node, status, c->ud);
    free(c);
}

static struct tls *tls_of(struct dcio_set *s, struct bufferevent *bev)
{
    for (struct dcio_live *l = s->live; l; l = l->next)
        if (l->user == bev) return l->tls;
    return NULL;
}

/* Is everything out? Then end the TLS session, and once that is out too,
 * shut the sending side down and wait for the other side's end. */
static void check_cb(evutil_socket_t fd_, short what, void *arg)
{
    (void)fd_, (void)what;
    struct dcio_closing *c = arg;
    if (c->written) return;
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (evbuffer_get_length(bufferevent_get_output(c->bev))) return;
    if (under && evbuffer_get_length(bufferevent_get_output(under))) return;
    struct tls *tls = c->bye ? NULL : tls_of(c->set, c->bev);
    c->bye = 1;
    if (tls) {
        if (tls_bye(tls)) {
            closing_end(c, AEMP_EIO, 0);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_output(under))) {
            bufferevent_enable(under, EV_WRITE);
            return; /* the watch brings us back */
        }
    }
    c->written = 1;
    shutdown(bufferevent_getfd(under ? under : c->bev), SHUT_WR);
    if (c->eof) closing_end(c, 0, 0);
}

static void watch_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct dcio_closing *c = arg;
    if (info->n_deleted && !evbuffer_get_length(buf)) event_active(c->check, 0, 0);
}

static void closing_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct dcio_closing *c = arg;
    event_active(c->check, 0, 0);
}

static void closing_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void closing_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct dcio_closing *c = arg;
    if (what & BEV_EVENT_EOF) {
        /* The other side ended its half; ours may still be on its way. */
        c->eof = 1;
        if (c->written) closing_end(c, 0, 0);
        else event_active(c->check, 0, 0);
    } else if (what & BEV_EVENT_ERROR) {
        closing_end(c, c->written ? 0 : AEMP_EIO, 0);
    }
}

static void timer_cb(evutil_socket_t fd_, short what, void *arg)
{
    (void)fd_, (void)what;
    struct dcio_closing *c = arg;
    closing_end(c, c->written ? 0 : AEMP_ETIMEDOUT, 0);
}

int dcio_close(struct dcio_set *s, struct bufferevent *bev, double timeout,
               aemp_dataconn_closed_cb cb, void *ud)
{
    if (!bev) return AEMP_EINVAL;
    struct event_base *base = bufferevent_get_base(bev);
    struct dcio_closing *c = calloc(1, sizeof *c);
    if (c) {
        c->check = event_new(base, -1, 0, check_cb, c);
        c->timer = evtimer_new(base, timer_cb, c);
    }
    if (!c || !c->check || !c->timer) {
        if (c && c->check) event_free(c->check);
        if (c && c->timer) event_free(c->timer);
        free(c);
        bufferevent_free(bev);
        return AEMP_ENOMEM;
    }
    c->set = s;
    c->bev = bev;
    c->cb = cb;
    c->ud = ud;
    c->next = s->closing;
    if (c->next) c->next->prev = c;
    s->closing = c;
    bufferevent_setcb(bev, closing_read_cb, closing_write_cb, closing_event_cb, c);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0); /* the write callback: all out */
    bufferevent_set_timeouts(bev, NULL, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    struct bufferevent *under = bufferevent_get_underlying(bev);
    if (under) {
        c->watch = evbuffer_add_cb(bufferevent_get_output(under), watch_cb, c);
        /* An EOF the user saw already disabled reading there: reading again
         * reports it again. */
        bufferevent_enable(under, EV_READ | EV_WRITE);
    }
    if (!(timeout > 0)) timeout = 0;
    if (timeout > 1e6) timeout = 1e6;
    struct timeval tv = {(time_t)timeout,
                         (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    evtimer_add(c->timer, &tv);
    event_active(c->check, 0, 0);
    return 0;
}

void dcio_free_all(struct dcio_set *s)
{
    for (struct dcio_closing *c = s->closing, *next; c; c = next) {
        next = c->next;
        closing_end(c, 0, 1); /* unlinks c */
    }
    for (struct dcio_live *l = s->live, *next; l; l = next) {
        next = l->next;
        l->set = NULL;
        l->prev = l->next = NULL;
    }
    s->live = NULL;
}
