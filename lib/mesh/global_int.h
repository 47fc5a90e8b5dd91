/* global_int.h - the state of AnyEvent::MP::Global shared by its two
 * modules: global.c (the mesh: rendezvous ports, addresses, master, seeds)
 * and groups.c (port groups: members, local registrations, watchers).
 * Internal, not installed. */
#ifndef AEMP_GLOBAL_INT_H
#define AEMP_GLOBAL_INT_H

#include "builtin.h"
#include "core.h"
#include "global.h"
#include "strmap.h"

#include <cjson/cJSON.h>

/* A local registration (grp_reg). */
struct reg {
    struct reg *next, *prev;
    char *group, *port;
    aemp_guard *mon;  /* our monitor on the port */
    aemp_guard *user; /* the guard handed to the caller, or NULL */
    struct global *g;
};

/* The groups with members on one node: group -> how many (uintptr_t). */
struct nodegroups {
    strmap groups;
};

/* A grp_mon watcher, in its group's list from the start; it hears of
 * changes once its first call (from the loop, as 1.30) has been made. */
struct gmon {
    struct gmon *next, *prev;
    struct group *gr;
    char *group;
    aemp_grp_fn fn;
    void *ud;
    aemp_guard *delay; /* the pending first call, NULL once made */
    aemp_guard *user;
};

/* A group as this node sees it network-wide. */
struct group {
    cJSON *members;    /* array of port IDs */
    struct gmon *mons; /* watchers */
};

/* The other side of a rendezvous port we serve (connect on our node). */
struct peerctx {
    struct peerctx *next, *prev; /* in the global's list */
    struct global *g;
    char *nodeid;    /* the node that spawned it */
    char *self;      /* the rendezvous port on our node */
    aemp_guard *mon; /* our monitor of that node */
    int introduced;  /* unknown nodes it told us of (MAX_INTRODUCED) */
};

struct global {
    aemp_node *node;
    strmap addr;   /* node ID -> cJSON array of its listen addresses */
    strmap port;   /* node ID -> our rendezvous port on it (char *) */
    strmap portmon;/* node ID -> aemp_guard of our monitor on that port */
    strmap seedme; /* node IDs that asked us to seed them (value unused) */
    strmap groups; /* group -> struct group */
    struct reg *regs;
    strmap fwd;    /* node ID -> cJSON addresses it told us, not yet passed
                    * on to the nodes we seed (fwd_due) */
    aemp_guard *fwd_timer;
    struct peerctx *pcs;
    char *master;
    int nodecnt;
    strmap memberships; /* node ID -> struct nodegroups: a node leaving costs
                         * the groups it has members in, nothing else */
    unsigned long connect_refused; /* refused Global::connect not yet logged */
    double connect_logged;          /* when one was last logged */
    strmap up;     /* node IDs that are up (value unused): picking a master
                    * costs the up nodes, not every node the transport knows */
    strmap told;   /* node IDs our current master told us of, or we told it
                    * of (value unused); emptied when the master changes */
    aemp_guard *report; /* the pending report to the master (report_due) */
    aemp_guard *nodemon;
};

/* ["TAG"] or ["TAG", ARG (taken)] */
static inline cJSON *mk(const char *tag, cJSON *arg)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(tag));
    if (arg) cJSON_AddItemToArray(m, arg);
    return m;
}

/* The node's Global state, NULL before the service started. */
static inline struct global *global_of(const aemp_node *node)
{
    return builtin_state(node, &global_builtin);
}

/* ---- groups.c ---- */

/* Apply additions and removals (borrowed arrays of port IDs) to `group`
 * and tell its watchers what really changed. */
void groups_change(struct global *g, const char *group, const cJSON *add, const cJSON *del);

/* Every member on node `nodeid` leaves its groups; costs the groups that
 * node has members in, nothing else. */
void groups_unreg_node(struct global *g, const char *nodeid);

/* {GROUP: [LOCALPORTS]...} of our own registrations (new), or NULL if none. */
cJSON *groups_local_object(struct global *g);

/* Free registrations, groups and watchers; no callbacks, no messages. */
void groups_free(struct global *g);

#endif
