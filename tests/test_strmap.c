/* Tests of the string map: insert, replace, delete, growth, iteration. */
#include "strmap.h"
#include "t.h"

static void test_basic(void)
{
    strmap m = STRMAP_INIT;
    int a = 1, b = 2;
    void *old = &a;
    CHECK(strmap_get(&m, "x") == NULL);
    CHECK_INT(strmap_put(&m, "x", &a, &old), 0);
    CHECK(old == NULL);
    CHECK(strmap_get(&m, "x") == &a);
    CHECK_INT(strmap_put(&m, "x", &b, &old), 0);
    CHECK(old == &a);
    CHECK(strmap_get(&m, "x") == &b);
    CHECK(strmap_del(&m, "x") == &b);
    CHECK(strmap_get(&m, "x") == NULL);
    CHECK_INT(m.len, 0);
    strmap_free(&m);
}

static void test_many(void)
{
    strmap m = STRMAP_INIT;
    char key[32];
    static int vals[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        vals[i] = i;
        CHECK_INT(strmap_put(&m, key, &vals[i], NULL), 0);
    }
    CHECK_INT(m.len, 20000);
    for (int i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK(strmap_del(&m, key) == &vals[i]);
    }
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        void *v = strmap_get(&m, key);
        bad += (i % 2) ? v != &vals[i] : v != NULL;
    }
    CHECK_INT(bad, 0);
    size_t it = 0, n = 0;
    const char *k;
    void *v;
    while (strmap_next(&m, &it, &k, &v)) n++;
    CHECK_INT(n, 10000);
    /* churn through tombstones without unbounded growth */
    for (int r = 0; r < 100000; r++) {
        snprintf(key, sizeof key, "c%d", r);
        strmap_put(&m, key, &vals[0], NULL);
        strmap_del(&m, key);
    }
    CHECK(m.cap <= 65536);
    strmap_free(&m);
}

T_MAIN(T(test_basic), T(test_many))
