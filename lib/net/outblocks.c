/* outblocks.c - large output blocks are reused, not freed: a text longer
 * than OUT_COPY_MAX leaves the encoder's scratch (peer.c) for the socket
 * buffer by reference, and once written its block comes back here and
 * becomes the scratch of a later message. Memory that was just written
 * from is hot: a fresh block of 64 KB or 1 MB costs a page fault per 4 KB
 * each time (glibc gives freed heap tops and large blocks back to the
 * system), which was most of the cost of sending big messages.
 *
 * At most OB_LENT blocks are tracked while out (others are freed when
 * written), and at most OB_IDLE_BYTES wait for reuse. The evbuffers call
 * back with the pool itself, which outlives the transport until the last
 * lent block is back (libevent may free a closed connection's buffers
 * later, from the loop or at event_base_free). */
#include "transport_int.h"

#include <stdlib.h>

#define OB_LENT 256
#define OB_IDLE 128
#define OB_IDLE_BYTES (16u << 20)

struct ob {
    char *p;
    size_t cap;
};

struct outblocks {
    size_t out;  /* lent blocks whose outblocks_back is still to come */
    int orphan;  /* the transport is gone: free this when out is 0 */
    struct ob lent[OB_LENT];
    int nlent;
    struct ob idle[OB_IDLE];
    int nidle;
    size_t idle_bytes;
};

void outblocks_take(struct transport *t, struct framing_buf *b)
{
    struct outblocks *o = t->outblocks;
    if (b->data || !o || !o->nidle) return;
    struct ob k = o->idle[--o->nidle];
    o->idle_bytes -= k.cap;
    b->data = k.p;
    b->cap = k.cap;
    b->len = 0;
}

void outblocks_lend(struct transport *t, const struct framing_buf *b)
{
    struct outblocks *o = t->outblocks;
    if (!o) {
        o = t->outblocks = calloc(1, sizeof *o);
        if (!o) return;
    }
    o->out++;
    if (o->nlent < OB_LENT) o->lent[o->nlent++] = (struct ob){b->data, b->cap};
}

void outblocks_back(const void *data, size_t len, void *arg)
{
    struct outblocks *o = arg;
    (void)len;
    if (!o) { /* lent while the pool could not be made */
        free((void *)data);
        return;
    }
    o->out--;
    int kept = 0;
    for (int i = o->nlent - 1; i >= 0; i--) {
        if (o->lent[i].p != data) continue;
        struct ob k = o->lent[i];
        o->lent[i] = o->lent[--o->nlent];
        if (!o->orphan && o->nidle < OB_IDLE && o->idle_bytes + k.cap <= OB_IDLE_BYTES) {
            o->idle[o->nidle++] = k;
            o->idle_bytes += k.cap;
            kept = 1;
        }
        break;
    }
    if (!kept) free((void *)data);
    if (o->orphan && !o->out) free(o);
}

void outblocks_free(struct transport *t)
{
    struct outblocks *o = t->outblocks;
    if (!o) return;
    t->outblocks = NULL;
    for (int i = 0; i < o->nidle; i++)
        free(o->idle[i].p);
    o->nidle = 0;
    o->idle_bytes = 0;
    o->orphan = 1;
    if (!o->out) free(o); /* else the last outblocks_back frees it */
}
