/* Interop with the real AnyEvent::MP 1.30: the wire transcripts recorded in
 * tests/vectors/transcripts/ (see tests/vectors/README.md).
 *
 * 1. Every recorded byte stream is split into greeting lines, auth line and
 *    JSON texts; our greeting parser, auth check and framing reader (in
 *    several chunkings) must agree with what the Perl nodes sent and
 *    accepted.
 * 2. A real node of ours runs in a forked child; this process plays node A
 *    over a raw blocking socket, does the handshake by hand and replays the
 *    node-port requests of handshake_node_requests, checking that the
 *    replies have the shape of B's recorded replies. */
#include "aemp.h"
#include "framing.h"
#include "handshake.h"
#include "t.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#define SECRET "interop-secret-aemp-1.30"

static const char *accept_list[] = {"tls_md6_64_256", "hmac_md6_64_256", "tls_anon",
                                    "cleartext"};

/* ------------------------------------------------------------ helpers */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (buf && fread(buf, 1, n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

static cJSON *load_json(const char *rel)
{
    const char *dir = getenv("AEMP_VECTORS");
    if (!dir || !*dir) dir = "tests/vectors";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *text = slurp(path);
    if (!text) {
        fprintf(stderr, "# cannot read %s\n", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    if (!j) fprintf(stderr, "# %s is not JSON\n", path);
    free(text);
    return j;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode hex into a new buffer; *len gets the byte count. NULL if invalid. */
static unsigned char *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2) return NULL;
    unsigned char *out = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(h << 4 | l);
    }
    *len = n / 2;
    return out;
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *strarray(const char **v, int n)
{
    return cJSON_CreateStringArray(v, n);
}

/* "G1\nG2\n" as a new string. */
static char *lines2(const char *g1, const char *g2)
{
    size_t n = strlen(g1) + strlen(g2) + 3;
    char *s = malloc(n);
    snprintf(s, n, "%s\n%s\n", g1, g2);
    return s;
}

static char *print(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : strdup("(null)");
}

/* --------------------------------------------- part 1: stream parsing */

struct collect {
    cJSON *list;
};

static int collect_cb(void *ud, cJSON *msg)
{
    struct collect *c = ud;
    cJSON_AddItemToArray(c->list, msg);
    return 0;
}

/* Take one LF-terminated line from buf[*pos..len) into a new string. */
static char *take_line(const unsigned char *buf, size_t len, size_t *pos)
{
    for (size_t i = *pos; i < len; i++) {
        if (buf[i] == '\n') {
            size_t n = i - *pos;
            char *s = malloc(n + 1);
            memcpy(s, buf + *pos, n);
            s[n] = 0;
            *pos = i + 1;
            return s;
        }
    }
    return NULL;
}

/* The MSG entries of `decoded` for direction `dir`, parsed, minus the
 * keepalive `[]` (which our reader consumes); *keepalives counts those. */
static cJSON *expected_msgs(const cJSON *decoded, const char *dir, int *keepalives)
{
    cJSON *out = cJSON_CreateArray();
    *keepalives = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, decoded)
    {
        const char *d = str_of(e, "dir"), *k = str_of(e, "kind"), *t = str_of(e, "text");
        if (!d || !k || !t || strcmp(d, dir) || strcmp(k, "MSG")) continue;
        cJSON *m = cJSON_Parse(t);
        CHECK(m != NULL);
        if (!m) continue;
        if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 0) {
            ++*keepalives;
            cJSON_Delete(m);
            continue;
        }
        cJSON_AddItemToArray(out, m);
    }
    return out;
}

/* Feed `data` to a fresh reader in chunks of `chunk` bytes (0 = whole) and
 * compare the messages with `want`. */
static void check_framing(const char *what, const unsigned char *data, size_t len,
                          const cJSON *want, size_t chunk)
{
    struct framing_reader *r = framing_reader_new(1 << 20);
    CHECK(r != NULL);
    if (!r) return;
    struct collect c = {cJSON_CreateArray()};
    char err[256] = "";
    size_t step = chunk ? chunk : (len ? len : 1);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        rc = framing_reader_feed(r, (const char *)data + off, n, collect_cb, &c, err, sizeof err);
    }
    if (rc) fprintf(stderr, "# %s chunk %zu: reader error %d: %s\n", what, chunk, rc, err);
    CHECK_INT(rc, 0);
    CHECK_INT(framing_reader_pending(r), 0);
    int ng = cJSON_GetArraySize(c.list), nw = cJSON_GetArraySize(want);
    if (ng != nw) fprintf(stderr, "# %s chunk %zu: %d messages, want %d\n", what, chunk, ng, nw);
    CHECK_INT(ng, nw);
    for (int i = 0; i < ng && i < nw; i++) {
        const cJSON *g = cJSON_GetArrayItem(c.list, i), *w = cJSON_GetArrayItem(want, i);
        if (!cJSON_Compare(g, w, 1)) {
            char *gs = print(g), *ws = print(w);
            fprintf(stderr, "# %s chunk %zu msg %d: got %s want %s\n", what, chunk, i, gs, ws);
            free(gs);
            free(ws);
            CHECK(0);
        }
    }
    cJSON_Delete(c.list);
    framing_reader_free(r);
}

static void check_greeting(const char *what, const char *g1, long want_tls)
{
    struct hs_greeting g;
    memset(&g, 0, sizeof g);
    char err[256] = "";
    int rc = hs_parse_greeting(g1, strlen(g1), &g, err, sizeof err);
    if (rc) fprintf(stderr, "# %s: greeting \"%s\": %s\n", what, g1, err);
    CHECK_INT(rc, 0);
    if (rc) return;
    CHECK_STR(g.proto, "aemp");
    CHECK_INT(g.version, 1);
    /* the node ID is the third field, verbatim */
    const char *p = strchr(g1, ';');
    p = p ? strchr(p + 1, ';') : NULL;
    const char *q = p ? strchr(p + 1, ';') : NULL;
    if (p && q) {
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)(q - p - 1), p + 1);
        CHECK_STR(g.nodeid, id);
    }
    CHECK(g.nframing >= 1);
    int has_json = 0;
    for (size_t i = 0; i < g.nframing; i++) has_json |= !strcmp(g.framing[i], "json");
    CHECK(has_json);
    CHECK_INT(g.tls, want_tls);
    hs_greeting_clear(&g);
}

/* Check the auth line `line` as its receiver would: L = receiver's lines,
 * R = sender's. Returns hs_check_auth's result. */
static int verify_auth(const char *line, const char *secret, const char *L, const char *R,
                       int use_tls, char *err, size_t errlen)
{
    struct hs_auth a;
    memset(&a, 0, sizeof a);
    int rc = hs_parse_auth(line, strlen(line), &a, err, errlen);
    if (rc) return rc;
    cJSON *acc = strarray(accept_list, 4);
    const char *fr[] = {"json"};
    cJSON *fra = strarray(fr, 1);
    int untrusted = 0;
    rc = hs_check_auth(&a, acc, fra, use_tls, secret, L, R, &untrusted, err, errlen);
    cJSON_Delete(acc);
    cJSON_Delete(fra);
    hs_auth_clear(&a);
    return rc;
}

/* One direction of a cleartext connection: returns the stream. */
static void check_direction(const char *what, const cJSON *conn, const char *hexkey,
                            const cJSON *hs_side, const char *dir)
{
    size_t len = 0;
    const char *hex = str_of(conn, hexkey);
    CHECK(hex != NULL);
    if (!hex) return;
    unsigned char *buf = unhex(hex, &len);
    CHECK(buf != NULL);
    if (!buf) return;
    size_t pos = 0;
    char *g1 = take_line(buf, len, &pos);
    char *g2 = g1 ? take_line(buf, len, &pos) : NULL;
    char *au = g2 ? take_line(buf, len, &pos) : NULL;
    CHECK(au != NULL);
    CHECK_STR(g1, str_of(hs_side, "G1"));
    CHECK_STR(g2, str_of(hs_side, "G2"));
    CHECK_STR(au, str_of(hs_side, "AUTH"));
    if (au) {
        int ka = 0;
        cJSON *want = expected_msgs(cJSON_GetObjectItemCaseSensitive(conn, "decoded"), dir, &ka);
        size_t chunks[] = {0, 1, 7, 4096};
        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
            check_framing(what, buf + pos, len - pos, want, chunks[i]);
        fprintf(stderr, "# %s %s: %d messages, %d keepalives\n", what, dir,
                cJSON_GetArraySize(want), ka);
        cJSON_Delete(want);
    }
    free(g1);
    free(g2);
    free(au);
    free(buf);
}

static int n_connections_checked;

static void check_cleartext_transcript(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "transcripts/%s.json", name);
    cJSON *t = load_json(rel);
    CHECK(t != NULL);
    if (!t) return;
    const char *secret = str_of(t, "secret");
    CHECK_STR(secret, SECRET);
    const char *a_secret = str_of(t, "a_secret"); /* auth_failure only */
    const cJSON *conns = cJSON_GetObjectItemCaseSensitive(t, "connections");
    CHECK(cJSON_GetArraySize(conns) >= 1);
    const cJSON *conn;
    int ci = 0;
    cJSON_ArrayForEach(conn, conns)
    {
        ci++;
        char what[300];
        snprintf(what, sizeof what, "%s conn %d", name, ci);
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(conn, "handshake");
        const cJSON *ha = cJSON_GetObjectItemCaseSensitive(hs, "a");
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(hs, "b");
        const char *ag1 = str_of(ha, "G1"), *ag2 = str_of(ha, "G2"), *aau = str_of(ha, "AUTH");
        const char *bg1 = str_of(hb, "G1"), *bg2 = str_of(hb, "G2"), *bau = str_of(hb, "AUTH");
        CHECK(ag1 && ag2 && aau && bg1 && bg2 && bau);
        if (!(ag1 && ag2 && aau && bg1 && bg2 && bau)) continue;

        check_greeting(what, ag1, 0);
        check_greeting(what, bg1, 0);

        char *LA = lines2(ag1, ag2), *LB = lines2(bg1, bg2);
        char err[256] = "";
        int rc_a = verify_auth(aau, secret, LB, LA, 0, err, sizeof err); /* B checks A */
        if (a_secret) {
            if (rc_a == 0) fprintf(stderr, "# %s: A's token (other secret) accepted\n", what);
            CHECK(rc_a != 0);
            /* ... but it is A's correct token for A's own secret */
            CHECK_INT(verify_auth(aau, a_secret, LB, LA, 0, err, sizeof err), 0);
            /* and A, holding the other secret, refuses B's */
            CHECK(verify_auth(bau, a_secret, LA, LB, 0, err, sizeof err) != 0);
        } else {
            if (rc_a) fprintf(stderr, "# %s: A's auth refused: %s\n", what, err);
            CHECK_INT(rc_a, 0);
        }
        int rc_b = verify_auth(bau, secret, LA, LB, 0, err, sizeof err); /* A checks B */
        if (rc_b) fprintf(stderr, "# %s: B's auth refused: %s\n", what, err);
        CHECK_INT(rc_b, 0);
        /* a token must not verify in the wrong orientation */
        if (strcmp(ag2, bg2)) CHECK(verify_auth(bau, secret, LB, LA, 0, err, sizeof err) != 0);

        check_direction(what, conn, "a_to_b_hex", ha, ">");
        check_direction(what, conn, "b_to_a_hex", hb, "<");
        free(LA);
        free(LB);
        n_connections_checked++;
    }
    cJSON_Delete(t);
}

static void test_handshake_node_requests_stream(void)
{
    check_cleartext_transcript("handshake_node_requests");
}
static void test_aemp_snd_stream(void)
{
    check_cleartext_transcript("aemp_snd");
}
static void test_aemp_cal_stream(void)
{
    check_cleartext_transcript("aemp_cal");
}
static void test_auth_failure_refused(void)
{
    check_cleartext_transcript("auth_failure");
}
static void test_three_nodes_find_stream(void)
{
    check_cleartext_transcript("three_nodes_find");
}
static void test_keepalive_stream(void)
{
    check_cleartext_transcript("keepalive");
}
static void test_raw_client_stream(void)
{
    check_cleartext_transcript("raw_client");
}

static int result_in(const cJSON *calls, const char *tok)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, calls)
    {
        const char *r = str_of(c, "result");
        if (r && !strcmp(r, tok)) return 1;
    }
    return 0;
}

static void test_tls_handshake_greetings_and_tokens(void)
{
    cJSON *t = load_json("transcripts/tls_handshake.json");
    CHECK(t != NULL);
    if (!t) return;
    const cJSON *conn = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "connections"), 0);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(conn, "handshake");
    const cJSON *ha = cJSON_GetObjectItemCaseSensitive(hs, "a");
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(hs, "b");
    const char *ag1 = str_of(ha, "G1"), *ag2 = str_of(ha, "G2");
    const char *bg1 = str_of(hb, "G1"), *bg2 = str_of(hb, "G2");
    CHECK(ag1 && ag2 && bg1 && bg2);
    if (!(ag1 && ag2 && bg1 && bg2)) {
        cJSON_Delete(t);
        return;
    }
    check_greeting("tls A", ag1, 1);
    check_greeting("tls B", bg1, 1);
    CHECK(strstr(ag1, ";tls=1.0") != NULL);
    CHECK(strstr(bg1, ";tls=1.0") != NULL);

    /* both streams: the two greeting lines in clear, then a TLS record */
    const char *keys[] = {"a_to_b_hex", "b_to_a_hex"};
    const char *g1s[] = {ag1, bg1}, *g2s[] = {ag2, bg2};
    for (int i = 0; i < 2; i++) {
        size_t len = 0, pos = 0;
        unsigned char *buf = unhex(str_of(conn, keys[i]) ? str_of(conn, keys[i]) : "", &len);
        CHECK(buf != NULL);
        if (!buf) continue;
        char *l1 = take_line(buf, len, &pos);
        char *l2 = l1 ? take_line(buf, len, &pos) : NULL;
        CHECK_STR(l1, g1s[i]);
        CHECK_STR(l2, g2s[i]);
        CHECK(pos < len && buf[pos] == 0x16); /* TLS handshake record */
        free(l1);
        free(l2);
        free(buf);
    }

    /* with both having certificates, both use TLS; A's nonce decides who
     * is the TLS client (the recording says A sent the ClientHello) */
    struct hs_greeting ga, gb;
    char err[256];
    memset(&ga, 0, sizeof ga);
    memset(&gb, 0, sizeof gb);
    CHECK_INT(hs_parse_greeting(ag1, strlen(ag1), &ga, err, sizeof err), 0);
    CHECK_INT(hs_parse_greeting(bg1, strlen(bg1), &gb, err, sizeof err), 0);
    CHECK_INT(hs_use_tls(&gb, 1), 1);
    CHECK_INT(hs_use_tls(&ga, 1), 1);
    CHECK_INT(hs_use_tls(&gb, 0), 0);
    const cJSON *tlsinfo = cJSON_GetObjectItemCaseSensitive(t, "tls");
    const char *client = str_of(tlsinfo, "clienthello_from");
    if (client) CHECK_INT(hs_tls_is_client(ag2, bg2), !strcmp(client, "A"));
    hs_greeting_clear(&ga);
    hs_greeting_clear(&gb);

    /* tokens: the nodes' logged md6 computations */
    char *LA = lines2(ag1, ag2), *LB = lines2(bg1, bg2);
    char tokA[80] = "", tokB[80] = "";
    CHECK_INT(hs_token("tls_md6_64_256", NULL, LA, LB, tokA, sizeof tokA), 0);
    CHECK_INT(hs_token("tls_md6_64_256", NULL, LB, LA, tokB, sizeof tokB), 0);
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(t, "live_auth_calls");
    const cJSON *callsA = cJSON_GetObjectItemCaseSensitive(live, "interop-a-tls");
    const cJSON *callsB = cJSON_GetObjectItemCaseSensitive(live, "interop-b");
    CHECK(cJSON_GetArraySize(callsA) >= 2);
    CHECK(cJSON_GetArraySize(callsB) >= 2);
    CHECK(result_in(callsA, tokA)); /* A computed its own token */
    CHECK(result_in(callsA, tokB)); /* and the one it expected from B */
    CHECK(result_in(callsB, tokB));
    CHECK(result_in(callsB, tokA));

    /* the captured auth lines (tls_md6.json) verify under TLS, not without */
    cJSON *tv = load_json("tls_md6.json");
    const cJSON *cap;
    int found = 0;
    cJSON_ArrayForEach(cap, cJSON_GetObjectItemCaseSensitive(tv, "captured"))
    {
        const cJSON *lg = cJSON_GetObjectItemCaseSensitive(cap, "local_greeting");
        const cJSON *l0 = cJSON_GetArrayItem(lg, 0);
        if (!cJSON_IsString(l0) || strcmp(l0->valuestring, ag1)) continue;
        found++;
        const char *la = str_of(cap, "lauth_line"), *ra = str_of(cap, "rauth_line");
        CHECK(la && ra);
        if (!la || !ra) continue;
        char line[200];
        snprintf(line, sizeof line, "tls_md6_64_256;%s;json", tokA);
        CHECK_STR(la, line);
        CHECK_INT(verify_auth(ra, NULL, LA, LB, 1, err, sizeof err), 0); /* A checks B */
        CHECK_INT(verify_auth(la, NULL, LB, LA, 1, err, sizeof err), 0); /* B checks A */
        CHECK(verify_auth(ra, NULL, LA, LB, 0, err, sizeof err) != 0);   /* not in clear */
    }
    CHECK_INT(found, 1);
    cJSON_Delete(tv);
    free(LA);
    free(LB);
    cJSON_Delete(t);
}

/* ----------------------------------- part 2: replay against our node */

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

/* The child: our node "interop-b" listening on 127.0.0.1:0; writes
 * "ADDR VICTIMPORT\n" to `fd`, then runs until killed. */
static void run_node(int fd)
{
    alarm(60);
    struct event_base *base = event_base_new();
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "nodeid", "interop-b");
    cJSON *binds = cJSON_AddArrayToObject(cfg, "binds");
    cJSON_AddItemToArray(binds, cJSON_CreateString("127.0.0.1:0"));
    cJSON_AddArrayToObject(cfg, "seeds");
    cJSON_AddStringToObject(cfg, "secret", SECRET);
    const char *offer[] = {"tls_md6_64_256", "hmac_md6_64_256"};
    const char *framing[] = {"json"};
    cJSON_AddItemToObject(cfg, "auth_offer", cJSON_CreateStringArray(offer, 2));
    cJSON_AddItemToObject(cfg, "auth_accept", cJSON_CreateStringArray(accept_list, 4));
    cJSON_AddItemToObject(cfg, "framing_format", cJSON_CreateStringArray(framing, 1));
    aemp_node *n = aemp_node_new(base);
    char err[256] = "";
    if (aemp_configure_effective(n, cfg, err, sizeof err)) {
        fprintf(stderr, "# child: configure: %s\n", err);
        _exit(2);
    }
    cJSON_Delete(cfg);
    /* a plain port to kil remotely (the recording spawned Interop::victim_init) */
    char *victim = aemp_port(n);
    cJSON *a = aemp_listen_addrs(n);
    const cJSON *a0 = cJSON_GetArrayItem(a, 0);
    dprintf(fd, "%s %s\n", cJSON_IsString(a0) ? a0->valuestring : "-", victim ? victim : "-");
    close(fd);
    cJSON_Delete(a);
    event_base_dispatch(base);
    _exit(0);
}

struct peer {
    int fd;
    struct framing_reader *r;
    cJSON *queue; /* parsed, not yet taken */
    int eof;
    int proto_error;
};

static int send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_msg(struct peer *p, const char *json)
{
    return send_all(p->fd, json, strlen(json));
}

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Read one LF-terminated line byte by byte (so nothing after it is read). */
static char *read_line(int fd, double seconds)
{
    double deadline = now() + seconds;
    size_t cap = 256, n = 0;
    char *s = malloc(cap);
    for (;;) {
        int left = (int)((deadline - now()) * 1000);
        if (left <= 0) break;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, left) <= 0) continue;
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r <= 0) break;
        if (c == '\n') {
            s[n] = 0;
            return s;
        }
        if (n + 2 > cap) s = realloc(s, cap *= 2);
        s[n++] = c;
        if (n > HS_MAX_LINE) break;
    }
    free(s);
    return NULL;
}

static int queue_cb(void *ud, cJSON *msg)
{
    struct peer *p = ud;
    cJSON_AddItemToArray(p->queue, msg);
    return 0;
}

/* Read more from the socket into the queue; 0 on timeout, -1 on EOF/error. */
static int pump(struct peer *p, int ms)
{
    if (p->eof) return -1;
    struct pollfd pf = {p->fd, POLLIN, 0};
    int pr = poll(&pf, 1, ms);
    if (pr <= 0) return 0;
    char buf[4096];
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n <= 0) {
        p->eof = 1;
        return -1;
    }
    char err[256] = "";
    if (framing_reader_feed(p->r, buf, (size_t)n, queue_cb, p, err, sizeof err) < 0) {
        fprintf(stderr, "# framing error from node: %s\n", err);
        p->proto_error = 1;
        p->eof = 1;
        return -1;
    }
    return 1;
}

/* The next message to port name `port` (taken), skipping others (Global
 * traffic etc.); NULL after `seconds`, or when the connection ends. */
static cJSON *wait_for(struct peer *p, const char *port, double seconds)
{
    double deadline = now() + seconds;
    for (;;) {
        while (p->queue->child) {
            cJSON *m = cJSON_DetachItemViaPointer(p->queue, p->queue->child);
            const cJSON *first = cJSON_GetArrayItem(m, 0);
            if (cJSON_IsString(first) && !strcmp(first->valuestring, port)) return m;
            char *s = print(m);
            fprintf(stderr, "# (skipped from node: %s)\n", s);
            free(s);
            cJSON_Delete(m);
        }
        int left = (int)((deadline - now()) * 1000);
        if (left <= 0) return NULL;
        if (pump(p, left) < 0) return NULL;
    }
}

/* Compare with cJSON_Compare, log on mismatch. */
static int same(const cJSON *got, const char *want_text, const char *what)
{
    cJSON *w = cJSON_Parse(want_text);
    int eq = got && w && cJSON_Compare(got, w, 1);
    if (!eq) {
        char *g = print(got);
        fprintf(stderr, "# DIFF %s: recorded Perl shape %s, ours %s\n", what, want_text, g);
        free(g);
    }
    cJSON_Delete(w);
    return eq;
}

/* The recorded A->B message for `tag` in handshake_node_requests, to make
 * sure we replay what A really sent. */
static const cJSON *recorded(const cJSON *msgs, const char *port, const char *tag)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *p0 = cJSON_GetArrayItem(m, 0), *p1 = cJSON_GetArrayItem(m, 1);
        if (cJSON_IsString(p0) && !strcmp(p0->valuestring, port) && cJSON_IsString(p1) &&
            !strcmp(p1->valuestring, tag))
            return m;
    }
    return NULL;
}

static void test_replay_node_requests_against_our_node(void)
{
    cJSON *t = load_json("transcripts/handshake_node_requests.json");
    CHECK(t != NULL);
    if (!t) return;
    const cJSON *conn = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "connections"), 0);
    int ka;
    cJSON *a_msgs = expected_msgs(cJSON_GetObjectItemCaseSensitive(conn, "decoded"), ">", &ka);
    cJSON *b_msgs = expected_msgs(cJSON_GetObjectItemCaseSensitive(conn, "decoded"), "<", &ka);
    /* the requests we replay are the ones A sent (reply ports rewritten) */
    const char *tags[] = {"info", "known_nodes", "up_nodes", "time", "snd",
                          "snd_multiple", "mon1", "eval", "No::Such::function", "devnull",
                          "kil"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        if (!recorded(a_msgs, "", tags[i])) fprintf(stderr, "# not recorded: %s\n", tags[i]);
        CHECK(recorded(a_msgs, "", tags[i]) != NULL);
    }

    int pfd[2];
    CHECK_INT(pipe(pfd), 0);
    fflush(NULL);
    child = fork();
    CHECK(child >= 0);
    if (child < 0) goto out;
    if (child == 0) {
        close(pfd[0]);
        run_node(pfd[1]);
    }
    close(pfd[1]);
    char info[512] = "";
    {
        size_t n = 0;
        struct pollfd pf = {pfd[0], POLLIN, 0};
        double deadline = now() + 10;
        while (n < sizeof info - 1 && !strchr(info, '\n') && now() < deadline) {
            if (poll(&pf, 1, 1000) <= 0) continue;
            ssize_t r = read(pfd[0], info + n, sizeof info - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            info[n] = 0;
        }
        close(pfd[0]);
    }
    char addr[256] = "", victim[256] = "";
    CHECK_INT(sscanf(info, "%255s %255s", addr, victim), 2);
    char *colon = strrchr(addr, ':');
    CHECK(colon != NULL);
    if (!colon) goto out;
    *colon = 0;
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(colon + 1));
    CHECK_INT(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int crc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    CHECK_INT(crc, 0);
    if (crc) {
        close(fd);
        goto out;
    }

    /* ---- handshake as A */
    cJSON *acc = cJSON_CreateStringArray(accept_list, 4);
    const char *fr[] = {"json"};
    cJSON *fra = cJSON_CreateStringArray(fr, 1);
    char *g1 = hs_build_greeting("interop-a", acc, fra, "127.0.0.1:1", 0);
    char nonce[HS_NONCE_LEN + 1];
    hs_nonce(nonce);
    char *L = lines2(g1, nonce);
    CHECK_INT(send_all(fd, L, strlen(L)), 0);
    char *rg1 = read_line(fd, 5), *rg2 = rg1 ? read_line(fd, 5) : NULL;
    CHECK(rg1 && rg2);
    char *rau = rg2 ? read_line(fd, 5) : NULL;
    CHECK(rau != NULL);
    struct peer p = {fd, framing_reader_new(1 << 20), cJSON_CreateArray(), 0, 0};
    if (!rau) goto hs_done;
    fprintf(stderr, "# node greeting: %s\n# node auth: %s\n", rg1, rau);
    {
        char err[256] = "";
        struct hs_greeting g;
        memset(&g, 0, sizeof g);
        CHECK_INT(hs_parse_greeting(rg1, strlen(rg1), &g, err, sizeof err), 0);
        CHECK_STR(g.nodeid, "interop-b");
        CHECK_INT(g.tls, 0);
        hs_greeting_clear(&g);
        /* the recorded B line 1 has the same fields up to the node ID */
        CHECK(!strncmp(rg1, "aemp;1;interop-b;", 17));
        CHECK_INT(strlen(rg2), HS_NONCE_LEN);
        char *R = lines2(rg1, rg2);
        char tok[80] = "";
        CHECK_INT(hs_token("hmac_md6_64_256", SECRET, L, R, tok, sizeof tok), 0);
        char line[200];
        snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
        CHECK_INT(send_all(fd, line, strlen(line)), 0);
        int rc = verify_auth(rau, SECRET, L, R, 0, err, sizeof err);
        if (rc) fprintf(stderr, "# node's auth refused: %s\n", err);
        CHECK_INT(rc, 0);
        CHECK(!strncmp(rau, "hmac_md6_64_256;", 16)); /* as B chose in the recording */
        free(R);
    }

    /* ---- node-port requests, as A sent them (reply ports rewritten) */
    {
        cJSON *m;
        /* info / known_nodes / up_nodes / time: recorded replies
         * ["..n","info-tag","interop-b"], ["..n","known-tag","interop-b","interop-a","interop-b"],
         * ["..n","up-tag","interop-a"], ["..n","time-tag",NUMBER] */
        send_msg(&p, "[\"\",\"info\",\"interop-a#r.n\",\"info-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(same(m, "[\"r.n\",\"info-tag\",\"interop-b\"]", "info"));
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"known_nodes\",\"interop-a#r.n\",\"known-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(m != NULL);
        if (m) {
            int n = cJSON_GetArraySize(m), has_a = 0, has_b = 0, bad = 0;
            CHECK(n >= 3);
            CHECK(cJSON_IsString(cJSON_GetArrayItem(m, 1)) &&
                  !strcmp(cJSON_GetArrayItem(m, 1)->valuestring, "known-tag"));
            for (int i = 2; i < n; i++) {
                const cJSON *e = cJSON_GetArrayItem(m, i);
                if (!cJSON_IsString(e)) bad++;
                else if (!strcmp(e->valuestring, "interop-a")) has_a++;
                else if (!strcmp(e->valuestring, "interop-b")) has_b++;
                else bad++;
            }
            CHECK_INT(bad, 0);
            CHECK(has_a >= 1);
            CHECK(has_b >= 1);
            /* Perl lists the replying node twice; report when we do not */
            same(m, "[\"r.n\",\"known-tag\",\"interop-b\",\"interop-a\",\"interop-b\"]",
                 "known_nodes (informational, not a failure)");
        }
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"up_nodes\",\"interop-a#r.n\",\"up-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(same(m, "[\"r.n\",\"up-tag\",\"interop-a\"]", "up_nodes"));
        cJSON_Delete(m);

        send_msg(&p, "[\"\",\"time\",\"interop-a#r.n\",\"time-tag\"]");
        m = wait_for(&p, "r.n", 5);
        CHECK(m && cJSON_GetArraySize(m) == 3);
        if (m) {
            CHECK(cJSON_IsString(cJSON_GetArrayItem(m, 1)) &&
                  !strcmp(cJSON_GetArrayItem(m, 1)->valuestring, "time-tag"));
            const cJSON *tm = cJSON_GetArrayItem(m, 2);
            CHECK(cJSON_IsNumber(tm));
            if (cJSON_IsNumber(tm)) CHECK(tm->valuedouble > now() - 60 && tm->valuedouble < now() + 60);
        }
        cJSON_Delete(m);

        /* snd relay: recorded ["..l","message sent successfully"] */
        send_msg(&p, "[\"\",\"snd\",\"interop-a#r.l\",\"message sent successfully\"]");
        m = wait_for(&p, "r.l", 5);
        CHECK(same(m, "[\"r.l\",\"message sent successfully\"]", "snd relay"));
        cJSON_Delete(m);

        /* snd_multiple: recorded ["..m","one"] then ["..m","two",2] */
        send_msg(&p, "[\"\",\"snd_multiple\",[\"interop-a#r.m\",\"one\"],[\"interop-a#r.m\",\"two\",2]]");
        m = wait_for(&p, "r.m", 5);
        CHECK(same(m, "[\"r.m\",\"one\"]", "snd_multiple 1"));
        cJSON_Delete(m);
        m = wait_for(&p, "r.m", 5);
        CHECK(same(m, "[\"r.m\",\"two\",2]", "snd_multiple 2"));
        cJSON_Delete(m);

        /* mon1 of a nonexistent port: kil0 with the 3-element reason */
        send_msg(&p, "[\"\",\"mon1\",\"no.such.port\"]");
        m = wait_for(&p, "", 5);
        CHECK(same(m,
                   "[\"\",\"kil0\",\"no.such.port\",\"no_such_port\",\"cannot monitor nonexistent "
                   "port\",\"interop-b#no.such.port\"]",
                   "mon1 nonexistent"));
        cJSON_Delete(m);

        /* eval: Perl replies ["..o","",42]; we reply with an error string */
        send_msg(&p, "[\"\",\"eval\",\"6*7\",\"interop-a#r.o\"]");
        m = wait_for(&p, "r.o", 5);
        CHECK(m != NULL);
        if (m) {
            fprintf(stderr, "# eval: recorded Perl [\"r.o\",\"\",42], ours ");
            char *s = print(m);
            fprintf(stderr, "%s\n", s);
            free(s);
            const cJSON *e1 = cJSON_GetArrayItem(m, 1);
            CHECK(cJSON_IsString(e1));
            if (cJSON_IsString(e1)) CHECK(strstr(e1->valuestring, "eval is not supported") != NULL);
        }
        cJSON_Delete(m);

        /* unknown function: nothing back, the connection stays open */
        send_msg(&p, "[\"\",\"No::Such::function\",1,2]");
        /* devnull and the empty tag: nothing back either */
        send_msg(&p, "[\"\",\"devnull\",1]");
        send_msg(&p, "[\"\",\"\"]");
        m = wait_for(&p, "r.n", 0.5);
        CHECK(m == NULL);
        cJSON_Delete(m);
        CHECK(!p.eof);
        send_msg(&p, "[\"\",\"info\",\"interop-a#r.after\",\"still-open\"]");
        m = wait_for(&p, "r.after", 5);
        CHECK(same(m, "[\"r.after\",\"still-open\",\"interop-b\"]", "info after unknown function"));
        cJSON_Delete(m);

        /* kil with a reason while monitoring: kil0 with that reason */
        const char *vname = strchr(victim, '#');
        CHECK(vname != NULL);
        if (vname) {
            vname++;
            char buf[600];
            snprintf(buf, sizeof buf, "[\"\",\"mon1\",\"%s\"]", vname);
            send_msg(&p, buf);
            snprintf(buf, sizeof buf, "[\"\",\"kil\",\"%s\",\"killed_by_driver\",42]", vname);
            send_msg(&p, buf);
            m = wait_for(&p, "", 5);
            snprintf(buf, sizeof buf, "[\"\",\"kil0\",\"%s\",\"killed_by_driver\",42]", vname);
            CHECK(same(m, buf, "kil with reason"));
            cJSON_Delete(m);
        }
        /* the recorded B replies that our shapes follow are in the file */
        CHECK(recorded(b_msgs, "", "kil0") != NULL);
        CHECK(!p.proto_error);
    }

hs_done:
    framing_reader_free(p.r);
    cJSON_Delete(p.queue);
    close(fd);
    free(rg1);
    free(rg2);
    free(rau);
    free(L);
    free(g1);
    cJSON_Delete(acc);
    cJSON_Delete(fra);
out:
    kill_child();
    cJSON_Delete(a_msgs);
    cJSON_Delete(b_msgs);
    cJSON_Delete(t);
}

static void test_all_transcripts_covered(void)
{
    /* 7 cleartext transcripts: 1+1+1+4+1+1+2 connections */
    CHECK_INT(n_connections_checked, 11);
}

static void on_alarm(int sig)
{
    (void)sig;
    kill_child();
    static const char msg[] = "# timeout\n";
    if (write(2, msg, sizeof msg - 1)) {}
    _exit(1);
}

static void test_setup(void)
{
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_child);
}

T_MAIN(T(test_setup), T(test_handshake_node_requests_stream), T(test_aemp_snd_stream),
       T(test_aemp_cal_stream), T(test_auth_failure_refused), T(test_three_nodes_find_stream),
       T(test_keepalive_stream), T(test_raw_client_stream),
       T(test_tls_handshake_greetings_and_tokens), T(test_all_transcripts_covered),
       T(test_replay_node_requests_against_our_node))
