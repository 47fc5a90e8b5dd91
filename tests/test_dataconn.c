/* Tests of the data-connection API (aemp_dataconn_connect, _register) with
 * nodes on one event loop over real TCP on 127.0.0.1 (secret and TLS), on
 * one node (socketpair), and its failures: an unknown function, a node
 * that never answers. The 100 MB transfers between processes, C and Perl,
 * are in tests/e2e/dataconn.sh. */
#include "aemp.h"
#include "certgen.h"
#include "handshake.h"
#include "nettest.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

/* The receiving end: greets at once (so the connecting side may find bytes
 * in its input before its callback returns), then echoes every line back
 * upper-cased; remembers its arguments. */
struct echo {
    int calls;
    cJSON *args;
    struct bufferevent *bev;
};

static void echo_read(struct bufferevent *bev, void *ud)
{
    char *line;
    while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF))) {
        for (char *p = line; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p -= 32;
        evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", line);
        free(line);
    }
}

static void echo_event(struct bufferevent *bev, short what, void *ud)
{
    struct echo *e = ud;
    (void)what;
    bufferevent_free(bev);
    e->bev = NULL;
}

static void echo_start(aemp_node *node, struct bufferevent *bev, const cJSON *args, void *ud)
{
    struct echo *e = ud;
    (void)node;
    e->calls++;
    cJSON_Delete(e->args);
    e->args = cJSON_Duplicate(args, 1);
    e->bev = bev;
    bufferevent_setcb(bev, echo_read, NULL, echo_event, e);
    evbuffer_add_printf(bufferevent_get_output(bev), "hello\n");
    echo_read(bev, e);
}

/* The connecting end: sends "ping", collects lines. */
struct client {
    int calls, lines;
    char got[256];
    char error[256];
    struct bufferevent *bev;
};

static void client_read(struct bufferevent *bev, void *ud)
{
    struct client *c = ud;
    char *line;
    while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF))) {
        size_t n = strlen(c->got);
        snprintf(c->got + n, sizeof c->got - n, "%s;", line);
        c->lines++;
        free(line);
    }
}

static void client_up(aemp_node *node, struct bufferevent *bev, const char *error, void *ud)
{
    struct client *c = ud;
    (void)node;
    c->calls++;
    c->bev = bev;
    if (!bev) {
        snprintf(c->error, sizeof c->error, "%s", error ? error : "(null)");
        return;
    }
    bufferevent_setcb(bev, client_read, NULL, NULL, c);
    bufferevent_write(bev, "ping\n", 5);
    client_read(bev, c); /* the greeting may be in already */
}

static void roundtrip(const char *secret, const char *cert, int a_listens)
{
    struct event_base *base = event_base_new();
    aemp_node *b = mknode(base, "dc-b", 1, NULL, secret, cert, 5);
    aemp_node *a = mknode(base, "dc-a", a_listens, addr_of(b), secret, cert, 5);
    struct echo e = {0};
    struct client c = {0};
    CHECK_INT(aemp_dataconn_register(b, "test::echo", echo_start, &e), 0);
    int up = 0;
    for (int i = 0; i < 100 && !aemp_node_is_up(a, "dc-b"); i++)
        run_until(base, &up, 1, 0.05);
    CHECK(aemp_node_is_up(a, "dc-b"));
    CHECK_INT(aemp_dataconn_connect(a, "dc-b#someport", 5, "test::echo",
                                    json("[\"x\",{\"k\":1}]"), client_up, &c),
              0);
    CHECK_INT(c.calls, 0); /* never inside the call */
    CHECK(run_until(base, &c.lines, 2, 10));
    CHECK_INT(c.calls, 1);
    CHECK_INT(e.calls, 1);
    CHECK(json_is(e.args, "[\"x\",{\"k\":1}]"));
    CHECK_STR(c.got, "hello;PING;");
    /* the connecting side closes: the other end sees EOF */
    if (c.bev) bufferevent_free(c.bev);
    int gone = 0;
    for (int i = 0; i < 100 && e.bev; i++)
        run_until(base, &gone, 1, 0.05);
    CHECK(e.bev == NULL);
    cJSON_Delete(e.args);
    aemp_node_free(a);
    aemp_node_free(b);
    event_base_free(base);
}

static void test_between_two_nodes_with_a_secret(void)
{
    roundtrip("s3cret", NULL, 1);
}

static void test_receiver_dials_back_when_the_target_has_no_listeners(void)
{
    /* here b listens and a does not: a dials b. The other way round (b
     * without listeners) b dials a after _connect: */
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "dc-a", 1, NULL, "s3cret", NULL, 5);
    aemp_node *b = mknode(base, "dc-b", 0, addr_of(a), "s3cret", NULL, 5);
    struct echo e = {0};
    struct client c = {0};
    aemp_dataconn_register(b, "test::echo", echo_start, &e);
    int up = 0;
    for (int i = 0; i < 100 && !aemp_node_is_up(a, "dc-b"); i++)
        run_until(base, &up, 1, 0.05);
    CHECK(aemp_node_is_up(a, "dc-b"));
    CHECK_INT(aemp_dataconn_connect(a, "dc-b", 5, "test::echo", NULL, client_up, &c), 0);
    CHECK(run_until(base, &c.lines, 2, 10));
    CHECK_STR(c.got, "hello;PING;");
    CHECK(json_is(e.args, "[]"));
    if (c.bev) bufferevent_free(c.bev);
    if (e.bev) bufferevent_free(e.bev);
    cJSON_Delete(e.args);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_between_two_nodes_with_tls(void)
{
    char *pem = NULL, err[256];
    CHECK_INT(certgen_selfsigned("dc-test", &pem, err, sizeof err), 0);
    roundtrip(NULL, pem, 0);
    free(pem);
}

static void test_on_one_node_a_socketpair(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "dc-self", 0, NULL, "s3cret", NULL, 5);
    struct echo e = {0};
    struct client c = {0};
    aemp_dataconn_register(a, "test::echo", echo_start, &e);
    CHECK_INT(aemp_dataconn_connect(a, "dc-self", 5, "test::echo", json("[1]"), client_up, &c),
              0);
    CHECK_INT(c.calls, 0);
    CHECK(run_until(base, &c.lines, 2, 5));
    CHECK_STR(c.got, "hello;PING;");
    CHECK(json_is(e.args, "[1]"));
    if (c.bev) bufferevent_free(c.bev);
    if (e.bev) bufferevent_free(e.bev);
    /* an unknown function on the node itself */
    struct client u = {0};
    aemp_dataconn_connect(a, "dc-self", 5, "no::such", NULL, client_up, &u);
    CHECK(run_until(base, &u.calls, 1, 5));
    CHECK(u.bev == NULL);
    CHECK(strstr(u.error, "no data-connection function no::such") != NULL);
    cJSON_Delete(e.args);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_failures_reach_the_callback(void)
{
    struct event_base *base = event_base_new();
    aemp_node *b = mknode(base, "dc-b", 1, NULL, "s3cret", NULL, 5);
    aemp_node *a = mknode(base, "dc-a", 1, addr_of(b), "s3cret", NULL, 5);
    struct client c = {0};
    /* unknown function on the other node: refused at once, named */
    CHECK_INT(aemp_dataconn_connect(a, "dc-b", 5, "no::such", NULL, client_up, &c), 0);
    CHECK(run_until(base, &c.calls, 1, 5));
    CHECK(c.bev == NULL);
    CHECK(strstr(c.error, "dc-b: no data-connection function no::such") != NULL);
    /* a node nobody knows: the timeout */
    struct client t = {0};
    double t0 = now();
    CHECK_INT(aemp_dataconn_connect(a, "dc-ghost", 0.5, "test::echo", NULL, client_up, &t), 0);
    CHECK(run_until(base, &t.calls, 1, 5));
    CHECK(now() - t0 >= 0.45);
    CHECK(strstr(t.error, "dc-ghost: unable to establish connection") != NULL);
    /* bad arguments: refused, no callback */
    CHECK_INT(aemp_dataconn_connect(a, "", 5, "f", NULL, client_up, &t), AEMP_EINVAL);
    CHECK_INT(aemp_dataconn_connect(a, "dc-b", 5, "f", json("{}"), client_up, &t),
              AEMP_EINVAL);
    /* a node freed with a connection pending calls nothing */
    struct client f = {0};
    aemp_dataconn_connect(a, "dc-ghost", 5, "test::echo", NULL, client_up, &f);
    aemp_node_free(a);
    aemp_node_free(b);
    CHECK_INT(f.calls, 0);
    event_base_free(base);
}

static void test_dataconn_greeting(void)
{
    char *l1 = hs_dataconn_greeting("aemp;1;n1;hmac_md6_64_256;json;provider=x", "a.b@n1");
    CHECK_STR(l1, "aemp-dataconn;1;n1;hmac_md6_64_256;json;provider=x;dataconn_id=a.b@n1");
    struct hs_greeting g;
    char err[128];
    CHECK_INT(hs_parse_greeting(l1, strlen(l1), &g, err, sizeof err), 0);
    CHECK_STR(g.proto, "aemp-dataconn");
    CHECK_STR(g.dataconn_id, "a.b@n1");
    hs_greeting_clear(&g);
    free(l1);
    CHECK(hs_dataconn_id_ok("b@perl-node"));
    CHECK(!hs_dataconn_id_ok(""));
    CHECK(!hs_dataconn_id_ok("a;b"));
    CHECK(!hs_dataconn_id_ok("a b"));
}

T_MAIN(T(test_between_two_nodes_with_a_secret), T(test_between_two_nodes_with_tls),
       T(test_receiver_dials_back_when_the_target_has_no_listeners),
       T(test_on_one_node_a_socketpair), T(test_failures_reach_the_callback),
       T(test_dataconn_greeting))
