/* eg_receiver.c - the receiving half of the simple example: a port that
 * prints every message it gets, registered in the group "eg_receivers" so
 * that eg_sender on any node of the network finds it.
 *
 *   standalone:  eg_receiver [PROFILE]
 *   service:     aemp run services '["PATH/libeg_receiver.so:eg_receiver_init"]'
 */
#define EG_SYMBOL eg_receiver
#define EG_USAGE "prints what eg_sender sends to the group eg_receivers"
#include "eg_common.h"

struct receiver {
    char *port;
    aemp_guard *reg;
    long count;
};

static int on_message(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct receiver *r = ud;
    char *text = cJSON_PrintUnformatted(msg);
    r->count++;
    eg_say("%s received: %s\n", self, text ? text : "?");
    free(text);
    return 0;
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct receiver *r = calloc(1, sizeof *r);
    if (!r || !(r->port = aemp_port(node))) {
        free(r);
        return -1;
    }
    *state = r;
    int rc = aemp_rcv(node, r->port, NULL, on_message, r);
    if (!rc) rc = aemp_grp_reg(node, "eg_receivers", r->port, &r->reg);
    if (rc) {
        fprintf(stderr, "eg_receiver: %s\n", aemp_strerror(rc));
        return -1;
    }
    eg_say("receiver %s ready (group eg_receivers)\n", r->port);
    return 0;
}

static void eg_free(void *state)
{
    struct receiver *r = state;
    if (!r) return;
    aemp_guard_free(r->reg);
    free(r->port);
    free(r);
}
