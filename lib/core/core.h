/* core.h - the state behind the public port API, shared by the modules that
 * implement it (node.c, mon.c, spawn.c, cal.c, nodeport.c). Not public.
 *
 * Everything here runs on the node's one event loop. Local messages go
 * through a FIFO drained from an event, never inside aemp_snd(), so a
 * callback never runs inside another callback's snd. */
#ifndef AEMP_CORE_H
#define AEMP_CORE_H

#include "log.h"
#include "node.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>

/* A tagged callback of a port (few per port: a list is enough). */
struct tagcb {
    struct tagcb *next;
    char *tag;
    aemp_rcv_fn fn;
    void *ud;
};

/* A live local port. */
struct port {
    aemp_rcv_fn fn; /* default callback or NULL */
    void *ud;
    struct tagcb *tags;
};

/* Work queued for the event loop, in order: a message [PORTNAME, ...] to a
 * local port (msg != NULL, name NULL), a message to port `name` whose array
 * holds only the elements after the port name (msg and name set: aemp_snd
 * inserts nothing), or a check that a monitored port exists (msg NULL).
 * Items are recycled through a free list (node.c). */
struct qitem {
    struct qitem *next;
    char *srcnode; /* the sending node (owned), NULL for our own node */
    char *name;    /* NULL, nbuf, or an owned copy of a long name */
    cJSON *msg;    /* owned */
    char nbuf[40];
};

/* A registered function (spawn target, node-port call, service). */
struct func {
    aemp_func_fn fn;
    void *ud;
};

/* An aemp_at_free() callback. */
struct atfree {
    struct atfree *next;
    void (*release)(void *ud);
    void *ud;
};

/* A node up/down listener (aemp_mon_nodes). */
struct nodemon {
    struct nodemon *next, *prev;
    aemp_node_mon_fn fn; /* NULL: released during a walk, to be swept */
    void *ud;
};

struct aemp_guard {
    aemp_node *node;                   /* NULL once the node is freed */
    void *target;                      /* NULL once it fired or was released */
    void (*cancel)(aemp_guard *guard); /* releases target */
    aemp_guard *next, *prev;           /* in the node's list of live guards */
};

struct node_core {
    strmap ports;   /* port name -> struct port */
    strmap mons;    /* watched port ID -> struct monlist (mon.c) */
    strmap monnodes; /* node ID -> struct nodeidx: its lists and mon1s (mon.c) */
    strmap funcs;   /* function name -> struct func */
    struct qitem *qhead, *qtail;
    struct qitem *qfree;    /* recycled queue items (at most QFREE_MAX) */
    size_t nqfree;
    struct event *qev;
    char cookie[24];        /* per-start random part of port names */
    unsigned long long ctr; /* port counter */
    char scookie[24];       /* per-start random part of spawned port names */
    unsigned long long sctr;
    const char *self;       /* $SELF while a port callback runs */
    const char *caller;     /* aemp_caller(): the node that sent what runs */
    char failmsg[512];      /* aemp_fail() text of the running callback */
    struct timer *timers;   /* pending aemp_after() timers (cal.c) */
    struct call *calls;     /* outstanding aemp_cal() calls (cal.c) */
    struct nodemon *nodemons;
    int nm_busy;            /* nodemons are being walked */
    aemp_guard *guards;     /* every guard not yet freed */
    struct atfree *atfree;  /* aemp_at_free() callbacks, newest first */
    void **dl;              /* dlopen() handles of services */
    size_t ndl;
    int trace;
};

/* ---- node.c ---- */

/* "NODEID#NAME" as a new string (caller frees), NULL when out of memory. */
char *core_port_id(const char *nodeid, const char *name);
/* Queue a message [PORTNAME, ...] (taken) for local delivery from the loop. */
void core_enqueue(aemp_node *node, const char *srcnode, cJSON *msg);
/* Queue a "does local port NAME exist?" check that fires no_such_port. */
void core_enqueue_check(aemp_node *node, const char *name);
/* A new port name: the node's per-start cookie and a counter (or the spawn
 * cookie when `spawn`). Writes into buf[64]. */
void core_new_name(aemp_node *node, int spawn, char buf[64]);
/* 1 when `port` (a full ID) lives on this node; *name gets the part after
 * '#' ("" for a bare node ID). */
int core_is_local(const aemp_node *node, const char *port, const char **name);
/* Send [PORTNAME, ...] (taken) to node `nodeid`, local or remote. */
void core_send_node(aemp_node *node, const char *nodeid, cJSON *msg);
/* Kill local port `name` with `reason` (taken array, empty = normal). */
void core_kill_local(aemp_node *node, const char *name, cJSON *reason);
/* Run `fn` as port `self`'s code: $SELF set, failure kills `self` with
 * ["die", MESSAGE]. Used for port callbacks and spawned functions. `self`
 * is the caller's string and must outlive the call (the port may die in
 * it). */
void core_run_as(aemp_node *node, const char *self, aemp_func_fn fn, const cJSON *args,
                 void *ud);
/* Log a traced message when tracing is on. */
void core_trace(aemp_node *node, const char *what, const char *peer, const cJSON *msg);

/* ---- mon.c ---- */

/* New guard for a target; `cancel` is called by aemp_guard_free() while the
 * target is live. */
aemp_guard *guard_new(aemp_node *node, void (*cancel)(aemp_guard *), void *target);
/* The target fired or went away: the guard becomes inert. NULL-safe. */
void guard_detach(aemp_guard *guard);
/* Fire every monitor on `port` (full ID) with `reason` (borrowed). */
void mon_fire(aemp_node *node, const char *port, const cJSON *reason);
/* Fire every monitor on any port of `nodeid` (and on the bare ID). */
void mon_fire_node(aemp_node *node, const char *nodeid, const cJSON *reason);
/* `srcnode` monitors our local port `name` (mon1) / stops (mon0). */
void mon_remote_add(aemp_node *node, const char *srcnode, const char *name);
void mon_remote_del(aemp_node *node, const char *srcnode, const char *name);
void mon_free_all(aemp_node *node);

/* ---- cal.c ---- */

/* Free pending timers and calls without calling back. */
void cal_free_all(aemp_node *node);

/* ---- spawn.c ---- */

/* Run ["AnyEvent::MP::_spawn"-style] spawn of `func` as port `name` with
 * `args` (borrowed array), requested by node `srcnode` (aemp_caller()). */
void spawn_run(aemp_node *node, const char *srcnode, const char *name, const char *func,
               const cJSON *args);
/* Call the registered function `name` with `args` (borrowed) for node
 * `srcnode`; 0, AEMP_ENOENT when no such function is registered, or
 * AEMP_EPERM when it failed (its aemp_fail() text in core->failmsg). */
int spawn_call(aemp_node *node, const char *srcnode, const char *name, const cJSON *args);
/* Start the services of the effective configuration. */
int spawn_start_services(aemp_node *node, char *err, size_t errlen);
/* Start one entry of "services" (borrowed): "SPEC" or ["SPEC", ARGS...]. */
int spawn_start_service_entry(aemp_node *node, const cJSON *entry, char *err, size_t errlen);
void spawn_free_all(aemp_node *node);
/* A service SPEC of the form "PATH.so:SYMBOL": the length of PATH (SYMBOL
 * follows the ':' after it); 0 for a registered name. */
size_t spawn_so_path_len(const char *spec);
/* 1 when `name` is registered on `node` (aemp_register()). */
int spawn_is_registered(aemp_node *node, const char *name);

/* ---- nodeport.c ---- */

/* A message ["", TAG, ARGS...] (borrowed) to our node port from `srcnode`. */
void nodeport_handle(aemp_node *node, const char *srcnode, const cJSON *msg);

#endif
