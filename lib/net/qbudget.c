/* qbudget.c - what queues for nodes not yet connected may hold because of
 * other nodes' messages. A relay request (["", "snd", "ghost#x", DATA]) to a
 * node we are not connected to queues DATA until that node answers or
 * monitor_timeout passes; the per-node queue bound alone let one peer make
 * us hold gigabytes by naming thousands of made-up nodes. So the bytes a
 * peer's messages put into such queues are counted per peer and in all, and
 * a message beyond either bound is dropped with a (rate-limited) line.
 * Messages the node's own code sends are bounded per node only.
 *
 * The peer whose message is being handled is t->from (set by conn_in.c);
 * a queue's bytes are charged to whoever put them there and released when
 * the queue empties (sent on the new connection, or dropped). */
#include "transport_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a queued message was charged, by whom. */
struct qcharge {
    struct qcharge *next;
    size_t bytes;
    char who[];
};

size_t qbudget_peer_limit(const struct transport *t)
{
    size_t lim = t->max_msg;
    return lim < QBUDGET_MIN ? QBUDGET_MIN : lim;
}

size_t qbudget_total_limit(const struct transport *t)
{
    return QBUDGET_PEERS * qbudget_peer_limit(t);
}

int qbudget_take(struct peer *p, size_t len)
{
    struct transport *t = p->t;
    struct peer *from = t->from;
    if (!from || from == p) return 0; /* our own messages, or its own */
    size_t mine = (uintptr_t)strmap_get(&t->qb_by, from->id);
    const char *why = NULL;
    size_t held = 0, lim = 0;
    if (mine + len > qbudget_peer_limit(t)) {
        why = "its messages hold";
        held = mine;
        lim = qbudget_peer_limit(t);
    } else if (t->qb_all + len > qbudget_total_limit(t)) {
        why = "all peers' messages hold";
        held = t->qb_all;
        lim = qbudget_total_limit(t);
    }
    if (why) {
        aemp_log_peer(4,
                      "message from %s to %s (%zu bytes) dropped: %s %zu bytes in queues for "
                      "nodes not connected (at most %zu)",
                      from->id, p->id, len, why, held, lim);
        return -1;
    }
    struct qcharge *c;
    for (c = p->charges; c && strcmp(c->who, from->id); c = c->next) {}
    if (!c) {
        size_t n = strlen(from->id);
        c = calloc(1, sizeof *c + n + 1);
        if (!c) return -1;
        memcpy(c->who, from->id, n + 1);
        c->next = p->charges;
        p->charges = c;
    }
    if (strmap_put(&t->qb_by, from->id, (void *)(uintptr_t)(mine + len), NULL)) return -1;
    c->bytes += len;
    t->qb_all += len;
    return 0;
}

void qbudget_release(struct peer *p)
{
    struct transport *t = p->t;
    while (p->charges) {
        struct qcharge *c = p->charges;
        p->charges = c->next;
        size_t mine = (uintptr_t)strmap_get(&t->qb_by, c->who);
        mine = mine > c->bytes ? mine - c->bytes : 0;
        if (mine) strmap_put(&t->qb_by, c->who, (void *)(uintptr_t)mine, NULL);
        else strmap_del(&t->qb_by, c->who);
        t->qb_all = t->qb_all > c->bytes ? t->qb_all - c->bytes : 0;
        free(c);
    }
}
