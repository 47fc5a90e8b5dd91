/* eg_sender.c - the sending half of the simple example: every second it
 * sends ["hi", N, NODEID] to every member of the group "eg_receivers" and
 * prints to how many ports it sent.
 *
 *   standalone:  eg_sender [PROFILE]
 *   service:     aemp run services '["PATH/libeg_sender.so:eg_sender_init"]'
 */
#define EG_SYMBOL eg_sender
#define EG_USAGE "sends [\"hi\", N, NODEID] to the group eg_receivers every second"
#include "eg_common.h"

struct sender {
    long n;
    aemp_guard *timer;
};

static void tick(aemp_node *node, void *ud)
{
    struct sender *s = ud;
    cJSON *members = aemp_grp_get(node, "eg_receivers");
    int sent = 0;
    s->n++;
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        if (!cJSON_IsString(m)) continue;
        cJSON *msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, cJSON_CreateString("hi"));
        cJSON_AddItemToArray(msg, cJSON_CreateNumber((double)s->n));
        cJSON_AddItemToArray(msg, cJSON_CreateString(aemp_node_id(node)));
        if (aemp_snd(node, m->valuestring, msg) == 0) sent++;
    }
    cJSON_Delete(members);
    eg_say("hi %ld: sent to %d receiver%s\n", s->n, sent, sent == 1 ? "" : "s");
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
    if (aemp_after(node, 1.0, tick, s, &s->timer)) return -1;
    eg_say("sender on %s: saying hi to the group eg_receivers every second\n",
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
