/* simple_example_sender.c - eg/simple_example_sender of AnyEvent::MP 1.30 in
 * C: at once and then every second it sends ["test", TIME] (TIME in whole
 * seconds since the epoch, like Perl's `time`) to every member of the group
 * "eg_receivers". It pairs with simple_example_receiver, the C one or the
 * Perl one, in either direction. Beyond the Perl script it prints to how
 * many ports it sent.
 *
 *   standalone:  simple_example_sender [PROFILE]
 *   service:     aemp run services '["PATH/libsimple_example_sender.so:simple_example_sender_init"]'
 */
#define EG_SYMBOL simple_example_sender
#define EG_USAGE "sends [\"test\", TIME] to the group eg_receivers every second"
#include "eg_common.h"

#include <time.h>

struct sender {
    aemp_guard *timer;
};

static void tick(aemp_node *node, void *ud)
{
    struct sender *s = ud;
    cJSON *members = aemp_grp_get(node, "eg_receivers");
    int sent = 0;
    double now = (double)time(NULL);
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        if (!cJSON_IsString(m)) continue;
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString("test"));
        cJSON_AddItemToArray(msg, cJSON_CreateNumber(now));
        if (aemp_snd(node, m->valuestring, msg) >= 0) sent++; /* 0 or AEMP_BUSY: queued */
    }
    cJSON_Delete(members);
    eg_say("test %.0f: sent to %d receiver%s\n", now, sent, sent == 1 ? "" : "s");
    /* The timer guard fired and is inert; free it and arm the next tick. */
    aemp_guard_free(s->timer);
    s->timer = NULL;
    aemp_after(node, 1.0, tick, s, &s->timer);
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct sender *s = calloc(1, sizeof *s);
    if (!s) return -1;
    *state = s;
    if (aemp_after(node, 0, tick, s, &s->timer)) return -1;
    eg_say("sender on %s: sending test => time to the group eg_receivers every second\n",
           aemp_node_id(node));
    return 0;
}

static void eg_free(void *state)
{
    struct sender *s = state;
    if (!s) return;
    aemp_guard_free(s->timer);
    free(s);
}
