/* Tests of remote messaging inside one process: two or three nodes on one
 * event loop, connected over real TCP on 127.0.0.1 with the real handshake
 * (HMAC-MD6 or TLS with generated certificates). Multi-process tests with
 * the aemp binary are in tests/e2e. */
#include "aemp.h"
#include "certgen.h"
#include "nettest.h"

#include <dirent.h>

static int seq_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct rec *r = ud;
    const cJSON *i = cJSON_GetArrayItem(msg, 1);
    if (!cJSON_IsNumber(i) || i->valueint != r->next) r->next = -100000000;
    else r->next++;
    r->calls++;
    return 0;
}

static int worker(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    return aemp_rcv(node, self, NULL, rec_rcv, ud);
}

static void test_snd_mon_kil_spawn_between_two_nodes(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "s3cret", NULL, 5);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), "s3cret", NULL, 5);
    char *pa = aemp_port(a);
    struct rec ra = {0}, mb = {0}, spawned = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &ra);
    /* snd from b reaches a through the seed connection */
    CHECK_INT(aemp_snd(b, pa, json("[\"tag\",1,\"abc\"]")), 0);
    CHECK(run_until(base, &ra.calls, 1, 5));
    CHECK(json_is(ra.last, "[\"tag\",1,\"abc\"]"));
    CHECK(aemp_node_is_up(b, "node-a"));
    CHECK(aemp_node_is_up(a, "node-b"));
    /* mon from b, kil on a with a reason: mon1 then kil0 */
    aemp_mon(b, pa, rec_mon, &mb, NULL);
    run_until(base, NULL, 0, 0.1);
    aemp_kil(a, pa, json("[\"shut\",\"down\"]"));
    CHECK(run_until(base, &mb.calls, 1, 5));
    CHECK(json_is(mb.last, "[\"shut\",\"down\"]"));
    /* spawn a registered function on a from b, then talk to it */
    aemp_register(a, "test::worker", worker, &spawned);
    char *sp = aemp_spawn(b, "node-a", "test::worker", NULL);
    CHECK(sp && !strncmp(sp, "node-a#", 7));
    aemp_snd(b, sp, json("[\"job\",42]"));
    CHECK(run_until(base, &spawned.calls, 1, 5));
    CHECK(json_is(spawned.last, "[\"job\",42]"));
    /* kil of a remote port from b, seen by a monitor on a */
    struct rec ma = {0};
    aemp_mon(a, sp, rec_mon, &ma, NULL);
    aemp_kil(b, sp, json("[\"from\",\"b\"]"));
    CHECK(run_until(base, &ma.calls, 1, 5));
    CHECK(json_is(ma.last, "[\"from\",\"b\"]"));
    /* mon of a nonexistent remote port: no_such_port from the other node */
    struct rec mg = {0};
    aemp_mon(b, "node-a#ghost", rec_mon, &mg, NULL);
    CHECK(run_until(base, &mg.calls, 1, 5));
    CHECK(json_is(mg.last, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"node-a#ghost\"]"));
    rec_free(&ra);
    rec_free(&mb);
    rec_free(&ma);
    rec_free(&mg);
    rec_free(&spawned);
    free(pa);
    free(sp);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_cal_node_port_across_nodes(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "s3cret", NULL, 5);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), "s3cret", NULL, 5);
    struct calres c = {0}, u = {0};
    aemp_cal(b, "node-a", json("[\"info\"]"), 5, cal_done, &c);
    CHECK(run_until(base, &c.calls, 1, 5));
    CHECK(json_is(c.reply, "[\"node-a\"]"));
    aemp_cal(b, "node-a", json("[\"up_nodes\"]"), 5, cal_done, &u);
    CHECK(run_until(base, &u.calls, 1, 5));
    CHECK(json_is(u.reply, "[\"node-b\"]"));
    cJSON_Delete(c.reply);
    cJSON_Delete(u.reply);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_many_messages_in_order(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "s3cret", NULL, 5);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), "s3cret", NULL, 5);
    char *pa = aemp_port(a);
    struct rec r = {0};
    aemp_rcv(a, pa, NULL, seq_rcv, &r);
    int n = 100000;
    double t0 = now();
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("seq"));
        cJSON_AddItemToArray(m, cJSON_CreateNumber(i));
        aemp_snd(b, pa, m);
    }
    CHECK(run_until(base, &r.calls, n, 60));
    CHECK_INT(r.next, n);
    printf("# %d messages in %.3f s\n", n, now() - t0);
    free(pa);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

/* A string of n bytes from a pattern with bytes the writer must escape,
 * multi-byte UTF-8 and C0 80 (U+0000 inside the node); new, caller frees. */
static char *big_string(size_t n, unsigned seed)
{
    static const char *const parts[] = {"plain text ", "\"", "\\", "\n", "\xc3\xa9",
                                        "\xc0\x80", "\x01", "[{]}", "\xf0\x9f\x98\x80"};
    char *s = malloc(n + 8);
    size_t len = 0;
    while (len < n) {
        const char *p = parts[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
        size_t pl = strlen(p);
        if (len + pl > n) p = "x", pl = 1;
        memcpy(s + len, p, pl);
        len += pl;
    }
    s[len] = 0;
    return s;
}

/* A string of n bytes of long plain runs (the sender writes them from the
 * message without a copy), with '"' in the middle and C0 80 at a third;
 * new, caller frees. */
static char *plain_string(size_t n)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = "abcdefghijklmnopqrstuvwxyz"[i % 26];
    s[n / 2] = '"';
    s[n / 3] = '\xc0';
    s[n / 3 + 1] = '\x80';
    s[n] = 0;
    return s;
}

/* Records every message as ["big", I, STRING]: checks STRING is the one
 * sent as number I (exact bytes) and I counts up. */
struct bigrec {
    int calls, bad;
    char *want[8];
};

static int big_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct bigrec *r = ud;
    const cJSON *i = cJSON_GetArrayItem(msg, 1), *s = cJSON_GetArrayItem(msg, 2);
    if (!cJSON_IsNumber(i) || i->valueint != r->calls || !cJSON_IsString(s) ||
        strcmp(s->valuestring, r->want[r->calls]))
        r->bad++;
    r->calls++;
    return 0;
}

static cJSON *big_msg(int i, const char *str)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("big"));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(i));
    cJSON_AddItemToArray(m, cJSON_CreateString(str));
    return m;
}

/* Messages of 10 bytes to 2 MB, some queued before the connection is up and
 * some written on the live connection (texts over 64 KB go to the socket
 * without a copy, and so do long plain runs of strings: the 1 MB and 2 MB
 * ones), arrive complete, exact and in order: over the shared-secret
 * connection and over TLS. */
static void test_large_messages_exact(void)
{
    static const size_t sizes[8] = {10, 70000, 1 << 20, 100, 65536, 2 << 20, 65537, 300000};
    char *pem = NULL, err[256];
    CHECK_INT(certgen_selfsigned("aemp-test", &pem, err, sizeof err), 0);
    for (int tls = 0; tls <= 1; tls++) {
        struct event_base *base = event_base_new();
        aemp_node *a = mknode(base, "node-a", 1, NULL, tls ? NULL : "s3cret", tls ? pem : NULL, 5);
        aemp_node *b = mknode(base, "node-b", 0, addr_of(a), tls ? NULL : "s3cret",
                              tls ? pem : NULL, 5);
        char *pa = aemp_port(a);
        struct bigrec r = {0};
        for (int i = 0; i < 8; i++)
            r.want[i] = i == 2 || i == 5 ? plain_string(sizes[i])
                                         : big_string(sizes[i], (unsigned)i + 1);
        aemp_rcv(a, pa, NULL, big_rcv, &r);
        for (int i = 0; i < 4; i++) aemp_snd(b, pa, big_msg(i, r.want[i])); /* queued */
        CHECK(run_until(base, &r.calls, 4, 30));
        for (int i = 4; i < 8; i++) aemp_snd(b, pa, big_msg(i, r.want[i])); /* connected */
        CHECK(run_until(base, &r.calls, 8, 30));
        CHECK_INT(r.calls, 8);
        CHECK_INT(r.bad, 0);
        for (int i = 0; i < 8; i++) free(r.want[i]);
        free(pa);
        aemp_node_free(b);
        aemp_node_free(a);
        event_base_free(base);
    }
    free(pem);
}

static void test_wrong_secret_refused_and_monitors_fire(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "right", NULL, 1);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), "wrong", NULL, 1);
    struct rec m = {0}, r = {0};
    char *pa = aemp_port(a);
    aemp_rcv(a, pa, NULL, rec_rcv, &r);
    aemp_mon(b, pa, rec_mon, &m, NULL);
    aemp_snd(b, pa, json("[\"never\"]"));
    CHECK(run_until(base, &m.calls, 1, 5));
    CHECK_INT(r.calls, 0);
    CHECK(!aemp_node_is_up(b, "node-a"));
    const cJSON *e0 = cJSON_GetArrayItem(m.last, 0), *e1 = cJSON_GetArrayItem(m.last, 1);
    CHECK(cJSON_IsString(e0) && !strcmp(e0->valuestring, "transport_error"));
    CHECK(cJSON_IsString(e1) && !strcmp(e1->valuestring, "node-a"));
    rec_free(&m);
    rec_free(&r);
    free(pa);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

static void test_node_loss_fires_transport_error(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "s3cret", NULL, 2);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), "s3cret", NULL, 2);
    char *pa = aemp_port(a);
    struct rec r = {0}, m = {0}, mn = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &r);
    aemp_snd(b, pa, json("[1]"));
    CHECK(run_until(base, &r.calls, 1, 5));
    aemp_mon(b, pa, rec_mon, &m, NULL);
    aemp_mon(b, "node-a", rec_mon, &mn, NULL); /* a bare node ID */
    run_until(base, NULL, 0, 0.05);
    aemp_node_free(a); /* the node goes away: its sockets close */
    CHECK(run_until(base, &m.calls, 1, 5));
    CHECK(run_until(base, &mn.calls, 1, 5));
    CHECK(cJSON_IsString(cJSON_GetArrayItem(m.last, 0)) &&
          !strcmp(cJSON_GetArrayItem(m.last, 0)->valuestring, "transport_error"));
    CHECK(!aemp_node_is_up(b, "node-a"));
    rec_free(&r);
    rec_free(&m);
    rec_free(&mn);
    free(pa);
    aemp_node_free(b);
    event_base_free(base);
}

static void test_tls_with_generated_certificates(void)
{
    char *pem = NULL, *other = NULL, err[256];
    CHECK_INT(certgen_selfsigned("aemp-test", &pem, err, sizeof err), 0);
    CHECK_INT(certgen_selfsigned("aemp-other", &other, err, sizeof err), 0);
    struct event_base *base = event_base_new();
    /* No secret at all: only TLS can authenticate. */
    aemp_node *a = mknode(base, "node-a", 1, NULL, NULL, pem, 2);
    aemp_node *b = mknode(base, "node-b", 0, addr_of(a), NULL, pem, 2);
    aemp_node *c = mknode(base, "node-c", 0, addr_of(a), NULL, other, 1);
    char *pa = aemp_port(a);
    struct rec r = {0}, mc = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &r);
    aemp_snd(b, pa, json("[\"over\",\"tls\"]"));
    CHECK(run_until(base, &r.calls, 1, 5));
    CHECK(json_is(r.last, "[\"over\",\"tls\"]"));
    /* c has another certificate: refused, its monitor fires */
    aemp_mon(c, pa, rec_mon, &mc, NULL);
    aemp_snd(c, pa, json("[\"intruder\"]"));
    CHECK(run_until(base, &mc.calls, 1, 5));
    CHECK_INT(r.calls, 1);
    CHECK(!aemp_node_is_up(c, "node-a"));
    rec_free(&r);
    rec_free(&mc);
    free(pa);
    aemp_node_free(c);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
    free(pem);
    free(other);
}

static void test_no_secret_no_cert_refuses_to_start(void)
{
    cJSON *cfg = json("{\"nodeid\":\"lonely\",\"binds\":[\"127.0.0.1:0\"]}");
    aemp_node *n = aemp_node_new(NULL);
    char err[256] = "";
    CHECK_INT(aemp_configure_effective(n, cfg, err, sizeof err), AEMP_EAUTH);
    CHECK(strstr(err, "gensecret") != NULL);
    aemp_node_free(n);
    cJSON_Delete(cfg);
}

/* Short-lived listener-less nodes (what `aemp snd` from cron makes) are
 * forgotten once gone: the table of known nodes does not grow for good. */
static void test_gone_anonymous_nodes_are_forgotten(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "node-a", 1, NULL, "s3cret", NULL, 2);
    char *pa = aemp_port(a);
    struct rec r = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &r);
    char seed[128];
    snprintf(seed, sizeof seed, "%s", addr_of(a));
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "anon/short%d", i);
        aemp_node *b = mknode(base, id, 0, seed, "s3cret", NULL, 2);
        aemp_snd(b, pa, json("[\"hi\"]"));
        CHECK(run_until(base, &r.calls, i + 1, 5));
        aemp_node_free(b);
    }
    run_until(base, NULL, 0, 0.3);
    cJSON *known = aemp_known_nodes(a);
    CHECK(json_is(known, "[\"node-a\"]"));
    cJSON_Delete(known);
    rec_free(&r);
    free(pa);
    aemp_node_free(a);
    event_base_free(base);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d))
        n++;
    if (d) closedir(d);
    return n;
}

static void up_then_stop(aemp_node *node, const char *nodeid, int up, const cJSON *reason, void *ud)
{
    if (!up) return;
    (*(int *)ud)++;
    aemp_node_stop(node);
}

/* A node on its own event_base freed right after a peer came up, when that
 * peer's first message arrived together with its auth line (what `aemp cal`
 * does when its answer and a new connection come in one pass of the loop):
 * the connection's socket is closed and nothing leaks. libevent holds the
 * bufferevent while the read of what came after the auth line is deferred;
 * freeing the base dropped that callback with the reference (the socket
 * stayed open, and LeakSanitizer failed `aemp cal` under load). Each side
 * runs until it has nothing left to do, so B reads A's greeting and auth
 * together and sends its auth, then its queued message, in one write. */
static void test_node_freed_right_after_up_closes_its_sockets(void)
{
    struct event_base *bb = event_base_new();
    for (int i = 0; i < 3; i++) {
        int before = open_fds();
        aemp_node *a = mknode(NULL, "fr-a", 1, NULL, "s3cret", NULL, 5);
        int up = 0;
        aemp_mon_nodes(a, up_then_stop, &up, NULL);
        char seed[128];
        snprintf(seed, sizeof seed, "%s", addr_of(a));
        aemp_node *b = mknode(bb, "fr-b", 0, seed, "s3cret", NULL, 5);
        cJSON *msg = json("[\"hi\"]");
        aemp_snd(b, "fr-a#nobody", msg);
        double end = now() + 10;
        while (!up && now() < end) {
            for (int k = 0; k < 5; k++) {
                event_base_loop(bb, EVLOOP_NONBLOCK);
                usleep(2000);
            }
            for (int k = 0; k < 5 && !up; k++) {
                event_base_loop(aemp_node_base(a), EVLOOP_NONBLOCK);
                usleep(2000);
            }
        }
        CHECK_INT(up, 1);
        aemp_node_free(a);
        aemp_node_free(b);
        run_until(bb, NULL, 0, 0.05);
        CHECK_INT(open_fds(), before);
    }
    event_base_free(bb);
}

T_MAIN(T(test_snd_mon_kil_spawn_between_two_nodes), T(test_cal_node_port_across_nodes),
       T(test_large_messages_exact), T(test_many_messages_in_order),
       T(test_wrong_secret_refused_and_monitors_fire), T(test_node_loss_fires_transport_error), T(test_tls_with_generated_certificates),
       T(test_no_secret_no_cert_refuses_to_start), T(test_gone_anonymous_nodes_are_forgotten),
       T(test_node_freed_right_after_up_closes_its_sockets))
