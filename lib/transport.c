/* transport.c - connections between nodes (PROTOCOL.md sections 2 and 3):
 * listeners on the configured binds, outgoing connects that try a node's
 * addresses in turn, per-node send queues while connecting, the handshake
 * driver (the pure parts are in handshake.c), TLS (tls.c) and the json
 * framing (framing.c) on libevent bufferevents.
 *
 * Writes are appended to the bufferevent's output and written straight to
 * the socket once per loop turn (wflush_cb), so many messages share one
 * write(2); libevent's write event is used only while the socket is full.
 * Reads hand everything that arrived to the framing reader at once. */
#include "transport.h"

#include "aemp.h"
#include "config.h"
#include "framing.h"
#include "handshake.h"
#include "node.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_MAX_MESSAGE (64u * 1024 * 1024)
#define SCRATCH_SIZE 65536

enum conn_state { C_CONNECTING, C_GREET, C_TLS, C_AUTH, C_UP };

struct peer;
struct seed;

struct conn {
    struct conn *next, *prev;
    struct transport *t;
    struct bufferevent *bev;
    enum conn_state state;
    int outgoing;
    char *want_id;   /* outgoing: the node we meant to reach, or NULL (seed) */
    struct seed *seed;
    char *addr;      /* the remote address, for logs and peeraddr= */
    char *l1;        /* our greeting line 1 */
    char nonce[HS_NONCE_LEN + 1];
    char *r1, *r2;   /* the remote's greeting lines */
    char *L, *R;     /* "l1\nl2\n" of each side, for the tokens */
    char *peer_id;
    struct peer *peer;  /* once up */
    int use_tls, untrusted;
    struct tls *tls;
    struct evbuffer *plain_in, *plain_out;
    struct event *flush_ev;
    struct framing_reader *reader;
    struct event *timer; /* handshake timeout, then keepalive */
    double last_write;
    int busy, dead;
    struct conn *dnext, *dprev; /* in the transport's list of unflushed conns */
    int dirty;                   /* output waits for the end-of-turn flush */
    int backlog;                 /* the socket was full: libevent writes the rest */
};

struct peer {
    struct transport *t;
    char *id;
    cJSON *addrs;            /* known "host:port" addresses */
    struct conn *conn;       /* the authenticated connection or NULL */
    struct evbuffer *queue;  /* JSON texts waiting for a connection */
    int connecting;
    double connect_since;
    unsigned next_addr;
    struct event *tick;      /* retry every connect_interval */
    int is_seed;
};

struct seed {
    char *addr;
    char *nodeid; /* who answered there last */
    int self;     /* it was us: never dial again */
    int dialing;
};

struct transport {
    aemp_node *node;
    strmap peers;
    struct conn *conns;
    struct evconnlistener **lis;
    size_t nlis;
    cJSON *listen_addrs;
    struct seed *seeds;
    size_t nseeds;
    struct event *seed_tick;
    struct tls_creds *creds;
    char *secret;
    const cJSON *auth_offer, *auth_accept, *framing; /* borrowed from node->cfg */
    double monitor_timeout, connect_interval;
    size_t max_msg;
    int nodelay;
    struct evdns_base *dns;
    char *scratch;
    struct conn *dirty;       /* connections with output to write this turn */
    char self_nonce[HS_NONCE_LEN + 1]; /* nonce of our last dial to ourselves */
    struct event *wflush;     /* writes them, once per loop turn */
};

static void conn_close(struct conn *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void peer_try(struct peer *p);

static double now_of(struct transport *t)
{
    struct timeval tv;
    event_base_gettimeofday_cached(t->node->base, &tv);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

static int has_secret(const struct transport *t)
{
    return t->secret && *t->secret;
}

/* -------------------------------------------------------------- addresses */

/* Split "host:port", "[v6]:port", "*", "*:*", "port" or "host" into host and
 * port text. `defport` is used when none is given; "*" or missing port text
 * becomes "0" for binds. 0, or -1 for a malformed address. */
static int split_addr(const char *s, const char *defport, char *host, size_t hl, char *port,
                      size_t pl)
{
    const char *colon;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || (end[1] && end[1] != ':')) return -1;
        snprintf(host, hl, "%.*s", (int)(end - s - 1), s + 1);
        snprintf(port, pl, "%s", end[1] ? end + 2 : defport);
    } else if (strspn(s, "0123456789") == strlen(s) && *s) {
        char name[256];
        config_nodename(name, sizeof name);
        snprintf(host, hl, "%s", name);
        snprintf(port, pl, "%s", s);
    } else if ((colon = strrchr(s, ':')) && strchr(s, ':') == colon) {
        snprintf(host, hl, "%.*s", (int)(colon - s), s);
        snprintf(port, pl, "%s", colon[1] ? colon + 1 : defport);
    } else {
        snprintf(host, hl, "%s", s);
        snprintf(port, pl, "%s", defport);
    }
    if (!strcmp(port, "*")) snprintf(port, pl, "0");
    return *host ? 0 : -1;
}

/* "host:port" text of a socket address into buf. */
static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char h[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", h, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", h, port);
    } else {
        snprintf(buf, len, "?");
    }
}

static void add_unique(cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return;
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

/* ------------------------------------------------------------- writing */

/* Append `len` bytes of framed output to the connection. */
static void conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->dead) return;
    c->last_write = now_of(c->t);
    if (c->tls) {
        evbuffer_add(c->plain_out, data, len);
        event_active(c->flush_ev, 0, 0);
    } else {
        bufferevent_write(c->bev, data, len);
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char err[256];
    if (c->tls && tls_write(c->tls, c->plain_out, err, sizeof err))
        conn_close(c, 5, "%s", err);
}

/* The JSON text of `msg` (borrowed) in the transport's scratch buffer or a
 * new string (*tofree set). */
static const char *encode(struct transport *t, const cJSON *msg, char **tofree, size_t *len)
{
    *tofree = NULL;
    if (cJSON_PrintPreallocated((cJSON *)msg, t->scratch, SCRATCH_SIZE, 0)) {
        *len = strlen(t->scratch);
        return t->scratch;
    }
    *tofree = cJSON_PrintUnformatted(msg);
    *len = *tofree ? strlen(*tofree) : 0;
    return *tofree;
}

/* ------------------------------------------------------------ peers */

static struct peer *peer_get(struct transport *t, const char *id, int create)
{
    struct peer *p = strmap_get(&t->peers, id);
    if (p || !create) return p;
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = t;
    p->id = strdup(id);
    p->addrs = cJSON_CreateArray();
    p->queue = evbuffer_new();
    if (!p->id || !p->addrs || !p->queue || strmap_put(&t->peers, id, p, NULL)) {
        free(p->id);
        cJSON_Delete(p->addrs);
        if (p->queue) evbuffer_free(p->queue);
        free(p);
        return NULL;
    }
    return p;
}

static void peer_stop_connecting(struct peer *p)
{
    p->connecting = 0;
    if (p->tick) {
        event_free(p->tick);
        p->tick = NULL;
    }
}

static void peer_free(struct peer *p)
{
    peer_stop_connecting(p);
    evbuffer_free(p->queue);
    cJSON_Delete(p->addrs);
    free(p->id);
    free(p);
}

/* Forget a node we cannot reach and that nobody asked for since it went
 * down: one without addresses (an `aemp snd` from cron, say) would
 * otherwise stay in the table for good. */
static void peer_maybe_forget(struct transport *t, struct peer *p)
{
    if (p->conn || p->connecting || cJSON_GetArraySize(p->addrs) ||
        evbuffer_get_length(p->queue))
        return;
    strmap_del(&t->peers, p->id);
    peer_free(p);
}

/* The node could not be reached within monitor_timeout: drop its queue and
 * report it down. */
static void peer_fail(struct transport *t, struct peer *p, const char *why)
{
    peer_stop_connecting(p);
    evbuffer_drain(p->queue, evbuffer_get_length(p->queue));
    node_remote_down(t->node, p->id, why);
    peer_maybe_forget(t, p);
}

static void peer_tick(evutil_socket_t fd, short what, void *arg)
{
    peer_try(arg);
}

static struct conn *dial(struct transport *t, const char *addr, const char *want_id,
                         struct seed *seed);

/* One connection attempt to the next known address; gives up after
 * monitor_timeout without success. */
static void peer_try(struct peer *p)
{
    struct transport *t = p->t;
    if (p->conn) {
        peer_stop_connecting(p);
        return;
    }
    if (now_of(t) - p->connect_since >= t->monitor_timeout) {
        char why[160];
        snprintf(why, sizeof why, "%s within %g s",
                 cJSON_GetArraySize(p->addrs) ? "no connection" : "no known address",
                 t->monitor_timeout);
        peer_fail(t, p, why);
        return;
    }
    int n = cJSON_GetArraySize(p->addrs);
    if (n > 0) {
        const cJSON *a = cJSON_GetArrayItem(p->addrs, (int)(p->next_addr++ % (unsigned)n));
        if (cJSON_IsString(a)) dial(t, a->valuestring, p->id, NULL);
    }
}

static void peer_connect_start(struct peer *p)
{
    struct transport *t = p->t;
    if (p->connecting || p->conn) return;
    p->connecting = 1;
    p->connect_since = now_of(t);
    p->tick = event_new(t->node->base, -1, EV_PERSIST, peer_tick, p);
    double iv = t->connect_interval;
    if (iv > t->monitor_timeout) iv = t->monitor_timeout;
    struct timeval tv = tv_of(iv > 0.05 ? iv : 0.05);
    if (p->tick) event_add(p->tick, &tv);
    peer_try(p);
}

/* ------------------------------------------------------------ closing */

static void dirty_unlink(struct conn *c)
{
    if (!c->dirty) return;
    if (c->dprev) c->dprev->dnext = c->dnext;
    else c->t->dirty = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dnext = c->dprev = NULL;
    c->dirty = 0;
}

static void conn_free(struct conn *c)
{
    struct transport *t = c->t;
    dirty_unlink(c);
    if (c->prev) c->prev->next = c->next;
    else t->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->tls) tls_free(c->tls);
    if (c->bev) bufferevent_free(c->bev);
    if (c->plain_in) evbuffer_free(c->plain_in);
    if (c->plain_out) evbuffer_free(c->plain_out);
    if (c->flush_ev) event_free(c->flush_ev);
    if (c->timer) event_free(c->timer);
    framing_reader_free(c->reader);
    free(c->want_id);
    free(c->addr);
    free(c->l1);
    free(c->r1);
    free(c->r2);
    free(c->L);
    free(c->R);
    free(c->peer_id);
    free(c);
}

/* Close one connection with a logged reason. An authenticated connection
 * takes its node down with it (monitors fire with transport_error). Safe
 * inside this connection's own callbacks: the memory goes when they end. */
static void conn_close(struct conn *c, int level, const char *fmt, ...)
{
    if (c->dead) return;
    c->dead = 1;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *who = c->peer_id ? c->peer_id : c->want_id ? c->want_id : "?";
    aemp_log(level, "connection %s %s (%s) closed: %s", c->outgoing ? "to" : "from",
             c->addr ? c->addr : "?", who, why);
    if (c->seed) c->seed->dialing = 0;
    struct peer *p = c->peer;
    if (c->bev) {
        /* One non-blocking attempt to send what is still queued (a TLS
         * alert saying why, the last messages): the socket closes next. */
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0 && c->state != C_CONNECTING && evbuffer_get_length(out)) {
            evbuffer_unfreeze(out, 1); /* bufferevents keep their drain side frozen */
            evbuffer_write(out, fd);
        }
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    }
    if (p && p->conn == c) {
        p->conn = NULL;
        evbuffer_drain(p->queue, evbuffer_get_length(p->queue));
        node_remote_down(c->t->node, p->id, why);
        peer_maybe_forget(c->t, p);
    }
    if (!c->busy) conn_free(c);
}

/* ------------------------------------------------------------- handshake */

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct conn *c, double s)
{
    struct timeval tv = tv_of(s);
    evtimer_add(c->timer, &tv);
}

/* Send our two greeting lines. */
static void send_greeting(struct conn *c)
{
    struct transport *t = c->t;
    c->l1 = hs_build_greeting(t->node->id, t->auth_accept, t->framing, c->addr,
                              t->creds != NULL);
    hs_nonce(c->nonce);
    if (!c->l1) {
        conn_close(c, 3, "out of memory");
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "%s\n%s\n", c->l1, c->nonce);
    c->state = C_GREET;
    arm_timer(c, t->monitor_timeout);
}

/* Read one line of at most HS_MAX_LINE bytes from `in`: 1 with *line (new
 * string, no terminator, CR stripped), 0 when incomplete, -1 when too long. */
static int read_line(struct evbuffer *in, char **line)
{
    size_t eol_len;
    struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (pos.pos < 0) return evbuffer_get_length(in) >= HS_MAX_LINE ? -1 : 0;
    if ((size_t)pos.pos + 1 > HS_MAX_LINE) return -1;
    size_t n;
    *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (!*line) return -1;
    if (n && (*line)[n - 1] == '\r') (*line)[n - 1] = 0;
    return 1;
}

/* Send our auth line METHOD;TOKEN;FRAMING (inside TLS when used). */
static void send_auth(struct conn *c, const struct hs_greeting *g)
{
    struct transport *t = c->t;
    const char *method, *framing;
    char err[256];
    if (hs_choose(g, t->auth_offer, t->framing, c->use_tls, &method, &framing, err,
                  sizeof err)) {
        conn_close(c, 5, "%s", err);
        return;
    }
    size_t toklen = 2 * (t->secret ? strlen(t->secret) : 0) + 80;
    char *tok = malloc(toklen);
    if (!tok) {
        conn_close(c, 3, "out of memory");
        return;
    }
    if (hs_token(method, t->secret, c->L, c->R, tok, toklen)) {
        free(tok);
        conn_close(c, 4, "cannot authenticate with %s: no secret configured (aemp gensecret)",
                   method);
        return;
    }
    char *line = malloc(strlen(method) + strlen(tok) + strlen(framing) + 4);
    if (line) {
        int n = sprintf(line, "%s;%s;%s\n", method, tok, framing);
        conn_write(c, line, (size_t)n);
    }
    free(line);
    free(tok);
}

/* Initiator of a connection: us for outgoing ones. */
static const char *initiator(const struct conn *c)
{
    return c->outgoing ? c->t->node->id : c->peer_id;
}

/* Both nodes connected to each other at once: keep the connection that the
 * node with the smaller ID started, on both sides, and close the other.
 * Returns 1 when `c` itself was closed. */
static int resolve_race(struct conn *c)
{
    struct transport *t = c->t;
    for (struct conn *o = t->conns, *next; o; o = next) {
        next = o->next; /* closing o may free it */
        if (o == c || o->dead || o->state == C_UP) continue;
        const char *oid = o->peer_id ? o->peer_id : o->want_id;
        if (!oid || strcmp(oid, c->peer_id)) continue;
        if (o->outgoing == c->outgoing) continue; /* same initiator: first up wins */
        const char *ic = initiator(c), *io = o->outgoing ? t->node->id : c->peer_id;
        if (strcmp(ic, io) > 0) {
            conn_close(c, 7, "simultaneous connection: keeping the one %s started", io);
            return 1;
        }
        conn_close(o, 7, "simultaneous connection: keeping the one %s started", ic);
    }
    return 0;
}

static void become_up(struct conn *c);

/* The remote's two greeting lines are in: check them and go on to TLS or
 * straight to the auth lines. */
static void on_greeting(struct conn *c)
{
    struct transport *t = c->t;
    struct hs_greeting g;
    char err[256];
    if (hs_parse_greeting(c->r1, strlen(c->r1), &g, err, sizeof err)) {
        conn_close(c, 5, "bad greeting: %s", err);
        return;
    }
    if (strcmp(g.proto, "aemp")) {
        conn_close(c, 5, "unsupported protocol %s", g.proto);
    } else if (!strcmp(g.nodeid, t->node->id)) {
        /* A seed list naming ourselves makes us dial ourselves: the incoming
         * side then carries our own outgoing greeting. Only quiet that. */
        int self_dial = c->seed != NULL || (t->self_nonce[0] && !strcmp(t->self_nonce, c->r2));
        for (struct conn *o = t->conns; o && !self_dial; o = o->next)
            self_dial = o != c && o->outgoing && o->l1 && !strcmp(o->nonce, c->r2);
        if (c->seed) {
            c->seed->self = 1;
            /* the other end of this connection may read it after we closed */
            snprintf(t->self_nonce, sizeof t->self_nonce, "%s", c->nonce);
        }
        conn_close(c, self_dial ? 7 : 5, "refusing to talk to myself");
    } else if (!strcmp(c->r1, c->l1) && !strcmp(c->r2, c->nonce)) {
        conn_close(c, 4, "echo of our own greeting (replay attack?)");
    } else {
        struct peer *p = peer_get(t, g.nodeid, 0);
        if (p && p->conn) {
            if (c->seed) { /* the seed is up through another connection */
                free(c->seed->nodeid);
                c->seed->nodeid = strdup(g.nodeid);
                p->is_seed = 1;
            }
            /* Dialing a node we already reach another way is routine; being
             * called by a second node with the ID of a connected one is
             * not: two nodes share a node ID (or the old one hung). */
            if (c->outgoing)
                conn_close(c, 7, "already connected to %s", g.nodeid);
            else
                conn_close(c, 5,
                           "%s is already connected through another connection: do two "
                           "nodes use the node ID %s?",
                           g.nodeid, g.nodeid);
        } else if (!has_secret(t) && !(t->creds && hs_use_tls(&g, 1))) {
            conn_close(c, 4,
                       "cannot authenticate: no secret configured and no TLS possible "
                       "(set one with aemp gensecret)");
        } else {
            c->peer_id = strdup(g.nodeid);
            if (c->peer_id && !resolve_race(c)) {
                c->use_tls = hs_use_tls(&g, t->creds != NULL);
                size_t nl = strlen(c->l1) + strlen(c->nonce) + 3;
                size_t nr = strlen(c->r1) + strlen(c->r2) + 3;
                c->L = malloc(nl);
                c->R = malloc(nr);
                if (c->L && c->R) {
                    snprintf(c->L, nl, "%s\n%s\n", c->l1, c->nonce);
                    snprintf(c->R, nr, "%s\n%s\n", c->r1, c->r2);
                }
                if (!c->L || !c->R) {
                    conn_close(c, 3, "out of memory");
                } else if (c->use_tls) {
                    int client = hs_tls_is_client(c->nonce, c->r2);
                    c->tls = tls_new(t->creds, client, bufferevent_get_input(c->bev),
                                     bufferevent_get_output(c->bev), err, sizeof err);
                    c->plain_in = evbuffer_new();
                    c->plain_out = evbuffer_new();
                    c->flush_ev = event_new(t->node->base, -1, 0, flush_cb, c);
                    if (!c->tls || !c->plain_in || !c->plain_out || !c->flush_ev)
                        conn_close(c, 3, "cannot start TLS: %s", c->tls ? "no memory" : err);
                    else
                        c->state = C_TLS;
                } else {
                    c->state = C_AUTH;
                    send_auth(c, &g);
                }
            }
        }
    }
    hs_greeting_clear(&g);
}

/* The remote's auth line: accept or close. */
static void on_auth(struct conn *c, const char *line)
{
    struct transport *t = c->t;
    struct hs_auth a;
    char err[256];
    if (hs_parse_auth(line, strlen(line), &a, err, sizeof err)) {
        conn_close(c, 5, "bad auth line: %s", err);
        return;
    }
    int untrusted = 0;
    if (hs_check_auth(&a, t->auth_accept, t->framing, c->use_tls, t->secret, c->L, c->R,
                      &untrusted, err, sizeof err)) {
        conn_close(c, 4, "authentication failed: %s", err);
    } else if (strcmp(a.framing, "json")) {
        conn_close(c, 5, "peer sends framing %s, we only read json", a.framing);
    } else {
        c->untrusted = untrusted;
        become_up(c);
    }
    hs_auth_clear(&a);
}

/* ------------------------------------------------------------- up */

static int on_message(void *ud, cJSON *msg)
{
    struct conn *c = ud;
    if (c->dead) {
        cJSON_Delete(msg);
        return 1;
    }
    node_deliver(c->t->node, c->peer_id, msg);
    return c->dead;
}

static int has_listeners(const struct transport *t)
{
    return t->nlis > 0;
}

static void become_up(struct conn *c)
{
    struct transport *t = c->t;
    struct peer *p = peer_get(t, c->peer_id, 1);
    if (!p) {
        conn_close(c, 3, "out of memory");
        return;
    }
    if (p->conn) {
        conn_close(c, 7, "already connected to %s", p->id);
        return;
    }
    c->reader = framing_reader_new(t->max_msg);
    if (!c->reader) {
        conn_close(c, 3, "out of memory");
        return;
    }
    c->state = C_UP;
    c->peer = p;
    p->conn = c;
    peer_stop_connecting(p);
    if (c->outgoing && c->addr) add_unique(p->addrs, c->addr);
    if (c->seed) {
        free(c->seed->nodeid);
        c->seed->nodeid = strdup(p->id);
        c->seed->dialing = 0;
        p->is_seed = 1;
        c->seed = NULL;
    }
    event_del(c->timer);
    if (!has_listeners(t)) arm_timer(c, t->monitor_timeout); /* keepalive */
    if (c->untrusted) aemp_log(5, "node %s is connected untrusted (tls_anon)", p->id);
    /* Messages queued while connecting go out first. */
    size_t qlen = evbuffer_get_length(p->queue);
    if (qlen) {
        if (c->tls) {
            evbuffer_add_buffer(c->plain_out, p->queue);
            event_active(c->flush_ev, 0, 0);
        } else {
            bufferevent_write_buffer(c->bev, p->queue);
        }
        c->last_write = now_of(t);
    }
    aemp_log(7, "connected to %s (%s, %s)", p->id, c->addr ? c->addr : "?",
             c->use_tls ? "TLS" : "no TLS");
    node_remote_up(t->node, p->id);
}

/* Feed everything in `in` to the framing reader. */
static void read_frames(struct conn *c, struct evbuffer *in)
{
    char err[256];
    int n = evbuffer_peek(in, -1, NULL, NULL, 0);
    if (n <= 0) return;
    struct evbuffer_iovec stackv[16], *v = n <= 16 ? stackv : malloc((size_t)n * sizeof *v);
    if (!v) return;
    evbuffer_peek(in, -1, NULL, v, n);
    size_t total = 0;
    for (int i = 0; i < n && !c->dead; i++) {
        int rc = framing_reader_feed(c->reader, v[i].iov_base, v[i].iov_len, on_message, c, err,
                                     sizeof err);
        total += v[i].iov_len;
        if (rc < 0) conn_close(c, 5, "protocol error: %s", err);
    }
    if (v != stackv) free(v);
    if (!c->dead) evbuffer_drain(in, total);
}

/* Process what arrived, in whatever state the connection is. */
static void process(struct conn *c)
{
    struct evbuffer *raw = bufferevent_get_input(c->bev);
    char err[256];
    if (c->state == C_GREET) {
        while (!c->dead && (!c->r1 || !c->r2)) {
            char *line;
            int rc = read_line(raw, &line);
            if (rc < 0) {
                conn_close(c, 5, "greeting line longer than %d bytes", HS_MAX_LINE);
                return;
            }
            if (rc == 0) return;
            if (!c->r1) c->r1 = line;
            else c->r2 = line;
        }
        arm_timer(c, c->t->monitor_timeout); /* progress */
        on_greeting(c);
    }
    if (c->dead) return;
    if (c->state == C_TLS) {
        int rc = tls_handshake(c->tls, err, sizeof err);
        if (rc < 0) {
            conn_close(c, 4, "%s", err);
            return;
        }
        if (rc == 1) return;
        c->state = C_AUTH;
        struct hs_greeting g;
        if (hs_parse_greeting(c->r1, strlen(c->r1), &g, err, sizeof err) == 0) {
            send_auth(c, &g);
            hs_greeting_clear(&g);
        }
        if (c->dead) return;
    }
    struct evbuffer *in = raw;
    if (c->tls) {
        if (tls_read(c->tls, c->plain_in, err, sizeof err)) {
            conn_close(c, c->state == C_UP ? 6 : 5, "%s", err);
            return;
        }
        in = c->plain_in;
    }
    if (c->state == C_AUTH) {
        char *line;
        int rc = read_line(in, &line);
        if (rc < 0) {
            conn_close(c, 5, "auth line longer than %d bytes", HS_MAX_LINE);
            return;
        }
        if (rc == 0) return;
        on_auth(c, line);
        free(line);
        if (c->dead) return;
    }
    if (c->state == C_UP) read_frames(c, in);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    c->busy++;
    process(c);
    c->busy--;
    if (c->dead) conn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    c->busy++;
    if (what & BEV_EVENT_CONNECTED) {
        int fd = bufferevent_getfd(bev), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if (c->t->nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_greeting(c);
    } else if (what & BEV_EVENT_EOF) {
        /* Process what came with the EOF first. */
        process(c);
        conn_close(c, c->state == C_UP ? 6 : 5, "connection closed by the peer");
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int e = EVUTIL_SOCKET_ERROR();
        int dnserr = bufferevent_socket_get_dns_error(bev);
        if (dnserr)
            conn_close(c, 6, "cannot resolve: %s", evutil_gai_strerror(dnserr));
        else
            conn_close(c, c->state == C_CONNECTING ? 7 : 6, "%s",
                       e ? evutil_socket_error_to_string(e) : "connection error");
    }
    c->busy--;
    if (c->dead) conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct transport *t = c->t;
    if (c->state != C_UP) {
        conn_close(c, 5, "handshake made no progress for %g s", t->monitor_timeout);
        return;
    }
    /* Keepalive of listener-less nodes: "[]" after monitor_timeout of silence. */
    double idle = now_of(t) - c->last_write;
    if (idle >= t->monitor_timeout - 0.01) {
        conn_write(c, "[]", 2);
        idle = 0;
    }
    arm_timer(c, t->monitor_timeout - idle);
}

/* Output is written by us at the end of the loop turn, straight to the
 * socket: no EV_WRITE (and its epoll_ctl calls) while the socket takes it.
 * Only when it is full does libevent's write event take over until the
 * backlog is gone. */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (!info->n_added || c->dirty || c->backlog || c->dead) return;
    c->dirty = 1;
    c->dprev = NULL;
    c->dnext = c->t->dirty;
    if (c->dnext) c->dnext->dprev = c;
    c->t->dirty = c;
    event_active(c->t->wflush, 0, 0);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    /* the backlog is written: back to writing at the end of each turn */
    if (c->backlog && !evbuffer_get_length(bufferevent_get_output(bev))) {
        c->backlog = 0;
        bufferevent_disable(bev, EV_WRITE);
    }
}

static void wflush_cb(evutil_socket_t fd_, short what, void *arg)
{
    struct transport *t = arg;
    while (t->dirty) {
        struct conn *c = t->dirty;
        dirty_unlink(c);
        if (c->dead || c->state == C_CONNECTING) continue;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        int err = 0;
        evbuffer_unfreeze(out, 1);
        while (evbuffer_get_length(out)) {
            int n = evbuffer_write(out, fd);
            if (n < 0) {
                err = EVUTIL_SOCKET_ERROR();
                break;
            }
        }
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) == 0) continue;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            conn_close(c, c->state == C_UP ? 6 : 5, "write: %s",
                       evutil_socket_error_to_string(err));
            continue;
        }
        c->backlog = 1;
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

static struct conn *conn_new(struct transport *t, struct bufferevent *bev)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->t = t;
    c->bev = bev;
    c->timer = evtimer_new(t->node->base, timer_cb, c);
    if (!c->timer) {
        free(c);
        return NULL;
    }
    c->next = t->conns;
    if (c->next) c->next->prev = c;
    t->conns = c;
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(bev, EV_READ);
    evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
    return c;
}

/* Start an outgoing connection to `addr`. */
static struct conn *dial(struct transport *t, const char *addr, const char *want_id,
                         struct seed *seed)
{
    char host[256], port[32];
    if (split_addr(addr, "4040", host, sizeof host, port, sizeof port) || !strcmp(host, "*")) {
        aemp_log(5, "cannot connect to \"%s\": not a host:port address", addr);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_socket_new(t->node->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return NULL;
    struct conn *c = conn_new(t, bev);
    if (!c) {
        bufferevent_free(bev);
        return NULL;
    }
    c->outgoing = 1;
    c->addr = strdup(addr);
    c->want_id = want_id ? strdup(want_id) : NULL;
    c->seed = seed;
    if (seed) seed->dialing = 1;
    c->state = C_CONNECTING;
    arm_timer(c, t->monitor_timeout);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char numeric[300];
    snprintf(numeric, sizeof numeric, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    c->busy++;
    int rc;
    if (evutil_parse_sockaddr_port(numeric, (struct sockaddr *)&ss, &sslen) == 0) {
        rc = bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen);
    } else {
        if (!t->dns) t->dns = evdns_base_new(t->node->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        rc = t->dns ? bufferevent_socket_connect_hostname(bev, t->dns, AF_UNSPEC, host,
                                                         atoi(port))
                    : -1;
    }
    if (rc < 0 && !c->dead) conn_close(c, 6, "cannot connect to %s", addr);
    c->busy--; /* only now may closing free it */
    if (c->dead) {
        conn_free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------ listening */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct transport *t = arg;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (t->nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = bufferevent_socket_new(t->node->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    struct conn *c = conn_new(t, bev);
    if (!c) {
        bufferevent_free(bev);
        return;
    }
    char buf[128];
    addr_text(sa, buf, sizeof buf);
    c->addr = strdup(buf);
    send_greeting(c);
}

/* The addresses a "*" bind is reachable at: every non-loopback IPv4
 * address, global and site-local IPv6; 127.0.0.1 when there is none. */
static void wildcard_addrs(cJSON *out, int port)
{
    struct ifaddrs *ifs, *i;
    int n = 0;
    char buf[128];
    if (getifaddrs(&ifs) == 0) {
        for (i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr) continue;
            if (i->ifa_addr->sa_family == AF_INET) {
                struct sockaddr_in in = *(struct sockaddr_in *)i->ifa_addr;
                if ((ntohl(in.sin_addr.s_addr) >> 24) == 127) continue;
                in.sin_port = htons((uint16_t)port);
                addr_text((struct sockaddr *)&in, buf, sizeof buf);
            } else {
                continue; /* the wildcard socket is IPv4 */
            }
            add_unique(out, buf);
            n++;
        }
        freeifaddrs(ifs);
    }
    if (!n) {
        snprintf(buf, sizeof buf, "127.0.0.1:%d", port);
        add_unique(out, buf);
    }
}

static int listen_on(struct transport *t, const struct sockaddr *sa, socklen_t len,
                     const char *bind, char *err, size_t errlen)
{
    struct evconnlistener *l = evconnlistener_new_bind(
        t->node->base, accept_cb, t, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128, sa,
        (int)len);
    if (!l) {
        snprintf(err, errlen, "cannot listen on %s: %s", bind, strerror(errno));
        return AEMP_EIO;
    }
    struct evconnlistener **v = realloc(t->lis, (t->nlis + 1) * sizeof *v);
    if (!v) {
        evconnlistener_free(l);
        return AEMP_ENOMEM;
    }
    t->lis = v;
    t->lis[t->nlis++] = l;
    return 0;
}

/* The port a listener really got (for port 0). */
static int bound_port(struct evconnlistener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len)) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int start_listeners(struct transport *t, const cJSON *binds, char *err, size_t errlen)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, binds)
    {
        char host[256], port[32];
        if (!cJSON_IsString(b) || split_addr(b->valuestring, "0", host, sizeof host, port,
                                             sizeof port)) {
            snprintf(err, errlen, "binds: \"%s\" is not host:port",
                     cJSON_IsString(b) ? b->valuestring : "(not a string)");
            return AEMP_ECONFIG;
        }
        if (!strcmp(host, "*")) {
            struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
            int rc = listen_on(t, (struct sockaddr *)&in, sizeof in, b->valuestring, err, errlen);
            if (rc) return rc;
            wildcard_addrs(t->listen_addrs, bound_port(t->lis[t->nlis - 1]));
            continue;
        }
        /* Resolving a bind happens once, at start, before the loop runs. */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res, *r;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai) {
            snprintf(err, errlen, "binds: cannot resolve \"%s\": %s", b->valuestring,
                     gai_strerror(gai));
            return AEMP_ECONFIG;
        }
        for (r = res; r; r = r->ai_next) {
            int rc = listen_on(t, r->ai_addr, r->ai_addrlen, b->valuestring, err, errlen);
            if (rc) {
                freeaddrinfo(res);
                return rc;
            }
            struct sockaddr_storage ss;
            memcpy(&ss, r->ai_addr, r->ai_addrlen);
            int bp = bound_port(t->lis[t->nlis - 1]);
            if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bp);
            else ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bp);
            char buf[128];
            addr_text((struct sockaddr *)&ss, buf, sizeof buf);
            add_unique(t->listen_addrs, buf);
        }
        freeaddrinfo(res);
    }
    return 0;
}

/* ---------------------------------------------------------------- seeds */

static void seed_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport *t = arg;
    for (size_t i = 0; i < t->nseeds; i++) {
        struct seed *s = &t->seeds[i];
        if (s->self || s->dialing) continue;
        if (s->nodeid && transport_is_up(t->node, s->nodeid)) continue;
        dial(t, s->addr, NULL, s);
    }
}

/* ------------------------------------------------------------ interface */

static double num_of(const cJSON *cfg, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) return atof(v->valuestring);
    return def;
}

int transport_start(struct aemp_node *node, char *err, size_t errlen)
{
    const cJSON *cfg = node->cfg;
    struct transport *t = calloc(1, sizeof *t);
    if (!t) return AEMP_ENOMEM;
    node->transport = t;
    t->node = node;
    t->scratch = malloc(SCRATCH_SIZE);
    t->listen_addrs = cJSON_CreateArray();
    t->wflush = event_new(node->base, -1, 0, wflush_cb, t);
    if (!t->scratch || !t->listen_addrs || !t->wflush) return AEMP_ENOMEM;
    t->monitor_timeout = num_of(cfg, "monitor_timeout", 30);
    if (t->monitor_timeout <= 0) t->monitor_timeout = 30;
    t->connect_interval = num_of(cfg, "connect_interval", 2);
    if (t->connect_interval <= 0) t->connect_interval = 2;
    double mm = num_of(cfg, "max_message_size", DEFAULT_MAX_MESSAGE);
    t->max_msg = mm >= 1024 ? (size_t)mm : DEFAULT_MAX_MESSAGE;
    t->nodelay = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cfg, "nodelay"));
    t->auth_offer = cJSON_GetObjectItemCaseSensitive(cfg, "auth_offer");
    t->auth_accept = cJSON_GetObjectItemCaseSensitive(cfg, "auth_accept");
    t->framing = cJSON_GetObjectItemCaseSensitive(cfg, "framing_format");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg, "secret");
    if (cJSON_IsString(sec) && *sec->valuestring) t->secret = strdup(sec->valuestring);
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive(cfg, "cert");
    if (cJSON_IsString(cert) && *cert->valuestring) {
        int rc = tls_creds_load(cert->valuestring, &t->creds, err, errlen);
        if (rc) return rc;
    }
    const cJSON *binds = cJSON_GetObjectItemCaseSensitive(cfg, "binds");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(cfg, "seeds");
    if (!has_secret(t) && !t->creds &&
        (cJSON_GetArraySize(binds) > 0 || cJSON_GetArraySize(seeds) > 0)) {
        snprintf(err, errlen,
                 "no secret and no certificate configured: other nodes could not "
                 "authenticate this one; run `aemp gensecret` (or `aemp gencert`)");
        return AEMP_EAUTH;
    }
    int rc = start_listeners(t, binds, err, errlen);
    if (rc) return rc;
    size_t n = (size_t)cJSON_GetArraySize(seeds);
    if (n) {
        t->seeds = calloc(n, sizeof *t->seeds);
        if (!t->seeds) return AEMP_ENOMEM;
        const cJSON *s;
        cJSON_ArrayForEach(s, seeds)
        if (cJSON_IsString(s) && *s->valuestring)
            t->seeds[t->nseeds++].addr = strdup(s->valuestring);
        t->seed_tick = event_new(node->base, -1, EV_PERSIST, seed_tick_cb, t);
        struct timeval tv = tv_of(t->connect_interval < 1 ? 1 : t->connect_interval);
        if (t->seed_tick) event_add(t->seed_tick, &tv);
        seed_tick_cb(-1, 0, t);
    }
    return 0;
}

void transport_send(struct aemp_node *node, const char *nodeid, cJSON *msg)
{
    struct transport *t = node->transport;
    if (!t) {
        aemp_log(5, "message to %s dropped: the node is not configured", nodeid);
        cJSON_Delete(msg);
        return;
    }
    struct peer *p = peer_get(t, nodeid, 1);
    char *tofree;
    size_t len;
    const char *text = p ? encode(t, msg, &tofree, &len) : NULL;
    cJSON_Delete(msg);
    if (!text) return;
    if (p->conn) {
        conn_write(p->conn, text, len);
    } else {
        evbuffer_add(p->queue, text, len);
        peer_connect_start(p);
    }
    free(tofree);
}

int transport_is_up(struct aemp_node *node, const char *nodeid)
{
    struct transport *t = node->transport;
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    return p && p->conn;
}

void transport_up_nodes(struct aemp_node *node, cJSON *arr)
{
    struct transport *t = node->transport;
    if (!t) return;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        if (((struct peer *)v)->conn) cJSON_AddItemToArray(arr, cJSON_CreateString(k));
}

void transport_known_nodes(struct aemp_node *node, cJSON *arr)
{
    struct transport *t = node->transport;
    cJSON_AddItemToArray(arr, cJSON_CreateString(node->id));
    if (!t) return;
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        cJSON_AddItemToArray(arr, cJSON_CreateString(k));
}

void transport_set_addrs(struct aemp_node *node, const char *nodeid, const cJSON *addrs)
{
    struct transport *t = node->transport;
    if (!t || !strcmp(nodeid, node->id)) return;
    struct peer *p = peer_get(t, nodeid, 1);
    if (!p) return;
    cJSON *dup = cJSON_CreateArray();
    const cJSON *a;
    cJSON_ArrayForEach(a, addrs)
    if (cJSON_IsString(a)) add_unique(dup, a->valuestring);
    int had = cJSON_GetArraySize(p->addrs);
    cJSON_Delete(p->addrs);
    p->addrs = dup;
    /* A node we are waiting to reach just got its first addresses: try now,
     * from the loop, instead of at the next connect_interval tick. */
    if (!had && p->connecting && p->tick && cJSON_GetArraySize(dup)) event_active(p->tick, 0, 0);
}

int transport_node_is_seed(struct aemp_node *node, const char *nodeid)
{
    struct transport *t = node->transport;
    struct peer *p = t ? peer_get(t, nodeid, 0) : NULL;
    return p && p->is_seed;
}

cJSON *transport_listen_addrs(struct aemp_node *node)
{
    struct transport *t = node->transport;
    return t ? cJSON_Duplicate(t->listen_addrs, 1) : cJSON_CreateArray();
}

void transport_free(struct aemp_node *node)
{
    struct transport *t = node->transport;
    if (!t) return;
    node->transport = NULL;
    while (t->conns)
        conn_free(t->conns);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        peer_free(v);
    strmap_free(&t->peers);
    for (size_t i = 0; i < t->nlis; i++)
        evconnlistener_free(t->lis[i]);
    free(t->lis);
    for (size_t i = 0; i < t->nseeds; i++) {
        free(t->seeds[i].addr);
        free(t->seeds[i].nodeid);
    }
    free(t->seeds);
    if (t->seed_tick) event_free(t->seed_tick);
    if (t->dns) evdns_base_free(t->dns, 0);
    if (t->wflush) event_free(t->wflush);
    tls_creds_free(t->creds);
    cJSON_Delete(t->listen_addrs);
    free(t->secret);
    free(t->scratch);
    free(t);
}
