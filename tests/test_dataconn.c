/* Tests of the data-connection API (aemp_dataconn_connect, _register) with
 * nodes on one event loop over real TCP on 127.0.0.1 (secret and TLS), on
 * one node (socketpair), and its failures: an unknown function, a node
 * that never answers. The 100 MB transfers between processes, C and Perl,
 * are in tests/e2e/dataconn.sh. */
#include "aemp.h"
#include "certgen.h"
#include "dataconn.h"
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

/* A raw socket's next line (without LF) into out[outlen], running the loop
 * meanwhile; 1, or 0 after `secs` without one. */
static int sock_line(struct event_base *base, int fd, char *buf, size_t *len, char *out,
                     size_t outlen, double secs)
{
    double end = now() + secs;
    int never = 0;
    for (;;) {
        if (buf_line(buf, len, out, outlen) == 1) return 1;
        ssize_t n = recv(fd, buf + *len, 4095 - *len, MSG_DONTWAIT);
        if (n > 0) {
            *len += (size_t)n;
            continue;
        }
        if (now() > end) return 0;
        run_until(base, &never, 1, 0.01);
    }
}

/* The connecting side writes its auth line and its first bytes in one
 * segment (a busy receiver reads them in one go): the function still gets
 * those bytes, and the metrics count them. Before the fix they stayed in the socket's buffer, below
 * the filter, and a transfer waited until it timed out. */
static void test_bytes_behind_the_auth_line_reach_the_function(void)
{
    struct event_base *base = event_base_new();
    aemp_node *b = mknode(base, "dc-b", 1, NULL, "s3cret", NULL, 5);
    aemp_node *a = mknode(base, "dc-a", 1, addr_of(b), "s3cret", NULL, 5);
    struct echo e = {0};
    CHECK_INT(aemp_dataconn_register(b, "test::echo", echo_start, &e), 0);
    CHECK(wait_up(base, a, "dc-b", 10));
    /* what aemp_dataconn_connect() asks first: b expects our ID */
    const char *id = "seg.1@dc-a";
    char *p = aemp_port(a);
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("AnyEvent::MP::DataConn::_expect"));
    cJSON_AddItemToArray(m, cJSON_CreateString(id));
    cJSON_AddItemToArray(m, cJSON_CreateString(p));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(10));
    cJSON_AddItemToArray(m, cJSON_CreateString("test::echo"));
    aemp_snd(a, "dc-b", m);
    struct calres sync = {0}; /* answered after the _expect: same link */
    aemp_cal(a, "dc-b", json("[\"time\"]"), 10, cal_done, &sync);
    CHECK(run_until(base, &sync.calls, 1, 10));
    /* then the data connection, by hand, as node dc-a */
    int port = atoi(strrchr(addr_of(b), ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *acc[] = {"hmac_md6_64_256"}, *fr[] = {"json"};
    cJSON *ja = cJSON_CreateStringArray(acc, 1), *jf = cJSON_CreateStringArray(fr, 1);
    char *l1 = hs_build_greeting("dc-a", ja, jf, NULL, 0);
    char *dl1 = hs_dataconn_greeting(l1, id);
    char nonce[HS_NONCE_LEN + 1], L[2 * HS_MAX_LINE], R[2 * HS_MAX_LINE];
    hs_nonce(nonce);
    snprintf(L, sizeof L, "%s\n%s\n", dl1, nonce);
    CHECK(send(fd, L, strlen(L), 0) == (ssize_t)strlen(L));
    char buf[4096], r1[HS_MAX_LINE + 1] = "", r2[HS_MAX_LINE + 1] = "", line[HS_MAX_LINE + 1];
    size_t len = 0;
    CHECK(sock_line(base, fd, buf, &len, r1, sizeof r1, 5));
    CHECK(sock_line(base, fd, buf, &len, r2, sizeof r2, 5));
    snprintf(R, sizeof R, "%s\n%s\n", r1, r2);
    struct hs_greeting g;
    char err[256], tok[65] = "";
    const char *method = NULL, *framing = NULL;
    CHECK_INT(hs_parse_greeting(r1, strlen(r1), &g, err, sizeof err), 0);
    CHECK_INT(hs_choose(&g, ja, jf, 0, &method, &framing, err, sizeof err), 0);
    CHECK_INT(hs_token(method, "s3cret", L, R, tok, sizeof tok), 0);
    char out[HS_MAX_LINE + 16];
    int n = snprintf(out, sizeof out, "%s;%s;%s\nping\n", method, tok, framing);
    CHECK(send(fd, out, (size_t)n, 0) == n); /* one write, one segment */
    hs_greeting_clear(&g);
    CHECK(sock_line(base, fd, buf, &len, line, sizeof line, 5)); /* b's auth line */
    CHECK(!strncmp(line, "hmac_md6_64_256;", 16));
    CHECK(sock_line(base, fd, buf, &len, line, sizeof line, 5));
    CHECK_STR(line, "hello");
    line[0] = 0;
    CHECK(sock_line(base, fd, buf, &len, line, sizeof line, 3));
    CHECK_STR(line, "PING");
    CHECK_INT(e.calls, 1);
    unsigned long long n_open, n_opened, n_in, n_out; /* and it counts as received */
    dataconn_figures(b, &n_open, &n_opened, &n_in, &n_out);
    CHECK_INT((int)n_in, 5);
    close(fd);
    free(l1);
    free(dl1);
    free(p);
    cJSON_Delete(ja);
    cJSON_Delete(jf);
    cJSON_Delete(sync.reply);
    cJSON_Delete(sync.error);
    cJSON_Delete(e.args);
    if (e.bev) bufferevent_free(e.bev);
    aemp_node_free(a);
    aemp_node_free(b);
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
       T(test_bytes_behind_the_auth_line_reach_the_function), T(test_dataconn_greeting))
