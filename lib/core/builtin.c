/* builtin.c - the kernel's walk over its table of built-in services
 * (builtin.h): each step of a node's life for every service, and each
 * service's slot of state on the node. */
#include "builtin.h"

#include "core.h"

#include <stdlib.h>

/* The index of `b` in the table (a programming error when absent). */
static size_t index_of(const struct core_builtin *b)
{
    for (size_t i = 0; core_builtins[i]; i++)
        if (core_builtins[i] == b) return i;
    abort();
}

void *builtin_state(const aemp_node *node, const struct core_builtin *b)
{
    return node->builtin[index_of(b)];
}

void builtin_set_state(aemp_node *node, const struct core_builtin *b, void *state)
{
    node->builtin[index_of(b)] = state;
}

int builtins_init(aemp_node *node)
{
    for (size_t i = 0; core_builtins[i]; i++) {
        if (i >= BUILTIN_MAX) abort();
        int rc = core_builtins[i]->init ? core_builtins[i]->init(node) : 0;
        if (rc) return rc;
    }
    return 0;
}

void builtins_configure(aemp_node *node, const cJSON *cfg)
{
    for (size_t i = 0; core_builtins[i]; i++)
        if (core_builtins[i]->configure) core_builtins[i]->configure(node, cfg);
}

int builtins_start(aemp_node *node, char *err, size_t errlen)
{
    for (size_t i = 0; core_builtins[i]; i++) {
        int rc = core_builtins[i]->start ? core_builtins[i]->start(node, err, errlen) : 0;
        if (rc) return rc;
    }
    return 0;
}

void builtins_free(aemp_node *node)
{
    size_t n = 0;
    while (core_builtins[n])
        n++;
    while (n--)
        if (core_builtins[n]->free) core_builtins[n]->free(node);
}

int builtins_request(aemp_node *node, const char *srcnode, const char *tag, const cJSON *args)
{
    for (size_t i = 0; core_builtins[i]; i++)
        if (core_builtins[i]->request && core_builtins[i]->request(node, srcnode, tag, args))
            return 1;
    return 0;
}

int builtins_quiet_port(aemp_node *node, const char *name)
{
    for (size_t i = 0; core_builtins[i]; i++)
        if (core_builtins[i]->quiet_port && core_builtins[i]->quiet_port(node, name)) return 1;
    return 0;
}
