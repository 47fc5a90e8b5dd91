/* node.c - node identity and configuration, the port table, and the local
 * half of snd/rcv/kil: messages to local ports wait in a FIFO drained from
 * the event loop, and each is handed to the port's tagged or default
 * callback with $SELF set. */
#include "core.h"

#include "config.h"
#include "config_check.h"
#include "builtin.h"
#include "framing.h"
#include "transport.h"

#include <event2/event.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* How many queued items one drain handles before yielding to the loop, so
 * that ports sending to themselves cannot starve I/O. */
#define DRAIN_BATCH 4096

static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* n random alphanumeric characters and a NUL into buf[n + 1] (about 95
 * bits for n = 16). */
static void random_alnum(char *buf, size_t n)
{
    /* One getrandom() for all characters; bytes >= 248 (a multiple of 62)
     * are skipped so that every character is equally likely. */
    unsigned char rnd[64];
    size_t i = 0;
    while (i < n) {
        randombytes_buf(rnd, sizeof rnd);
        for (size_t j = 0; j < sizeof rnd && i < n; j++)
            if (rnd[j] < 248) buf[i++] = alnum[rnd[j] % 62];
    }
    buf[n] = 0;
}

static void drain_cb(evutil_socket_t fd, short what, void *arg);
static const struct transport_ops transport_to_kernel;

/* Message tracing asked for in the environment: AEMP_TRACE, else 1.30's
 * PERL_ANYEVENT_MP_TRACE; true as Perl reads it (not empty, not "0"). */
static int trace_from_env(void)
{
    const char *t = getenv("AEMP_TRACE");
    if (!t || !*t) t = getenv("PERL_ANYEVENT_MP_TRACE");
    return t && *t && strcmp(t, "0") != 0;
}

aemp_node *aemp_node_new(struct event_base *base)
{
    if (sodium_init() < 0) return NULL;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    aemp_node *node = calloc(1, sizeof *node);
    struct node_core *c = calloc(1, sizeof *c);
    if (!node || !c) goto fail;
    node->core = c;
    c->trace = trace_from_env();
    if (!base) {
        base = event_base_new();
        if (!base) goto fail;
        node->own_base = 1;
    }
    node->base = base;
    c->qev = event_new(base, -1, 0, drain_cb, node);
    if (!c->qev) goto fail;
    random_alnum(c->cookie, 16);
    random_alnum(c->scookie, 16);
    char id[32] = "anon/";
    random_alnum(id + 5, 16);
    node->id = strdup(id);
    if (!node->id) goto fail;
    if (builtins_init(node)) {
        aemp_node_free(node);
        return NULL;
    }
    return node;
fail:
    if (node && node->own_base && node->base) event_base_free(node->base);
    if (c && c->qev) event_free(c->qev);
    free(c);
    free(node);
    return NULL;
}

/* Drop queued work without running it. */
static void queue_clear(struct node_core *c)
{
    while (c->qhead) {
        struct qitem *q = c->qhead;
        c->qhead = q->next;
        cJSON_Delete(q->msg);
        free(q->srcnode);
        if (q->name != q->nbuf) free(q->name);
        free(q);
    }
    c->qtail = NULL;
    while (c->qfree) {
        struct qitem *q = c->qfree;
        c->qfree = q->next;
        free(q);
    }
}

static void port_free(struct port *p)
{
    while (p->tags) {
        struct tagcb *t = p->tags;
        p->tags = t->next;
        free(t->tag);
        free(t);
    }
    free(p);
}

int aemp_at_free(aemp_node *node, void (*release)(void *ud), void *ud)
{
    if (!release) return AEMP_EINVAL;
    struct atfree *a = malloc(sizeof *a);
    if (!a) return AEMP_ENOMEM;
    a->release = release;
    a->ud = ud;
    a->next = node->core->atfree;
    node->core->atfree = a;
    return 0;
}

void aemp_node_free(aemp_node *node)
{
    if (!node) return;
    struct node_core *c = node->core;
    while (c->atfree) {
        struct atfree *a = c->atfree;
        c->atfree = a->next;
        a->release(a->ud);
        free(a);
    }
    builtins_free(node);
    transport_free(node->transport);
    node->transport = NULL;
    queue_clear(c);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&c->ports, &it, &k, &v))
        port_free(v);
    strmap_free(&c->ports);
    mon_free_all(node);
    cal_free_all(node);
    while (c->nodemons) {
        struct nodemon *nm = c->nodemons;
        c->nodemons = nm->next;
        free(nm);
    }
    /* Guards the caller still holds become inert; their targets are gone. */
    for (aemp_guard *g = c->guards; g; g = g->next) {
        g->node = NULL;
        g->target = NULL;
    }
    spawn_free_all(node);
    event_free(c->qev);
    if (node->own_base) {
        /* libevent keeps a socket bufferevent alive while a deferred
         * callback of it is pending (a connect that completed or failed at
         * once), and event_base_free() drops such callbacks without the
         * reference: one pass of the loop runs them first (everything of
         * ours is gone: they find no callbacks and free the bufferevent). */
        event_base_loop(node->base, EVLOOP_NONBLOCK);
        event_base_free(node->base);
    }
    cJSON_Delete(node->cfg);
    free(node->id);
    free(c);
    free(node);
}

struct event_base *aemp_node_base(aemp_node *node)
{
    return node->base;
}

const char *aemp_node_id(const aemp_node *node)
{
    return node->id;
}

const cJSON *aemp_node_config(const aemp_node *node)
{
    return node->cfg;
}

int aemp_node_run(aemp_node *node)
{
    return event_base_dispatch(node->base) < 0 ? AEMP_EIO : 0;
}

void aemp_node_stop(aemp_node *node)
{
    event_base_loopbreak(node->base);
}

/* ------------------------------------------------------------ configure */

int aemp_configure(aemp_node *node, const char *profile, const cJSON *kv, char *err,
                   size_t errlen)
{
    cJSON *eff = NULL;
    int rc = config_load_effective(profile, kv, &eff, err, errlen);
    if (rc == 0) rc = aemp_configure_effective(node, eff, err, errlen);
    cJSON_Delete(eff);
    return rc;
}

int aemp_configure_effective(aemp_node *node, const cJSON *cfg, char *err, size_t errlen)
{
    if (node->cfg) {
        snprintf(err, errlen, "node %s is already configured", node->id);
        return AEMP_ESTATE;
    }
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(cfg, "nodeid");
    if (!cJSON_IsString(jid) || !*jid->valuestring) {
        snprintf(err, errlen, "the configuration has no node ID (key \"nodeid\")");
        return AEMP_ECONFIG;
    }
    /* Every key's type, the node ID's characters, bind and seed ports. */
    if (config_check_layer(cfg, NULL, err, errlen)) return AEMP_ECONFIG;
    char *id;
    if (!strcmp(jid->valuestring, "anon/")) {
        char buf[32] = "anon/";
        random_alnum(buf + 5, 16);
        id = strdup(buf);
    } else {
        id = strdup(jid->valuestring);
    }
    cJSON *dup = cJSON_Duplicate(cfg, 1);
    if (!id || !dup) {
        free(id);
        cJSON_Delete(dup);
        return AEMP_ENOMEM;
    }
    free(node->id);
    node->id = id;
    node->cfg = dup;
    cJSON_ReplaceItemInObjectCaseSensitive(dup, "nodeid", cJSON_CreateString(id));
    builtins_configure(node, dup);
    struct transport_conf tc = {node->base, id, dup, &transport_to_kernel, node, node};
    int rc = transport_start(&node->transport, &tc, err, errlen);
    if (rc == 0) rc = builtins_start(node, err, errlen);
    if (rc == 0) rc = spawn_start_services(node, err, errlen);
    if (rc == 0) aemp_log(7, "node %s configured", id);
    return rc;
}

/* ---------------------------------------------------------------- names */

char *core_port_id(const char *nodeid, const char *name)
{
    size_t a = strlen(nodeid), b = strlen(name);
    char *id = malloc(a + b + 2);
    if (id) {
        memcpy(id, nodeid, a);
        id[a] = '#';
        memcpy(id + a + 1, name, b + 1);
    }
    return id;
}

char *aemp_node_of(const char *port)
{
    const char *h = strchr(port, '#');
    return h ? strndup(port, (size_t)(h - port)) : strdup(port);
}

int core_is_local(const aemp_node *node, const char *port, const char **name)
{
    const char *h = strchr(port, '#');
    size_t n = h ? (size_t)(h - port) : strlen(port);
    if (strncmp(port, node->id, n) || node->id[n]) return 0;
    *name = h ? h + 1 : "";
    return 1;
}

void core_new_name(aemp_node *node, int spawn, char buf[64])
{
    struct node_core *c = node->core;
    unsigned long long n = spawn ? ++c->sctr : ++c->ctr;
    /* The counter in bijective base 26 (a, b, ... z, aa, ab, ...), as 1.30. */
    char digits[16];
    int i = 0;
    while (n) {
        n--;
        digits[i++] = (char)('a' + n % 26);
        n /= 26;
    }
    const char *cookie = spawn ? c->scookie : c->cookie;
    int len = (int)strlen(cookie); /* 16 characters */
    memcpy(buf, cookie, (size_t)len);
    buf[len++] = '.';
    while (i && len < 63)
        buf[len++] = digits[--i];
    buf[len] = 0;
}

char *aemp_port(aemp_node *node)
{
    char name[64];
    core_new_name(node, 0, name);
    struct port *p = calloc(1, sizeof *p);
    char *id = core_port_id(node->id, name);
    if (!p || !id || strmap_put(&node->core->ports, name, p, NULL)) {
        free(p);
        free(id);
        return NULL;
    }
    return id;
}

/* ------------------------------------------------------------------ rcv */

int aemp_rcv(aemp_node *node, const char *port, const char *tag, aemp_rcv_fn fn, void *ud)
{
    const char *name;
    if (!core_is_local(node, port, &name) || !*name) return AEMP_EINVAL;
    struct port *p = strmap_get(&node->core->ports, name);
    if (!p) {
        if (!fn) return 0;
        p = calloc(1, sizeof *p);
        if (!p || strmap_put(&node->core->ports, name, p, NULL)) {
            free(p);
            return AEMP_ENOMEM;
        }
    }
    if (!tag) {
        p->fn = fn;
        p->ud = ud;
        return 0;
    }
    struct tagcb **tp = &p->tags;
    while (*tp && strcmp((*tp)->tag, tag))
        tp = &(*tp)->next;
    if (!fn) {
        struct tagcb *t = *tp;
        if (t) {
            *tp = t->next;
            free(t->tag);
            free(t);
        }
        return 0;
    }
    if (!*tp) {
        struct tagcb *t = calloc(1, sizeof *t);
        if (!t || !(t->tag = strdup(tag))) {
            free(t);
            return AEMP_ENOMEM;
        }
        *tp = t;
    }
    (*tp)->fn = fn;
    (*tp)->ud = ud;
    return 0;
}

const char *aemp_self(const aemp_node *node)
{
    return node->core->self;
}

void aemp_fail(aemp_node *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(node->core->failmsg, sizeof node->core->failmsg, fmt, ap);
    va_end(ap);
}

/* Adapter so that rcv callbacks and spawned functions share core_run_as. */
struct rcv_call {
    aemp_rcv_fn fn;
    void *ud;
};

static int rcv_trampoline(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct rcv_call *rc = ud;
    return rc->fn(node, self, args, rc->ud);
}

void core_run_as(aemp_node *node, const char *self, aemp_func_fn fn, const cJSON *args,
                 void *ud)
{
    struct node_core *c = node->core;
    const char *saved = c->self;
    c->self = self; /* the caller's copy: killing the port does not free it */
    c->failmsg[0] = 0;
    int rc = fn(node, self, args, ud);
    c->self = saved;
    if (rc < 0) {
        const char *why = c->failmsg[0] ? c->failmsg : "callback reported failure";
        aemp_log(8, "port %s dies: %s", self, why);
        cJSON *reason = cJSON_CreateArray();
        cJSON_AddItemToArray(reason, cJSON_CreateString("die"));
        cJSON_AddItemToArray(reason, cJSON_CreateString(why));
        aemp_kil(node, self, reason);
    }
}

/* Hand `msg` ([PORTNAME, ...], borrowed) to local port `name`: its tagged
 * callback if the first element names one, else its default callback; no
 * callback kills the port. Messages to unknown ports are dropped. */
static void dispatch_to(aemp_node *node, const char *srcnode, const char *name, cJSON *msg);

static void dispatch(aemp_node *node, const char *srcnode, cJSON *msg)
{
    const cJSON *jname = cJSON_GetArrayItem(msg, 0);
    if (!cJSON_IsString(jname)) {
        aemp_log_peer(5, "message from %s without a port name dropped", srcnode);
        return;
    }
    cJSON *dest = cJSON_DetachItemFromArray(msg, 0);
    dispatch_to(node, srcnode, dest->valuestring, msg);
    cJSON_Delete(dest);
}

/* The same for `msg` holding only the elements after the port name. */
static void dispatch_to(aemp_node *node, const char *srcnode, const char *name, cJSON *msg)
{
    if (!*name) {
        nodeport_handle(node, srcnode, msg);
        return;
    }
    struct port *p = strmap_get(&node->core->ports, name);
    if (!p) {
        aemp_log(9, "message for unknown port %s dropped", name); /* trace level: a line a message */
        return;
    }
    struct rcv_call call = {p->fn, p->ud};
    const cJSON *tag = msg->child;
    if (cJSON_IsString(tag))
        for (struct tagcb *t = p->tags; t; t = t->next)
            if (!strcmp(t->tag, tag->valuestring)) {
                call.fn = t->fn;
                call.ud = t->ud;
                break;
            }
    /* $SELF on the stack when it fits: this runs for every message. */
    char buf[256], *self = buf;
    size_t il = strlen(node->id), nl = strlen(name);
    if (il + nl + 2 <= sizeof buf) {
        memcpy(buf, node->id, il);
        buf[il] = '#';
        memcpy(buf + il + 1, name, nl + 1);
    } else {
        self = core_port_id(node->id, name);
    }
    if (self) {
        if (call.fn) {
            const char *saved = node->core->caller;
            node->core->caller = srcnode;
            core_run_as(node, self, rcv_trampoline, msg, &call);
            node->core->caller = saved;
        } else {
            cJSON *reason = cJSON_CreateArray();
            cJSON_AddItemToArray(reason, cJSON_CreateString("die"));
            cJSON_AddItemToArray(reason,
                                 cJSON_CreateString("received message on port without callback"));
            aemp_kil(node, self, reason);
        }
        if (self != buf) free(self);
    }
}

/* ------------------------------------------------------------ the queue */

/* Queue items come from a free list: no malloc per message. */
#define QFREE_MAX 1024

static struct qitem *qitem_new(struct node_core *c)
{
    struct qitem *q = c->qfree;
    if (q) {
        c->qfree = q->next;
        c->nqfree--;
    } else if (!(q = malloc(sizeof *q))) {
        return NULL;
    }
    q->next = NULL;
    q->srcnode = q->name = NULL;
    q->msg = NULL;
    return q;
}

static void qitem_free(struct node_core *c, struct qitem *q)
{
    free(q->srcnode);
    if (q->name != q->nbuf) free(q->name);
    if (c->nqfree >= QFREE_MAX) {
        free(q);
        return;
    }
    q->next = c->qfree;
    c->qfree = q;
    c->nqfree++;
}

/* Copy `name` into the item (inline when short). 0, or -1 on ENOMEM. */
static int qitem_name(struct qitem *q, const char *name)
{
    size_t n = strlen(name);
    q->name = n < sizeof q->nbuf ? memcpy(q->nbuf, name, n + 1) : strdup(name);
    return q->name ? 0 : -1;
}

/* Append to the queue. The drain event is activated when the queue was
 * empty; a non-empty queue has it active already (drain_cb re-activates it
 * while items remain). */
static void queue_push(aemp_node *node, struct qitem *q)
{
    struct node_core *c = node->core;
    if (c->qtail) {
        c->qtail->next = q;
    } else {
        c->qhead = q;
        event_active(c->qev, 0, 0);
    }
    c->qtail = q;
}

/* Queue `msg` (taken) from `srcnode` for port `name`, or for the port its
 * first element names when `name` is NULL. */
static void enqueue(aemp_node *node, const char *srcnode, const char *name, cJSON *msg)
{
    struct node_core *c = node->core;
    struct qitem *q = qitem_new(c);
    /* Messages from our own node (the common case) need no copy of its ID. */
    if (!q || (srcnode != node->id && !(q->srcnode = strdup(srcnode))) ||
        (name && qitem_name(q, name))) {
        if (q) qitem_free(c, q);
        cJSON_Delete(msg);
        aemp_log(2, "out of memory: local message dropped");
        return;
    }
    q->msg = msg;
    queue_push(node, q);
}

void core_enqueue(aemp_node *node, const char *srcnode, cJSON *msg)
{
    enqueue(node, srcnode, NULL, msg);
}

void core_enqueue_check(aemp_node *node, const char *name)
{
    struct qitem *q = qitem_new(node->core);
    if (!q) return;
    if (qitem_name(q, name)) {
        qitem_free(node->core, q);
        return;
    }
    queue_push(node, q);
}

/* Trace a message to port `name` whose array lacks the name: the name goes
 * in for the log line only. */
static void trace_named(aemp_node *node, const char *what, const char *peer, const char *name,
                        cJSON *msg)
{
    if (!node->core->trace) return;
    cJSON *n = cJSON_CreateString(name);
    if (!n) return;
    cJSON_InsertItemInArray(msg, 0, n);
    core_trace(node, what, peer, msg);
    cJSON_Delete(cJSON_DetachItemFromArray(msg, 0));
}

/* Fire no_such_port monitors when a monitored local port never came to be. */
static void check_exists(aemp_node *node, const char *name)
{
    if (strmap_get(&node->core->ports, name)) return;
    char *id = core_port_id(node->id, name);
    if (!id) return;
    cJSON *reason = cJSON_CreateArray();
    cJSON_AddItemToArray(reason, cJSON_CreateString("no_such_port"));
    cJSON_AddItemToArray(reason, cJSON_CreateString("cannot monitor nonexistent port"));
    cJSON_AddItemToArray(reason, cJSON_CreateString(id));
    mon_fire(node, id, reason);
    cJSON_Delete(reason);
    free(id);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    aemp_node *node = arg;
    struct node_core *c = node->core;
    for (int i = 0; i < DRAIN_BATCH && c->qhead; i++) {
        struct qitem *q = c->qhead;
        c->qhead = q->next;
        if (!c->qhead) c->qtail = NULL;
        const char *src = q->srcnode ? q->srcnode : node->id;
        if (q->msg && q->name) {
            trace_named(node, "rcv", src, q->name, q->msg);
            dispatch_to(node, src, q->name, q->msg);
        } else if (q->msg) {
            core_trace(node, "rcv", src, q->msg);
            dispatch(node, src, q->msg);
        } else {
            check_exists(node, q->name);
        }
        cJSON_Delete(q->msg);
        qitem_free(c, q);
    }
    if (c->qhead) event_active(c->qev, 0, 0);
}

/* ------------------------------------------------------------- snd, kil */

void core_send_node(aemp_node *node, const char *nodeid, cJSON *msg)
{
    if (!strcmp(nodeid, node->id)) {
        core_enqueue(node, node->id, msg);
        return;
    }
    core_trace(node, "snd", nodeid, msg);
    transport_send(node->transport, nodeid, msg);
}

int aemp_snd(aemp_node *node, const char *port, cJSON *msg)
{
    if (!port || !*port || *port == '#' || !cJSON_IsArray(msg)) {
        cJSON_Delete(msg);
        return AEMP_EINVAL;
    }
    /* The port name is not inserted into msg: the queue item carries it,
     * or the writer puts it in front on the wire. */
    const char *h = strchr(port, '#');
    const char *name = h ? h + 1 : "";
    size_t n = h ? (size_t)(h - port) : strlen(port);
    if (!strncmp(port, node->id, n) && !node->id[n]) {
        enqueue(node, node->id, name, msg);
        return 0;
    }
    char nodeid[256];
    if (n >= sizeof nodeid) {
        cJSON_Delete(msg);
        return AEMP_EINVAL;
    }
    memcpy(nodeid, port, n);
    nodeid[n] = 0;
    trace_named(node, "snd", nodeid, name, msg);
    return transport_send_named(node->transport, nodeid, name, msg);
}

int aemp_snd_json(aemp_node *node, const char *port, const char *json_array)
{
    /* \u0000 becomes C0 80 as in messages from the network (framing.h) */
    cJSON *msg = json_array ? framing_parse(json_array, strlen(json_array)) : NULL;
    if (!cJSON_IsArray(msg)) {
        cJSON_Delete(msg);
        return AEMP_EINVAL;
    }
    return aemp_snd(node, port, msg);
}

void core_kill_local(aemp_node *node, const char *name, cJSON *reason)
{
    struct port *p = strmap_del(&node->core->ports, name);
    if (p) {
        port_free(p);
        char *id = core_port_id(node->id, name);
        if (id) mon_fire(node, id, reason);
        free(id);
    }
    cJSON_Delete(reason);
}

int aemp_kil(aemp_node *node, const char *port, cJSON *reason)
{
    if (!reason) reason = cJSON_CreateArray();
    if (!port || !cJSON_IsArray(reason)) {
        cJSON_Delete(reason);
        return AEMP_EINVAL;
    }
    const char *h = strchr(port, '#');
    if (!h || !h[1]) {
        cJSON_Delete(reason);
        return AEMP_EPERM;
    }
    const char *name;
    if (core_is_local(node, port, &name)) {
        core_kill_local(node, name, reason);
        return 0;
    }
    /* ["", "kil", PORTNAME, REASON...] to the port's node. */
    char *nodeid = aemp_node_of(port);
    cJSON *msg = cJSON_CreateArray();
    cJSON_AddItemToArray(msg, cJSON_CreateString(""));
    cJSON_AddItemToArray(msg, cJSON_CreateString("kil"));
    cJSON_AddItemToArray(msg, cJSON_CreateString(h + 1));
    while (reason->child)
        cJSON_AddItemToArray(msg, cJSON_DetachItemViaPointer(reason, reason->child));
    cJSON_Delete(reason);
    if (nodeid) core_send_node(node, nodeid, msg);
    else cJSON_Delete(msg);
    free(nodeid);
    return 0;
}

/* ---------------------------------------------- from the transport layer */

void node_deliver(aemp_node *node, const char *srcnode, cJSON *msg)
{
    core_trace(node, "rcv", srcnode, msg);
    dispatch(node, srcnode, msg);
    cJSON_Delete(msg);
}

static void deliver_op(void *node, const char *srcnode, cJSON *msg)
{
    node_deliver(node, srcnode, msg);
}

static void node_up_op(void *node, const char *nodeid)
{
    node_remote_up(node, nodeid);
}

static void node_down_op(void *node, const char *nodeid, const char *why)
{
    node_remote_down(node, nodeid, why);
}

static void node_unreachable_op(void *node, const char *nodeid, const char *why)
{
    node_remote_unreachable(node, nodeid, why);
}

/* The one way up from the transport (transport.h). */
static const struct transport_ops transport_to_kernel = {deliver_op, node_up_op, node_down_op,
                                                         node_unreachable_op};

/* ---------------------------------------------------------------- trace */

void aemp_trace_set(aemp_node *node, int on)
{
    node->core->trace = on;
}

void core_trace(aemp_node *node, const char *what, const char *peer, const cJSON *msg)
{
    if (!node->core->trace) return;
    char *text = cJSON_PrintUnformatted(msg);
    /* A log line arriving at a catcher port would be caught again. */
    int mute = what[0] == 'r' && msg && cJSON_IsString(msg->child) &&
               builtins_quiet_port(node, msg->child->valuestring);
    if (mute) logtap_mute(1);
    log_always(9, "%s %s %s %s", what, what[0] == 's' ? "to" : "from", peer,
               text ? text : "?");
    if (mute) logtap_mute(0);
    cJSON_free(text);
}
