/* spawn.c - the function registry (the only code the network can make a
 * node run), spawn on the local node or a remote one, and services: the
 * init functions named in the "services" key, registered by name or loaded
 * from a shared object "PATH.so:SYMBOL". */
#include "core.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aemp_register(aemp_node *node, const char *name, aemp_func_fn fn, void *ud)
{
    if (!name || !*name || !fn) return AEMP_EINVAL;
    struct func *f = malloc(sizeof *f);
    void *old = NULL;
    if (!f) return AEMP_ENOMEM;
    f->fn = fn;
    f->ud = ud;
    if (strmap_put(&node->core->funcs, name, f, &old)) {
        free(f);
        return AEMP_ENOMEM;
    }
    free(old);
    return 0;
}

void spawn_run(aemp_node *node, const char *srcnode, const char *name, const char *func,
               const cJSON *args)
{
    char *self = core_port_id(node->id, name);
    if (!self) return;
    struct func *f = strmap_get(&node->core->funcs, func);
    if (strmap_get(&node->core->ports, name)) {
        /* Port names are never reused: a spawn onto a live port could only
         * hijack it. */
        aemp_log_peer(4, "spawn of %s as %s refused: that port exists", func, self);
    } else if (!f) {
        /* As 1.30 would die in the new port: nothing lives there, so
         * monitors of it learn no_such_port. */
        aemp_log_peer(4, "spawn of %s refused: no function of that name is registered", func);
    } else {
        const char *saved = node->core->caller;
        node->core->caller = srcnode;
        core_run_as(node, self, f->fn, args, f->ud);
        node->core->caller = saved;
    }
    free(self);
}

int spawn_call(aemp_node *node, const char *srcnode, const char *name, const cJSON *args)
{
    struct func *f = strmap_get(&node->core->funcs, name);
    if (!f) return AEMP_ENOENT;
    struct node_core *c = node->core;
    c->failmsg[0] = 0;
    const char *saved = c->caller;
    c->caller = srcnode;
    int rc = f->fn(node, NULL, args, f->ud);
    c->caller = saved;
    if (rc < 0) {
        aemp_log_peer(4, "function %s failed: %s", name,
                      c->failmsg[0] ? c->failmsg : "it reported failure");
        return AEMP_EPERM; /* its aemp_fail() text stays in c->failmsg */
    }
    return 0;
}

const char *aemp_caller(const aemp_node *node)
{
    return node->core->caller;
}

char *aemp_spawn(aemp_node *node, const char *nodeid, const char *func, cJSON *args)
{
    if (!args) args = cJSON_CreateArray();
    if (!nodeid || !*nodeid || strchr(nodeid, '#') || !func || !*func || !cJSON_IsArray(args)) {
        cJSON_Delete(args);
        return NULL;
    }
    char name[64];
    core_new_name(node, 1, name);
    char *id = core_port_id(nodeid, name);
    cJSON *msg = cJSON_CreateArray();
    if (!id || !msg) {
        free(id);
        cJSON_Delete(msg);
        cJSON_Delete(args);
        return NULL;
    }
    /* ["", "AnyEvent::MP::_spawn", NAME, FUNC, ARGS...]: for the local node
     * this goes through the local queue, so the function runs from the
     * loop, after anything sent before. */
    cJSON_AddItemToArray(msg, cJSON_CreateString(""));
    cJSON_AddItemToArray(msg, cJSON_CreateString("AnyEvent::MP::_spawn"));
    cJSON_AddItemToArray(msg, cJSON_CreateString(name));
    cJSON_AddItemToArray(msg, cJSON_CreateString(func));
    while (args->child)
        cJSON_AddItemToArray(msg, cJSON_DetachItemViaPointer(args, args->child));
    cJSON_Delete(args);
    core_send_node(node, nodeid, msg);
    return id;
}

/* ------------------------------------------------------------- services */

size_t spawn_so_path_len(const char *spec)
{
    const char *colon = strrchr(spec, ':');
    return colon && colon > spec && strstr(spec, ".so") ? (size_t)(colon - spec) : 0;
}

int spawn_is_registered(aemp_node *node, const char *name)
{
    return strmap_get(&node->core->funcs, name) != NULL;
}

static int service_start_args(aemp_node *node, const char *spec, const cJSON *args, char *err,
                              size_t errlen)
{
    size_t plen = spawn_so_path_len(spec);
    if (plen) {
        const char *colon = spec + plen;
        char *path = strndup(spec, plen);
        if (!path) return AEMP_ENOMEM;
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(err, errlen, "service %s: cannot load %s: %s", spec, path, dlerror());
            free(path);
            return AEMP_ENOENT;
        }
        free(path);
        struct node_core *c = node->core;
        void **dl = realloc(c->dl, (c->ndl + 1) * sizeof *dl);
        if (!dl) {
            dlclose(h);
            return AEMP_ENOMEM;
        }
        c->dl = dl;
        c->dl[c->ndl++] = h;
        void *sym = dlsym(h, colon + 1);
        if (!sym) {
            snprintf(err, errlen, "service %s: no symbol %s in the shared object", spec,
                     colon + 1);
            return AEMP_ENOENT;
        }
        aemp_service_init_fn init;
        memcpy(&init, &sym, sizeof init); /* object pointer to function pointer */
        if (init(node, args) < 0) {
            snprintf(err, errlen, "service %s: its init function reported failure", spec);
            return AEMP_EINVAL;
        }
        return 0;
    }
    struct func *f = strmap_get(&node->core->funcs, spec);
    if (!f) {
        snprintf(err, errlen,
                 "service %s: no such function is registered (use a registered name or "
                 "PATH.so:SYMBOL)",
                 spec);
        return AEMP_ENOENT;
    }
    node->core->failmsg[0] = 0;
    if (f->fn(node, NULL, args, f->ud) < 0) {
        snprintf(err, errlen, "service %s failed: %s", spec,
                 node->core->failmsg[0] ? node->core->failmsg : "it reported failure");
        return AEMP_EINVAL;
    }
    return 0;
}

int aemp_service_start(aemp_node *node, const char *spec, char *err, size_t errlen)
{
    cJSON *args = cJSON_CreateArray();
    int rc = args ? service_start_args(node, spec, args, err, errlen) : AEMP_ENOMEM;
    cJSON_Delete(args);
    return rc;
}

/* One entry of the "services" key: "SPEC" or ["SPEC", ARGS...]. */
int spawn_start_service_entry(aemp_node *node, const cJSON *s, char *err, size_t errlen)
{
    int rc;
    if (cJSON_IsString(s)) {
        rc = aemp_service_start(node, s->valuestring, err, errlen);
    } else if (cJSON_IsArray(s) && cJSON_IsString(s->child)) {
        cJSON *args = cJSON_Duplicate(s, 1);
        cJSON *spec = cJSON_DetachItemFromArray(args, 0);
        rc = service_start_args(node, spec->valuestring, args, err, errlen);
        cJSON_Delete(spec);
        cJSON_Delete(args);
    } else {
        snprintf(err, errlen, "services: an entry must be \"NAME\" or [\"NAME\", ARGS...]");
        rc = AEMP_ECONFIG;
    }
    return rc;
}

int spawn_start_services(aemp_node *node, char *err, size_t errlen)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node->cfg, "services");
    const cJSON *s;
    cJSON_ArrayForEach(s, list)
    {
        int rc = spawn_start_service_entry(node, s, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

void spawn_free_all(aemp_node *node)
{
    struct node_core *c = node->core;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&c->funcs, &it, &k, &v))
        free(v);
    strmap_free(&c->funcs);
    /* Shared objects stay loaded: their code may still be referenced by
     * function pointers the application holds. */
    free(c->dl);
    c->dl = NULL;
    c->ndl = 0;
}
