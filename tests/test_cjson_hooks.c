/* test_cjson_hooks.c - a program that gives cJSON its own allocator
 * (cJSON_InitHooks) can use libaemp: every cJSON node, key and string the
 * library hands out or takes back comes from and goes back to those hooks.
 * The hooks here put a tag before each block and abort on a free of a block
 * without it (a node the parser made with plain malloc, a printed string
 * freed with plain free, ...), and count what is still allocated. */
#include "aemp.h"
#include "framing.h"
#include "nettest.h"

#include <stdint.h>

#define TAG 0x6a736f6e686f6f6bULL /* "jsonhook" */
#define HEAD 16                   /* keeps the block's alignment */

static long live;

static void *hook_malloc(size_t n)
{
    unsigned char *p = malloc(n + HEAD);
    if (!p) return NULL;
    uint64_t tag = TAG;
    memcpy(p, &tag, sizeof tag);
    live++;
    return p + HEAD;
}

static void hook_free(void *q)
{
    if (!q) return;
    unsigned char *p = (unsigned char *)q - HEAD;
    uint64_t tag;
    memcpy(&tag, p, sizeof tag);
    if (tag != TAG) {
        fprintf(stderr, "# %s: a block cJSON frees did not come from its hooks\n", t_current);
        abort();
    }
    memset(p, 0, sizeof tag);
    live--;
    free(p);
}

static void test_parser_nodes_come_from_the_hooks(void)
{
    long before = live;
    const char text[] = "[\"a\",{\"k\":\"v\",\"big\":12345678901234567,\"esc\":\"x\\u0000y\\n\"},"
                        "[1,2.5,-7e3,\"\"],true,false,null]";
    cJSON *m = framing_parse(text, sizeof text - 1);
    CHECK(m != NULL);
    const cJSON *o = cJSON_GetArrayItem(m, 1);
    cJSON *big = cJSON_GetObjectItemCaseSensitive(o, "big");
    int64_t v = 0;
    CHECK_INT(aemp_json_get_int64(big, &v), 0);
    CHECK(v == 12345678901234567LL);
    /* new digits replace the parser's: allocated and later freed by cJSON */
    CHECK_INT(aemp_json_set_int64(big, INT64_MAX), 0);
    CHECK_INT(aemp_json_set_int64(big, -5), 0);
    cJSON_Delete(m);
    cJSON *n = aemp_json_create_int64(INT64_MIN);
    CHECK(n != NULL);
    CHECK_INT(aemp_json_set_int64(n, 9007199254740993LL), 0);
    cJSON_Delete(n);
    /* refused part-way: the unfinished tree (keys, strings) is freed */
    CHECK(framing_parse("[\"a\",{\"k\":[1,\"s\",{\"q\":x", 22) == NULL);
    CHECK(framing_parse("[\"a\",{\"key\":\"\\uZZZZ\"}]", 22) == NULL);
    CHECK_INT(live, before);
}

static void test_messages_between_nodes(void)
{
    long before = live;
    struct event_base *base = event_base_new();
    /* monitor_timeout 1: a silent link is probed after 0.5 s */
    aemp_node *a = mknode(base, "hooks-a", 1, NULL, "s3cret", NULL, 1);
    aemp_node *b = mknode(base, "hooks-b", 0, addr_of(a), "s3cret", NULL, 1);
    CHECK(a && b);
    aemp_trace_set(a, 1); /* traced messages are printed and freed */
    aemp_trace_set(b, 1);
    char *pa = aemp_port(a);
    struct rec ra = {0}, mb = {0};
    aemp_rcv(a, pa, NULL, rec_rcv, &ra);
    CHECK_INT(aemp_snd(b, pa, json("[\"tag\",{\"n\":18446744073709551615,\"s\":\"\\u0000\"},[\"x\"]]")), 0);
    CHECK(run_until(base, &ra.calls, 1, 10));
    CHECK(json_is(ra.last, "[\"tag\",{\"n\":18446744073709551615,\"s\":\"\\u0000\"},[\"x\"]]"));
    /* a monitor's reason travels back: kil0 parsed on b */
    aemp_mon(b, pa, rec_mon, &mb, NULL);
    run_until(base, NULL, 0, 0.1);
    aemp_kil(a, pa, json("[\"done\",{\"why\":\"test\"}]"));
    CHECK(run_until(base, &mb.calls, 1, 10));
    CHECK(json_is(mb.last, "[\"done\",{\"why\":\"test\"}]"));
    /* idle: probes go out (printed, freed) and are answered */
    run_until(base, NULL, 0, 1.5);
    CHECK(aemp_node_is_up(a, "hooks-b") && aemp_node_is_up(b, "hooks-a"));
    rec_free(&ra);
    rec_free(&mb);
    free(pa);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
    CHECK_INT(live, before);
}

int main(int argc, char **argv)
{
    /* the two nodes share a host: without this they would watch each
     * other's heartbeat page (net/hostbeat.c) and never probe */
    setenv("AEMP_HOSTBEAT", "0", 1);
    /* before anything allocates a cJSON node */
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
    static const struct t_case cases[] = {T(test_parser_nodes_come_from_the_hooks),
                                          T(test_messages_between_nodes)};
    return t_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
