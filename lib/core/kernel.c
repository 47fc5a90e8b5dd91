/* kernel.c - the smaller helpers of 1.30's AnyEvent::MP::Kernel and
 * AnyEvent::MP that sit on top of the port core: port_is_local,
 * node_is_known, snd_on, snd_to_func, rcv with several tags, port with a
 * callback, peval and psub. */
#include "core.h"

#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aemp_port_is_local(const aemp_node *node, const char *port)
{
    const char *name;
    return port && *port && core_is_local(node, port, &name);
}

int aemp_node_is_known(aemp_node *node, const char *nodeid)
{
    if (!nodeid || !*nodeid) return 0;
    return !strcmp(nodeid, node->id) || transport_is_known(node->transport, nodeid);
}

/* A bare node ID: not empty, no '#'. */
static int is_nodeid(const char *nodeid)
{
    return nodeid && *nodeid && !strchr(nodeid, '#');
}

int aemp_snd_on(aemp_node *node, const char *nodeid, const char *port, cJSON *msg)
{
    if (!is_nodeid(nodeid) || !port || !*port || !cJSON_IsArray(msg)) {
        cJSON_Delete(msg);
        return AEMP_EINVAL;
    }
    cJSON_InsertItemInArray(msg, 0, cJSON_CreateString(port));
    cJSON_InsertItemInArray(msg, 0, cJSON_CreateString("snd"));
    return aemp_snd(node, nodeid, msg);
}

int aemp_snd_to_func(aemp_node *node, const char *nodeid, const char *func, cJSON *args)
{
    if (!args) args = cJSON_CreateArray();
    if (!is_nodeid(nodeid) || !func || !*func || !cJSON_IsArray(args)) {
        cJSON_Delete(args);
        return AEMP_EINVAL;
    }
    cJSON_InsertItemInArray(args, 0, cJSON_CreateString(func));
    return aemp_snd(node, nodeid, args);
}

int aemp_rcv_tags(aemp_node *node, const char *port, const struct aemp_rcv_tag *tags,
                  size_t n)
{
    const char *name;
    if (!port || !core_is_local(node, port, &name) || !*name || (n && !tags))
        return AEMP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = aemp_rcv(node, port, tags[i].tag, tags[i].fn, tags[i].ud);
        if (rc) return rc; /* only ENOMEM is left after the checks above */
    }
    return 0;
}

char *aemp_port_cb(aemp_node *node, aemp_rcv_fn fn, void *ud)
{
    if (!fn) return NULL;
    char *port = aemp_port(node);
    if (port && aemp_rcv(node, port, NULL, fn, ud)) {
        free(port);
        return NULL;
    }
    return port;
}

/* core_run_as() reports no result: this carries fn's. */
struct peval_call {
    aemp_func_fn fn;
    void *ud;
    int rc;
};

static int peval_tramp(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct peval_call *pc = ud;
    pc->rc = pc->fn(node, self, args, pc->ud);
    return pc->rc;
}

int aemp_peval(aemp_node *node, const char *port, aemp_func_fn fn, const cJSON *args,
               void *ud)
{
    if (!port || !*port || !fn) return AEMP_EINVAL;
    char *self = strdup(port); /* the port may die (and the caller free it) inside */
    if (!self) return AEMP_ENOMEM;
    struct peval_call pc = {fn, ud, 0};
    core_run_as(node, self, peval_tramp, args, &pc);
    free(self);
    return pc.rc;
}

struct aemp_psub {
    aemp_node *node;
    char *port;
    aemp_func_fn fn;
    void *ud;
};

aemp_psub *aemp_psub_new(aemp_node *node, const char *port, aemp_func_fn fn, void *ud)
{
    if (!port) port = aemp_self(node);
    if (!port || !*port || !fn) return NULL;
    aemp_psub *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->port = strdup(port))) {
        free(ps);
        return NULL;
    }
    ps->node = node;
    ps->fn = fn;
    ps->ud = ud;
    return ps;
}

int aemp_psub_call(aemp_psub *ps, const cJSON *args)
{
    if (!ps) return AEMP_EINVAL;
    const char *name;
    if (core_is_local(ps->node, ps->port, &name) && *name &&
        !strmap_get(&ps->node->core->ports, name))
        return AEMP_ENOENT;
    return aemp_peval(ps->node, ps->port, ps->fn, args, ps->ud);
}

const char *aemp_psub_port(const aemp_psub *ps)
{
    return ps ? ps->port : NULL;
}

void aemp_psub_free(aemp_psub *ps)
{
    if (!ps) return;
    free(ps->port);
    free(ps);
}

/* 1.30's configure(@args): an odd count starts with the profile. */
int aemp_configure_args(aemp_node *node, const cJSON *args, char *err, size_t errlen)
{
    if (args && !cJSON_IsArray(args)) {
        snprintf(err, errlen, "the configure arguments must be a JSON array");
        return AEMP_EINVAL;
    }
    const cJSON *it = args ? args->child : NULL;
    const char *profile = NULL;
    if (cJSON_GetArraySize(args) % 2) {
        if (!it || !cJSON_IsString(it) || !*it->valuestring) {
            snprintf(err, errlen,
                     "configure: with an odd number of arguments the first is the profile "
                     "name, a string");
            return AEMP_EINVAL;
        }
        profile = it->valuestring;
        it = it->next;
    }
    cJSON *kv = cJSON_CreateObject();
    if (!kv) return AEMP_ENOMEM;
    for (; it && it->next; it = it->next->next) {
        const cJSON *v = it->next;
        if (!cJSON_IsString(it) || (!strcmp(it->valuestring, "profile") && !cJSON_IsString(v))) {
            snprintf(err, errlen, "configure: %s must be a string",
                     cJSON_IsString(it) ? "the value of profile" : "every key");
            cJSON_Delete(kv);
            return AEMP_EINVAL;
        }
        if (!strcmp(it->valuestring, "profile")) {
            profile = v->valuestring;
            continue;
        }
        cJSON *dup = cJSON_Duplicate(v, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(kv, it->valuestring);
        if (!dup || !cJSON_AddItemToObject(kv, it->valuestring, dup)) {
            cJSON_Delete(dup);
            cJSON_Delete(kv);
            return AEMP_ENOMEM;
        }
    }
    int rc = aemp_configure(node, profile, kv, err, errlen);
    cJSON_Delete(kv);
    return rc;
}

/* ------------------------------------------------- flow control (flow.c) */

int aemp_on_drain(aemp_node *node, const char *dest, aemp_drain_fn fn, void *ud)
{
    return transport_on_drain(node ? node->transport : NULL, dest, fn, ud);
}

int aemp_drain_cancel(aemp_node *node, const char *dest, aemp_drain_fn fn, void *ud)
{
    return transport_drain_cancel(node ? node->transport : NULL, dest, fn, ud);
}

size_t aemp_queued(aemp_node *node, const char *dest)
{
    return transport_queued(node ? node->transport : NULL, dest);
}

int aemp_flow_marks(aemp_node *node, size_t high, size_t low)
{
    return transport_flow_marks(node ? node->transport : NULL, high, low);
}
