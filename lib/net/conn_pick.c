/* conn_pick.c - which connection to a node survives when two nodes call each
 * other at once (or one calls twice), decided the same way at both ends so
 * that neither ever drops a connection the other already uses.
 *
 * A connection is up at the remote only once we sent our auth line on it,
 * and we send it only after the remote's greeting passed (the connection is
 * then a "candidate" of that node). So:
 *  - a new greeting from a node that already has an authenticated
 *    connection is refused before we send anything: it can be up nowhere;
 *  - an authenticated candidate is held (C_HELD: not announced, not read)
 *    while another candidate of the same node is still in its handshake;
 *  - when none is left in its handshake, the best held one is announced and
 *    the others are closed. Both ends hold the same set: a connection is
 *    authenticated at one end only if both sent their auth line on it, and
 *    neither end takes a new candidate once one is authenticated.
 * "Best" is the same at both ends: a connection the node with the smaller
 * ID started beats one the other node started; between two started by the
 * same node, the one whose starter's nonce line is smaller.
 *
 * Nodes that do not hold (Perl 1.30 takes the newest authenticated
 * connection and reports the old one's node down) get one candidate at a
 * time from us: their second greeting is refused while a first one is in
 * its handshake, so they never see two authenticated connections.
 *
 * The chosen connection is announced here (conn_announce): it becomes the
 * node's, its queue goes out, the kernel hears the node is up. */
#include "transport_int.h"

#include <stdlib.h>
#include <string.h>

void pick_add(struct peer *p, struct conn *c)
{
    c->cand = p;
    c->cprev = NULL;
    c->cnext = p->cands;
    if (c->cnext) c->cnext->cprev = c;
    p->cands = c;
}

static void unlink_cand(struct conn *c)
{
    struct peer *p = c->cand;
    if (c->cprev) c->cprev->cnext = c->cnext;
    else p->cands = c->cnext;
    if (c->cnext) c->cnext->cprev = c->cprev;
    c->cnext = c->cprev = NULL;
    c->cand = NULL;
}

int pick_lost_race(const struct conn *c)
{
    const struct peer *p = c->cand;
    if (!p || c->state == C_UP) return 0;
    if (p->conn) return 1;
    for (const struct conn *o = p->cands; o; o = o->cnext)
        if (o != c && !o->dead) return 1;
    return 0;
}

int pick_has_authed(const struct peer *p)
{
    if (p->conn) return 1;
    for (const struct conn *c = p->cands; c; c = c->cnext)
        if (c->state == C_HELD && !c->dead) return 1;
    return 0;
}

/* 0 when the node with the smaller ID started `c`, else 1. */
static int starter_rank(const struct conn *c)
{
    const char *self = c->t->id;
    const char *starter = c->outgoing ? self : c->peer_id;
    const char *other = c->outgoing ? c->peer_id : self;
    return strcmp(starter, other) < 0 ? 0 : 1;
}

/* The nonce line of the node that started `c`. */
static const char *starter_nonce(const struct conn *c)
{
    return c->outgoing ? c->nonce : c->r2;
}

/* <0 when `a` is the better connection (the same answer at both ends). */
static int pick_cmp(const struct conn *a, const struct conn *b)
{
    int ra = starter_rank(a), rb = starter_rank(b);
    if (ra != rb) return ra - rb;
    return strcmp(starter_nonce(a), starter_nonce(b));
}

/* Announce the best held candidate once none is in its handshake. */
static void pick_settle(struct peer *p)
{
    if (p->conn || p->settling) return;
    struct conn *best = NULL;
    for (struct conn *c = p->cands; c; c = c->cnext) {
        if (c->dead) continue;
        if (c->state != C_HELD) return; /* still in its handshake: wait */
        if (!best || pick_cmp(c, best) < 0) best = c;
    }
    if (!best) return;
    unlink_cand(best);
    p->settling = 1;
    for (struct conn *c = p->cands, *next; c; c = next) {
        next = c->cnext; /* closing c unlinks it */
        if (!c->dead)
            conn_close(c, CONN_REPLACED, 7,
                       "%s is connected through another connection (chosen at both ends)",
                       p->id);
    }
    p->settling = 0;
    conn_announce(best);
}

void pick_drop(struct conn *c)
{
    struct peer *p = c->cand;
    if (!p) return;
    unlink_cand(c);
    pick_settle(p);
}

void pick_authed(struct conn *c)
{
    c->state = C_HELD;
    event_del(c->timer); /* a candidate still in its handshake bounds the wait */
    bufferevent_disable(c->bev, EV_READ); /* read once announced */
    pick_settle(c->cand);
}

/* ------------------------------------------------------------- up */

void conn_announce(struct conn *c)
{
    struct transport *t = c->t;
    struct peer *p = peer_get(t, c->peer_id, 1);
    if (!p) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    if (p->conn) {
        conn_close(c, CONN_REPLACED, 7, "already connected to %s", p->id);
        return;
    }
    c->reader = framing_reader_new(t->max_msg);
    if (!c->reader) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    c->state = C_UP;
    c->peer = p;
    p->conn = c;
    p->stats.connects++;
    t->stats.connects++;
    p->up_since = now_of(t);
    admit_done(c);
    peer_dial_done(c);
    peer_stop_connecting(p);
    if (c->outgoing && c->addr) addrs_add_unique(p->addrs, c->addr);
    if (c->seed) {
        free(c->seed->nodeid);
        c->seed->nodeid = strdup(p->id);
        c->seed->dialing = 0;
        p->is_seed = 1;
        c->seed = NULL;
    }
    event_del(c->timer);
    probe_start(c);
    if (c->untrusted) aemp_log(5, "node %s is connected untrusted (tls_anon)", p->id);
    /* Messages queued while connecting go out first. */
    size_t qlen = evbuffer_get_length(p->queue);
    if (qlen) {
        if (c->tls) {
            evbuffer_add_buffer(c->plain_out, p->queue);
            event_active(c->flush_ev, 0, 0);
        } else {
            bufferevent_write_buffer(c->bev, p->queue);
        }
        qbudget_release(p); /* the bytes count against the connection now */
        c->last_write = now_of(t);
    }
    aemp_log(7, "connected to %s (%s, %s)", p->id, c->addr ? c->addr : "?",
             c->use_tls ? "TLS" : "no TLS");
    /* An up cleartext connection reads its socket itself (conn_in.c); a
     * TLS one reads through the bufferevent and GnuTLS. */
    if (!c->tls && !c->rev) {
        c->rev = event_new(t->base, bufferevent_getfd(c->bev), EV_READ | EV_PERSIST,
                           conn_up_read_cb, c);
        if (c->rev && event_add(c->rev, NULL)) {
            event_free(c->rev);
            c->rev = NULL;
        }
    }
    if (!c->rev) bufferevent_enable(c->bev, EV_READ);
    /* What came after the auth line while the connection was held (our
     * read event, not a deferred bufferevent callback: a node freed before
     * that ran would leak the bufferevent it holds). */
    if (c->rev && evbuffer_get_length(bufferevent_get_input(c->bev)))
        event_active(c->rev, EV_READ, 1);
    else if (evbuffer_get_length(bufferevent_get_input(c->bev)) ||
             (c->plain_in && evbuffer_get_length(c->plain_in)))
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    t->ops->node_up(t->ctx, p->id);
}
