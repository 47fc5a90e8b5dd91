/* bulk_sender.c - flow control: a producer that sends faster than the
 * network takes stops when aemp_snd() says AEMP_BUSY and goes on from
 * aemp_on_drain(), so only a bounded window of messages waits in memory.
 *
 *     bulk_sender [MEGABYTES]        (default 64)
 *
 * Two nodes in this process, on one event loop, talk over TCP on
 * 127.0.0.1: "bulk-rx" has a port that counts 64 KB chunks, "bulk-tx"
 * sends MEGABYTES of them. Prints how often the sender waited, the most
 * that ever waited for the receiver, and exits 0 when every chunk arrived.
 * Uses the public API (aemp.h) only. */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536

struct job {
    aemp_node *tx;
    char dest[64];   /* the receiver's port */
    long left, sent; /* chunks still to send, sent */
    long waits;      /* AEMP_BUSY answers */
    size_t most;     /* the most bytes that waited for the receiver */
    char *chunk;     /* CHUNK - 1 bytes of text */
};

struct sink {
    long got, want;
};

/* The producer: send until the receiver's node has more than the
 * high-water mark waiting, then wait for it to drain below the low one.
 * Called first by main, then by aemp_on_drain from the loop. */
static void pump(aemp_node *n, const char *nodeid, void *ud)
{
    struct job *j = ud;
    (void)nodeid;
    while (j->left > 0) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("chunk"));
        cJSON_AddItemToArray(m, cJSON_CreateString(j->chunk));
        int rc = aemp_snd(n, j->dest, m); /* m is taken */
        if (rc < 0) {
            fprintf(stderr, "bulk_sender: %s\n", aemp_strerror(rc));
            aemp_node_stop(n);
            return;
        }
        j->left--;
        j->sent++;
        size_t q = aemp_queued(n, j->dest);
        if (q > j->most) j->most = q;
        if (rc == AEMP_BUSY) { /* queued; go on once the queue is low */
            j->waits++;
            aemp_on_drain(n, j->dest, pump, j);
            return;
        }
    }
}

static int count_chunk(aemp_node *n, const char *self, const cJSON *msg, void *ud)
{
    struct sink *s = ud;
    (void)self;
    (void)msg;
    if (++s->got == s->want) aemp_node_stop(n);
    return 0;
}

/* A node `id` on `base` listening on an ephemeral port of 127.0.0.1, or
 * with `seed` as its seed. */
static aemp_node *node_on(struct event_base *base, const char *id, const char *seed)
{
    /* an effective configuration names every key it relies on */
    char cfgtext[512];
    snprintf(cfgtext, sizeof cfgtext,
             "{\"nodeid\":\"%s\",\"secret\":\"bulk-example\",\"binds\":[%s],\"seeds\":[%s%s%s],"
             "\"auth_offer\":[\"hmac_md6_64_256\"],\"auth_accept\":[\"hmac_md6_64_256\"],"
             "\"framing_format\":[\"json\"]}",
             id, seed ? "" : "\"127.0.0.1:0\"", seed ? "\"" : "", seed ? seed : "",
             seed ? "\"" : "");
    cJSON *cfg = cJSON_Parse(cfgtext);
    aemp_node *n = aemp_node_new(base);
    char err[256];
    if (!n || !cfg || aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "bulk_sender: %s: %s\n", id, n && cfg ? err : "out of memory");
        exit(1);
    }
    cJSON_Delete(cfg);
    return n;
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 64;
    if (mb <= 0) {
        fprintf(stderr, "usage: bulk_sender [MEGABYTES]\n");
        return 2;
    }
    aemp_node *rx = node_on(NULL, "bulk-rx", NULL);
    cJSON *addrs = aemp_listen_addrs(rx);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", cJSON_GetArrayItem(addrs, 0)->valuestring);
    cJSON_Delete(addrs);
    aemp_node *tx = node_on(aemp_node_base(rx), "bulk-tx", seed);

    struct sink s = {0, mb * (1 << 20) / CHUNK};
    aemp_rcv(rx, "bulk-rx#sink", NULL, count_chunk, &s);
    struct job j = {.tx = tx, .left = s.want};
    snprintf(j.dest, sizeof j.dest, "bulk-rx#sink");
    j.chunk = malloc(CHUNK);
    memset(j.chunk, 'x', CHUNK - 1);
    j.chunk[CHUNK - 1] = 0;

    pump(tx, NULL, &j); /* sends until the first AEMP_BUSY */
    aemp_node_run(rx);  /* one loop runs both nodes; ends at the last chunk */
    printf("sent %ld chunks of 64 KB (%ld MB), waited %ld times for the queue to drain, "
           "at most %zu KB waited; received %ld\n",
           j.sent, mb, j.waits, j.most >> 10, s.got);
    int ok = s.got == s.want;
    free(j.chunk);
    aemp_node_free(tx);
    aemp_node_free(rx);
    return ok ? 0 : 1;
}
