/* msgpath.c - two nodes in one process send one message over 127.0.0.1:
 * node B to port "sink" of node A. tests/msgpath.sh runs this under gdb and
 * reads the call stacks of the message's way down (msgpath_send ->
 * aemp_snd -> ... -> the framing's encoder, the socket write) and up (the
 * framing's decoder, msgpath_received) to check that it enters each layer
 * of lib/ once; once with a shared secret, once over TLS (the name of the
 * test as the first argument picks one). Exits 0 when the messages
 * arrived. */
#include "certgen.h"
#include "nettest.h"

#include <stdio.h>
#include <stdlib.h>

static int received;

/* A's port callback: the top of the read side's stack. */
__attribute__((noinline)) static int msgpath_received(aemp_node *node, const char *self,
                                                      const cJSON *msg, void *ud)
{
    received++;
    return 0;
}

/* The bottom of the send side's stack. */
__attribute__((noinline)) static int msgpath_send(aemp_node *b)
{
    return aemp_snd(b, "A#sink", cJSON_Parse("[\"hello\", 1]"));
}

/* One message from B to A#sink, with a shared secret or (tls) over TLS
 * with a generated certificate and no secret. */
static void msgpath(int tls)
{
    char *pem = NULL, err[256];
    if (tls) CHECK_INT(certgen_selfsigned("aemp-msgpath", &pem, err, sizeof err), 0);
    const char *secret = tls ? NULL : "msgpath-secret";
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "A", 1, NULL, secret, pem, 10);
    aemp_node *b = mknode(base, "B", 0, addr_of(a), secret, pem, 10);
    CHECK_INT(aemp_rcv(a, "A#sink", NULL, msgpath_received, NULL), 0);
    int up = 0;
    for (double end = now() + 20; !up && now() < end;) {
        run_until(base, NULL, 1, 0.05);
        up = aemp_node_is_up(b, "A");
    }
    CHECK(up);
    received = 0;
    CHECK_INT(msgpath_send(b), 0);
    run_until(base, &received, 1, 20);
    CHECK_INT(received, 1);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
    free(pem);
}

static void test_msgpath_plain(void)
{
    msgpath(0);
}

static void test_msgpath_tls(void)
{
    msgpath(1);
}

T_MAIN(T(test_msgpath_plain), T(test_msgpath_tls))
