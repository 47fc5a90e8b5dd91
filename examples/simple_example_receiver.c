/* simple_example_receiver.c - eg/simple_example_receiver of AnyEvent::MP
 * 1.30 in C: a port in the group "eg_receivers" whose "test" callback prints
 * "Received data: DATA". It pairs with simple_example_sender, the C one or
 * the Perl one, in either direction. Beyond the Perl script it also prints
 * every message it gets as JSON ("PORT received: [...]") instead of dying
 * on an untagged one.
 *
 *   standalone:  simple_example_receiver [PROFILE]
 *   service:     aemp run services '["PATH/libsimple_example_receiver.so:simple_example_receiver_init"]'
 */
#define EG_SYMBOL simple_example_receiver
#define EG_USAGE "prints what simple_example_sender sends to the group eg_receivers"
#include "eg_common.h"

struct receiver {
    char *port;
    aemp_guard *reg;
};

static int on_message(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    char *text = cJSON_PrintUnformatted(msg);
    eg_say("%s received: %s\n", self, text ? text : "?");
    free(text);
    return 0;
}

/* rcv $port, test => sub { my ($data, $reply_port) = @_; print ... } */
static int on_test(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    const cJSON *data = cJSON_GetArrayItem(msg, 1);
    char *text = cJSON_IsString(data) ? NULL : cJSON_PrintUnformatted(data);
    eg_say("Received data: %s\n", text ? text : cJSON_IsString(data) ? data->valuestring : "");
    free(text);
    return on_message(node, self, msg, ud);
}

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state)
{
    struct receiver *r = calloc(1, sizeof *r);
    if (!r || !(r->port = aemp_port(node))) {
        free(r);
        return -1;
    }
    *state = r;
    const struct aemp_rcv_tag tags[] = {{NULL, on_message, r}, {"test", on_test, r}};
    int rc = aemp_rcv_tags(node, r->port, tags, 2);
    if (!rc) rc = aemp_grp_reg(node, "eg_receivers", r->port, &r->reg);
    if (rc) {
        fprintf(stderr, "simple_example_receiver: %s\n", aemp_strerror(rc));
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
