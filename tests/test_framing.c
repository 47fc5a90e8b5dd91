/* Tests of the "json" framing reader and encoder: boundaries under every
 * split of the input, strings with brackets and escapes, nesting, UTF-8,
 * whitespace, keepalives, protocol errors, the size limit, stopping from the
 * callback, our writer and parser (named writes, strings sharing their
 * node's block), and a throughput measurement. Expected messages are written
 * out literally here, never produced by the code under test. */
#include <time.h>

#include "aemp.h"
#include "framing.h"
#include "t.h"

/* What the callback saw: each message re-printed, joined by '\n'. */
struct seen {
    char out[8192];
    size_t len;
    int count;
    int stop_at; /* stop after this many messages (0: never) */
};

/* Callback: record msg (taken) and stop when asked. */
static int collect(void *ud, cJSON *msg)
{
    struct seen *s = ud;
    char *txt = cJSON_PrintUnformatted(msg);
    size_t n = strlen(txt);
    if (s->len + n + 2 < sizeof s->out) {
        memcpy(s->out + s->len, txt, n);
        s->len += n;
        s->out[s->len++] = '\n';
        s->out[s->len] = 0;
    }
    free(txt);
    cJSON_Delete(msg);
    s->count++;
    return s->stop_at && s->count >= s->stop_at;
}

/* Feed `in` in pieces given by the cut points cuts[0..ncuts) (ascending),
 * each piece copied into an exact-size heap block so that ASan sees any read
 * past a chunk. Returns the last feed's result; fills *s. */
static int feed_cuts(const char *in, size_t inlen, const size_t *cuts, size_t ncuts, size_t max_msg,
                     struct seen *s, char *err, size_t errlen)
{
    struct framing_reader *r = framing_reader_new(max_msg);
    size_t prev = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t end = k < ncuts ? cuts[k] : inlen;
        size_t n = end - prev;
        char *chunk = malloc(n ? n : 1);
        memcpy(chunk, in + prev, n);
        rc = framing_reader_feed(r, chunk, n, collect, s, err, errlen);
        free(chunk);
        prev = end;
    }
    if (rc == 0 && framing_reader_pending(r) != 0)
        rc = 99; /* leftover bytes: a boundary was missed */
    framing_reader_free(r);
    return rc;
}

static const char stream[] = "[\"a\",1,\"x]\"]"
                             "  \n\r\t[]"
                             "[\"b\",{\"k\":[1,{\"z\":\"}\"}]},\"q\\\"[\"]"
                             "[\"\\\\\",\"\\\\\\\"]\"]\n"
                             "[\"\xc3\xa9t\xc3\xa9\",\"\xe2\x82\xac\",[[[]]],{}]"
                             "[]"
                             "[\"\",null,true,false,-1.5e3]";

static const char expected[] = "[\"a\",1,\"x]\"]\n"
                               "[\"b\",{\"k\":[1,{\"z\":\"}\"}]},\"q\\\"[\"]\n"
                               "[\"\\\\\",\"\\\\\\\"]\"]\n"
                               "[\"\xc3\xa9t\xc3\xa9\",\"\xe2\x82\xac\",[[[]]],{}]\n"
                               "[\"\",null,true,false,-1500]\n";

/* The whole stream in one chunk. */
static void test_whole(void)
{
    struct seen s = {0};
    char err[256] = "";
    CHECK_INT(feed_cuts(stream, sizeof stream - 1, NULL, 0, 1 << 20, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 5);
    CHECK_STR(s.out, expected);
}

/* Every byte in its own chunk. */
static void test_byte_by_byte(void)
{
    size_t n = sizeof stream - 1;
    size_t cuts[sizeof stream];
    for (size_t i = 0; i < n - 1; i++)
        cuts[i] = i + 1;
    struct seen s = {0};
    char err[256] = "";
    CHECK_INT(feed_cuts(stream, n, cuts, n - 1, 1 << 20, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 5);
    CHECK_STR(s.out, expected);
}

/* Every split into two chunks (including empty ones), and every split into
 * three chunks. */
static void test_splits(void)
{
    size_t n = sizeof stream - 1;
    int bad = 0;
    for (size_t a = 0; a <= n; a++) {
        struct seen s = {0};
        char err[256] = "";
        size_t cuts[1] = {a};
        if (feed_cuts(stream, n, cuts, 1, 1 << 20, &s, err, sizeof err) != 0 ||
            strcmp(s.out, expected))
            bad++;
        for (size_t b = a; b <= n; b++) {
            struct seen s3 = {0};
            size_t cuts3[2] = {a, b};
            if (feed_cuts(stream, n, cuts3, 2, 1 << 20, &s3, err, sizeof err) != 0 ||
                strcmp(s3.out, expected))
                bad++;
        }
    }
    CHECK_INT(bad, 0);
}

/* Only keepalives and whitespace: nothing delivered, nothing pending. */
static void test_keepalive(void)
{
    struct seen s = {0};
    char err[256] = "";
    const char in[] = "[] [ ]\n[\n]\r\n";
    CHECK_INT(feed_cuts(in, sizeof in - 1, NULL, 0, 100, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 0);
}

/* Feed one text into a fresh reader; return the result and the message. */
static int feed_one(const char *in, size_t max_msg, struct seen *s, char *err, size_t errlen)
{
    return feed_cuts(in, strlen(in), NULL, 0, max_msg, s, err, errlen);
}

/* Protocol errors: invalid JSON, non-arrays, a non-string first element. */
static void test_errors(void)
{
    static const char *bad[] = {
        "1",         "{}",        "\"x\"",           "[1]",         "[null,1]",
        "[\"a\",]",  "[\"a\" 1]", "[\"a\",1}",       "[\"a\",tru]", "x",
        "[[\"a\"]]", "[{}]",      "[\"a\",\"\\x\"]", "]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct seen s = {0};
        char err[256] = "";
        int rc = feed_one(bad[i], 1000, &s, err, sizeof err);
        if (rc != AEMP_EPROTO) fprintf(stderr, "# input %s gave %d\n", bad[i], rc);
        CHECK_INT(rc, AEMP_EPROTO);
        CHECK(err[0] != 0);
        CHECK_INT(s.count, 0);
    }
    /* Good messages before the bad one are delivered; the reader then
     * refuses more input. */
    struct framing_reader *r = framing_reader_new(1000);
    struct seen s = {0};
    char err[256] = "";
    const char in[] = "[\"ok\"] 7 [\"later\"]";
    CHECK_INT(framing_reader_feed(r, in, sizeof in - 1, collect, &s, err, sizeof err), AEMP_EPROTO);
    CHECK_STR(s.out, "[\"ok\"]\n");
    CHECK_INT(framing_reader_feed(r, "[\"x\"]", 5, collect, &s, err, sizeof err), AEMP_EPROTO);
    CHECK_INT(s.count, 1);
    framing_reader_free(r);
}

/* The size limit, for a text in one chunk and for one arriving in pieces;
 * a text of exactly max_msg bytes passes. */
static void test_oversize(void)
{
    struct seen s = {0};
    char err[256] = "";
    CHECK_INT(feed_one("[\"abcdef\"]", 10, &s, err, sizeof err), 0); /* 10 bytes */
    CHECK_INT(s.count, 1);
    err[0] = 0;
    CHECK_INT(feed_one("[\"abcdefg\"]", 10, &s, err, sizeof err), AEMP_EPROTO);
    CHECK(strstr(err, "10") != NULL);
    CHECK_INT(s.count, 1);

    /* A 1 MB text of which no more than the limit is ever buffered. */
    struct framing_reader *r = framing_reader_new(1000);
    char chunk[100];
    memset(chunk, 'a', sizeof chunk);
    chunk[0] = '[';
    chunk[1] = '"';
    int rc = 0;
    size_t fed = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        rc = framing_reader_feed(r, chunk + (i ? 2 : 0), sizeof chunk - (i ? 2 : 0), collect, &s,
                                 err, sizeof err);
        fed++;
        CHECK(framing_reader_pending(r) <= 1000);
    }
    CHECK_INT(rc, AEMP_EPROTO);
    CHECK(fed <= 11);
    framing_reader_free(r);

    /* Whitespace between texts does not count towards the limit. */
    struct seen s2 = {0};
    CHECK_INT(feed_one("        [\"abcdef\"]          [\"abcdef\"]   ", 10, &s2, err, sizeof err),
              0);
    CHECK_INT(s2.count, 2);
}

/* A callback that stops: the rest stays buffered and a later feed (even of
 * zero bytes) continues where it stopped, also across chunks. */
static void test_stop(void)
{
    struct framing_reader *r = framing_reader_new(1000);
    struct seen s = {.stop_at = 1};
    char err[256] = "";
    const char a[] = "[\"1\"][\"2\"] [\"3\"][\"4";
    CHECK_INT(framing_reader_feed(r, a, sizeof a - 1, collect, &s, err, sizeof err), 1);
    CHECK_STR(s.out, "[\"1\"]\n");
    CHECK_INT(framing_reader_pending(r), sizeof a - 1 - 5);
    s.stop_at = 2;
    CHECK_INT(framing_reader_feed(r, NULL, 0, collect, &s, err, sizeof err), 1);
    CHECK_STR(s.out, "[\"1\"]\n[\"2\"]\n");
    s.stop_at = 0;
    const char b[] = "\"][\"5\"]";
    CHECK_INT(framing_reader_feed(r, b, sizeof b - 1, collect, &s, err, sizeof err), 0);
    CHECK_STR(s.out, "[\"1\"]\n[\"2\"]\n[\"3\"]\n[\"4\"]\n[\"5\"]\n");
    CHECK_INT(framing_reader_pending(r), 0);
    framing_reader_free(r);

    /* Stop on the last text of a chunk whose previous text was split. */
    r = framing_reader_new(1000);
    struct seen s2 = {.stop_at = 1};
    CHECK_INT(framing_reader_feed(r, "[\"x", 3, collect, &s2, err, sizeof err), 0);
    CHECK_INT(framing_reader_pending(r), 3);
    CHECK_INT(framing_reader_feed(r, "y\"] [\"z\"]", 9, collect, &s2, err, sizeof err), 1);
    CHECK_STR(s2.out, "[\"xy\"]\n");
    CHECK_INT(framing_reader_pending(r), 6);
    s2.stop_at = 0;
    CHECK_INT(framing_reader_feed(r, NULL, 0, collect, &s2, err, sizeof err), 0);
    CHECK_STR(s2.out, "[\"xy\"]\n[\"z\"]\n");
    CHECK_INT(framing_reader_pending(r), 0);
    framing_reader_free(r);
}

/* A big text in tiny chunks stays linear: 4 MB in 7-byte pieces must take
 * well under a second (a rescanning reader would take minutes). */
static void test_big_in_small_chunks(void)
{
    size_t n = 4u << 20;
    char *big = malloc(n + 1);
    big[0] = '[';
    big[1] = '"';
    for (size_t i = 2; i < n - 2; i++)
        big[i] = "ab[]{}\\\"c"[i % 9];
    /* each '\\' in the pattern escapes the '"' after it; n - 4 is no '\\' */
    big[n - 3] = 'x';
    big[n - 2] = '"';
    big[n - 1] = ']';
    struct framing_reader *r = framing_reader_new(n);
    struct seen s = {0};
    char err[256] = "";
    clock_t t0 = clock();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 7)
        rc = framing_reader_feed(r, big + i, n - i < 7 ? n - i : 7, collect, &s, err, sizeof err);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_INT(rc, 0);
    CHECK_INT(s.count, 1);
    CHECK_INT(framing_reader_pending(r), 0);
    CHECK(secs < 2.0);
    printf("# 4 MB text in 7-byte chunks: %.3f s\n", secs);
    framing_reader_free(r);
    free(big);
}

/* framing_encode gives the unformatted text and its length. */
static void test_encode(void)
{
    cJSON *m = cJSON_Parse("[ \"port\" , 1, {\"a\" : [true, null]}, \"\\u00e9\" ]");
    size_t len = 0;
    char *s = framing_encode(m, &len);
    CHECK_STR(s, "[\"port\",1,{\"a\":[true,null]},\"\xc3\xa9\"]");
    CHECK_INT(len, strlen("[\"port\",1,{\"a\":[true,null]},\"\xc3\xa9\"]"));
    free(s);
    cJSON_Delete(m);
}

/* Callback that keeps the last message (taken). */
static int keep_last(void *ud, cJSON *msg)
{
    cJSON **last = ud;
    cJSON_Delete(*last);
    *last = msg;
    return 0;
}

/* U+0000 survives: \u0000 inside strings (values and keys) becomes C0 80
 * for the callback, also when the escape is split across chunks, and the
 * encoder writes it back as \u0000, giving the original text. An escaped
 * backslash followed by "u0000" is left alone. */
static void test_nul_roundtrip(void)
{
    const char in[] = "[\"p\",\"a\\u0000b\",{\"k\\u0000\":\"\\u0000\"},\"\\\\u0000\",\"\\u00001\"]";
    for (size_t cut = 0; cut <= sizeof in - 1; cut++) {
        struct framing_reader *r = framing_reader_new(1000);
        cJSON *last = NULL;
        char err[256] = "";
        CHECK_INT(framing_reader_feed(r, in, cut, keep_last, &last, err, sizeof err), 0);
        CHECK_INT(framing_reader_feed(r, in + cut, sizeof in - 1 - cut, keep_last, &last, err,
                                      sizeof err), 0);
        CHECK(last != NULL);
        if (!last) {
            framing_reader_free(r);
            continue;
        }
        CHECK_STR(cJSON_GetArrayItem(last, 1)->valuestring, "a\xc0\x80" "b");
        const cJSON *o = cJSON_GetArrayItem(last, 2);
        CHECK_STR(o->child->string, "k\xc0\x80");
        CHECK_STR(o->child->valuestring, "\xc0\x80");
        CHECK_STR(cJSON_GetArrayItem(last, 3)->valuestring, "\\u0000");
        CHECK_STR(cJSON_GetArrayItem(last, 4)->valuestring, "\xc0\x80" "1");
        size_t len = 0;
        char *out = framing_encode(last, &len);
        CHECK_STR(out, in);
        CHECK_INT(len, sizeof in - 1);
        free(out);
        cJSON_Delete(last);
        framing_reader_free(r);
    }
    /* the helpers on their own */
    char *o = NULL;
    size_t ol = 0;
    CHECK_INT(framing_nul_decode("[\"x\"]", 5, &o, &ol), 0);
    CHECK(o == NULL);
    CHECK_INT(framing_nul_encode("[\"\xc0\"]", 5, &o, &ol), 0); /* C0 alone stays */
    CHECK_INT(framing_nul_encode("[\"\xc0\x80\"]", 6, &o, &ol), 1);
    CHECK_STR(o, "[\"\\u0000\"]");
    CHECK_INT(ol, 10);
    free(o);
    cJSON *p = framing_parse("[\"a\\u0000\"] \n", 13);
    CHECK(p && !strcmp(cJSON_GetArrayItem(p, 0)->valuestring, "a\xc0\x80"));
    cJSON_Delete(p);
    CHECK(framing_parse("[1] x", 5) == NULL);
}

/* A text nested 1,000 deep is refused on its own: the messages around it
 * are delivered and the stream goes on (no error); FRAMING_MAX_DEPTH
 * itself passes. */
static void test_deep_refused(void)
{
    size_t d = 1000;
    char *in = malloc(4 * d + 64);
    size_t n = 0;
    n += (size_t)sprintf(in + n, "[\"a\"]");
    n += (size_t)sprintf(in + n, "[\"deep\",");
    for (size_t i = 0; i < d; i++) in[n++] = '[';
    for (size_t i = 0; i < d; i++) in[n++] = ']';
    in[n++] = ']';
    n += (size_t)sprintf(in + n, "[\"b\"]");
    for (size_t step = 1; step <= 4096; step *= 8) {
        struct framing_reader *r = framing_reader_new(1 << 20);
        struct seen s = {0};
        char err[256] = "";
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i += step)
            rc = framing_reader_feed(r, in + i, n - i < step ? n - i : step, collect, &s, err,
                                     sizeof err);
        CHECK_INT(rc, 0);
        CHECK_STR(s.out, "[\"a\"]\n[\"b\"]\n");
        CHECK_INT(framing_reader_refused(r), 1);
        CHECK_INT(framing_reader_pending(r), 0);
        framing_reader_free(r);
    }
    /* FRAMING_MAX_DEPTH levels (the outer array counts) pass, one more not */
    for (size_t extra = 0; extra <= 1; extra++) {
        n = (size_t)sprintf(in, "[\"x\",");
        for (size_t i = 1; i < FRAMING_MAX_DEPTH + extra; i++) in[n++] = '[';
        for (size_t i = 1; i < FRAMING_MAX_DEPTH + extra; i++) in[n++] = ']';
        in[n++] = ']';
        struct framing_reader *r = framing_reader_new(1 << 20);
        struct seen s = {0};
        char err[256] = "";
        CHECK_INT(framing_reader_feed(r, in, n, collect, &s, err, sizeof err), 0);
        CHECK_INT(s.count, extra ? 0 : 1);
        CHECK_INT(framing_reader_refused(r), extra);
        framing_reader_free(r);
    }
    free(in);
}

/* framing_write with a port name writes ["name", ELEMENTS...] without
 * touching the message; numbers and escapes come out as cJSON prints them. */
static void test_write_named(void)
{
    cJSON *m = cJSON_Parse("[\"tag\",1,-0,2.5,1e300,-2147483649,\"a\\\"b\\u0001\\n\"]");
    struct framing_buf b = {0};
    CHECK_INT(framing_write(&b, "po\"rt", m), 0);
    CHECK_INT(b.len, strlen("[\"po\\\"rt\",\"tag\",1,-0,2.5,1e+300,-2147483649,\"a\\\"b\\u0001\\n\"]"));
    CHECK(!memcmp(b.data, "[\"po\\\"rt\",\"tag\",1,-0,2.5,1e+300,-2147483649,\"a\\\"b\\u0001\\n\"]", b.len));
    CHECK_INT(cJSON_GetArraySize(m), 7); /* the message is unchanged */
    cJSON *e = cJSON_CreateArray();
    b.len = 0;
    CHECK_INT(framing_write(&b, "p", e), 0);
    CHECK_INT(b.len, 5);
    CHECK(!memcmp(b.data, "[\"p\"]", 5));
    cJSON_Delete(e);
    cJSON_Delete(m);
    free(b.data);
}

/* The text of b with its referenced runs put in at their offsets. */
static char *joined(const struct framing_buf *b, size_t *len)
{
    char *o = malloc(b->len + b->reflen + 1), *w = o;
    size_t at = 0;
    for (int i = 0; i < b->nrefs; i++) {
        memcpy(w, b->data + at, b->refs[i].at - at);
        w += b->refs[i].at - at;
        memcpy(w, b->refs[i].s, b->refs[i].n);
        w += b->refs[i].n;
        at = b->refs[i].at;
    }
    memcpy(w, b->data + at, b->len - at);
    w += b->len - at;
    *w = 0;
    *len = (size_t)(w - o);
    return o;
}

/* Long plain runs of the message's own strings are noted, not copied (an
 * escape splits a string into two runs); borrowed strings (cJSON
 * references), keys and the port name are copied; with the refs full the
 * rest is copied; the joined text is what cJSON prints. */
static void test_write_refs(void)
{
    size_t big = 3 * FRAMING_REF_MIN;
    char *s1 = malloc(2 * big + 2), *s2 = malloc(big + 1);
    memset(s1, 'a', 2 * big + 1);
    s1[big] = '"';
    s1[2 * big + 1] = 0;
    memset(s2, 'b', big);
    s2[big] = 0;
    char *ptext = malloc(big + 3); /* a parsed string lives in its node */
    ptext[0] = '"';
    memset(ptext + 1, 'c', big);
    ptext[big + 1] = '"';
    ptext[big + 2] = 0;
    cJSON *parsed = NULL;
    size_t used;
    CHECK_INT(framing_parse_value(ptext, big + 2, &parsed, &used), 0);
    cJSON *m = cJSON_CreateArray(), *o = cJSON_CreateObject();
    cJSON_AddItemToArray(m, cJSON_CreateString(s1));
    cJSON_AddItemToArray(m, cJSON_CreateStringReference(s2));
    cJSON_AddItemToArray(m, parsed);
    cJSON_AddItemToObject(o, s2, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(m, o);
    char *want = cJSON_PrintUnformatted(m);
    for (int max = 8; max >= 1; max -= 7) {
        struct framing_ref refs[8];
        struct framing_buf b = {0};
        b.refs = refs;
        b.refs_max = max;
        CHECK_INT(framing_write(&b, s2, m), 0); /* a long port name */
        CHECK_INT(b.nrefs, max == 8 ? 3 : 1);
        const char *v0 = cJSON_GetArrayItem(m, 0)->valuestring, *v2 = cJSON_GetArrayItem(m, 2)->valuestring;
        CHECK(refs[0].s == v0 + 32 && refs[0].n == big - 32); /* 32 bytes copied first */
        if (max == 8) CHECK(refs[1].s == v0 + big + 1 && refs[1].n == big);
        if (max == 8) CHECK(refs[2].s == v2 + 32 && refs[2].n == big - 32);
        size_t len;
        char *got = joined(&b, &len);
        CHECK_INT(len, strlen(want) + big + 3);
        CHECK(!memcmp(got, "[\"", 2) && !memcmp(got + 2, s2, big) && !memcmp(got + big + 2, "\",", 2));
        CHECK(!memcmp(got + big + 4, want + 1, strlen(want) - 1));
        free(got);
        free(b.data);
    }
    free(want);
    cJSON_Delete(m);
    free(s1);
    free(s2);
    free(ptext);
}

/* Parsed strings share their node's block: duplicating, detaching and
 * deleting them is safe (ASan checks the frees). */
static void test_parsed_strings(void)
{
    const char t[] = "[\"port\",\"x\\u00e9\\ud83d\\ude00\",{\"k\":\"v\"},\"\"]";
    cJSON *m = NULL;
    size_t used = 0;
    CHECK_INT(framing_parse_value(t, sizeof t - 1, &m, &used), 0);
    CHECK_INT(used, sizeof t - 1);
    CHECK_STR(cJSON_GetArrayItem(m, 1)->valuestring, "x\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "k")->valuestring, "v");
    cJSON *d = cJSON_Duplicate(m, 1);
    cJSON *first = cJSON_DetachItemFromArray(m, 0);
    CHECK_STR(first->valuestring, "port");
    cJSON_Delete(first);
    cJSON_Delete(m);
    char *s = cJSON_PrintUnformatted(d);
    CHECK_STR(s, "[\"port\",\"x\xc3\xa9\xf0\x9f\x98\x80\",{\"k\":\"v\"},\"\"]");
    free(s);
    cJSON_Delete(d);
    /* cut off: 1, nothing returned; invalid: EPROTO */
    CHECK_INT(framing_parse_value(t, 10, &m, &used), 1);
    CHECK_INT(framing_parse_value("[\"\\uZZZZ\"]", 10, &m, &used), AEMP_EPROTO);
    CHECK_INT(framing_parse_value("[1,]", 4, &m, &used), AEMP_EPROTO);
}

/* Callback for the benchmark: count and free. */
static int count_only(void *ud, cJSON *msg)
{
    (*(long *)ud)++;
    cJSON_Delete(msg);
    return 0;
}

/* Throughput for ["tag",1,"abc"] fed in 64 KiB chunks: every message
 * arrives; the rate is only reported (no test asserts a speed). */
static void test_throughput(void)
{
    const char one[] = "[\"tag\",1,\"abc\"]";
    size_t ol = sizeof one - 1;
    size_t total = 32u << 20;
    size_t nmsg = total / ol;
    char *buf = malloc(nmsg * ol);
    for (size_t i = 0; i < nmsg; i++)
        memcpy(buf + i * ol, one, ol);
    size_t blen = nmsg * ol;
    struct framing_reader *r = framing_reader_new(1 << 20);
    long got = 0;
    char err[256] = "";
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = 0;
    for (size_t i = 0; i < blen && rc == 0; i += 65536)
        rc = framing_reader_feed(r, buf + i, blen - i < 65536 ? blen - i : 65536, count_only, &got,
                                 err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK_INT(rc, 0);
    CHECK_INT(got, (long)nmsg);
    CHECK_INT(framing_reader_pending(r), 0);
    printf("# throughput: %ld messages in %.3f s = %.0f msg/s\n", got, secs, got / secs);
    framing_reader_free(r);
    free(buf);
}

/* Integers of 16 digits and more pass through digit for digit (a double
 * would print 9007199254740993 as 9.00719925474099e+15); aemp_json_*_int64
 * read and write 64-bit integers exactly. */
static void test_big_integers(void)
{
    static const char *const texts[] = {
        "[\"n\",9007199254740993,-9007199254740993,9223372036854775807,-9223372036854775808]",
        "[\"n\",123456789012345678901234567890,-123456789012345678901234567890]",
        "[\"n\",18446744073709551615,100000000000000000,1000000000000000,999999999999999]",
        "[\"n\",{\"k\":[12345678901234567890123]},1.5,1e+300,-0,0,2147483648]",
        "[\"n\"," /* 400 digits: no double holds it (inf), the digits still do */
        "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901"
        "2345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012"
        "3456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123"
        "4567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
        "567890123456789012345678901234567890123456]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        /* through the stream reader and the writer of a message */
        char err[256] = "";
        struct framing_reader *r = framing_reader_new(1 << 20);
        cJSON *got = NULL;
        CHECK_INT(framing_reader_feed(r, texts[i], strlen(texts[i]), keep_last, &got, err, sizeof err),
                  0);
        char *out = got ? framing_encode(got, NULL) : NULL;
        CHECK_STR(out, texts[i]);
        /* a copy keeps them too */
        cJSON *dup = got ? cJSON_Duplicate(got, 1) : NULL;
        char *out2 = dup ? aemp_json_print(dup) : NULL;
        CHECK_STR(out2, texts[i]);
        free(out);
        free(out2);
        cJSON_Delete(dup);
        cJSON_Delete(got);
        framing_reader_free(r);
        /* and aemp_json_parse / aemp_json_print */
        cJSON *p = aemp_json_parse(texts[i]);
        out = p ? aemp_json_print(p) : NULL;
        CHECK_STR(out, texts[i]);
        free(out);
        cJSON_Delete(p);
    }
    /* a number alone (what `aemp snd` reads from an argument) */
    cJSON *one = aemp_json_parse("-123456789012345678901234567890");
    char *o1 = one ? aemp_json_print(one) : NULL;
    CHECK_STR(o1, "-123456789012345678901234567890");
    free(o1);
    cJSON_Delete(one);
    /* exact reads */
    cJSON *a = aemp_json_parse("[9007199254740993,-9223372036854775808,9223372036854775807,"
                               "9223372036854775808,12.5,4096,1e18,123456789012345678901234567890]");
    int64_t v = 0;
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 0), &v), 0);
    CHECK(v == INT64_C(9007199254740993));
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 1), &v), 0);
    CHECK(v == INT64_MIN);
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 2), &v), 0);
    CHECK(v == INT64_MAX);
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 3), &v), AEMP_EINVAL); /* 2^63 */
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 4), &v), AEMP_EINVAL); /* 12.5 */
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 5), &v), 0);
    CHECK(v == 4096);
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 6), &v), 0);
    CHECK(v == INT64_C(1000000000000000000));
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 7), &v), AEMP_EINVAL);
    CHECK_INT(aemp_json_get_int64(cJSON_GetArrayItem(a, 8), &v), AEMP_EINVAL); /* none */
    /* exact writes: a new item, and one of the parser's set to another value */
    cJSON_AddItemToArray(a, aemp_json_create_int64(INT64_C(-9007199254740993)));
    CHECK_INT(aemp_json_set_int64(cJSON_GetArrayItem(a, 0), INT64_C(9007199254740995)), 0);
    CHECK_INT(aemp_json_set_int64(cJSON_GetArrayItem(a, 5), INT64_MAX), 0);
    /* a number changed with cJSON_SetNumberValue prints its double again */
    cJSON_SetNumberValue(cJSON_GetArrayItem(a, 2), 7);
    cJSON *notnum = cJSON_CreateString("1");
    CHECK_INT(aemp_json_set_int64(notnum, 1), AEMP_EINVAL);
    cJSON_Delete(notnum);
    char *t = aemp_json_print(a);
    CHECK_STR(t, "[9007199254740995,-9223372036854775808,7,9223372036854775808,12.5,"
                 "9223372036854775807,1e+18,123456789012345678901234567890,"
                 "-9007199254740993]");
    free(t);
    cJSON_Delete(a);
}

/* A string that is not valid UTF-8 is never passed on: the text is refused
 * on its own (framing_parse_value 3) and the stream goes on; valid UTF-8
 * and C0 80 (U+0000 inside the node) pass. */
static void test_invalid_utf8_refused(void)
{
    static const char *const bad[] = {
        "[\"x\",\"\xc3\x28\"]",             /* C3 then not a continuation */
        "[\"x\",\"a\xff\"]",                 /* FF */
        "[\"x\",\"\x80\"]",                  /* a stray continuation byte */
        "[\"x\",\"\xc0\xaf\"]",             /* overlong '/' */
        "[\"x\",\"\xc1\xbf\"]",             /* overlong */
        "[\"x\",\"\xe0\x80\xaf\"]",        /* overlong 3 bytes */
        "[\"x\",\"\xf0\x80\x80\xaf\"]",   /* overlong 4 bytes */
        "[\"x\",\"\xed\xa0\x80\"]",        /* surrogate U+D800 */
        "[\"x\",\"\xed\xbf\xbf\"]",        /* surrogate U+DFFF */
        "[\"x\",\"\xf4\x90\x80\x80\"]",   /* above U+10FFFF */
        "[\"x\",\"\xf5\x80\x80\x80\"]",   /* F5 */
        "[\"x\",\"\xe2\x82\"]",             /* cut short by the quote */
        "[\"x\",{\"\xfe\":1}]",              /* in a key */
        "[\"x\",\"0123456789abcdef0123\xc3\x28\"]", /* past the first 16 bytes */
    };
    static const char *const good[] = {
        "[\"x\",\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbf \xf4\x8f\xbf\xbf\"]",
        "[\"x\",\"a\xc0\x80\x62\"]", /* a U+0000 b (\x62: no hex digit may follow \x80) */
        "[\"x\",\"\xed\x9f\xbf\xee\x80\x80\"]", /* U+D7FF U+E000 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *o = NULL;
        size_t used = 0;
        int rc = framing_parse_value(bad[i], strlen(bad[i]), &o, &used);
        if (rc != 3) fprintf(stderr, "# bad[%zu]: %d\n", i, rc);
        CHECK_INT(rc, 3);
        CHECK(o == NULL);
        CHECK(aemp_json_parse(bad[i]) == NULL);
        /* in a stream, whole or byte by byte: the texts around it arrive */
        char in[256];
        int n = snprintf(in, sizeof in, "[\"a\"]%s[\"b\"]", bad[i]);
        for (size_t step = 1; step <= 256; step *= 256) {
            struct framing_reader *r = framing_reader_new(1 << 20);
            struct seen s = {0};
            char err[256] = "";
            int frc = 0;
            for (size_t k = 0; k < (size_t)n && frc == 0; k += step)
                frc = framing_reader_feed(r, in + k, (size_t)n - k < step ? (size_t)n - k : step,
                                          collect, &s, err, sizeof err);
            CHECK_INT(frc, 0);
            CHECK_STR(s.out, "[\"a\"]\n[\"b\"]\n");
            CHECK_INT(framing_reader_refused_utf8(r), 1);
            CHECK_INT(framing_reader_refused(r), 0);
            framing_reader_free(r);
        }
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cJSON *o = aemp_json_parse(good[i]);
        CHECK(o != NULL);
        cJSON_Delete(o);
    }
}

T_MAIN(T(test_whole), T(test_byte_by_byte), T(test_splits), T(test_keepalive), T(test_errors),
       T(test_oversize), T(test_stop), T(test_big_in_small_chunks), T(test_encode),
       T(test_throughput), T(test_nul_roundtrip), T(test_deep_refused), T(test_write_named),
       T(test_parsed_strings), T(test_write_refs), T(test_big_integers),
       T(test_invalid_utf8_refused))
