/* Tests of the connection counters (stats.c, aemp_stats()): a raw peer the
 * test drives byte by byte over real TCP, so that every message and byte
 * on the connection is known, and the counters must match exactly; the
 * causes of handshake failures and disconnects; the node-port request. */
#include "conn_cause.h"
#include "framing.h"
#include "handshake.h"
#include "nettest.h"
#include "stats.h"
#include "transport_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SECRET "s3cret"

static struct event_base *base;

/* A peer speaking the protocol by hand on a non-blocking socket; the
 * node's loop runs while it waits. */
struct raw {
    int fd;
    char buf[1 << 16];
    size_t len;       /* unread bytes in buf */
    size_t got_bytes; /* message bytes received after the handshake */
    int got_msgs;     /* messages among them */
    struct framing_reader *reader;
};

static int raw_connect(struct raw *r, aemp_node *n)
{
    memset(r, 0, sizeof *r);
    int port = atoi(strrchr(addr_of(n), ':') + 1);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof sa)) return -1;
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

static void raw_send(struct raw *r, const char *s, size_t len)
{
    while (len) {
        ssize_t k = send(r->fd, s, len, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            run_until(base, NULL, 0, 0.001);
            continue;
        }
        if (k <= 0) return;
        s += k;
        len -= (size_t)k;
    }
}

/* Read what is there; -1 when the peer closed. */
static int raw_pull(struct raw *r)
{
    ssize_t k = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    if (k == 0) return -1;
    if (k > 0) r->len += (size_t)k;
    return 0;
}

/* One line (without LF) into out within `secs` of loop time: 1 or 0. */
static int raw_line(struct raw *r, char *out, size_t outlen, double secs)
{
    double deadline = now() + secs;
    while (now() < deadline) {
        int got = buf_line(r->buf, &r->len, out, outlen);
        if (got) return got > 0;
        if (raw_pull(r) < 0) return 0;
        run_until(base, NULL, 0, 0.002);
    }
    return 0;
}

static int count_msg(void *ud, cJSON *msg)
{
    ((struct raw *)ud)->got_msgs++;
    cJSON_Delete(msg);
    return 0;
}

/* Move what arrived after the handshake through a framing reader. */
static void raw_count(struct raw *r)
{
    char err[256];
    raw_pull(r);
    if (!r->len) return;
    r->got_bytes += r->len;
    CHECK_INT(framing_reader_feed(r->reader, r->buf, r->len, count_msg, r, err, sizeof err), 0);
    r->len = 0;
}

/* Greeting and auth as node `id` (a wrong token when `bad`); 0 when the
 * node answered with its auth line (or, when `bad`, after sending ours). */
static int raw_handshake(struct raw *r, aemp_node *n, const char *id, int bad)
{
    char L[3 * HS_MAX_LINE], R[3 * HS_MAX_LINE], l1[HS_MAX_LINE + 1], l2[HS_MAX_LINE + 1];
    char err[256], nonce[HS_NONCE_LEN + 1], tok[65] = "", line[300];
    const char *acc[] = {"hmac_md6_64_256"}, *fr[] = {"json"};
    cJSON *a = cJSON_CreateStringArray(acc, 1), *f = cJSON_CreateStringArray(fr, 1);
    if (raw_connect(r, n)) return -1;
    char *g1 = hs_build_greeting(id, a, f, NULL, 0);
    hs_nonce(nonce);
    snprintf(L, sizeof L, "%s\n%s\n", g1, nonce);
    free(g1);
    raw_send(r, L, strlen(L));
    int rc = -1;
    if (raw_line(r, l1, sizeof l1, 5) && raw_line(r, l2, sizeof l2, 5)) {
        struct hs_greeting g;
        const char *method, *framing;
        snprintf(R, sizeof R, "%s\n%s\n", l1, l2);
        if (!hs_parse_greeting(l1, strlen(l1), &g, err, sizeof err)) {
            rc = hs_choose(&g, a, f, 0, &method, &framing, err, sizeof err);
            if (!rc) rc = hs_token(method, SECRET, L, R, tok, sizeof tok);
            if (!rc && bad) tok[0] = tok[0] == '0' ? '1' : '0';
            if (!rc) snprintf(line, sizeof line, "%s;%s;%s\n", method, tok, framing);
            hs_greeting_clear(&g);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(f);
    if (rc) return -1;
    raw_send(r, line, strlen(line));
    if (bad) return 0;
    char theirs[HS_MAX_LINE + 1];
    if (!raw_line(r, theirs, sizeof theirs, 5)) return -1;
    r->reader = framing_reader_new(1 << 20);
    return 0;
}

static void raw_close(struct raw *r)
{
    close(r->fd);
    framing_reader_free(r->reader);
    r->reader = NULL;
}

/* A number in the stats object: path of up to three keys. */
static double stat(aemp_node *n, const char *a, const char *b, const char *c)
{
    cJSON *s = aemp_stats(n);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c) v = cJSON_GetObjectItemCaseSensitive(v, c);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(s);
    return d;
}

static void test_counts_exactly_what_was_sent(void)
{
    base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, SECRET, NULL, 5);
    char *pa = aemp_port(a);
    struct rec ra = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &ra);
    CHECK_INT(stat(a, "total", "msgs_in", NULL), 0);
    CHECK_INT(stat(a, "total", "connects", NULL), 0);

    struct raw r;
    CHECK_INT(raw_handshake(&r, a, "rawpeer", 0), 0);
    double deadline = now() + 5;
    while (now() < deadline && stat(a, "total", "connects", NULL) < 1)
        run_until(base, NULL, 0, 0.005);
    CHECK_INT(stat(a, "total", "connects", NULL), 1);
    CHECK_INT(stat(a, "peers", "rawpeer", "connects"), 1);

    /* N messages of different sizes from the raw peer: exactly N and their
     * bytes, per peer and in total (the raw peer sends nothing else) */
    enum { N = 250 };
    const char *name = strchr(pa, '#') + 1;
    size_t sent = 0;
    for (int i = 0; i < N; i++) {
        char m[300];
        int len = snprintf(
            m, sizeof m, "[\"%s\",%d,\"%.*s\"]", name, i, i % 200,
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        raw_send(&r, m, (size_t)len);
        sent += (size_t)len;
    }
    CHECK(run_until(base, &ra.calls, N, 10));
    CHECK_INT(stat(a, "peers", "rawpeer", "msgs_in"), N);
    CHECK_INT(stat(a, "peers", "rawpeer", "bytes_in"), sent);
    CHECK_INT(stat(a, "total", "msgs_in", NULL), N);
    CHECK_INT(stat(a, "total", "bytes_in", NULL), sent);

    /* M messages from the node to the raw peer: what the peer receives
     * (every message, with whatever Global sent it) is what was counted */
    enum { M = 40 };
    for (int i = 0; i < M; i++) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateNumber(i));
        aemp_snd(a, "rawpeer#inbox", m);
    }
    deadline = now() + 10;
    do {
        run_until(base, NULL, 0, 0.005);
        raw_count(&r);
    } while (now() < deadline &&
             (r.got_msgs < M || r.got_msgs != (int)stat(a, "peers", "rawpeer", "msgs_out")));
    double out = stat(a, "peers", "rawpeer", "msgs_out");
    CHECK(out >= M);
    CHECK_INT(r.got_msgs, out);
    CHECK_INT(r.got_bytes, stat(a, "peers", "rawpeer", "bytes_out"));
    CHECK_INT(stat(a, "total", "msgs_out", NULL), out);
    fprintf(stderr, "# %d messages in (%zu bytes), %g out (%zu bytes; %g of them Global's)\n", N,
            sent, out, r.got_bytes, out - M);

    /* the peer goes away: one disconnect, closed by the peer */
    raw_close(&r);
    deadline = now() + 5;
    while (now() < deadline && stat(a, "total", "disconnects", NULL) < 1)
        run_until(base, NULL, 0, 0.005);
    CHECK_INT(stat(a, "total", "disconnects", NULL), 1);
    CHECK_INT(stat(a, "total", "disconnect_reasons", "closed_by_peer"), 1);
    CHECK_INT(stat(a, "total", "handshake_failures", NULL), 0);
    rec_free(&ra);
    free(pa);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_handshake_failures_by_cause(void)
{
    base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, SECRET, NULL, 5);
    struct raw r;
    double deadline;
    /* a wrong auth token: cause "auth" */
    CHECK_INT(raw_handshake(&r, a, "liar", 1), 0);
    deadline = now() + 5;
    while (now() < deadline && stat(a, "total", "handshake_failures", NULL) < 1)
        run_until(base, NULL, 0, 0.005);
    CHECK_INT(stat(a, "total", "handshake_failure_causes", "auth"), 1);
    raw_close(&r);
    /* a greeting that is not one: cause "protocol" */
    CHECK_INT(raw_connect(&r, a), 0);
    raw_send(&r, "hello there\nnonce\n", 18);
    deadline = now() + 5;
    while (now() < deadline && stat(a, "total", "handshake_failures", NULL) < 2)
        run_until(base, NULL, 0, 0.005);
    CHECK_INT(stat(a, "total", "handshake_failure_causes", "protocol"), 1);
    raw_close(&r);
    /* gone during the handshake: cause "closed_by_peer" */
    CHECK_INT(raw_connect(&r, a), 0);
    run_until(base, NULL, 0, 0.02);
    raw_close(&r);
    deadline = now() + 5;
    while (now() < deadline && stat(a, "total", "handshake_failures", NULL) < 3)
        run_until(base, NULL, 0, 0.005);
    CHECK_INT(stat(a, "total", "handshake_failure_causes", "closed_by_peer"), 1);
    CHECK_INT(stat(a, "total", "handshake_failures", NULL), 3);
    CHECK_INT(stat(a, "total", "connects", NULL), 0);
    CHECK_INT(stat(a, "total", "disconnects", NULL), 0);
    /* a node dialing a port where nothing listens: cause "connect" */
    int port = atoi(strrchr(addr_of(a), ':') + 1);
    aemp_node_free(a);
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", port);
    aemp_node *b = mknode(base, "node-b", 0, dead, SECRET, NULL, 5);
    deadline = now() + 5;
    while (now() < deadline && stat(b, "total", "handshake_failures", NULL) < 1)
        run_until(base, NULL, 0, 0.005);
    CHECK(stat(b, "total", "handshake_failure_causes", "connect") >= 1);
    aemp_node_free(b);
    event_base_free(base);
}

/* Every close cause has its own name, and counts as the reason aemp stats
 * shows for it (by the state the connection was in). */
static void test_close_causes(void)
{
    for (int i = 0; i < CONN_CAUSE_N; i++) {
        CHECK(strcmp(conn_cause_name((enum conn_cause)i), "?"));
        for (int j = 0; j < i; j++)
            CHECK(strcmp(conn_cause_name((enum conn_cause)i), conn_cause_name((enum conn_cause)j)));
    }
    CHECK_STR(conn_cause_name(CONN_CAUSE_N), "?");
    CHECK_INT(conn_cause_of_errno(ECONNRESET), CONN_PEER_CLOSED);
    CHECK_INT(conn_cause_of_errno(EPIPE), CONN_PEER_CLOSED);
    CHECK_INT(conn_cause_of_errno(ETIMEDOUT), CONN_TIMED_OUT);
    CHECK_INT(conn_cause_of_errno(EHOSTUNREACH), CONN_SOCKET_ERROR);
    static const struct {
        int state;
        enum conn_cause cause;
        const char *reason;
    } rows[] = {
        {C_UP, CONN_PEER_CLOSED, "closed_by_peer"},
        {C_UP, CONN_TIMED_OUT, "timeout"},
        {C_UP, CONN_PROTOCOL, "protocol"},
        {C_UP, CONN_REPLACED, "replaced"},
        {C_UP, CONN_NOT_READING, "error"},
        {C_UP, CONN_TLS, "error"},
        {C_UP, CONN_SOCKET_ERROR, "error"},
        {C_CONNECTING, CONN_TIMED_OUT, "connect"},
        {C_CONNECTING, CONN_CONNECT_FAILED, "connect"},
        {C_GREET, CONN_SELF, "duplicate"},
        {C_GREET, CONN_REPLACED, "duplicate"},
        {C_HELD, CONN_REPLACED, "duplicate"},
        {C_GREET, CONN_TIMED_OUT, "timeout"},
        {C_AUTH, CONN_PEER_CLOSED, "closed_by_peer"},
        {C_TLS, CONN_TLS, "tls"},
        {C_TLS, CONN_SOCKET_ERROR, "tls"},
        {C_AUTH, CONN_AUTH_FAILED, "auth"},
        {C_GREET, CONN_PROTOCOL, "protocol"},
        {C_GREET, CONN_NO_MEMORY, "protocol"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct stats_counts total = {0}, peer = {0};
        stats_count_close(&total, &peer, rows[i].state, rows[i].cause);
        const char *got = NULL;
        int n = 0;
        for (int d = 0; d < SD_N; d++)
            if (total.disc[d]) got = stats_disc_name((enum stats_disc)d), n += (int)total.disc[d];
        for (int h = 0; h < SH_N; h++)
            if (total.hs_fail[h]) got = stats_hs_name((enum stats_hs)h), n += (int)total.hs_fail[h];
        CHECK_INT(n, 1);
        CHECK_STR(got, rows[i].reason);
        CHECK(!memcmp(&total, &peer, sizeof total));
    }
}

struct got {
    int calls;
    cJSON *reply;
};

static void got_reply(aemp_node *n, const cJSON *reply, const cJSON *error, void *ud)
{
    struct got *g = ud;
    g->reply = reply ? cJSON_Duplicate(reply, 1) : NULL;
    g->calls++;
}

static void test_node_port_request(void)
{
    base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, SECRET, NULL, 5);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), SECRET, NULL, 5);
    struct got g = {0};
    aemp_cal(b, "node-a", json("[\"devnull\",\"aemp_stats\"]"), 5, got_reply, &g);
    CHECK(run_until(base, &g.calls, 1, 6));
    const cJSON *s = cJSON_GetArrayItem(g.reply, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "node")), "node-a");
    const cJSON *pb =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "peers"), "node-b");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pb, "up")));
    CHECK(cJSON_GetObjectItemCaseSensitive(pb, "msgs_in")->valuedouble >= 1);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "uptime")));
    CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "total"), "peers_up")
              ->valuedouble == 1);
    /* plain devnull stays silent */
    struct got q = {0};
    aemp_cal(b, "node-a", json("[\"devnull\",\"other\"]"), 0.5, got_reply, &q);
    CHECK(run_until(base, &q.calls, 1, 3));
    CHECK(q.reply == NULL);
    cJSON_Delete(g.reply);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

T_MAIN(T(test_close_causes), T(test_counts_exactly_what_was_sent), T(test_handshake_failures_by_cause),
       T(test_node_port_request))
