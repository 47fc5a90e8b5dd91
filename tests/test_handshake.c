/* Tests of the handshake helpers against the vectors made with the real
 * AnyEvent::MP 1.30 (tests/vectors, found via $AEMP_VECTORS): hmac_md6_64_256
 * and tls_md6_64_256 tokens, cleartext, every greeting and auth line of the
 * recorded transcripts, plus tables of malformed greetings, the choice of
 * method and framing, and refused auth lines. Expected values come from the
 * vector files or are written out literally here. */
#include <sodium.h>

#include "aemp.h"
#include "handshake.h"
#include "t.h"

/* Read and parse $AEMP_VECTORS/name (default tests/vectors); NULL (and a
 * failed check) when missing. Caller deletes. */
static cJSON *load(const char *name)
{
    const char *dir = getenv("AEMP_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/vectors", name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "# cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    cJSON *j = cJSON_ParseWithLength(buf, got);
    free(buf);
    CHECK(j != NULL);
    return j;
}

/* The string member `key` of obj, or "" (and a failed check) when absent. */
static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, key);
    CHECK(cJSON_IsString(s));
    return cJSON_IsString(s) ? s->valuestring : "";
}

/* "line1\nline2\n" from a two-element greeting array into out[outlen]. */
static void lines(const cJSON *g, char *out, size_t outlen)
{
    CHECK_INT(cJSON_GetArraySize(g), 2);
    snprintf(out, outlen, "%s\n%s\n", cJSON_GetArrayItem(g, 0)->valuestring,
             cJSON_GetArrayItem(g, 1)->valuestring);
}

/* A JSON array of strings from a comma list literal. Caller deletes. */
static cJSON *list(const char *csv)
{
    cJSON *a = cJSON_CreateArray();
    char *dup = strdup(csv), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(a, cJSON_CreateString(t));
    free(dup);
    return a;
}

#define DEFAULT_ACCEPT "tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext"

/* Check one token vector: lauth from L,R; rauth from R,L; the auth line we
 * would send; and hs_check_auth accepting the peer's line (and refusing it
 * with one digit changed). */
static void check_vector(const cJSON *v, const char *method, int use_tls, const char *secret)
{
    char L[HS_MAX_LINE * 2], R[HS_MAX_LINE * 2], tok[65], line[256];
    lines(cJSON_GetObjectItem(v, "local_greeting"), L, sizeof L);
    lines(cJSON_GetObjectItem(v, "remote_greeting"), R, sizeof R);
    CHECK_INT(hs_token(method, secret, L, R, tok, sizeof tok), 0);
    CHECK_STR(tok, str(v, "lauth"));
    snprintf(line, sizeof line, "%s;%s;json", method, tok);
    CHECK_STR(line, str(v, "lauth_line"));
    CHECK_INT(hs_token(method, secret, R, L, tok, sizeof tok), 0);
    CHECK_STR(tok, str(v, "rauth"));

    cJSON *acc = list(DEFAULT_ACCEPT), *fr = list("json");
    const char *rl = str(v, "rauth_line");
    struct hs_auth a;
    char err[256] = "";
    int untrusted = -1;
    CHECK_INT(hs_parse_auth(rl, strlen(rl), &a, err, sizeof err), 0);
    CHECK_STR(a.method, method);
    CHECK_STR(a.token, str(v, "rauth"));
    CHECK_STR(a.framing, "json");
    CHECK_INT(hs_check_auth(&a, acc, fr, use_tls, secret, L, R, &untrusted, err, sizeof err), 0);
    CHECK_INT(untrusted, 0);
    /* Our own lauth is not what the peer must send. */
    free(a.token);
    a.token = strdup(str(v, "lauth"));
    CHECK_INT(hs_check_auth(&a, acc, fr, use_tls, secret, L, R, &untrusted, err, sizeof err),
              AEMP_EAUTH);
    /* One changed digit. */
    strcpy(a.token, str(v, "rauth"));
    a.token[10] = a.token[10] == '0' ? '1' : '0';
    err[0] = 0;
    CHECK_INT(hs_check_auth(&a, acc, fr, use_tls, secret, L, R, &untrusted, err, sizeof err),
              AEMP_EAUTH);
    CHECK(err[0] != 0);
    /* Truncated token. */
    a.token[63] = 0;
    strncpy(a.token, str(v, "rauth"), 63);
    CHECK_INT(hs_check_auth(&a, acc, fr, use_tls, secret, L, R, &untrusted, err, sizeof err),
              AEMP_EAUTH);
    hs_auth_clear(&a);
    cJSON_Delete(acc);
    cJSON_Delete(fr);
}

/* hmac_md6_64_256: synthetic, captured and POD vectors. */
static void test_hmac_vectors(void)
{
    cJSON *j = load("hmac_md6.json");
    if (!j) return;
    int n = 0;
    const char *sections[] = {"vectors", "captured"};
    for (size_t s = 0; s < 2; s++) {
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(j, sections[s]))
        {
            check_vector(v, "hmac_md6_64_256", 0, str(v, "secret"));
            n++;
        }
    }
    const cJSON *pod = cJSON_GetObjectItem(j, "transport_pod_full_example");
    check_vector(pod, "hmac_md6_64_256", 0, str(pod, "secret"));
    CHECK(n >= 5);
    /* hmac without a secret is impossible. */
    char tok[65];
    CHECK_INT(hs_token("hmac_md6_64_256", NULL, "a\nb\n", "c\nd\n", tok, sizeof tok), AEMP_EAUTH);
    cJSON_Delete(j);
}

/* cleartext: the token is hex of the secret; accepted only when in our
 * accept list. */
static void test_cleartext(void)
{
    cJSON *j = load("hmac_md6.json");
    if (!j) return;
    const cJSON *v;
    int n = 0;
    cJSON *acc = list(DEFAULT_ACCEPT), *acc2 = list("hmac_md6_64_256"), *fr = list("json");
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cleartext"), "vectors"))
    {
        const char *secret = str(v, "secret");
        char tok[256];
        CHECK_INT(hs_token("cleartext", secret, "x\n\n", "y\n\n", tok, sizeof tok), 0);
        CHECK_STR(tok, str(v, "token"));
        CHECK_INT(hs_token("cleartext", secret, "x\n\n", "y\n\n", tok, 2 * strlen(secret)),
                  AEMP_EINVAL);
        struct hs_auth a = {strdup("cleartext"), strdup(str(v, "token")), strdup("json")};
        char err[256];
        int untrusted = -1;
        CHECK_INT(
            hs_check_auth(&a, acc, fr, 0, secret, "x\n\n", "y\n\n", &untrusted, err, sizeof err),
            0);
        CHECK_INT(untrusted, 0);
        CHECK_INT(
            hs_check_auth(&a, acc2, fr, 0, secret, "x\n\n", "y\n\n", &untrusted, err, sizeof err),
            AEMP_EAUTH);
        CHECK_INT(
            hs_check_auth(&a, acc, fr, 0, "other", "x\n\n", "y\n\n", &untrusted, err, sizeof err),
            AEMP_EAUTH);
        hs_auth_clear(&a);
        n++;
    }
    CHECK_INT(n, 2);
    cJSON_Delete(acc);
    cJSON_Delete(acc2);
    cJSON_Delete(fr);
    cJSON_Delete(j);
}

/* tls_md6_64_256: tokens, TLS roles, and refusal outside TLS. */
static void test_tls_vectors(void)
{
    cJSON *j = load("tls_md6.json");
    if (!j) return;
    int n = 0;
    const char *sections[] = {"vectors", "captured"};
    for (size_t s = 0; s < 2; s++) {
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(j, sections[s]))
        {
            check_vector(v, "tls_md6_64_256", 1, NULL);
            const char *ln =
                cJSON_GetArrayItem(cJSON_GetObjectItem(v, "local_greeting"), 1)->valuestring;
            const char *rn =
                cJSON_GetArrayItem(cJSON_GetObjectItem(v, "remote_greeting"), 1)->valuestring;
            int local = !strcmp(str(v, "tls_client"), "local");
            CHECK_INT(hs_tls_is_client(ln, rn), local);
            CHECK_INT(hs_tls_is_client(rn, ln), !local);

            /* The same line without TLS is refused. */
            char L[HS_MAX_LINE * 2], R[HS_MAX_LINE * 2], err[256] = "";
            lines(cJSON_GetObjectItem(v, "local_greeting"), L, sizeof L);
            lines(cJSON_GetObjectItem(v, "remote_greeting"), R, sizeof R);
            const char *rl = str(v, "rauth_line");
            struct hs_auth a;
            cJSON *acc = list(DEFAULT_ACCEPT), *fr = list("json");
            CHECK_INT(hs_parse_auth(rl, strlen(rl), &a, err, sizeof err), 0);
            CHECK_INT(hs_check_auth(&a, acc, fr, 0, NULL, L, R, NULL, err, sizeof err), AEMP_EAUTH);
            CHECK(strstr(err, "TLS") != NULL);
            hs_auth_clear(&a);
            cJSON_Delete(acc);
            cJSON_Delete(fr);
            n++;
        }
    }
    CHECK(n >= 2);
    cJSON_Delete(j);
}

/* tls_anon: empty token, only under TLS, marks the peer untrusted. */
static void test_tls_anon(void)
{
    char tok[65] = "junk";
    CHECK_INT(hs_token("tls_anon", NULL, "a\nb\n", "c\nd\n", tok, sizeof tok), 0);
    CHECK_STR(tok, "");
    struct hs_auth a;
    char err[256];
    CHECK_INT(hs_parse_auth("tls_anon;;json", 14, &a, err, sizeof err), 0);
    CHECK_STR(a.method, "tls_anon");
    CHECK_STR(a.token, "");
    CHECK_STR(a.framing, "json");
    cJSON *acc = list(DEFAULT_ACCEPT), *noanon = list("tls_md6_64_256,hmac_md6_64_256"),
          *fr = list("json");
    int untrusted = 0;
    CHECK_INT(hs_check_auth(&a, acc, fr, 1, NULL, "a\nb\n", "c\nd\n", &untrusted, err, sizeof err),
              0);
    CHECK_INT(untrusted, 1);
    CHECK_INT(hs_check_auth(&a, acc, fr, 0, NULL, "a\nb\n", "c\nd\n", &untrusted, err, sizeof err),
              AEMP_EAUTH);
    CHECK_INT(
        hs_check_auth(&a, noanon, fr, 1, NULL, "a\nb\n", "c\nd\n", &untrusted, err, sizeof err),
        AEMP_EAUTH);
    hs_auth_clear(&a);
    /* A non-empty token is wrong for tls_anon. */
    CHECK_INT(hs_parse_auth("tls_anon;x;json", 15, &a, err, sizeof err), 0);
    CHECK_INT(hs_check_auth(&a, acc, fr, 1, NULL, "a\nb\n", "c\nd\n", &untrusted, err, sizeof err),
              AEMP_EAUTH);
    hs_auth_clear(&a);
    cJSON_Delete(acc);
    cJSON_Delete(noanon);
    cJSON_Delete(fr);
}

/* Check a transcript greeting's parse against what the line literally says:
 * node ID right after "aemp;1;", list fields, provider and peeraddr. */
static void check_g1(const char *g1)
{
    struct hs_greeting g;
    char err[256] = "";
    int rc = hs_parse_greeting(g1, strlen(g1), &g, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "# %s: %s\n", g1, err);
        return;
    }
    CHECK_STR(g.proto, "aemp");
    CHECK_INT(g.version, 1);
    size_t nl = strlen(g.nodeid);
    CHECK(nl > 0 && !strncmp(g1 + 7, g.nodeid, nl) && g1[7 + nl] == ';');
    if (!strcmp(g1, "aemp;1;raw-simple;hmac_md6_64_256;json")) {
        CHECK_STR(g.nodeid, "raw-simple");
        CHECK_INT(g.nauth, 1);
        CHECK_STR(g.auth[0], "hmac_md6_64_256");
        CHECK_INT(g.nframing, 1);
        CHECK_STR(g.framing[0], "json");
        CHECK(g.provider == NULL && g.peeraddr == NULL);
        CHECK_INT(g.tls, 0);
    } else if (!strcmp(g.nodeid, "raw-client")) {
        CHECK_INT(g.nauth, 2);
        CHECK_STR(g.auth[0], "hmac_md6_64_256");
        CHECK_STR(g.auth[1], "cleartext");
        CHECK_INT(g.nframing, 1);
        CHECK_STR(g.provider, "interop-rawclient");
    } else {
        CHECK(!strncmp(g.nodeid, "anon/", 5) || !strncmp(g.nodeid, "interop-", 8));
        CHECK_INT(g.nauth, 4);
        if (g.nauth == 4) {
            CHECK_STR(g.auth[0], "tls_md6_64_256");
            CHECK_STR(g.auth[1], "hmac_md6_64_256");
            CHECK_STR(g.auth[2], "tls_anon");
            CHECK_STR(g.auth[3], "cleartext");
        }
        CHECK_INT(g.nframing, 2);
        if (g.nframing == 2) {
            CHECK_STR(g.framing[0], "json");
            CHECK_STR(g.framing[1], "storable");
        }
        CHECK_STR(g.provider, "AE-1.30");
    }
    if (g.peeraddr) {
        CHECK(!strncmp(g.peeraddr, "127.0.0.1:", 10));
        CHECK(strstr(g1, g.peeraddr) != NULL);
    }
    CHECK_INT(g.tls, strstr(g1, ";tls=1.0") ? 1 : 0);
    hs_greeting_clear(&g);
}

/* Every handshake of every transcript: parse both G1 lines, and check each
 * side's AUTH line as the other side would (with its own secret). */
static void test_transcripts(void)
{
    static const char *files[] = {
        "aemp_cal",   "aemp_snd",         "auth_failure", "keepalive", "handshake_node_requests",
        "raw_client", "three_nodes_find", "tls_handshake"};
    int greetings = 0, auths = 0, refused = 0;
    cJSON *acc = list(DEFAULT_ACCEPT), *fr = list("json,storable");
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char name[128];
        snprintf(name, sizeof name, "transcripts/%s.json", files[f]);
        cJSON *j = load(name);
        if (!j) continue;
        const char *sb = str(j, "secret");
        const cJSON *as = cJSON_GetObjectItem(j, "a_secret");
        const char *sa = cJSON_IsString(as) ? as->valuestring : sb;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "connections"))
        {
            const cJSON *hs = cJSON_GetObjectItem(c, "handshake");
            if (!hs) continue;
            const cJSON *a = cJSON_GetObjectItem(hs, "a"), *b = cJSON_GetObjectItem(hs, "b");
            check_g1(str(a, "G1"));
            check_g1(str(b, "G1"));
            greetings += 2;
            char La[HS_MAX_LINE * 2], Lb[HS_MAX_LINE * 2];
            snprintf(La, sizeof La, "%s\n%s\n", str(a, "G1"), str(a, "G2"));
            snprintf(Lb, sizeof Lb, "%s\n%s\n", str(b, "G1"), str(b, "G2"));
            const cJSON *aa = cJSON_GetObjectItem(a, "AUTH"), *ba = cJSON_GetObjectItem(b, "AUTH");
            if (!cJSON_IsString(aa) || !cJSON_IsString(ba))
                continue; /* TLS: auth lines inside the encrypted stream */
            int same = !strcmp(sa, sb);
            /* b checks a's line with b's secret; a checks b's with a's. */
            struct hs_auth got;
            char err[256] = "";
            CHECK_INT(
                hs_parse_auth(aa->valuestring, strlen(aa->valuestring), &got, err, sizeof err), 0);
            CHECK_INT(hs_check_auth(&got, acc, fr, 0, sb, Lb, La, NULL, err, sizeof err),
                      same ? 0 : AEMP_EAUTH);
            hs_auth_clear(&got);
            CHECK_INT(
                hs_parse_auth(ba->valuestring, strlen(ba->valuestring), &got, err, sizeof err), 0);
            CHECK_INT(hs_check_auth(&got, acc, fr, 0, sa, La, Lb, NULL, err, sizeof err),
                      same ? 0 : AEMP_EAUTH);
            /* The token b sent is what b computes with its secret. */
            char tok[65];
            CHECK_INT(hs_token(got.method, sb, Lb, La, tok, sizeof tok), 0);
            CHECK_STR(tok, got.token);
            hs_auth_clear(&got);
            auths += 2;
            refused += same ? 0 : 2;
        }
        cJSON_Delete(j);
    }
    CHECK(greetings >= 20);
    CHECK(auths >= 18);
    CHECK(refused >= 8);
    printf("# %d greetings parsed, %d auth lines checked (%d rightly refused)\n", greetings, auths,
           refused);
    cJSON_Delete(acc);
    cJSON_Delete(fr);
}

/* Malformed greetings are refused with a message; odd but valid ones pass. */
static void test_bad_greetings(void)
{
    static const char *bad[] = {
        "",
        "aemp",
        "aemp;1;node;a",
        "aemp;1;node;hmac_md6_64_256",
        "aemp;2;node;hmac_md6_64_256;json",
        "aemp;0;node;hmac_md6_64_256;json",
        "aemp;;node;hmac_md6_64_256;json",
        "aemp;1.0;node;hmac_md6_64_256;json",
        "aemp; 1;node;hmac_md6_64_256;json",
        "aemp;x;node;hmac_md6_64_256;json",
        "aemp;1;;hmac_md6_64_256;json",
        "aemp;1;no de;hmac_md6_64_256;json",
        "aemp;1;no#de;hmac_md6_64_256;json",
        "aemp;1;n\xc3\xa9;hmac_md6_64_256;json",
        "aemp;1;a%3bb;hmac_md6_64_256;json",
        "aemx;1;node;hmac_md6_64_256;json",
        "aemp-;1;node;hmac_md6_64_256;json",
        "AEMP;1;node;hmac_md6_64_256;json",
        "aempx;1;node;hmac_md6_64_256;json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hs_greeting g;
        char err[256] = "";
        int rc = hs_parse_greeting(bad[i], strlen(bad[i]), &g, err, sizeof err);
        if (rc != AEMP_EPROTO) fprintf(stderr, "# accepted: %s\n", bad[i]);
        CHECK_INT(rc, AEMP_EPROTO);
        CHECK(err[0] != 0);
        CHECK(g.nodeid == NULL && g.auth == NULL);
    }
    /* A NUL inside. */
    struct hs_greeting g;
    char err[256] = "";
    CHECK_INT(hs_parse_greeting("aemp;1;no\0de;a;json", 19, &g, err, sizeof err), AEMP_EPROTO);
    /* Over-long: 4095 bytes pass, 4096 do not. */
    char *big = malloc(HS_MAX_LINE + 1);
    memcpy(big, "aemp;1;node;a;json;x=", 21);
    memset(big + 21, 'y', HS_MAX_LINE - 21);
    CHECK_INT(hs_parse_greeting(big, HS_MAX_LINE - 1, &g, err, sizeof err), 0);
    hs_greeting_clear(&g);
    CHECK_INT(hs_parse_greeting(big, HS_MAX_LINE, &g, err, sizeof err), AEMP_EPROTO);
    /* Many empty fields do not overflow anything. */
    memset(big + 19, ';', HS_MAX_LINE - 19);
    CHECK_INT(hs_parse_greeting(big, HS_MAX_LINE - 1, &g, err, sizeof err), 0);
    hs_greeting_clear(&g);
    free(big);
}

/* Valid variants: sub-protocol names, escapes, unknown keys, tls values,
 * empty lists, CR-free lines with trailing fields. */
static void test_good_greetings(void)
{
    struct hs_greeting g;
    char err[256] = "";
    const char *l = "aemp-dataconn;1;a.b:c/d_e-f;x%3by,%25z,,w;json;foo=bar;"
                    "provider=P%3bQ%25R;tls=1.0;peeraddr=[::1]:4040;flag";
    CHECK_INT(hs_parse_greeting(l, strlen(l), &g, err, sizeof err), 0);
    CHECK_STR(g.proto, "aemp-dataconn");
    CHECK_STR(g.nodeid, "a.b:c/d_e-f");
    CHECK_INT(g.nauth, 3);
    if (g.nauth == 3) {
        CHECK_STR(g.auth[0], "x;y");
        CHECK_STR(g.auth[1], "%z");
        CHECK_STR(g.auth[2], "w");
    }
    CHECK_STR(g.provider, "P;Q%R");
    CHECK_STR(g.peeraddr, "[::1]:4040");
    CHECK_INT(g.tls, 1);
    hs_greeting_clear(&g);
    CHECK(g.nodeid == NULL);

    static const struct {
        const char *tls;
        long want;
    } tl[] = {{"1", 1}, {"1.0", 1}, {"1.9", 1}, {"2.0", 2}, {"0", 0}, {"", 0}, {"yes", 0}};
    for (size_t i = 0; i < sizeof tl / sizeof tl[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "aemp;1;n;;;tls=%s", tl[i].tls);
        CHECK_INT(hs_parse_greeting(line, strlen(line), &g, err, sizeof err), 0);
        CHECK_INT(g.tls, tl[i].want);
        CHECK_INT(g.nauth, 0);
        CHECK_INT(g.nframing, 0);
        CHECK_INT(hs_use_tls(&g, 1), tl[i].want == 1);
        CHECK_INT(hs_use_tls(&g, 0), 0);
        hs_greeting_clear(&g);
    }
}

/* Our greeting line, literally, and that it parses back. */
static void test_build_greeting(void)
{
    cJSON *acc = list(DEFAULT_ACCEPT), *fr = list("json");
    char *s = hs_build_greeting("seed-1", acc, fr, "10.0.0.1:4040", 0);
    CHECK_STR(s, "aemp;1;seed-1;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json;"
                 "provider=aemp-c-" AEMP_VERSION ";peeraddr=10.0.0.1:4040");
    free(s);
    s = hs_build_greeting("anon/x", acc, fr, NULL, 1);
    CHECK_STR(s, "aemp;1;anon/x;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json;"
                 "provider=aemp-c-" AEMP_VERSION ";tls=1.0");
    struct hs_greeting g;
    char err[256];
    CHECK_INT(hs_parse_greeting(s, strlen(s), &g, err, sizeof err), 0);
    CHECK_STR(g.nodeid, "anon/x");
    CHECK_INT(g.nauth, 4);
    CHECK_INT(g.tls, 1);
    CHECK(g.peeraddr == NULL);
    hs_greeting_clear(&g);
    free(s);
    cJSON *odd = list("a;b,c%d");
    s = hs_build_greeting("n", odd, fr, "h;1%", 0);
    CHECK_STR(s, "aemp;1;n;a%3bb,c%25d;json;provider=aemp-c-" AEMP_VERSION ";peeraddr=h%3b1%25");
    CHECK_INT(hs_parse_greeting(s, strlen(s), &g, err, sizeof err), 0);
    CHECK_STR(g.auth[0], "a;b");
    CHECK_STR(g.auth[1], "c%d");
    CHECK_STR(g.peeraddr, "h;1%");
    hs_greeting_clear(&g);
    free(s);
    cJSON_Delete(odd);
    cJSON_Delete(acc);
    cJSON_Delete(fr);
}

/* Nonces: 88 base64 characters of 66 bytes, different each time. */
static void test_nonce(void)
{
    char a[HS_NONCE_LEN + 1], b[HS_NONCE_LEN + 1];
    memset(a, 'x', sizeof a);
    hs_nonce(a);
    hs_nonce(b);
    CHECK_INT(strlen(a), 88);
    CHECK(strcmp(a, b) != 0);
    unsigned char bin[100];
    size_t blen = 0;
    CHECK_INT(sodium_base642bin(bin, sizeof bin, a, strlen(a), NULL, &blen, NULL,
                                sodium_base64_VARIANT_ORIGINAL),
              0);
    CHECK_INT(blen, 66);
    CHECK(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") == 88);
}

/* Choosing the method and framing from the remote's lists. */
static void test_choose(void)
{
    struct hs_greeting g;
    char err[256] = "";
    const char *l = "aemp;1;peer;" DEFAULT_ACCEPT ";storable,json";
    CHECK_INT(hs_parse_greeting(l, strlen(l), &g, err, sizeof err), 0);
    cJSON *offer = list("tls_md6_64_256,hmac_md6_64_256"), *fr = list("json");
    const char *m = NULL, *f = NULL;
    CHECK_INT(hs_choose(&g, offer, fr, 1, &m, &f, err, sizeof err), 0);
    CHECK_STR(m, "tls_md6_64_256");
    CHECK_STR(f, "json");
    CHECK(m == g.auth[0]); /* points into the greeting */
    CHECK_INT(hs_choose(&g, offer, fr, 0, &m, &f, err, sizeof err), 0);
    CHECK_STR(m, "hmac_md6_64_256");
    /* Without TLS only tls_* in common: no match. */
    cJSON *tlsonly = list("tls_md6_64_256,tls_anon");
    err[0] = 0;
    CHECK_INT(hs_choose(&g, tlsonly, fr, 0, &m, &f, err, sizeof err), AEMP_EAUTH);
    CHECK(err[0] != 0);
    CHECK_INT(hs_choose(&g, tlsonly, fr, 1, &m, &f, err, sizeof err), 0);
    CHECK_STR(m, "tls_md6_64_256");
    /* The remote's order decides, not ours. */
    cJSON *rev = list("tls_anon,hmac_md6_64_256,tls_md6_64_256");
    CHECK_INT(hs_choose(&g, rev, fr, 1, &m, &f, err, sizeof err), 0);
    CHECK_STR(m, "tls_md6_64_256");
    /* No common framing. */
    cJSON *fr2 = list("msgpack");
    CHECK_INT(hs_choose(&g, offer, fr2, 1, &m, &f, err, sizeof err), AEMP_EPROTO);
    cJSON *fr3 = list("storable,json");
    CHECK_INT(hs_choose(&g, offer, fr3, 1, &m, &f, err, sizeof err), 0);
    CHECK_STR(f, "storable");
    hs_greeting_clear(&g);
    /* A peer that accepts only cleartext: we never offer it. */
    const char *l2 = "aemp;1;peer;cleartext;json";
    CHECK_INT(hs_parse_greeting(l2, strlen(l2), &g, err, sizeof err), 0);
    CHECK_INT(hs_choose(&g, offer, fr, 0, &m, &f, err, sizeof err), AEMP_EAUTH);
    hs_greeting_clear(&g);
    cJSON_Delete(offer);
    cJSON_Delete(fr);
    cJSON_Delete(tlsonly);
    cJSON_Delete(rev);
    cJSON_Delete(fr2);
    cJSON_Delete(fr3);
}

/* Auth lines that must be refused, and malformed auth lines. */
static void test_check_auth_refusals(void)
{
    cJSON *acc = list("hmac_md6_64_256"), *fr = list("json");
    char err[256] = "";
    struct hs_auth a;
    /* Method not in our accept list, even with a right cleartext token. */
    CHECK_INT(hs_parse_auth("cleartext;67656865696d;json", 27, &a, err, sizeof err), 0);
    CHECK_INT(hs_check_auth(&a, acc, fr, 0, "geheim", "a\n\n", "b\n\n", NULL, err, sizeof err),
              AEMP_EAUTH);
    CHECK(strstr(err, "cleartext") != NULL);
    hs_auth_clear(&a);
    /* Unknown framing. */
    CHECK_INT(hs_parse_auth("hmac_md6_64_256;00;storable", 27, &a, err, sizeof err), 0);
    CHECK_INT(hs_check_auth(&a, acc, fr, 0, "geheim", "a\n\n", "b\n\n", NULL, err, sizeof err),
              AEMP_EAUTH);
    hs_auth_clear(&a);
    /* No secret configured. */
    CHECK_INT(hs_parse_auth("hmac_md6_64_256;00;json", 23, &a, err, sizeof err), 0);
    CHECK_INT(hs_check_auth(&a, acc, fr, 0, NULL, "a\n\n", "b\n\n", NULL, err, sizeof err),
              AEMP_EAUTH);
    CHECK(strstr(err, "secret") != NULL);
    hs_auth_clear(&a);
    /* Unknown method we somehow accept. */
    cJSON *acc2 = list("magic");
    CHECK_INT(hs_parse_auth("magic;;json", 11, &a, err, sizeof err), 0);
    CHECK_INT(hs_check_auth(&a, acc2, fr, 1, "s", "a\n\n", "b\n\n", NULL, err, sizeof err),
              AEMP_EAUTH);
    hs_auth_clear(&a);
    /* Malformed lines. */
    static const char *bad[] = {"", "hmac_md6_64_256", "hmac_md6_64_256;abc", ";abc;json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(hs_parse_auth(bad[i], strlen(bad[i]), &a, err, sizeof err), AEMP_EPROTO);
        CHECK(a.method == NULL);
    }
    /* Extra fields are ignored. */
    CHECK_INT(hs_parse_auth("m;t;json;extra", 14, &a, err, sizeof err), 0);
    CHECK_STR(a.framing, "json");
    hs_auth_clear(&a);
    cJSON_Delete(acc);
    cJSON_Delete(acc2);
    cJSON_Delete(fr);
}

/* What a peer's close during the handshake most likely means, by stage. */
static void test_refusal_cause(void)
{
    CHECK(strstr(hs_refusal_cause(HS_AWAIT_GREETING, 0), "before its greeting: not an aemp node"));
    CHECK(strstr(hs_refusal_cause(HS_IN_TLS, 0), "does not trust our certificate"));
    CHECK(strstr(hs_refusal_cause(HS_AWAIT_AUTH, 0),
                 "most likely because it offers no auth method our auth_accept lists"));
    const char *both = hs_refusal_cause(HS_AWAIT_AUTH, 1);
    CHECK(strstr(both, "refused our greeting") && strstr(both, "framing_format") &&
          !strstr(both, "most likely"));
    CHECK(hs_refusal_cause((enum hs_stage)99, 0)[0] == 0);
}

T_MAIN(T(test_hmac_vectors), T(test_cleartext), T(test_tls_vectors), T(test_tls_anon),
       T(test_transcripts), T(test_bad_greetings), T(test_good_greetings), T(test_build_greeting),
       T(test_nonce), T(test_choose), T(test_check_auth_refusals), T(test_refusal_cause))
