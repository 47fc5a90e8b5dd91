/* cal.c - timers (after) and remote procedure calls (cal): send a message
 * with a fresh reply port appended and call back once with the first reply,
 * a timeout, or the reason the destination died. */
#include "core.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct timer {
    struct timer *next, *prev; /* in the node's list of pending timers */
    aemp_node *node;
    struct event *ev;
    aemp_after_fn fn;
    void *ud;
    aemp_guard *guard;
    char *port; /* aemp_after_snd(): send msg to port (both owned) */
    cJSON *msg;
};

/* Take `t` out of the list of `c` (its node's) and free it. */
static void timer_free_in(struct node_core *c, struct timer *t)
{
    if (c->timers == t) c->timers = t->next; /* the head */
    else if (t->prev) t->prev->next = t->next;
    if (t->next) t->next->prev = t->prev;
    event_free(t->ev);
    free(t->port);
    cJSON_Delete(t->msg);
    free(t);
}

static void timer_free(struct timer *t)
{
    timer_free_in(t->node->core, t);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct timer *t = arg;
    guard_detach(t->guard);
    aemp_node *node = t->node;
    aemp_after_fn fn = t->fn;
    void *ud = t->ud;
    char *port = t->port;
    cJSON *msg = t->msg;
    t->port = NULL;
    t->msg = NULL;
    timer_free(t);
    if (port) {
        aemp_snd(node, port, msg);
        free(port);
    } else {
        fn(node, ud);
    }
}

static void timer_cancel(aemp_guard *g)
{
    timer_free(g->target);
}

int aemp_after(aemp_node *node, double seconds, aemp_after_fn fn, void *ud, aemp_guard **guard)
{
    if (guard) *guard = NULL;
    if (!fn || !(seconds >= 0) || seconds > 1e9) return AEMP_EINVAL;
    struct timer *t = calloc(1, sizeof *t);
    if (!t) return AEMP_ENOMEM;
    t->node = node;
    t->fn = fn;
    t->ud = ud;
    t->ev = evtimer_new(node->base, timer_cb, t);
    if (!t->ev) {
        free(t);
        return AEMP_ENOMEM;
    }
    if (guard) {
        t->guard = *guard = guard_new(node, timer_cancel, t);
        if (!*guard) {
            event_free(t->ev);
            free(t);
            return AEMP_ENOMEM;
        }
    }
    struct node_core *c = node->core;
    t->next = c->timers;
    if (t->next) t->next->prev = t;
    c->timers = t;
    double whole = floor(seconds);
    struct timeval tv = {(time_t)whole, (suseconds_t)((seconds - whole) * 1e6)};
    evtimer_add(t->ev, &tv);
    return 0;
}

static void after_snd_unused(aemp_node *node, void *ud)
{
    (void)node;
    (void)ud;
}

int aemp_after_snd(aemp_node *node, double seconds, const char *port, cJSON *msg,
                   aemp_guard **guard)
{
    if (guard) *guard = NULL;
    char *copy = port && *port && cJSON_IsArray(msg) ? strdup(port) : NULL;
    if (!copy) {
        cJSON_Delete(msg);
        return port && *port && cJSON_IsArray(msg) ? AEMP_ENOMEM : AEMP_EINVAL;
    }
    aemp_guard *g = NULL;
    int rc = aemp_after(node, seconds, after_snd_unused, NULL, &g);
    if (rc) {
        free(copy);
        cJSON_Delete(msg);
        return rc;
    }
    struct timer *t = g->target;
    t->port = copy;
    t->msg = msg;
    if (guard) *guard = g;
    else { /* no guard wanted: the timer lives until it fires */
        t->guard = NULL;
        g->target = NULL;
        aemp_guard_free(g);
    }
    return 0;
}

/* ------------------------------------------------------------------ cal */

/* One outstanding call: the reply port, and the timer or the monitor on the
 * destination, whichever limits the wait. */
struct call {
    struct call *next, *prev; /* in the node's list of outstanding calls */
    aemp_cal_fn fn;
    void *ud;
    char *reply_port;
    aemp_guard *limit;
};

/* Finish the call once: release the limit, kill the reply port, report. */
static void call_unlink(aemp_node *node, struct call *c)
{
    if (node->core->calls == c) node->core->calls = c->next; /* the head */
    else if (c->prev) c->prev->next = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void call_done(aemp_node *node, struct call *c, const cJSON *reply, const cJSON *error)
{
    call_unlink(node, c);
    aemp_guard_free(c->limit);
    c->limit = NULL;
    aemp_kil(node, c->reply_port, NULL);
    c->fn(node, reply, error, c->ud);
    free(c->reply_port);
    free(c);
}

static int call_reply(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    call_done(node, ud, msg, NULL);
    return 0;
}

static void call_timeout(aemp_node *node, void *ud)
{
    struct call *c = ud;
    cJSON *err = cJSON_CreateArray();
    cJSON_AddItemToArray(err, cJSON_CreateString("timeout"));
    call_done(node, c, NULL, err);
    cJSON_Delete(err);
}

static void call_dest_died(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    call_done(node, ud, NULL, reason);
}

int aemp_cal(aemp_node *node, const char *port, cJSON *msg, double timeout, aemp_cal_fn fn,
             void *ud)
{
    if (!port || !*port || !cJSON_IsArray(msg) || !fn) {
        cJSON_Delete(msg);
        return AEMP_EINVAL;
    }
    struct call *c = calloc(1, sizeof *c);
    if (!c || !(c->reply_port = aemp_port(node))) {
        free(c);
        cJSON_Delete(msg);
        return AEMP_ENOMEM;
    }
    c->fn = fn;
    c->ud = ud;
    aemp_rcv(node, c->reply_port, NULL, call_reply, c);
    int rc = timeout > 0 ? aemp_after(node, timeout, call_timeout, c, &c->limit)
                         : aemp_mon(node, port, call_dest_died, c, &c->limit);
    if (rc == 0) {
        cJSON_AddItemToArray(msg, cJSON_CreateString(c->reply_port));
        rc = aemp_snd(node, port, msg);
        msg = NULL;
    }
    if (rc >= 0) { /* 0 or AEMP_BUSY: sent */
        c->next = node->core->calls;
        if (c->next) c->next->prev = c;
        node->core->calls = c;
    } else {
        cJSON_Delete(msg);
        aemp_guard_free(c->limit);
        aemp_kil(node, c->reply_port, NULL);
        free(c->reply_port);
        free(c);
    }
    return rc;
}

void cal_free_all(aemp_node *node)
{
    struct node_core *c = node->core;
    while (c->calls) {
        struct call *call = c->calls;
        c->calls = call->next;
        /* The timer or monitor behind the guard is freed with its kind. */
        guard_detach(call->limit);
        aemp_guard_free(call->limit);
        free(call->reply_port);
        free(call);
    }
    /* Their guards become inert in aemp_node_free(). */
    while (c->timers) {
        struct timer *t = c->timers;
        timer_free_in(c, t);
    }
}
