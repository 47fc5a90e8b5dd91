/* builtin.h - the built-in services every node runs: the parts of the
 * library above the kernel (AnyEvent::MP::Global, the log level of the
 * configuration, the log catcher, data connections). The kernel starts,
 * asks and frees them only through this table of operations and names none
 * of them; the layers above put themselves into the table
 * (services/builtins.c). Not public. */
#ifndef AEMP_BUILTIN_H
#define AEMP_BUILTIN_H

#include "aemp.h"

#include <stddef.h>

/* What a built-in service does at each step of a node's life; any of the
 * functions may be NULL. */
struct core_builtin {
    const char *name;
    /* A new node (aemp_node_new): 0 or an AEMP_E* code. */
    int (*init)(aemp_node *node);
    /* aemp_configure, before the transport starts; `cfg` (borrowed) is the
     * effective configuration. */
    void (*configure)(aemp_node *node, const cJSON *cfg);
    /* aemp_configure, once the transport started: 0, or an AEMP_E* code
     * with a message in err. */
    int (*start)(aemp_node *node, char *err, size_t errlen);
    /* aemp_node_free, before the transport goes: free the service's state
     * without calling back. */
    void (*free)(aemp_node *node);
    /* A node-port request ["", TAG, ARGS...] from `srcnode` (`args`: the
     * first argument or NULL, borrowed): 1 when the service took it. */
    int (*request)(aemp_node *node, const char *srcnode, const char *tag, const cJSON *args);
    /* 1 when a traced message to local port `name` must not reach the log
     * taps (it would be caught again). */
    int (*quiet_port)(aemp_node *node, const char *name);
};

/* The table, NULL-terminated, in start order (freed in reverse), at most
 * BUILTIN_MAX (node.h) entries. Defined above the kernel. */
extern const struct core_builtin *const core_builtins[];

/* The state of service `b` on `node` (NULL until set): the service's own. */
void *builtin_state(const aemp_node *node, const struct core_builtin *b);
void builtin_set_state(aemp_node *node, const struct core_builtin *b, void *state);

/* ---- for node.c and nodeport.c: each step for every service ---- */

int builtins_init(aemp_node *node);
void builtins_configure(aemp_node *node, const cJSON *cfg);
int builtins_start(aemp_node *node, char *err, size_t errlen);
void builtins_free(aemp_node *node);
/* 1 when a service took the node-port request. */
int builtins_request(aemp_node *node, const char *srcnode, const char *tag, const cJSON *args);
int builtins_quiet_port(aemp_node *node, const char *name);

#endif
