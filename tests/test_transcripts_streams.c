/* test_transcripts_streams.c - part 1 of transcripts.h: every recorded byte
 * stream is split and checked by our greeting parser, auth check and
 * framing reader. */
#include "transcripts.h"

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

static void test_all_transcripts_covered(void)
{
    /* 7 cleartext transcripts: 1+1+1+4+1+1+2 connections */
    CHECK_INT(n_connections_checked, 11);
}

T_MAIN(T(test_handshake_node_requests_stream), T(test_aemp_snd_stream), T(test_aemp_cal_stream),
       T(test_auth_failure_refused), T(test_three_nodes_find_stream), T(test_keepalive_stream),
       T(test_raw_client_stream), T(test_tls_handshake_greetings_and_tokens),
       T(test_all_transcripts_covered))
