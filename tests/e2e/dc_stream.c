/* dc_stream.c - a program that streams over a data connection and closes
 * with aemp_dataconn_close(), for tests/e2e/dataconn.sh (the case of
 * issue 13: a stream whose tail was lost with TLS). Its node is configured
 * from profile "aemp" of the configuration file, like `aemp put`.
 *
 *   dc_stream send TARGET FUNC SIZE   connect to TARGET calling FUNC with
 *                                     ["stream", SIZE], queue SIZE bytes,
 *                                     close at once; prints "sent SIZE HEX"
 *                                     (SHA-256) when the close says all is
 *                                     out, exit 0; else a line, exit 1
 *   dc_stream recv NODEID BIND        a node whose function main::sink
 *                                     reads until the sender's end, prints
 *                                     "sunk BYTES HEX", closes its end */
#include "aemp.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int status = 1;
static unsigned long long size;
static crypto_hash_sha256_state sha;

static void hex_of(crypto_hash_sha256_state *st, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

/* ------------------------------------------------------------- sender */

static void sent(aemp_node *node, int rc, void *ud)
{
    (void)ud;
    if (rc) {
        printf("failed: the close says %s\n", aemp_strerror(rc));
    } else {
        char hex[65];
        hex_of(&sha, hex);
        printf("sent %llu %s\n", size, hex);
        status = 0;
    }
    aemp_node_stop(node);
}

static void connected(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    (void)ud;
    if (!bev) {
        printf("failed: %s\n", error);
        aemp_node_stop(node);
        return;
    }
    unsigned char block[65536];
    for (unsigned long long off = 0; off < size; off += sizeof block) {
        size_t n = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        for (size_t i = 0; i < n; i++)
            block[i] = (unsigned char)((off + i) * 7 + 3 + ((off + i) >> 16));
        crypto_hash_sha256_update(&sha, block, n);
        bufferevent_write(bev, block, n);
    }
    aemp_dataconn_close(node, bev, 60, sent, NULL);
}

/* ----------------------------------------------------------- receiver */

struct sink {
    unsigned long long got;
    crypto_hash_sha256_state sha;
    aemp_node *node;
};

static void sink_read(struct bufferevent *bev, void *ud)
{
    struct sink *s = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    while ((n = evbuffer_get_contiguous_space(in))) {
        crypto_hash_sha256_update(&s->sha, evbuffer_pullup(in, (ev_ssize_t)n), n);
        s->got += n;
        evbuffer_drain(in, n);
    }
}

static void sink_event(struct bufferevent *bev, short what, void *ud)
{
    struct sink *s = ud;
    sink_read(bev, s);
    char hex[65];
    hex_of(&s->sha, hex);
    printf("%s %llu %s\n", what & BEV_EVENT_EOF ? "sunk" : "broken", s->got, hex);
    fflush(stdout);
    aemp_dataconn_close(s->node, bev, 10, NULL, NULL);
    free(s);
}

static void sink_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)args, (void)ud;
    struct sink *s = calloc(1, sizeof *s);
    if (!s) {
        bufferevent_free(bev);
        return;
    }
    s->node = node;
    crypto_hash_sha256_init(&s->sha);
    bufferevent_setcb(bev, sink_read, NULL, sink_event, s);
    sink_read(bev, s);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) return 1;
    int send = argc == 5 && !strcmp(argv[1], "send");
    if (!send && !(argc == 4 && !strcmp(argv[1], "recv"))) {
        fprintf(stderr, "usage: dc_stream send TARGET FUNC SIZE | recv NODEID BIND\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(send ? 120 : 600);
    aemp_node *node = aemp_node_new(NULL);
    /* profile "aemp"; the receiver with its own node ID and bind above it */
    char err[256];
    cJSON *file = NULL, *cfg = NULL;
    if (aemp_config_load(NULL, &file, err, sizeof err) ||
        aemp_config_find_profile(file, "aemp", NULL, &cfg, err, sizeof err)) {
        fprintf(stderr, "dc_stream: %s\n", err);
        return 1;
    }
    cJSON_Delete(file);
    if (!send) {
        cJSON_ReplaceItemInObject(cfg, "nodeid", cJSON_CreateString(argv[2]));
        cJSON_ReplaceItemInObject(cfg, "binds", cJSON_CreateStringArray((const char *[]){argv[3]}, 1));
    }
    if (aemp_configure_effective(node, cfg, err, sizeof err)) {
        fprintf(stderr, "dc_stream: %s\n", err);
        return 1;
    }
    cJSON_Delete(cfg);
    if (send) {
        size = strtoull(argv[4], NULL, 10);
        crypto_hash_sha256_init(&sha);
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cJSON_CreateString("stream"));
        cJSON_AddItemToArray(args, cJSON_CreateNumber((double)size));
        if (aemp_dataconn_connect(node, argv[2], 20, argv[3], args, connected, NULL)) {
            fprintf(stderr, "dc_stream: bad target %s\n", argv[2]);
            return 2;
        }
    } else {
        aemp_dataconn_register(node, "main::sink", sink_start, NULL);
        printf("ready\n");
        status = 0;
    }
    aemp_node_run(node);
    aemp_node_free(node);
    return status;
}
