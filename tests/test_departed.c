/* What a departed node leaves behind (issue 17 section 4), beside its
 * data-connection expectations (test_dataconn_limits): the monitors it set
 * on our ports (mon1) go when it goes down: no memory, and no kil0 queued
 * for it when those ports die later. White-box: the kernel's monitor
 * tables (core.h). */
#include "aemp.h"
#include "core.h"
#include "nettest.h"
#include "node.h"

#define PORTS 200

static void test_monitors_of_a_departed_node_go(void)
{
    struct event_base *base = event_base_new();
    aemp_node *b = mknode(base, "dep-b", 1, NULL, "s3cret", NULL, 10);
    aemp_node *a = mknode(base, "dep-a", 1, addr_of(b), "s3cret", NULL, 10);
    int never = 0;
    for (int i = 0; i < 200 && !aemp_node_is_up(a, "dep-b"); i++)
        run_until(base, &never, 1, 0.05);
    CHECK(aemp_node_is_up(a, "dep-b"));
    /* a monitors 200 ports of b (beside b's own monitors: Global's) */
    size_t m0 = b->core->mons.len;
    char *ports[PORTS];
    struct rec r = {0};
    for (int i = 0; i < PORTS; i++) {
        ports[i] = aemp_port(b);
        CHECK_INT(aemp_mon(a, ports[i], rec_mon, &r, NULL), 0);
    }
    for (int i = 0; i < 200 && b->core->mons.len < m0 + PORTS; i++)
        run_until(base, &never, 1, 0.05);
    CHECK_INT(b->core->mons.len, m0 + PORTS);
    CHECK(strmap_get(&b->core->monnodes, "dep-a") != NULL);
    /* a goes: b holds nothing for it any more */
    aemp_node_free(a);
    for (int i = 0; i < 200 && aemp_node_is_up(b, "dep-a"); i++)
        run_until(base, &never, 1, 0.05);
    CHECK(!aemp_node_is_up(b, "dep-a"));
    CHECK(b->core->mons.len <= m0);
    CHECK(strmap_get(&b->core->monnodes, "dep-a") == NULL);
    for (int i = 0; i < PORTS; i++) {
        aemp_kil(b, ports[i], NULL);
        free(ports[i]);
    }
    run_until(base, &never, 1, 0.1);
    CHECK(!aemp_node_is_up(b, "dep-a"));
    aemp_node_free(b);
    event_base_free(base);
}

T_MAIN(T(test_monitors_of_a_departed_node_go))
