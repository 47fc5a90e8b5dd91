/* dataconn.c - data connections between nodes, as 1.30's
 * AnyEvent::MP::DataConn (see dataconn.h and aemp_dataconn_connect()).
 *
 * The initiator A picks an ID "NAME@A" and a port P, sends node B
 * ["", "AnyEvent::MP::DataConn::_expect", ID, P, TIMEOUT, FUNC, ARGS...]
 * and then ["", "snd", P]: when B relays that empty message back to P, B
 * has seen the _expect. A then dials one of B's announced listen addresses
 * with an "aemp-dataconn" greeting carrying dataconn_id=ID; if B has no
 * listeners, A asks B to dial A instead (_connect ID A). The connection is
 * authenticated exactly like a node connection (conn_hs.c); afterwards
 * B calls FUNC(ARGS..., connection) and A its callback. A side that gives
 * up kills P with ["AnyEvent::MP::DataConn", TEXT], so the other side
 * learns it too.
 *
 * With TLS, the user gets a bufferevent filter that encrypts and decrypts
 * through the session of the handshake (tls.c) over the socket bufferevent;
 * without, the socket bufferevent itself. */
#include "dataconn.h"

#include "builtin.h"
#include "core.h"
#include "dataconn_io.h"
#include "global.h"
#include "handshake.h"
#include "tls.h"
#include "transport.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* How long an expectation may wait at most. */
#define DC_MAX_TIMEOUT 3600.0
/* Data connections other nodes make us hold (expected or in use): part of
 * the descriptor limit, with the rest kept for node connections and the
 * process; each may cost its function a second descriptor (a file). One
 * peer gets a share of the total. */
#define DC_FD_RESERVE_MIN 64
#define DC_TOTAL_MAX 4096
#define DC_PEER_SHARE 4

#define TAG_PREFIX "AnyEvent::MP::DataConn::"

struct dcfn {
    aemp_dataconn_fn fn;
    void *ud;
};

enum dc_role {
    DC_LOCAL, /* we called aemp_dataconn_connect() */
    DC_REMOTE /* another node told us to expect a connection */
};

struct dc {
    aemp_node *node;
    enum dc_role role;
    char *id;
    char *peer;   /* the other node */
    char *port;   /* DC_LOCAL: our port P; DC_REMOTE: the initiator's */
    struct event *timer; /* the overall timeout */
    struct event *poll;  /* waiting for the peer's addresses */
    aemp_guard *mon;     /* DC_LOCAL: our monitor on P */
    aemp_dataconn_cb cb; /* DC_LOCAL */
    void *ud;
    char *func;          /* DC_REMOTE: the init function and its arguments */
    cJSON *args;
    cJSON *addrs;        /* addresses we dial, in turn */
    int next_addr;
    int started;         /* P got the relayed message: connecting */
    char lasterr[256];
};

struct dataconns {
    strmap pending; /* ID -> struct dc */
    strmap funcs;   /* name -> struct dcfn */
    struct dcio_set io;  /* connections in use and being closed */
    aemp_guard *nodemon; /* departed peers' expectations go */
    size_t max_total, max_peer; /* what other nodes may make us hold */
};

static void on_node(aemp_node *node, const char *nodeid, int up, const cJSON *reason, void *ud);

/* The bounds from the descriptor limit (see DC_FD_RESERVE_MIN). */
static void dc_limits(struct dataconns *d)
{
    struct rlimit rl;
    size_t fds = 1024;
    if (!getrlimit(RLIMIT_NOFILE, &rl))
        fds = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1u << 20 ? 1u << 20
                                                                     : (size_t)rl.rlim_cur;
    size_t reserve = fds / 4 < DC_FD_RESERVE_MIN ? DC_FD_RESERVE_MIN : fds / 4;
    size_t total = fds > reserve ? (fds - reserve) / 2 : 0;
    if (total > DC_TOTAL_MAX) total = DC_TOTAL_MAX;
    if (total < 4) total = 4;
    d->max_total = total;
    d->max_peer = total / DC_PEER_SHARE;
}

/* The node's state, NULL until used. */
static struct dataconns *dcs_of(aemp_node *node)
{
    return builtin_state(node, &dataconn_builtin);
}

void dataconn_figures(aemp_node *node, unsigned long long *open, unsigned long long *opened,
                      unsigned long long *in, unsigned long long *out)
{
    struct dataconns *d = dcs_of(node);
    *open = d ? dcio_count(&d->io, NULL) : 0;
    *opened = d ? d->io.opened : 0;
    *in = d ? d->io.bytes_in : 0;
    *out = d ? d->io.bytes_out : 0;
}

/* The same, made when missing (NULL when out of memory). */
static struct dataconns *dcs(aemp_node *node)
{
    if (dcs_of(node)) return dcs_of(node);
    struct dataconns *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (aemp_mon_nodes(node, on_node, d, &d->nodemon)) {
        free(d);
        return NULL;
    }
    d->io.node = node;
    dc_limits(d);
    builtin_set_state(node, &dataconn_builtin, d);
    return d;
}

static void dc_free(aemp_node *node, struct dc *dc)
{
    struct dataconns *d = dcs_of(node);
    if (d && strmap_get(&d->pending, dc->id) == dc) strmap_del(&d->pending, dc->id);
    if (dc->timer) event_free(dc->timer);
    if (dc->poll) event_free(dc->poll);
    aemp_guard_free(dc->mon); /* before the kill: no callback for it */
    if (dc->role == DC_LOCAL && dc->port) aemp_kil(node, dc->port, NULL);
    free(dc->id);
    free(dc->peer);
    free(dc->port);
    free(dc->func);
    cJSON_Delete(dc->args);
    cJSON_Delete(dc->addrs);
    free(dc);
}

/* Give up: the local side's callback gets the text, the remote side kills
 * the initiator's port with it. Frees dc. */
static void dc_fail(aemp_node *node, struct dc *dc, const char *why)
{
    aemp_log_peer(6, "data connection %s with %s failed: %s", dc->id, dc->peer, why);
    if (dc->role == DC_LOCAL) {
        aemp_dataconn_cb cb = dc->cb;
        void *ud = dc->ud;
        dc_free(node, dc);
        cb(node, NULL, why, ud);
    } else {
        cJSON *reason = cJSON_CreateArray();
        cJSON_AddItemToArray(reason, cJSON_CreateString("AnyEvent::MP::DataConn"));
        cJSON_AddItemToArray(reason, cJSON_CreateString(why));
        char *port = dc->port;
        dc->port = NULL;
        dc_free(node, dc);
        aemp_kil(node, port, reason);
        free(port);
    }
}

static void discard(struct bufferevent *bev, struct tls *tls, struct evbuffer *plain)
{
    if (tls) tls_free(tls);
    if (bev) bufferevent_free(bev);
    if (plain) evbuffer_free(plain);
}

/* Hand the connection to its user and forget dc. */
static void dc_done(aemp_node *node, struct dc *dc, struct bufferevent *u)
{
    if (dc->role == DC_LOCAL) {
        aemp_dataconn_cb cb = dc->cb;
        void *ud = dc->ud;
        dc_free(node, dc);
        cb(node, u, NULL, ud);
        return;
    }
    struct dcfn *f = strmap_get(&dcs_of(node)->funcs, dc->func);
    if (!f) {
        aemp_log_peer(4, "data connection %s from %s closed: no data-connection function %s",
                 dc->id, dc->peer, dc->func);
        bufferevent_free(u);
        dc_free(node, dc);
        return;
    }
    cJSON *args = dc->args;
    dc->args = NULL;
    dc_free(node, dc);
    f->fn(node, u, args, f->ud);
    cJSON_Delete(args);
}

/* An authenticated data connection `id` with node `peer` (both borrowed),
 * from the transport: takes `bev`, `tls` and `plain` (transport.h); frees
 * them when nobody expects `id` from `peer`. */
static void dataconn_ready(aemp_node *node, const char *id, const char *peer,
                           struct bufferevent *bev, struct tls *tls, struct evbuffer *plain)
{
    struct dc *dc = dcs_of(node) ? strmap_get(&dcs_of(node)->pending, id) : NULL;
    if (!dc) {
        aemp_log_peer(5, "data connection %s from %s closed: nobody expects it (too late?)", id,
                 peer);
        discard(bev, tls, plain);
        return;
    }
    if (strcmp(peer, dc->peer)) {
        aemp_log_peer(4, "data connection %s closed: it came from %s, but was agreed with %s", id,
                 peer, dc->peer);
        discard(bev, tls, plain);
        return;
    }
    /* What another node asked for counts toward its share until freed. */
    struct bufferevent *u =
        dcio_user_bev(&dcs_of(node)->io, peer, dc->role == DC_REMOTE, bev, tls, plain);
    if (!u) {
        dc_fail(node, dc, "out of memory");
        return;
    }
    aemp_log(7, "data connection %s with %s up (%s)", id, peer, tls ? "TLS" : "no TLS");
    dc_done(node, dc, u);
}

/* ------------------------------------------------------------- connecting */

/* Dial the next address of dc->addrs; give up when none is left. */
static void dc_dial_next(aemp_node *node, struct dc *dc)
{
    while (dc->next_addr < cJSON_GetArraySize(dc->addrs)) {
        const cJSON *a = cJSON_GetArrayItem(dc->addrs, dc->next_addr++);
        if (!cJSON_IsString(a)) continue;
        aemp_log(8, "data connection %s: dialing %s at %s", dc->id, dc->peer, a->valuestring);
        if (transport_dial_dataconn(node->transport, a->valuestring, dc->id) == 0) return;
    }
    char why[400];
    snprintf(why, sizeof why, "%s: %s", dc->peer,
             dc->lasterr[0] ? dc->lasterr : "no listeners found");
    dc_fail(node, dc, why);
}

/* Our outgoing data connection attempt `id` failed (`why` borrowed): try the
 * next address or give up. */
static void dataconn_dial_failed(aemp_node *node, const char *id, const char *why)
{
    struct dc *dc = dcs_of(node) ? strmap_get(&dcs_of(node)->pending, id) : NULL;
    if (!dc) return;
    snprintf(dc->lasterr, sizeof dc->lasterr, "%s", why);
    dc_dial_next(node, dc);
}

/* Start dialing `addrs` (borrowed) of dc->peer. */
static void dc_dial(aemp_node *node, struct dc *dc, const cJSON *addrs)
{
    cJSON_Delete(dc->addrs);
    dc->addrs = cJSON_Duplicate(addrs, 1);
    dc->next_addr = 0;
    dc_dial_next(node, dc);
}

/* The initiator, once B has seen the _expect: dial B, or ask B to dial us
 * when it has no listeners, or wait until B's addresses are known. */
static void dc_proceed(aemp_node *node, struct dc *dc)
{
    const cJSON *addrs = global_node_addrs(node, dc->peer);
    if (!addrs) {
        struct timeval tv = {0, 50000};
        event_add(dc->poll, &tv);
        return;
    }
    if (cJSON_GetArraySize(addrs)) {
        dc_dial(node, dc, addrs);
        return;
    }
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(""));
    cJSON_AddItemToArray(m, cJSON_CreateString(TAG_PREFIX "_connect"));
    cJSON_AddItemToArray(m, cJSON_CreateString(dc->id));
    cJSON_AddItemToArray(m, cJSON_CreateString(node->id));
    core_send_node(node, dc->peer, m);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dc *dc = arg;
    dc_proceed(dc->node, dc);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dc *dc = arg;
    char why[300];
    snprintf(why, sizeof why, "%s: unable to establish connection within the timeout", dc->peer);
    dc_fail(dc->node, dc, why);
}

/* P received the relayed message: B has our _expect. */
static int on_ping(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    (void)self, (void)msg;
    struct dc *dc = ud;
    if (!dc->started) {
        dc->started = 1;
        dc_proceed(node, dc);
    }
    return 0;
}

/* P died: B gave up (["AnyEvent::MP::DataConn", TEXT]) or its node is gone. */
static void on_port_death(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    (void)port;
    struct dc *dc = ud;
    char why[400];
    const cJSON *r0 = cJSON_GetArrayItem(reason, 0), *r1 = cJSON_GetArrayItem(reason, 1);
    if (cJSON_IsString(r0) && !strcmp(r0->valuestring, "AnyEvent::MP::DataConn"))
        snprintf(why, sizeof why, "%s", cJSON_IsString(r1) ? r1->valuestring
                                                           : "the other node gave up (timeout)");
    else {
        char *t = cJSON_PrintUnformatted(reason);
        snprintf(why, sizeof why, "%s: %s", dc->peer, t ? t : "port died");
        cJSON_free(t);
    }
    free(dc->port); /* dead already: nothing to kill */
    dc->port = NULL;
    dc_fail(node, dc, why);
}

static struct dc *dc_new(aemp_node *node, enum dc_role role, const char *id, const char *peer,
                         double timeout)
{
    struct dataconns *d = dcs(node);
    struct dc *dc = d ? calloc(1, sizeof *dc) : NULL;
    if (!dc) return NULL;
    dc->node = node;
    dc->role = role;
    dc->id = strdup(id);
    dc->peer = strdup(peer);
    dc->timer = evtimer_new(node->base, timeout_cb, dc);
    dc->poll = evtimer_new(node->base, poll_cb, dc);
    if (!dc->id || !dc->peer || !dc->timer || !dc->poll ||
        strmap_put(&d->pending, id, dc, NULL)) {
        dc_free(node, dc);
        return NULL;
    }
    if (timeout > DC_MAX_TIMEOUT) timeout = DC_MAX_TIMEOUT;
    if (!(timeout > 0)) timeout = 0;
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    event_add(dc->timer, &tv);
    return dc;
}

/* ------------------------------------------------------------ same node */

struct local {
    aemp_node *node;
    struct event *ev;
    char *func;
    cJSON *args;
    aemp_dataconn_cb cb;
    void *ud;
};

static void local_cb(evutil_socket_t fd_, short what, void *arg)
{
    (void)fd_, (void)what;
    struct local *l = arg;
    aemp_node *node = l->node;
    struct dcfn *f = strmap_get(&dcs(node)->funcs, l->func);
    evutil_socket_t sv[2];
    struct bufferevent *a = NULL, *b = NULL;
    char why[300] = "";
    if (!f) {
        snprintf(why, sizeof why, "%s: no data-connection function %s", node->id, l->func);
    } else if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        snprintf(why, sizeof why, "cannot create local socketpair");
    } else {
        evutil_make_socket_nonblocking(sv[0]);
        evutil_make_socket_nonblocking(sv[1]);
        a = bufferevent_socket_new(node->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
        b = bufferevent_socket_new(node->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
        if (!a || !b) {
            snprintf(why, sizeof why, "out of memory");
            if (a) bufferevent_free(a);
            else evutil_closesocket(sv[0]);
            if (b) bufferevent_free(b);
            else evutil_closesocket(sv[1]);
        }
    }
    if (*why || !f) { /* (f is set when why is empty) */
        l->cb(node, NULL, why, l->ud);
    } else {
        dcio_socket_tune(a);
        dcio_socket_tune(b);
        bufferevent_enable(a, EV_READ | EV_WRITE);
        bufferevent_enable(b, EV_READ | EV_WRITE);
        f->fn(node, b, l->args, f->ud);
        l->cb(node, a, NULL, l->ud);
    }
    event_free(l->ev);
    free(l->func);
    cJSON_Delete(l->args);
    free(l);
}

/* ------------------------------------------------------------- public API */

int aemp_dataconn_register(aemp_node *node, const char *name, aemp_dataconn_fn fn, void *ud)
{
    struct dataconns *d = dcs(node);
    if (!name || !fn) return AEMP_EINVAL;
    struct dcfn *f = d ? malloc(sizeof *f) : NULL;
    if (!f) return AEMP_ENOMEM;
    f->fn = fn;
    f->ud = ud;
    void *old = NULL;
    if (strmap_put(&d->funcs, name, f, &old)) {
        free(f);
        return AEMP_ENOMEM;
    }
    free(old);
    return 0;
}

int aemp_dataconn_connect(aemp_node *node, const char *target, double timeout,
                          const char *initfunc, cJSON *initdata, aemp_dataconn_cb cb, void *ud)
{
    if (!target || !initfunc || !cb || (initdata && !cJSON_IsArray(initdata))) {
        cJSON_Delete(initdata);
        return AEMP_EINVAL;
    }
    char *peer = aemp_node_of(target);
    cJSON *args = initdata ? initdata : cJSON_CreateArray();
    if (!peer || !*peer || !args) {
        free(peer);
        cJSON_Delete(args);
        return peer ? AEMP_EINVAL : AEMP_ENOMEM;
    }
    if (!strcmp(peer, node->id)) { /* a socketpair, from the event loop */
        struct local *l = calloc(1, sizeof *l);
        if (l) {
            l->node = node;
            l->func = strdup(initfunc);
            l->args = args;
            l->cb = cb;
            l->ud = ud;
            l->ev = evtimer_new(node->base, local_cb, l);
        }
        free(peer);
        if (!l || !l->func || !l->ev || !dcs(node)) {
            if (l) {
                free(l->func);
                if (l->ev) event_free(l->ev);
                free(l);
            }
            cJSON_Delete(args);
            return AEMP_ENOMEM;
        }
        struct timeval zero = {0, 0};
        event_add(l->ev, &zero);
        return 0;
    }
    char name[64], id[300];
    core_new_name(node, 0, name);
    snprintf(id, sizeof id, "%s@%s", name, node->id);
    struct dc *dc = dc_new(node, DC_LOCAL, id, peer, timeout);
    free(peer);
    if (!dc) {
        cJSON_Delete(args);
        return AEMP_ENOMEM;
    }
    dc->cb = cb;
    dc->ud = ud;
    dc->port = aemp_port(node);
    if (!dc->port || aemp_rcv(node, dc->port, NULL, on_ping, dc) ||
        aemp_mon(node, dc->port, on_port_death, dc, &dc->mon)) {
        dc_free(node, dc);
        cJSON_Delete(args);
        return AEMP_ENOMEM;
    }
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(""));
    cJSON_AddItemToArray(m, cJSON_CreateString(TAG_PREFIX "_expect"));
    cJSON_AddItemToArray(m, cJSON_CreateString(id));
    cJSON_AddItemToArray(m, cJSON_CreateString(dc->port));
    cJSON_AddItemToArray(m, cJSON_CreateNumber(timeout));
    cJSON_AddItemToArray(m, cJSON_CreateString(initfunc));
    while (args->child)
        cJSON_AddItemToArray(m, cJSON_DetachItemViaPointer(args, args->child));
    cJSON_Delete(args);
    core_send_node(node, dc->peer, m);
    /* Its relay back to P proves B saw the _expect (one connection keeps
     * the order). */
    m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString(""));
    cJSON_AddItemToArray(m, cJSON_CreateString("snd"));
    cJSON_AddItemToArray(m, cJSON_CreateString(dc->port));
    core_send_node(node, dc->peer, m);
    return 0;
}

int aemp_dataconn_close(aemp_node *node, struct bufferevent *bev, double timeout,
                        aemp_dataconn_closed_cb cb, void *ud)
{
    struct dataconns *d = dcs(node);
    if (!d) {
        if (bev) bufferevent_free(bev);
        return AEMP_ENOMEM;
    }
    return dcio_close(&d->io, bev, timeout, cb, ud);
}

/* ------------------------------------------------------ node-port requests */

/* kil `port` with ["AnyEvent::MP::DataConn", TEXT]. */
static void refuse(aemp_node *node, const char *port, const char *fmt, const char *arg)
{
    char why[400];
    snprintf(why, sizeof why, fmt, node->id, arg);
    aemp_log_peer(5, "data connection refused: %s", why);
    cJSON *reason = cJSON_CreateArray();
    cJSON_AddItemToArray(reason, cJSON_CreateString("AnyEvent::MP::DataConn"));
    cJSON_AddItemToArray(reason, cJSON_CreateString(why));
    aemp_kil(node, port, reason);
}

/* Data connections node `peer` (or every other node, when NULL) makes us
 * hold: expected ones and ones in use. */
static size_t remote_count(struct dataconns *d, const char *peer)
{
    size_t n = dcio_count(&d->io, peer), it = 0;
    const char *k;
    void *v;
    while (strmap_next(&d->pending, &it, &k, &v)) {
        const struct dc *dc = v;
        n += dc->role == DC_REMOTE && (!peer || !strcmp(dc->peer, peer));
    }
    return n;
}

/* A node went down: what it asked us to expect goes (its port P is gone
 * with it, so nobody is told). */
static void on_node(aemp_node *node, const char *nodeid, int up, const cJSON *reason, void *ud)
{
    (void)reason;
    struct dataconns *d = ud;
    if (up) return;
    for (;;) {
        size_t it = 0;
        const char *k;
        void *v;
        struct dc *gone = NULL;
        while (!gone && strmap_next(&d->pending, &it, &k, &v)) {
            struct dc *dc = v;
            if (dc->role == DC_REMOTE && !strcmp(dc->peer, nodeid)) gone = dc;
        }
        if (!gone) return;
        aemp_log(7, "data connection %s: %s went down, no longer expected", gone->id, nodeid);
        dc_free(node, gone);
    }
}

/* _expect ID PORT TIMEOUT FUNC ARGS... */
static void on_expect(aemp_node *node, const char *src, const cJSON *a)
{
    const cJSON *port = a ? a->next : NULL, *to = port ? port->next : NULL;
    const cJSON *func = to ? to->next : NULL;
    if (!a || !port || !to || !func || !cJSON_IsString(a) || !cJSON_IsString(port) ||
        !cJSON_IsNumber(to) || !cJSON_IsString(func) || !hs_dataconn_id_ok(a->valuestring)) {
        aemp_log_peer(5, "malformed data connection request from %s dropped", src);
        return;
    }
    struct dataconns *d = dcs(node);
    if (!d) return;
    /* Expected and in use: one peer gets its share, all peers the total. */
    size_t mine = remote_count(d, src), all = remote_count(d, NULL);
    if (mine >= d->max_peer || all >= d->max_total) {
        char why[200];
        if (mine >= d->max_peer)
            snprintf(why, sizeof why, "too many data connections from %.64s (%zu, at most %zu "
                     "per node)", src, mine, d->max_peer);
        else
            snprintf(why, sizeof why, "too many data connections (%zu, at most %zu)", all,
                     d->max_total);
        refuse(node, port->valuestring, "%s: %s", why);
        return;
    }
    if (!strmap_get(&d->funcs, func->valuestring)) {
        refuse(node, port->valuestring, "%s: no data-connection function %s",
               func->valuestring);
        return;
    }
    if (strmap_get(&d->pending, a->valuestring)) {
        aemp_log_peer(5, "data connection %s from %s: already expected, request dropped",
                 a->valuestring, src);
        return;
    }
    struct dc *dc = dc_new(node, DC_REMOTE, a->valuestring, src, to->valuedouble);
    if (!dc) return;
    dc->port = strdup(port->valuestring);
    dc->func = strdup(func->valuestring);
    dc->args = cJSON_CreateArray();
    for (const cJSON *e = func->next; e; e = e->next)
        cJSON_AddItemToArray(dc->args, cJSON_Duplicate(e, 1));
    if (!dc->port || !dc->func || !dc->args) dc_free(node, dc);
}

/* _connect ID NODE: the initiator has no listeners; dial it. */
static void on_connect(aemp_node *node, const char *src, const cJSON *a)
{
    struct dc *dc = cJSON_IsString(a) && dcs_of(node)
                        ? strmap_get(&dcs_of(node)->pending, a->valuestring)
                        : NULL;
    if (!dc || dc->role != DC_REMOTE || strcmp(dc->peer, src)) {
        aemp_log_peer(5, "data connection connect request from %s for an unknown ID dropped", src);
        return;
    }
    const cJSON *addrs = global_node_addrs(node, src);
    if (addrs) {
        aemp_log(7, "data connection %s: we have no listeners, so we dial %s", dc->id, src);
        dc_dial(node, dc, addrs);
    } else {
        char why[300];
        snprintf(why, sizeof why, "%s: no listeners found", src);
        dc_fail(node, dc, why);
    }
}

/* A node-port request AnyEvent::MP::DataConn::* (`tag`) from `srcnode`
 * with its first argument `args` (borrowed, or NULL): 1 when it is one. */
static int dataconn_request(aemp_node *node, const char *srcnode, const char *tag,
                            const cJSON *args)
{
    if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX))) return 0;
    if (!strcmp(tag, TAG_PREFIX "_expect")) on_expect(node, srcnode, args);
    else if (!strcmp(tag, TAG_PREFIX "_connect")) on_connect(node, srcnode, args);
    else aemp_log_peer(4, "request %s from %s dropped: unknown", tag, srcnode);
    return 1;
}

/* Free all pending data connection state without calling back. */
static void dataconn_free_all(aemp_node *node)
{
    struct dataconns *d = dcs_of(node);
    if (!d) return;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&d->pending, &it, &k, &v)) {
        struct dc *dc = v;
        dc->role = DC_REMOTE; /* no kill of P while the node goes */
        free(dc->id);
        dc->id = strdup("");
        dc_free(node, dc);
    }
    strmap_free(&d->pending);
    it = 0;
    while (strmap_next(&d->funcs, &it, &k, &v))
        free(v);
    strmap_free(&d->funcs);
    dcio_free_all(&d->io);
    aemp_guard_free(d->nodemon);
    free(d);
    builtin_set_state(node, &dataconn_builtin, NULL);
}

static void ready_op(void *node, const char *id, const char *peer, struct bufferevent *bev,
                     struct tls *tls, struct evbuffer *plain)
{
    dataconn_ready(node, id, peer, bev, tls, plain);
}

static void dial_failed_op(void *node, const char *id, const char *why)
{
    dataconn_dial_failed(node, id, why);
}

/* What the transport hands to data connections (transport.h). */
static const struct transport_dataconn_ops transport_to_dataconn = {ready_op, dial_failed_op};

/* Once the transport started: data connections come here. */
static int dataconn_start(aemp_node *node, char *err, size_t errlen)
{
    transport_set_dataconn_ops(node->transport, &transport_to_dataconn, node);
    return 0;
}

const struct core_builtin dataconn_builtin = {.name = "dataconn",
                                              .start = dataconn_start,
                                              .request = dataconn_request,
                                              .free = dataconn_free_all};
