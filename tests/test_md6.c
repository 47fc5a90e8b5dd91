/* Tests of MD6 and HMAC-MD6-256 against the vectors taken from the real
 * Digest::MD6 / AnyEvent::MP 1.30 (tests/vectors/md6.json, hmac_md6.json).
 * The vector directory comes from $AEMP_VECTORS (default "tests/vectors"). */
#include "md6.h"
#include "t.h"

#include <cjson/cJSON.h>
#include <time.h>

/* Reads and parses one vector file; NULL (and a failed check) on error. */
static cJSON *load_json(const char *name)
{
    const char *dir = getenv("AEMP_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/vectors", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "# cannot open %s\n", path);
        CHECK(f != NULL);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (!n) break;
        len += n;
    }
    fclose(f);
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    CHECK(j != NULL);
    return j;
}

/* The string member `key` of object o, or NULL. */
static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Decodes hex into a malloc'd buffer (at least one byte); *n gets the length. */
static unsigned char *unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex) / 2;
    unsigned char *b = malloc(len + 1);
    if (!b) abort();
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    *n = len;
    return b;
}

/* Lowercase hex of n bytes into hex[2n+1]. */
static void tohex(const unsigned char *b, size_t n, char *hex)
{
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", b[i]);
    hex[2 * n] = 0;
}

/* The "seq7" generator: byte i = (i*7 + 3) mod 256. */
static unsigned char *seq7(size_t len)
{
    unsigned char *b = malloc(len + 1);
    if (!b) abort();
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)((i * 7 + 3) % 256);
    return b;
}

/* Every MD6 vector, for its digest size; 256-bit ones also via md6_256_hex. */
static void test_md6_vectors(void)
{
    cJSON *j = load_json("md6.json");
    if (!j) return;
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(j, "vectors");
    CHECK(cJSON_IsArray(vs));
    int count = 0, sizes[4] = {0};
    const cJSON *v;
    cJSON_ArrayForEach(v, vs)
    {
        const char *name = jstr(v, "name"), *want = jstr(v, "md6_hex");
        const char *ihex = jstr(v, "input_hex"), *gen = jstr(v, "generator");
        const cJSON *jbits = cJSON_GetObjectItemCaseSensitive(v, "bits");
        const cJSON *jlen = cJSON_GetObjectItemCaseSensitive(v, "len");
        CHECK(name && want && cJSON_IsNumber(jbits) && cJSON_IsNumber(jlen));
        if (!name || !want || !cJSON_IsNumber(jbits) || !cJSON_IsNumber(jlen)) continue;
        unsigned bits = (unsigned)jbits->valueint;
        size_t len = (size_t)jlen->valuedouble;
        unsigned char *in;
        if (gen) {
            CHECK_STR(gen, "seq7");
            in = seq7(len);
            if (ihex) { /* the given bytes must agree with the generator */
                size_t n;
                unsigned char *given = unhex(ihex, &n);
                CHECK_INT(n, len);
                CHECK(n == len && memcmp(given, in, len) == 0);
                free(given);
            }
        } else {
            size_t n;
            CHECK(ihex != NULL);
            in = unhex(ihex ? ihex : "", &n);
            CHECK_INT(n, len);
            if (n != len) {
                free(in);
                continue;
            }
        }
        CHECK_INT(strlen(want), bits / 4);
        unsigned char out[64];
        char hex[129];
        CHECK_INT(md6_hash(bits, in, len, out), 0);
        tohex(out, bits / 8, hex);
        if (strcmp(hex, want)) fprintf(stderr, "# vector %s (bits %u, len %zu)\n", name, bits, len);
        CHECK_STR(hex, want);
        if (bits == 256) {
            char h2[65];
            md6_256_hex(in, len, h2);
            CHECK_STR(h2, want);
        }
        sizes[bits == 224 ? 0 : bits == 256 ? 1 : bits == 384 ? 2 : 3]++;
        free(in);
        count++;
    }
    printf("# %d md6 vectors (224: %d, 256: %d, 384: %d, 512: %d)\n", count, sizes[0], sizes[1],
           sizes[2], sizes[3]);
    CHECK(count >= 40);
    CHECK(sizes[0] && sizes[1] && sizes[2] && sizes[3]);
    cJSON_Delete(j);
}

/* Digest sizes that are not 8..512 in steps of 8 are refused. */
static void test_md6_bad_bits(void)
{
    unsigned char out[80];
    CHECK_INT(md6_hash(0, "abc", 3, out), -1);
    CHECK_INT(md6_hash(7, "abc", 3, out), -1);
    CHECK_INT(md6_hash(255, "abc", 3, out), -1);
    CHECK_INT(md6_hash(520, "abc", 3, out), -1);
    CHECK_INT(md6_hash(8, "abc", 3, out), 0);
    CHECK_INT(md6_hash(512, "abc", 3, out), 0);
}

/* Joins two greeting lines (each + LF) of two greetings: a || b. */
static char *greetings(const cJSON *a, const cJSON *b)
{
    size_t n = 1;
    const cJSON *parts[2] = {a, b}, *l;
    for (int i = 0; i < 2; i++)
        cJSON_ArrayForEach(l, parts[i]) n += strlen(l->valuestring) + 1;
    char *s = malloc(n);
    if (!s) abort();
    *s = 0;
    for (int i = 0; i < 2; i++)
        cJSON_ArrayForEach(l, parts[i])
        {
            strcat(s, l->valuestring);
            strcat(s, "\n");
        }
    return s;
}

/* One hmac_md6_64_256 vector: intermediates, lauth and rauth. */
static void check_hmac_vector(const cJSON *v)
{
    const char *keytext = jstr(v, "hmac_key_text_for_lauth"), *lauth = jstr(v, "lauth");
    const char *rauth = jstr(v, "rauth"), *shex = jstr(v, "secret_hex");
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(v, "intermediate_for_lauth");
    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(v, "local_greeting");
    const cJSON *rg = cJSON_GetObjectItemCaseSensitive(v, "remote_greeting");
    CHECK(keytext && lauth && rauth && shex && im && cJSON_IsArray(lg) && cJSON_IsArray(rg));
    if (!keytext || !lauth || !rauth || !shex || !im || !cJSON_IsArray(lg) || !cJSON_IsArray(rg))
        return;

    size_t slen;
    unsigned char *secret = unhex(shex, &slen);
    unsigned char m[32];
    char hex[129];
    md6_hash(256, secret, slen, m);
    tohex(m, 32, hex);
    CHECK_STR(hex, jstr(im, "md6_256_of_secret_hex"));

    /* The intermediates, computed here step by step for debugging. */
    size_t klen = strlen(keytext);
    unsigned char k[64] = {0}, blk[96];
    if (klen > 64)
        md6_hash(256, keytext, klen, k);
    else
        memcpy(k, keytext, klen);
    tohex(k, 64, hex);
    CHECK_STR(hex, jstr(im, "hmac_key_64_bytes_hex"));
    for (int i = 0; i < 64; i++)
        blk[i] = k[i] ^ 0x36;
    memcpy(blk + 64, m, 32);
    unsigned char inner[32];
    md6_hash(256, blk, 96, inner);
    tohex(inner, 32, hex);
    CHECK_STR(hex, jstr(im, "inner_md6_256_hex"));

    char tok[65];
    hmac_md6_256_hex(keytext, klen, m, 32, tok);
    CHECK_STR(tok, lauth);

    /* L || R from the greetings is the same key text; R || L gives rauth. */
    char *lr = greetings(lg, rg), *rl = greetings(rg, lg);
    CHECK_STR(lr, keytext);
    hmac_md6_256_hex(rl, strlen(rl), m, 32, tok);
    CHECK_STR(tok, rauth);
    free(lr);
    free(rl);
    free(secret);
}

/* All sections of hmac_md6.json: synthetic, captured, the POD example. */
static void test_hmac_vectors(void)
{
    cJSON *j = load_json("hmac_md6.json");
    if (!j) return;
    int count = 0;
    const char *sections[] = {"vectors", "captured"};
    for (int s = 0; s < 2; s++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, sections[s]), *v;
        CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0);
        cJSON_ArrayForEach(v, arr)
        {
            check_hmac_vector(v);
            count++;
        }
    }
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(j, "transport_pod_full_example");
    CHECK(cJSON_IsObject(pod));
    if (cJSON_IsObject(pod)) {
        check_hmac_vector(pod);
        count++;
    }
    printf("# %d hmac vectors\n", count);
    cJSON_Delete(j);
}

/* HMAC with short keys (no pre-hash) follows RFC 2104 composition. */
static void test_hmac_short_key(void)
{
    /* Key of exactly 64 bytes is used as is, 65 is hashed: results differ. */
    unsigned char key[65];
    memset(key, 'k', sizeof key);
    char a[65], b[65];
    hmac_md6_256_hex(key, 64, "m", 1, a);
    hmac_md6_256_hex(key, 65, "m", 1, b);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(strlen(a), 64);
}

/* A 100000-byte MD6-256 must be quick (the bound is loose for sanitizers). */
static void test_md6_speed(void)
{
    unsigned char *in = seq7(100000), out[32];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10; i++)
        md6_hash(256, in, 100000, out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 10;
    printf("# md6-256 of 100000 bytes: %.2f ms\n", ms);
    CHECK(ms < 500);
    free(in);
}

T_MAIN(T(test_md6_vectors), T(test_md6_bad_bits), T(test_hmac_vectors), T(test_hmac_short_key),
       T(test_md6_speed))
