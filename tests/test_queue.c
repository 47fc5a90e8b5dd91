/* A message too big for the queue of a node being connected to: the node is
 * reported down from the event loop, never inside aemp_snd (whose caller may
 * be in the middle of its own work), and nothing is used after it is freed
 * (scan-build found the peer freed inside the send, then touched). */
#include "aemp.h"
#include "nettest.h"

#include <string.h>

static void test_oversized_first_message_to_unknown_node(void)
{
    struct event_base *base = event_base_new();
    /* max_message_size 1 MB: a queue for a node being connected to holds
     * 16 MB (4 x max_message_size, at least 16 MB) */
    aemp_node *a = aemp_node_new(base);
    cJSON *cfg = json("{\"nodeid\":\"node-a\",\"secret\":\"s3cret\",\"binds\":[],"
                      "\"monitor_timeout\":30,\"max_message_size\":1048576}");
    char err[256];
    int rc = aemp_configure_effective(a, cfg, err, sizeof err);
    if (rc) fprintf(stderr, "# configure: %s\n", err);
    CHECK_INT(rc, 0);
    cJSON_Delete(cfg);
    struct rec r = {0};
    aemp_guard *g = NULL;
    CHECK_INT(aemp_mon(a, "ghost#x", rec_mon, &r, &g), 0);
    /* more than the queue may hold */
    size_t n = 17u << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = 0;
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString(big));
    free(big);
    aemp_snd(a, "ghost#x", msg);
    CHECK_INT(r.calls, 0); /* not inside aemp_snd */
    run_until(base, &r.calls, 1, 10);
    CHECK_INT(r.calls, 1);
    char *why = r.last ? cJSON_PrintUnformatted(r.last) : NULL;
    if (!why || !strstr(why, "queued")) fprintf(stderr, "# reason: %s\n", why ? why : "(none)");
    CHECK(why && strstr(why, "queued")); /* the reason names the overflow */
    free(why);
    /* the node is usable afterwards: a small message to the same ghost */
    aemp_snd(a, "ghost#x", cJSON_CreateString("small"));
    event_base_loop(base, EVLOOP_NONBLOCK);
    aemp_guard_free(g);
    rec_free(&r);
    aemp_node_free(a);
    event_base_free(base);
}

T_MAIN(T(test_oversized_first_message_to_unknown_node))
