/* fuzz_handlers - libFuzzer target for what an authenticated peer's
 * messages make a node do: structured messages through the real node-port
 * handler (kil, mon1/mon0, kil0, snd relays, spawn, info, time, ...) and the
 * real Global rendezvous port (addr, nodes, set, find, reg0/reg1, seedme),
 * delivered as the transport delivers them, then the event loop runs what
 * they queued. The node lives in a network namespace of its own.
 *
 * Input: one byte choosing the port (even: node port, odd: a Global port
 * spawned for the sending node), then a JSON text; an array is the message
 * without its port name, anything else is wrapped as its only element. */
#include "aemp.h"
#include "framing.h"
#include "fuzz_netns.h"
#include "node.h"

#include <event2/event.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static aemp_node *node;
static unsigned long seq;

/* A spawned test function: its port echoes every message back to the last
 * element, if that is a port ID. */
static int echo(aemp_node *n, const char *self, const cJSON *msg, void *ud)
{
    const cJSON *last = cJSON_GetArrayItem(msg, cJSON_GetArraySize(msg) - 1);
    if (cJSON_IsString(last)) aemp_snd(n, last->valuestring, cJSON_Duplicate(msg, 1));
    return 0;
}

static int fz_fn(aemp_node *n, const char *self, const cJSON *args, void *ud)
{
    return self ? aemp_rcv(n, self, NULL, echo, NULL) : 0;
}

static int skip;

static void setup(void)
{
    if (fuzz_netns()) {
        skip = 1;
        return;
    }
    aemp_log_set_level(1);
    node = aemp_node_new(NULL);
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"fz\",\"binds\":[],\"seeds\":[],"
                             "\"monitor_timeout\":1,\"connect_interval\":0.1}");
    char err[256];
    if (!node || aemp_configure_effective(node, cfg, err, sizeof err)) abort();
    cJSON_Delete(cfg);
    aemp_register(node, "fz::fn", fz_fn, NULL);
}

static void run_loop(void)
{
    for (int i = 0; i < 4; i++) event_base_loop(aemp_node_base(node), EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!node && !skip) setup();
    if (skip) return 0;
    if (size < 1) return 0;
    int global = data[0] & 1;
    cJSON *in = framing_parse((const char *)data + 1, size - 1);
    if (!in) return 0;
    cJSON *msg;
    if (cJSON_IsArray(in)) {
        msg = in;
    } else {
        msg = cJSON_CreateArray();
        cJSON_AddItemToArray(msg, in);
    }
    char name[64];
    if (global) {
        /* a rendezvous port spawned by the sending node, as Global does */
        snprintf(name, sizeof name, "gc%lu", ++seq);
        cJSON *sp = cJSON_Parse("[\"\",\"AnyEvent::MP::_spawn\",\"\","
                                "\"AnyEvent::MP::Global::connect\",0,\"fzpeer\"]");
        cJSON_ReplaceItemInArray(sp, 2, cJSON_CreateString(name));
        node_deliver(node, "fzpeer", sp);
    } else {
        name[0] = 0;
    }
    cJSON_InsertItemInArray(msg, 0, cJSON_CreateString(name));
    node_deliver(node, "fzpeer", msg);
    run_loop();
    if (global) {
        char id[96];
        snprintf(id, sizeof id, "fz#%s", name);
        aemp_kil(node, id, NULL);
        run_loop();
    }
    return 0;
}
