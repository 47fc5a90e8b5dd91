/* conn.c - the life of one connection between nodes: made (conn_new for an
 * accepted socket, conn_dial for our own connect), its bufferevent's
 * events (connected, EOF, errors) and its timer, closed (conn_close: the
 * one way a connection closes, one call per cause) and freed. What it reads
 * in the handshake is conn_hs.c's; once up, conn_in.c reads and conn_out.c
 * writes. */
#include "transport_int.h"

#include "tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* ------------------------------------------------------------ closing */

/* Free `c`, taking it out of the list of `t` (its transport's). */
void conn_free_in(struct transport *t, struct conn *c)
{
    admit_done(c);
    peer_dial_done(c);
    dirty_unlink(c);
    if (t->conns == c) t->conns = c->next; /* the head */
    else if (c->prev) c->prev->next = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->tls) tls_free(c->tls);
    if (c->rev) event_free(c->rev); /* before the socket closes */
    if (c->bev) bufferevent_free(c->bev);
    if (c->plain_in) evbuffer_free(c->plain_in);
    if (c->plain_out) evbuffer_free(c->plain_out);
    if (c->flush_ev) event_free(c->flush_ev);
    if (c->timer) event_free(c->timer);
    if (c->stall) event_free(c->stall);
    framing_reader_free(c->reader);
    free(c->want_id);
    free(c->addr);
    free(c->l1);
    free(c->r1);
    free(c->r2);
    free(c->L);
    free(c->R);
    free(c->peer_id);
    free(c->dataconn_id);
    free(c->beat_key);
    hostbeat_detach(c);
    free(c);
}

void conn_free(struct conn *c)
{
    conn_free_in(c->t, c);
}

/* Close one connection for `cause`, counted (stats.c), with a logged reason.
 * An authenticated connection takes its node down with it (peer.c's
 * peer_conn_closed; monitors fire with transport_error). Safe inside this
 * connection's own callbacks: the memory goes when they end. */
void conn_close(struct conn *c, enum conn_cause cause, int level, const char *fmt, ...)
{
    if (c->dead) return;
    c->dead = 1;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *who = c->peer_id ? c->peer_id : c->want_id ? c->want_id : "?";
    /* strangers cannot make us write a line per connection */
    if (!c->preauth_host || admit_log_ok(c->t))
        aemp_log_peer(level, "connection %s %s (%s) closed: %s", c->outgoing ? "to" : "from",
                 c->addr ? c->addr : "?", who, why);
    if (c->seed) c->seed->dialing = 0;
    peer_dial_done(c);
    struct peer *p = c->peer;
    const char *pid = c->peer_id ? c->peer_id : c->want_id;
    struct peer *sp = p ? p : pid ? peer_get(c->t, pid, 0) : NULL;
    stats_count_close(&c->t->stats, sp ? &sp->stats : NULL, c->state, cause);
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
    if (c->rev) event_del(c->rev);
    peer_conn_closed(c, why);
    if (c->dataconn_id && c->outgoing && c->t->dcops)
        c->t->dcops->dial_failed(c->t->dcctx, c->dataconn_id, why);
    if (!c->busy) conn_free(c);
}

int conn_unread(struct conn *c)
{
    int n = 0;
    evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;
    return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

void conn_arm_timer(struct conn *c, double s)
{
    struct timeval tv = tv_of(s);
    c->timer_own = probe_own_now(c->t);
    c->timer_len = s;
    evtimer_add(c->timer, &tv);
}

/* What a handshake that made no progress waited for. */
static const char *hs_waiting_for(const struct conn *c)
{
    switch (c->state) {
    case C_CONNECTING: return "the connection to be accepted";
    case C_GREET: return "its greeting";
    case C_TLS: return "the TLS handshake";
    case C_AUTH: return "its auth line";
    default: return "another connection to it";
    }
}

/* What our handshake state tells of why the peer closed (handshake.c).
 * Before the greetings only for our own dials: a client that goes away
 * early is routine. */
static const char *closed_cause(const struct conn *c)
{
    if (c->state == C_GREET && c->outgoing) return hs_refusal_cause(HS_AWAIT_GREETING, 0);
    if (c->state == C_TLS) return hs_refusal_cause(HS_IN_TLS, 0);
    if (c->state != C_AUTH || !c->auth_sent[0]) return "";
    int accept_own = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, c->t->auth_accept)
        if (cJSON_IsString(m) && !strcmp(m->valuestring, c->auth_sent)) accept_own = 1;
    return hs_refusal_cause(HS_AWAIT_AUTH, accept_own);
}

void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    c->busy++;
    if (what & BEV_EVENT_CONNECTED) {
        int fd = bufferevent_getfd(bev), one = 1;
        probe_sockopts(c->t, fd);
        if (c->t->nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_greeting(c);
    } else if (what & BEV_EVENT_EOF) {
        /* Process what came with the EOF first. */
        conn_process(c);
        if (c->outgoing && c->state == C_GREET && !c->r1)
            conn_close(c, CONN_REFUSED, 5,
                       "connection closed by the peer before its greeting: it refuses "
                       "connections now (too many in its handshake from this host?)");
        else if (pick_lost_race(c))
            conn_close(c, CONN_PEER_CLOSED, 7,
                       "connection closed by the peer, which keeps another connection to us "
                       "(both dialed at once)");
        else
            conn_close(c, CONN_PEER_CLOSED, c->state == C_UP ? 6 : 5,
                       "connection closed by the peer%s", closed_cause(c));
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int e = EVUTIL_SOCKET_ERROR();
        int dnserr = bufferevent_socket_get_dns_error(bev);
        if (dnserr)
            conn_close(c, CONN_CONNECT_FAILED, 6, "cannot resolve: %s",
                       evutil_gai_strerror(dnserr));
        else if (c->outgoing && c->state == C_GREET && !c->r1 && e == ECONNRESET)
            conn_close(c, CONN_REFUSED, 5, "%s before its greeting: it refuses connections now "
                       "(too many in its handshake from this host?)",
                       evutil_socket_error_to_string(e));
        else
            conn_close(c, c->state == C_CONNECTING ? CONN_CONNECT_FAILED : conn_cause_of_errno(e),
                       c->state == C_CONNECTING ? 7 : 6, "%s",
                       e ? evutil_socket_error_to_string(e) : "connection error");
    }
    c->busy--;
    if (c->dead && !c->busy) conn_free(c); /* an outer frame (conn_dial) frees it */
}

void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct transport *t = c->t;
    if (c->probation) {
        conn_close(c, CONN_TIMED_OUT, 5, "no greeting within %g s while too many connections from its host are "
                   "in the handshake", admit_probation_grace(t));
        return;
    }
    if (c->state != C_UP && c->state != C_CONNECTING && !c->hs_extended && conn_unread(c)) {
        /* its next step waits for us to read it: our loop is late (a
         * saturated machine), so give it one more period, once */
        c->hs_extended = 1;
        conn_arm_timer(c, t->handshake_timeout);
        return;
    }
    double ran = probe_own_now(t) - c->timer_own;
    if (c->state != C_UP && ran < c->timer_len - 0.01) {
        /* the deadline counts our own running time: our loop was late */
        struct timeval tv = tv_of(c->timer_len - ran);
        evtimer_add(c->timer, &tv);
        return;
    }
    if (c->state != C_UP) {
        conn_close(c, CONN_TIMED_OUT, 5, "handshake made no progress for %g s (waiting for %s)",
                   c->timer_len, hs_waiting_for(c));
        return;
    }
    c->busy++;
    probe_tick(c);
    c->busy--;
    if (c->dead && !c->busy) conn_free(c); /* an outer frame (conn_dial) frees it */
}

struct conn *conn_new(struct transport *t, struct bufferevent *bev)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->t = t;
    c->bev = bev;
    c->timer = evtimer_new(t->base, conn_timer_cb, c);
    if (!c->timer) {
        free(c);
        return NULL;
    }
    c->next = t->conns;
    if (c->next) c->next->prev = c;
    t->conns = c;
    bufferevent_setcb(bev, conn_read_cb, write_cb, conn_event_cb, c);
    bufferevent_enable(bev, EV_READ);
    /* Output goes out from wflush_cb; libevent's write event (on by default:
     * two epoll_ctl calls and a wakeup per message) only for a backlog. A
     * connect still completes: libevent watches it without this flag. */
    bufferevent_disable(bev, EV_WRITE);
    /* While the socket is full libevent writes the backlog, by default at
     * most 16 KB a loop turn: a busy peer that reads fast then drained 8 MB
     * in 500 turns, and a flow-controlled sender waited a second for it. */
    bufferevent_set_max_single_write(bev, 4u << 20);
    evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
    return c;
}

/* Start an outgoing connection to `addr`. */
struct conn *conn_dial(struct transport *t, const char *addr, const char *want_id,
                         struct seed *seed)
{
    char host[256], port[32];
    if (addr_split(addr, "4040", host, sizeof host, port, sizeof port) || !strcmp(host, "*")) {
        aemp_log_peer(5, "cannot connect to \"%s\": not a host:port address", addr);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
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
    conn_arm_timer(c, t->monitor_timeout);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char numeric[300];
    snprintf(numeric, sizeof numeric, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    c->busy++;
    int rc;
    if (evutil_parse_sockaddr_port(numeric, (struct sockaddr *)&ss, &sslen) == 0) {
        rc = bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen);
    } else {
        if (!t->dns) t->dns = evdns_base_new(t->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        rc = t->dns ? bufferevent_socket_connect_hostname(bev, t->dns, AF_UNSPEC, host,
                                                         atoi(port))
                    : -1;
    }
    if (rc < 0 && !c->dead)
        conn_close(c, CONN_CONNECT_FAILED, 6, "cannot connect to %s", addr);
    c->busy--; /* only now may closing free it */
    if (c->dead) {
        conn_free(c);
        return NULL;
    }
    return c;
}

