/* aemp_dataconn_close(): a sender that queues 16 MiB and closes at once
 * loses nothing, with a secret, with TLS and on one node (socketpair); the
 * callback says so, from the event loop; a receiver that never reads makes
 * the close give up after its timeout; a node freed first calls nothing. (Freeing the bufferevent once its
 * output buffer was empty lost the tail of a TLS stream: issue 13.) */
#include "aemp.h"
#include "certgen.h"
#include "nettest.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#define SIZE (16 * 1024 * 1024)

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + 3 + (i >> 16)) & 255);
}

/* The receiving end: checks every byte, closes itself after the EOF. */
struct sink {
    size_t got, bad;
    int eof, closed, status;
};

static void sink_closed(aemp_node *node, int status, void *ud)
{
    (void)node;
    struct sink *s = ud;
    s->closed++;
    s->status = status;
}

static void sink_read(struct bufferevent *bev, void *ud)
{
    struct sink *s = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char buf[65536];
    int n;
    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        for (int i = 0; i < n; i++, s->got++)
            s->bad += buf[i] != pattern(s->got);
}

struct sink_fn {
    struct sink s;
    aemp_node *node;
};

static void sink_event_close(struct bufferevent *bev, short what, void *ud)
{
    struct sink_fn *f = ud;
    sink_read(bev, &f->s);
    f->s.eof = what & BEV_EVENT_EOF ? 1 : -1;
    /* the other side has ended: this close has nothing to send */
    CHECK_INT(aemp_dataconn_close(f->node, bev, 5, sink_closed, &f->s), 0);
}

static void sink_read_fn(struct bufferevent *bev, void *ud)
{
    sink_read(bev, &((struct sink_fn *)ud)->s);
}

static void sink_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)args;
    struct sink_fn *f = ud;
    f->node = node;
    bufferevent_setcb(bev, sink_read_fn, NULL, sink_event_close, f);
    sink_read_fn(bev, f);
}

/* The connecting end: queues everything and closes in the same turn. */
struct source {
    int up, closed, status, in_call;
    char error[256];
};

static void source_closed(aemp_node *node, int status, void *ud)
{
    (void)node;
    struct source *s = ud;
    CHECK(!s->in_call);
    s->closed++;
    s->status = status;
}

static void source_up(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    struct source *s = ud;
    s->up = bev ? 1 : -1;
    if (!bev) {
        snprintf(s->error, sizeof s->error, "%s", error);
        return;
    }
    unsigned char *buf = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = pattern(i);
    bufferevent_write(bev, buf, SIZE);
    free(buf);
    s->in_call = 1;
    CHECK_INT(aemp_dataconn_close(node, bev, 30, source_closed, s), 0);
    s->in_call = 0;
}

static void stream(const char *secret, const char *cert, int one_node)
{
    struct event_base *base = event_base_new();
    aemp_node *b = mknode(base, "dcc-b", 1, NULL, secret, cert, 10);
    aemp_node *a = one_node ? b : mknode(base, "dcc-a", 1, addr_of(b), secret, cert, 10);
    struct sink_fn f = {0};
    struct source s = {0};
    CHECK_INT(aemp_dataconn_register(b, "test::sink", sink_start, &f), 0);
    wait_up(base, a, "dcc-b", 10);
    CHECK_INT(aemp_dataconn_connect(a, "dcc-b", 10, "test::sink", NULL, source_up, &s), 0);
    CHECK(run_until(base, &s.closed, 1, 60));
    CHECK_INT(s.up, 1);
    CHECK_INT(s.status, 0);
    CHECK(run_until(base, &f.s.closed, 1, 10));
    CHECK_INT(f.s.got, SIZE);
    CHECK_INT(f.s.bad, 0);
    CHECK_INT(f.s.eof, 1);
    CHECK_INT(f.s.status, 0);
    if (a != b) aemp_node_free(a);
    aemp_node_free(b);
    event_base_free(base);
}

static void test_close_sends_everything_with_a_secret(void)
{
    stream("s3cret", NULL, 0);
}

static void test_close_sends_everything_with_tls(void)
{
    char *pem = NULL, err[256];
    CHECK_INT(certgen_selfsigned("dcc-test", &pem, err, sizeof err), 0);
    stream(NULL, pem, 0);
    free(pem);
}

static void test_close_sends_everything_on_one_node(void)
{
    stream("s3cret", NULL, 1);
}

/* A receiver that keeps the connection and reads nothing. */
static struct bufferevent *kept;

static void keep_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    (void)node, (void)args, (void)ud;
    bufferevent_disable(bev, EV_READ);
    kept = bev;
}

/* dcc-b with the function test::keep, and dcc-a seeded with it (returned),
 * seeing it up. */
static aemp_node *keep_pair(struct event_base *base, aemp_node **b)
{
    *b = mknode(base, "dcc-b", 1, NULL, "s3cret", NULL, 10);
    aemp_node *a = mknode(base, "dcc-a", 1, addr_of(*b), "s3cret", NULL, 10);
    aemp_dataconn_register(*b, "test::keep", keep_start, NULL);
    wait_up(base, a, "dcc-b", 10);
    return a;
}

static void test_a_node_freed_while_closing_calls_nothing(void)
{
    struct event_base *base = event_base_new();
    aemp_node *b, *a = keep_pair(base, &b);
    struct source s = {0};
    aemp_dataconn_connect(a, "dcc-b", 10, "test::keep", NULL, source_up, &s);
    /* the close waits (30 s) for a receiver that reads nothing */
    CHECK(run_until(base, &s.up, 1, 10));
    CHECK(kept != NULL);
    CHECK_INT(s.closed, 0);
    aemp_node_free(a); /* a node freed with a close pending calls nothing */
    CHECK_INT(s.closed, 0);
    if (kept) bufferevent_free(kept);
    kept = NULL;
    aemp_node_free(b);
    event_base_free(base);
}

/* The same with a short timeout: the status says the data did not go. */
static void short_up(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    struct source *s = ud;
    (void)error;
    s->up = bev ? 1 : -1;
    if (!bev) return;
    unsigned char *buf = calloc(1, SIZE);
    bufferevent_write(bev, buf, SIZE);
    free(buf);
    aemp_dataconn_close(node, bev, 0.5, source_closed, s);
}

static void test_close_reports_a_timeout(void)
{
    struct event_base *base = event_base_new();
    aemp_node *b, *a = keep_pair(base, &b);
    struct source s = {0};
    double t0 = now();
    aemp_dataconn_connect(a, "dcc-b", 10, "test::keep", NULL, short_up, &s);
    CHECK(run_until(base, &s.closed, 1, 10));
    CHECK_INT(s.status, AEMP_ETIMEDOUT);
    CHECK(now() - t0 >= 0.45);
    if (kept) bufferevent_free(kept);
    kept = NULL;
    aemp_node_free(a);
    aemp_node_free(b);
    event_base_free(base);
}

T_MAIN(T(test_close_sends_everything_with_a_secret), T(test_close_sends_everything_with_tls),
       T(test_close_sends_everything_on_one_node), T(test_a_node_freed_while_closing_calls_nothing),
       T(test_close_reports_a_timeout))
