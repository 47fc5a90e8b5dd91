/* flow.c - flow control for senders: how much waits for a node (its queue
 * while connecting plus the connection's unwritten output), the high- and
 * low-water marks, and the callbacks of programs waiting for a node's
 * queue to drain (aemp_on_drain).
 *
 * aemp_snd returns AEMP_BUSY when, after queueing, more than the high-water
 * mark waits for the node (peer.c asks flow_busy). A waiter is due once the
 * node's queue is at or below the low-water mark: when written output is
 * taken off the connection (conn_out.c's out_cb calls flow_check), when the
 * node goes down and its queue is dropped (conn.c, peer.c), or at once
 * when it is below already. Due waiters are called from the loop (a
 * zero-timeout event), never inside a send or a write. Nothing goes on the
 * wire. */
#include "transport_int.h"

#include <stdlib.h>
#include <string.h>

/* Default marks: enough to keep the socket of a fast link busy (loopback
 * takes 4 MB at once), small enough that what a sender keeps waiting stays
 * in memory it reuses. */
#define FLOW_HIGH (8u << 20)
#define FLOW_LOW (2u << 20)

struct drain_waiter {
    struct drain_waiter *next;
    char *nodeid;
    aemp_drain_fn fn; /* NULL: cancelled while its turn was coming */
    void *ud;
    int due;
};

struct flow {
    size_t high, low;
    struct drain_waiter *waiters; /* registered, due or not */
    struct drain_waiter *firing;  /* taken off waiters by drain_cb */
    struct event *ev;             /* runs drain_cb from the loop */
};

size_t peer_pending(const struct peer *p)
{
    size_t n = evbuffer_get_length(p->queue);
    if (p->conn) {
        n += evbuffer_get_length(bufferevent_get_output(p->conn->bev));
        if (p->conn->plain_out) n += evbuffer_get_length(p->conn->plain_out);
    }
    return n;
}

int flow_busy(const struct peer *p)
{
    const struct flow *f = p->t->flow;
    return f && peer_pending(p) > f->high;
}

static void waiter_free(struct drain_waiter *w)
{
    free(w->nodeid);
    free(w);
}

/* Mark every waiter of node `id` due and have drain_cb run. */
static void make_due(struct flow *f, const char *id)
{
    int any = 0;
    for (struct drain_waiter *w = f->waiters; w; w = w->next)
        if (!w->due && !strcmp(w->nodeid, id)) w->due = any = 1;
    if (any) event_active(f->ev, 0, 0);
}

void flow_check(struct peer *p)
{
    struct flow *f = p->t->flow;
    if (!p->waiting || !f || peer_pending(p) > f->low) return;
    p->waiting = 0;
    make_due(f, p->id);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport *t = arg;
    struct flow *f = t->flow;
    /* take the due waiters off the list first: callbacks may add more */
    struct drain_waiter **pp = &f->waiters, *last = NULL;
    while (*pp) {
        struct drain_waiter *w = *pp;
        if (!w->due) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->next = NULL;
        if (last) last->next = w;
        else f->firing = w;
        last = w;
    }
    while (f->firing) {
        struct drain_waiter *w = f->firing;
        f->firing = w->next;
        if (w->fn) w->fn(t->node, w->nodeid, w->ud);
        waiter_free(w);
    }
}

int flow_start(struct transport *t)
{
    struct flow *f = calloc(1, sizeof *f);
    if (!f) return AEMP_ENOMEM;
    f->high = FLOW_HIGH;
    f->low = FLOW_LOW;
    f->ev = event_new(t->base, -1, 0, drain_cb, t);
    if (!f->ev) {
        free(f);
        return AEMP_ENOMEM;
    }
    t->flow = f;
    return 0;
}

void flow_free(struct transport *t)
{
    struct flow *f = t->flow;
    if (!f) return;
    t->flow = NULL;
    event_free(f->ev);
    for (struct drain_waiter *l[2] = {f->waiters, f->firing}, **q = l; q < l + 2; q++)
        while (*q) {
            struct drain_waiter *w = *q;
            *q = w->next;
            waiter_free(w);
        }
    free(f);
}

/* The node part of `dest` (a port or node ID) into buf; 0, or -1 when it
 * does not fit or is empty. */
static int node_part(const char *dest, char *buf, size_t len)
{
    if (!dest) return -1;
    const char *h = strchr(dest, '#');
    size_t n = h ? (size_t)(h - dest) : strlen(dest);
    if (!n || n >= len) return -1;
    memcpy(buf, dest, n);
    buf[n] = 0;
    return 0;
}

/* ------------------- behind the public API (aemp_on_drain, ...: kernel.c) */

int transport_on_drain(struct transport *t, const char *dest, aemp_drain_fn fn, void *ud)
{
    char id[256];
    if (!fn || node_part(dest, id, sizeof id)) return AEMP_EINVAL;
    if (!t || !t->flow) return AEMP_ESTATE;
    struct flow *f = t->flow;
    struct drain_waiter *w = calloc(1, sizeof *w);
    if (!w || !(w->nodeid = strdup(id))) {
        free(w);
        return AEMP_ENOMEM;
    }
    w->fn = fn;
    w->ud = ud;
    w->next = f->waiters;
    f->waiters = w;
    struct peer *p = peer_get(t, id, 0);
    if (p && peer_pending(p) > f->low) {
        p->waiting = 1;
    } else { /* local, unknown or drained: from the loop, at once */
        w->due = 1;
        event_active(f->ev, 0, 0);
    }
    return 0;
}

int transport_drain_cancel(struct transport *t, const char *dest, aemp_drain_fn fn, void *ud)
{
    char id[256];
    if (node_part(dest, id, sizeof id)) return AEMP_EINVAL;
    struct flow *f = t ? t->flow : NULL;
    if (!f) return AEMP_ENOENT;
    for (struct drain_waiter **pp = &f->waiters; *pp; pp = &(*pp)->next) {
        struct drain_waiter *w = *pp;
        if (w->fn == fn && w->ud == ud && !strcmp(w->nodeid, id)) {
            *pp = w->next;
            waiter_free(w);
            return 0;
        }
    }
    for (struct drain_waiter *w = f->firing; w; w = w->next)
        if (w->fn == fn && w->ud == ud && !strcmp(w->nodeid, id)) {
            w->fn = NULL;
            return 0;
        }
    return AEMP_ENOENT;
}

size_t transport_queued(struct transport *t, const char *dest)
{
    char id[256];
    if (!t || node_part(dest, id, sizeof id)) return 0;
    struct peer *p = peer_get(t, id, 0);
    return p ? peer_pending(p) : 0;
}

int transport_flow_marks(struct transport *t, size_t high, size_t low)
{
    if (!high || low > high) return AEMP_EINVAL;
    if (!t || !t->flow) return AEMP_ESTATE;
    t->flow->high = high;
    t->flow->low = low;
    /* waiters whose node is already below the new low-water mark */
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        flow_check(v);
    return 0;
}
