/* peer.c - what the transport knows per remote node: its addresses, its
 * authenticated connection, the queue of messages waiting for one, retrying
 * connects every connect_interval until monitor_timeout; the seeds; and the
 * transport_* functions the core uses to send and ask about nodes. */
#include "transport_int.h"

#include "framing.h"

#include <event2/buffer.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer *peer_get(struct transport *t, const char *id, int create)
{
    struct peer *p = strmap_get(&t->peers, id);
    if (p || !create) return p;
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = t;
    p->id = strdup(id);
    p->addrs = cJSON_CreateArray();
    p->queue = evbuffer_new();
    if (!p->id || !p->addrs || !p->queue || strmap_put(&t->peers, id, p, NULL)) {
        free(p->id);
        cJSON_Delete(p->addrs);
        if (p->queue) evbuffer_free(p->queue);
        free(p);
        return NULL;
    }
    return p;
}

void peer_stop_connecting(struct peer *p)
{
    p->connecting = 0;
    if (p->tick) {
        event_free(p->tick);
        p->tick = NULL;
    }
}

void peer_free(struct peer *p)
{
    peer_stop_connecting(p);
    qbudget_release(p);
    if (p->t->from == p) p->t->from = NULL; /* forgotten while its message runs */
    evbuffer_free(p->queue);
    cJSON_Delete(p->addrs);
    free(p->id);
    free(p);
}

/* Forget a node we cannot reach and that nobody asked for since it went
 * down: one without addresses (an `aemp snd` from cron, say) would
 * otherwise stay in the table for good. */
void peer_maybe_forget(struct transport *t, struct peer *p)
{
    flow_check(p); /* a queue dropped or written: waiters may be due */
    if (p->conn || p->connecting || p->cands || p->settling || cJSON_GetArraySize(p->addrs) ||
        evbuffer_get_length(p->queue))
        return; /* still wanted, or a candidate connection points at it */
    strmap_del(&t->peers, p->id);
    peer_free(p);
}

/* `c` closed (conn_close, for `why`): no longer a candidate of its node;
 * when it was the node's connection, the node goes down: its queue is
 * dropped and the kernel told. With peer_fail below, the one place a node
 * goes down. */
void peer_conn_closed(struct conn *c, const char *why)
{
    struct transport *t = c->t;
    struct peer *p = c->peer;
    if (c->cand) {
        struct peer *cp = c->cand;
        pick_drop(c);
        peer_maybe_forget(t, cp);
    }
    c->peer = NULL; /* the peer may be forgotten below */
    if (p && p->conn == c) {
        p->conn = NULL;
        evbuffer_drain(p->queue, evbuffer_get_length(p->queue));
        qbudget_release(p);
        t->ops->node_down(t->ctx, p->id, why);
        peer_maybe_forget(t, p);
    }
}

/* The node could not be reached: drop its queue and fire the monitors of
 * its ports. It is not up (peer_try runs only without a connection; a lost
 * connection reported the node down when it closed). After
 * monitor_timeout of refused or unanswered dials no node-down is reported
 * (`down` 0: a node that was never up did not go down, as in 1.30); a
 * queue over its bound (`down` 1) is, since messages were dropped. */
static void peer_fail(struct transport *t, struct peer *p, const char *why, int down)
{
    peer_stop_connecting(p);
    p->overflow = 0;
    evbuffer_drain(p->queue, evbuffer_get_length(p->queue));
    qbudget_release(p);
    if (down || !t->ops->node_unreachable) t->ops->node_down(t->ctx, p->id, why);
    else t->ops->node_unreachable(t->ctx, p->id, why);
    peer_maybe_forget(t, p);
}

static void peer_tick(evutil_socket_t fd, short what, void *arg)
{
    peer_try(arg);
}

/* Dials in flight above which a new node's first dial waits a random
 * DIAL_JITTER_MIN..DIAL_JITTER_MAX s (and a dial refused by admit.c is
 * retried after such a delay, not a whole connect_interval later): when
 * Global tells every node of a host about hundreds of nodes at once, the
 * dials spread instead of all hitting the kernel's backlogs and the
 * handshake timeouts in the same instant. */
#define DIAL_CALM 16
#define DIAL_JITTER_MIN 0.02
#define DIAL_JITTER_MAX 0.5

/* Run the tick once after a random short delay, then every
 * connect_interval again (peer_try puts the period back). */
static void peer_try_soon(struct peer *p)
{
    if (!p->tick) return;
    double s = DIAL_JITTER_MIN + (DIAL_JITTER_MAX - DIAL_JITTER_MIN) *
                                     (randombytes_uniform(1000) / 1000.0);
    struct timeval tv = tv_of(s);
    p->soon = 1;
    event_add(p->tick, &tv);
}

static struct timeval tick_period(const struct transport *t)
{
    double iv = t->connect_interval;
    if (iv > t->monitor_timeout) iv = t->monitor_timeout;
    return tv_of(iv > 0.05 ? iv : 0.05);
}

void peer_dial_done(struct conn *c)
{
    if (!c->dial_counted) return;
    c->dial_counted = 0;
    c->t->dials--;
    struct peer *p = c->want_id ? peer_get(c->t, c->want_id, 0) : NULL;
    if (p && p->dial == c) p->dial = NULL;
}

/* One connection attempt to the next known address; gives up after
 * monitor_timeout without success (counted from the first dial when our
 * own bounds held every dial back, up to 3 x monitor_timeout). A dial
 * still in its handshake is not repeated on top of itself: under load a
 * handshake can take longer than connect_interval, and a new dial every
 * interval then multiplies the handshakes that slow everything down (the
 * collapse of 300 nodes on one host); the dial has its own timeouts. */
void peer_try(struct peer *p)
{
    struct transport *t = p->t;
    if (p->soon && p->tick) {
        struct timeval tv = tick_period(t);
        p->soon = 0;
        event_add(p->tick, &tv);
    }
    if (p->conn) {
        peer_stop_connecting(p);
        return;
    }
    if (p->overflow) {
        char why[160];
        snprintf(why, sizeof why, "more than %zu bytes queued while connecting",
                 admit_out_limit(t));
        aemp_log_peer(4, "messages to %s dropped: %s", p->id, why);
        peer_fail(t, p, why, 1);
        return;
    }
    double waited = now_of(t) - p->connect_since;
    if (waited >= t->monitor_timeout && (p->dialed || waited >= 3 * t->monitor_timeout)) {
        char why[160];
        snprintf(why, sizeof why, "%s within %g s",
                 cJSON_GetArraySize(p->addrs) ? "no connection" : "no known address",
                 t->monitor_timeout);
        peer_fail(t, p, why, 0);
        return;
    }
    int n = cJSON_GetArraySize(p->addrs);
    if (n <= 0 || p->dial) return;
    /* learned addresses are dialed at a bounded rate, a bounded number at
     * a time: a peer cannot make us flood a host of its choosing */
    if (!admit_dial_ok(t)) {
        peer_try_soon(p);
        return;
    }
    const cJSON *a = cJSON_GetArrayItem(p->addrs, (int)(p->next_addr++ % (unsigned)n));
    if (!cJSON_IsString(a)) return;
    p->dialed = 1;
    struct conn *c = conn_dial(t, a->valuestring, p->id, NULL);
    if (c && !c->dead) {
        c->dial_counted = 1;
        t->dials++;
        p->dial = c;
    }
}

/* Mark `p` as being connected to and start its tick, without a try yet
 * (nothing here can free `p`). 0 when it was connecting or up already. */
static int peer_connect_arm(struct peer *p)
{
    struct transport *t = p->t;
    if (p->connecting || p->conn) return 0;
    p->connecting = 1;
    p->connect_since = now_of(t);
    p->dialed = 0;
    p->soon = 0;
    p->tick = event_new(t->base, -1, EV_PERSIST, peer_tick, p);
    struct timeval tv = tick_period(t);
    if (p->tick) event_add(p->tick, &tv);
    return 1;
}

/* The first try at once, or after a random short delay while many dials
 * are in flight (DIAL_CALM). */
static void peer_connect_start(struct peer *p)
{
    if (!peer_connect_arm(p)) return;
    if (p->t->dials >= DIAL_CALM && cJSON_GetArraySize(p->addrs)) peer_try_soon(p);
    else peer_try(p);
}

/* ---------------------------------------------------------------- seeds */

void seed_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport *t = arg;
    for (size_t i = 0; i < t->nseeds; i++) {
        struct seed *s = &t->seeds[i];
        if (s->self || s->dialing) continue;
        if (s->nodeid && transport_is_up(t, s->nodeid)) continue;
        conn_dial(t, s->addr, NULL, s);
    }
}

/* Replace the seed list (a reload): seeds that stay keep their state (who
 * answered there, a dial in progress); new ones are dialed now; connections
 * still dialing a removed seed finish as ordinary connections. */
int transport_set_seeds(struct transport *t, const cJSON *seeds)
{
    if (!t) return AEMP_ESTATE;
    size_t n = (size_t)cJSON_GetArraySize(seeds), k = 0;
    struct seed *ns = calloc(n ? n : 1, sizeof *ns);
    size_t *moved = calloc(t->nseeds ? t->nseeds : 1, sizeof *moved); /* new index + 1 */
    if (!ns || !moved) {
        free(ns);
        free(moved);
        return AEMP_ENOMEM;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, seeds)
    {
        if (!cJSON_IsString(s) || !*s->valuestring) continue;
        size_t i = 0;
        while (i < t->nseeds && (moved[i] || !t->seeds[i].addr ||
                                  strcmp(t->seeds[i].addr, s->valuestring)))
            i++;
        if (i < t->nseeds) {
            ns[k] = t->seeds[i];
            moved[i] = k + 1;
        } else if (!(ns[k].addr = strdup(s->valuestring))) {
            continue;
        }
        k++;
    }
    for (struct conn *c = t->conns; c; c = c->next)
        if (c->seed) {
            size_t i = (size_t)(c->seed - t->seeds);
            c->seed = moved[i] ? &ns[moved[i] - 1] : NULL;
        }
    for (size_t i = 0; i < t->nseeds; i++) {
        if (moved[i]) continue;
        struct peer *p = t->seeds[i].nodeid ? peer_get(t, t->seeds[i].nodeid, 0) : NULL;
        if (p) p->is_seed = 0;
        free(t->seeds[i].addr);
        free(t->seeds[i].nodeid);
    }
    for (size_t i = 0; i < k; i++) { /* a node can be a seed under two addresses */
        struct peer *p = ns[i].nodeid ? peer_get(t, ns[i].nodeid, 0) : NULL;
        if (p) p->is_seed = 1;
    }
    free(moved);
    free(t->seeds);
    t->seeds = ns;
    t->nseeds = k;
    if (k && !t->seed_tick) {
        t->seed_tick = event_new(t->base, -1, EV_PERSIST, seed_tick_cb, t);
        struct timeval tv = tv_of(t->connect_interval < 1 ? 1 : t->connect_interval);
        if (t->seed_tick) event_add(t->seed_tick, &tv);
    }
    seed_tick_cb(-1, 0, t);
    return 0;
}

/* ------------------------------------------------------------ interface */

/* 1 when `len` more bytes may wait for a node being connected to; else the
 * node is marked and reported down from its next tick (never inside a send)
 * and its messages are dropped until then. */
static int queue_room(struct peer *p, size_t len)
{
    if (p->overflow) return 0;
    if (evbuffer_get_length(p->queue) + len <= admit_out_limit(p->t)) return 1;
    p->overflow = 1;
    peer_connect_arm(p); /* its tick reports the overflow: p may not go inside a send */
    if (p->tick) event_active(p->tick, 0, 0);
    return 0;
}

/* A message was queued for `p`, which has no connection: dial it if that
 * has not begun. The status for the sender is taken first: the first try
 * may report the node down and forget `p`. */
static int queued_dial(struct peer *p)
{
    int busy = flow_busy(p);
    peer_connect_start(p);
    return busy ? AEMP_BUSY : 0;
}

/* A message whose long plain string runs are written from where they are
 * (framing_buf's refs): it lives until the last of them is written. */
struct held_msg {
    cJSON *msg;
    int refs;
};

static void unhold(const void *data, size_t len, void *arg)
{
    struct held_msg *h = arg;
    if (--h->refs) return;
    cJSON_Delete(h->msg);
    free(h);
}

/* Queue the text in b (its runs by reference into msg, which is taken). */
static void send_refs(struct peer *p, struct framing_buf *b, cJSON *msg)
{
    struct held_msg *h = malloc(sizeof *h);
    struct evbuffer *tmp = h ? evbuffer_new() : NULL;
    if (!tmp) {
        free(h);
        cJSON_Delete(msg);
        aemp_log(3, "message to %s dropped: out of memory", p->id);
        return;
    }
    h->msg = msg;
    h->refs = 1; /* ours, until tmp is handed on */
    size_t at = 0;
    int ok = 1;
    for (int i = 0; ok && i < b->nrefs; i++) {
        const struct framing_ref *r = &b->refs[i];
        h->refs++;
        if (evbuffer_add(tmp, b->data + at, r->at - at) ||
            evbuffer_add_reference(tmp, r->s, r->n, unhold, h)) {
            h->refs--; /* no cleanup without the reference */
            ok = 0;
        }
        at = r->at;
    }
    if (ok && evbuffer_add(tmp, b->data + at, b->len - at)) ok = 0;
    if (!ok) {
        aemp_log(3, "message to %s dropped: out of memory", p->id);
    } else if (p->conn) {
        conn_write_buffer(p->conn, tmp);
    } else {
        evbuffer_add_buffer(p->queue, tmp);
        peer_connect_start(p);
    }
    evbuffer_free(tmp); /* what is left (on failure) runs its cleanups */
    unhold(NULL, 0, h);
}

/* Encode msg (taken; with `name` in front unless NULL) into the transport's
 * scratch and queue it for nodeid. A text longer than OUT_COPY_MAX is not
 * copied: its block goes to the connection (or queue) as it is; nor are
 * long plain runs of its strings (send_refs). AEMP_BUSY when more than the
 * high-water mark waits for the node now (flow.c), else 0 (also when the
 * message was dropped: that is logged, and monitors report a lost node). */
static int send_text(struct transport *t, const char *nodeid, const char *name, cJSON *msg)
{
    if (!t) {
        aemp_log(5, "message to %s dropped: the node is not configured", nodeid);
        cJSON_Delete(msg);
        return 0;
    }
    struct peer *p = peer_get(t, nodeid, 1);
    struct framing_buf *b = &t->out;
    outblocks_take(t, b);
    b->len = 0;
    b->refs = t->out_refs;
    b->refs_max = (int)(sizeof t->out_refs / sizeof t->out_refs[0]);
    b->nrefs = 0;
    b->reflen = 0;
    int rc = p ? framing_write(b, name, msg) : AEMP_ENOMEM;
    if (rc || !b->nrefs) cJSON_Delete(msg);
    if (rc) return 0;
    size_t total = b->len + b->reflen;
    p->stats.msgs_out++;
    p->stats.bytes_out += total;
    t->stats.msgs_out++;
    t->stats.bytes_out += total;
    if (!p->conn && (!queue_room(p, total) || qbudget_take(p, total))) {
        if (b->nrefs) cJSON_Delete(msg);
        return 0;
    }
    if (b->nrefs) {
        send_refs(p, b, msg);
        return flow_busy(p) ? AEMP_BUSY : 0;
    }
    if (b->len > OUT_COPY_MAX) {
        char *text = b->data;
        size_t len = b->len;
        outblocks_lend(t, b);
        *b = (struct framing_buf){0};
        if (p->conn) {
            conn_write_owned(p->conn, text, len);
            return flow_busy(p) ? AEMP_BUSY : 0;
        }
        if (evbuffer_add_reference(p->queue, text, len, outblocks_back, t->outblocks))
            outblocks_back(text, len, t->outblocks);
        return queued_dial(p);
    }
    if (p->conn) {
        conn_write(p->conn, b->data, b->len);
        return flow_busy(p) ? AEMP_BUSY : 0;
    }
    evbuffer_add(p->queue, b->data, b->len);
    return queued_dial(p);
}

int transport_send(struct transport *t, const char *nodeid, cJSON *msg)
{
    return send_text(t, nodeid, NULL, msg);
}

int transport_send_named(struct transport *t, const char *nodeid, const char *name,
                         cJSON *msg)
{
    return send_text(t, nodeid, name, msg);
}

int transport_is_up(struct transport *t, const char *nodeid)
{
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    return p && p->conn;
}

int transport_is_known(struct transport *t, const char *nodeid)
{
    return t && peer_get(t, nodeid, 0);
}

size_t transport_pending(struct transport *t, const char *nodeid)
{
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    return p ? peer_pending(p) : 0;
}

void transport_up_nodes(struct transport *t, cJSON *arr)
{
    if (!t) return;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        if (((struct peer *)v)->conn) cJSON_AddItemToArray(arr, cJSON_CreateString(k));
}

void transport_known_nodes(struct transport *t, cJSON *arr)
{
    if (!t) return;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        cJSON_AddItemToArray(arr, cJSON_CreateString(k));
}

void transport_set_addrs(struct transport *t, const char *nodeid, const cJSON *addrs)
{
    if (!t || !strcmp(nodeid, t->id)) return;
    struct peer *p = peer_get(t, nodeid, 1);
    if (!p) return;
    cJSON *dup = cJSON_CreateArray();
    const cJSON *a;
    int n = 0;
    /* a node has a few addresses; a peer cannot make us keep thousands */
    cJSON_ArrayForEach(a, addrs)
    if (cJSON_IsString(a) && n++ < TRANSPORT_MAX_ADDRS) addrs_add_unique(dup, a->valuestring);
    int had = cJSON_GetArraySize(p->addrs);
    cJSON_Delete(p->addrs);
    p->addrs = dup;
    /* A node we are waiting to reach just got its first addresses: try now,
     * from the loop, instead of at the next connect_interval tick. */
    if (!had && p->connecting && p->tick && cJSON_GetArraySize(dup)) event_active(p->tick, 0, 0);
}

int transport_node_is_seed(struct transport *t, const char *nodeid)
{
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    return p && p->is_seed;
}
