/* transport.c - connections between nodes (PROTOCOL.md sections 2 and 3):
 * the life of one connection, from connect or accept through the handshake
 * (the pure parts are in handshake.c), TLS (tls.c) and the json framing
 * (framing.c) on libevent bufferevents, to close; transport_start() and
 * transport_free(). Per-node records and queues are in peer.c, listeners in
 * listen.c, the read path of an up connection in conn_in.c, the write
 * path in conn_out.c.
 *
 * Reads hand everything that arrived to the framing reader at once. */
#include "transport_int.h"

#include "config.h"
#include "config_check.h"
#include "framing.h"
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
    free(c);
}

void conn_free(struct conn *c)
{
    conn_free_in(c->t, c);
}

/* Close one connection for `cause`, counted (stats.c), with a logged reason.
 * An authenticated connection takes its node down with it (monitors fire
 * with transport_error). Safe inside this connection's own callbacks: the
 * memory goes when they end. */
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
    if (c->cand) {
        struct peer *cp = c->cand;
        pick_drop(c);
        peer_maybe_forget(c->t, cp);
    }
    c->peer = NULL; /* the peer may be forgotten below */
    if (p && p->conn == c) {
        p->conn = NULL;
        evbuffer_drain(p->queue, evbuffer_get_length(p->queue));
        qbudget_release(p);
        c->t->ops->node_down(c->t->ctx, p->id, why);
        peer_maybe_forget(c->t, p);
    }
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

/* ------------------------------------------------------------- handshake */

void conn_arm_timer(struct conn *c, double s)
{
    struct timeval tv = tv_of(s);
    evtimer_add(c->timer, &tv);
}

/* Send our two greeting lines. */
void send_greeting(struct conn *c)
{
    struct transport *t = c->t;
    c->l1 = hs_build_greeting(t->id, t->auth_accept, t->framing, c->addr,
                              t->creds != NULL);
    hs_nonce(c->nonce);
    if (c->l1 && c->dataconn_id && c->outgoing) {
        char *l1 = hs_dataconn_greeting(c->l1, c->dataconn_id);
        free(c->l1);
        c->l1 = l1;
    }
    if (!c->l1) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "%s\n%s\n", c->l1, c->nonce);
    c->state = C_GREET;
    conn_arm_timer(c, t->handshake_timeout);
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
    int rc = hs_choose(g, t->auth_offer, t->framing, c->use_tls, &method, &framing, err,
                       sizeof err);
    if (rc) {
        conn_close(c, rc == AEMP_EAUTH ? CONN_AUTH_FAILED : CONN_PROTOCOL, 5, "%s", err);
        return;
    }
    size_t toklen = 2 * (t->secret ? strlen(t->secret) : 0) + 80;
    char *tok = malloc(toklen);
    if (!tok) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    if (hs_token(method, t->secret, c->L, c->R, tok, toklen)) {
        free(tok);
        conn_close(c, CONN_AUTH_FAILED, 4,
                   "cannot authenticate with %s: no secret configured (aemp gensecret)", method);
        return;
    }
    char *line = malloc(strlen(method) + strlen(tok) + strlen(framing) + 4);
    if (line) {
        int n = sprintf(line, "%s;%s;%s\n", method, tok, framing);
        conn_write(c, line, (size_t)n);
        snprintf(c->auth_sent, sizeof c->auth_sent, "%s", method);
    }
    free(line);
    free(tok);
}


/* The remote's two greeting lines are in: check them and go on to TLS or
 * straight to the auth lines. */
static void on_greeting(struct conn *c)
{
    struct transport *t = c->t;
    struct hs_greeting g;
    char err[256];
    if (hs_parse_greeting(c->r1, strlen(c->r1), &g, err, sizeof err)) {
        conn_close(c, CONN_PROTOCOL, 5, "bad greeting: %s", err);
        return;
    }
    /* A data connection (1.30's aemp-dataconn): no node checks. */
    if (!c->outgoing && !strcmp(g.proto, "aemp-dataconn") && g.dataconn_id &&
        hs_dataconn_id_ok(g.dataconn_id))
        c->dataconn_id = strdup(g.dataconn_id);
    if (strcmp(g.proto, "aemp") && !(c->dataconn_id && !c->outgoing)) {
        conn_close(c, CONN_PROTOCOL, 5, "unsupported protocol %s", g.proto);
    } else if (!strcmp(g.nodeid, t->id)) {
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
        conn_close(c, CONN_SELF, self_dial ? 7 : 5, "refusing to talk to myself");
    } else if (!strcmp(c->r1, c->l1) && !strcmp(c->r2, c->nonce)) {
        conn_close(c, CONN_PROTOCOL, 4, "echo of our own greeting (replay attack?)");
    } else {
        struct peer *p = c->dataconn_id ? NULL : peer_get(t, g.nodeid, 0);
        c->remote_c = g.provider && !strncmp(g.provider, "aemp-c-", 7);
        if (p && pick_has_authed(p)) {
            if (c->seed) { /* the seed is up through another connection */
                free(c->seed->nodeid);
                c->seed->nodeid = strdup(g.nodeid);
                p->is_seed = 1;
            }
            /* Routine while nodes call each other at once (see conn_pick.c);
             * we sent no auth line, so this connection is up nowhere. */
            if (!c->outgoing && p->conn) probe_duplicate(p->conn);
            conn_close(c, CONN_REPLACED, 7, "already connected to %s", g.nodeid);
        } else if (p && p->cands && !c->remote_c) {
            conn_close(c, CONN_REPLACED, 7, "another connection to %s is in its handshake",
                       g.nodeid);
        } else if (!has_secret(t) && !(t->creds && hs_use_tls(&g, 1))) {
            conn_close(c, CONN_AUTH_FAILED, 4,
                       "cannot authenticate: no secret configured and no TLS possible "
                       "(set one with aemp gensecret)");
        } else {
            c->peer_id = strdup(g.nodeid);
            if (!p && !c->dataconn_id) p = peer_get(t, g.nodeid, 1);
            if (!c->peer_id || (!p && !c->dataconn_id)) {
                conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
            } else {
                if (p) pick_add(p, c); /* a data connection is no node's */
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
                    conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
                } else if (c->use_tls) {
                    int client = hs_tls_is_client(c->nonce, c->r2);
                    c->tls = tls_new(t->creds, client, bufferevent_get_input(c->bev),
                                     bufferevent_get_output(c->bev), err, sizeof err);
                    c->plain_in = evbuffer_new();
                    c->plain_out = evbuffer_new();
                    c->flush_ev = event_new(t->base, -1, 0, flush_cb, c);
                    if (!c->tls || !c->plain_in || !c->plain_out || !c->flush_ev)
                        conn_close(c, c->tls ? CONN_NO_MEMORY : CONN_TLS, 3, "cannot start TLS: %s",
                                   c->tls ? "no memory" : err);
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

static void dataconn_handoff(struct conn *c);

/* The remote's auth line: accept or close. */
static void on_auth(struct conn *c, const char *line)
{
    struct transport *t = c->t;
    struct hs_auth a;
    char err[256];
    if (hs_parse_auth(line, strlen(line), &a, err, sizeof err)) {
        conn_close(c, CONN_PROTOCOL, 5, "bad auth line: %s", err);
        return;
    }
    int untrusted = 0;
    if (hs_check_auth(&a, t->auth_accept, t->framing, c->use_tls, t->secret, c->L, c->R,
                      &untrusted, err, sizeof err)) {
        conn_close(c, CONN_AUTH_FAILED, 4, "authentication failed: %s", err);
    } else if (strcmp(a.framing, "json")) {
        conn_close(c, CONN_PROTOCOL, 5, "peer sends framing %s, we only read json",
                   a.framing);
    } else {
        c->untrusted = untrusted;
        admit_done(c); /* no longer a stranger */
        if (c->dataconn_id) dataconn_handoff(c);
        else pick_authed(c);
    }
    hs_auth_clear(&a);
}

/* ------------------------------------------------------------- up */

/* An authenticated data connection leaves the transport: dataconn.c takes
 * the socket, the TLS session and what was read past the auth line. */
static void dataconn_handoff(struct conn *c)
{
    char err[256];
    if (c->tls && tls_write(c->tls, c->plain_out, err, sizeof err)) {
        conn_close(c, CONN_TLS, 5, "%s", err);
        return;
    }
    dirty_unlink(c);
    evbuffer_remove_cb(bufferevent_get_output(c->bev), out_cb, c);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    struct bufferevent *bev = c->bev;
    struct tls *tls = c->tls;
    struct evbuffer *plain = c->plain_in;
    c->bev = NULL;
    c->tls = NULL;
    c->plain_in = NULL;
    c->dead = 1; /* freed when the callback around conn_process() ends (c->busy) */
    if (c->t->dcops) {
        c->t->dcops->ready(c->t->dcctx, c->dataconn_id, c->peer_id, bev, tls, plain);
    } else { /* nobody takes data connections */
        if (tls) tls_free(tls);
        if (bev) bufferevent_free(bev);
        if (plain) evbuffer_free(plain);
    }
}

void conn_announce(struct conn *c)
{
    struct transport *t = c->t;
    struct peer *p = peer_get(t, c->peer_id, 1);
    if (!p) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    if (p->conn) {
        conn_close(c, CONN_REPLACED, 7, "already connected to %s", p->id);
        return;
    }
    c->reader = framing_reader_new(t->max_msg);
    if (!c->reader) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return;
    }
    c->state = C_UP;
    c->peer = p;
    p->conn = c;
    p->stats.connects++;
    t->stats.connects++;
    p->up_since = now_of(t);
    admit_done(c);
    peer_stop_connecting(p);
    if (c->outgoing && c->addr) addrs_add_unique(p->addrs, c->addr);
    if (c->seed) {
        free(c->seed->nodeid);
        c->seed->nodeid = strdup(p->id);
        c->seed->dialing = 0;
        p->is_seed = 1;
        c->seed = NULL;
    }
    event_del(c->timer);
    probe_start(c);
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
        qbudget_release(p); /* the bytes count against the connection now */
        c->last_write = now_of(t);
    }
    aemp_log(7, "connected to %s (%s, %s)", p->id, c->addr ? c->addr : "?",
             c->use_tls ? "TLS" : "no TLS");
    /* An up cleartext connection reads its socket itself (conn_in.c); a
     * TLS one reads through the bufferevent and GnuTLS. */
    if (!c->tls && !c->rev) {
        c->rev = event_new(t->base, bufferevent_getfd(c->bev), EV_READ | EV_PERSIST,
                           conn_up_read_cb, c);
        if (c->rev && event_add(c->rev, NULL)) {
            event_free(c->rev);
            c->rev = NULL;
        }
    }
    if (!c->rev) bufferevent_enable(c->bev, EV_READ);
    /* What came after the auth line while the connection was held (our
     * read event, not a deferred bufferevent callback: a node freed before
     * that ran would leak the bufferevent it holds). */
    if (c->rev && evbuffer_get_length(bufferevent_get_input(c->bev)))
        event_active(c->rev, EV_READ, 1);
    else if (evbuffer_get_length(bufferevent_get_input(c->bev)) ||
             (c->plain_in && evbuffer_get_length(c->plain_in)))
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    t->ops->node_up(t->ctx, p->id);
}

/* Process what arrived, in whatever state the connection is. */
void conn_process(struct conn *c)
{
    struct evbuffer *raw = bufferevent_get_input(c->bev);
    char err[256];
    if (c->state == C_GREET) {
        while (!c->dead && (!c->r1 || !c->r2)) {
            char *line;
            int rc = read_line(raw, &line);
            if (rc < 0) {
                conn_close(c, CONN_PROTOCOL, 5, "greeting line longer than %d bytes",
                           HS_MAX_LINE);
                return;
            }
            if (rc == 0) return;
            if (!c->r1) c->r1 = line;
            else c->r2 = line;
        }
        if (c->probation) { /* past a pre-auth cap, and it greets at once */
            if (admit_promote(c)) {
                conn_close(c, CONN_PROTOCOL, 5, "too many connections are in the handshake");
                return;
            }
            send_greeting(c);
            if (c->dead) return;
        }
        conn_arm_timer(c, c->t->handshake_timeout); /* progress */
        on_greeting(c);
    }
    if (c->dead) return;
    if (c->state == C_TLS) {
        int rc = tls_handshake(c->tls, err, sizeof err);
        if (rc < 0) {
            conn_close(c, CONN_TLS, 4, "%s", err);
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
            conn_close(c, CONN_TLS, c->state == C_UP ? 6 : 5, "%s", err);
            return;
        }
        in = c->plain_in;
    }
    if (c->state == C_AUTH) {
        char *line;
        int rc = read_line(in, &line);
        if (rc < 0) {
            conn_close(c, CONN_PROTOCOL, 5, "auth line longer than %d bytes", HS_MAX_LINE);
            return;
        }
        if (rc == 0) return;
        on_auth(c, line);
        free(line);
        if (c->dead) return;
    }
    if (c->state == C_UP) {
        /* libevent's read stops at 4 KB: only a full one says more may wait
         * (small messages cost no extra recv(2)) */
        size_t had = evbuffer_get_length(in);
        conn_read_frames(c, in);
        if (had >= 4096 && !c->dead) conn_read_more(c);
    }
}

void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    c->busy++;
    if (!probe_stale(c)) {
        if (c->state == C_UP) probe_heard(c);
        conn_process(c);
    }
    c->busy--;
    if (c->dead && !c->busy) conn_free(c); /* an outer frame (conn_dial) frees it */
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
    if (c->state != C_UP) {
        conn_close(c, CONN_TIMED_OUT, 5, "handshake made no progress for %g s",
                   c->state == C_CONNECTING ? t->monitor_timeout : t->handshake_timeout);
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

/* ------------------------------------------------------------ interface */

void transport_set_dataconn_ops(struct transport *t, const struct transport_dataconn_ops *ops,
                                void *ctx)
{
    t->dcops = ops;
    t->dcctx = ctx;
}

int transport_dial_dataconn(struct transport *t, const char *addr, const char *id)
{
    struct conn *c = t ? conn_dial(t, addr, NULL, NULL) : NULL;
    if (!c) return t ? AEMP_EIO : AEMP_ESTATE;
    c->dataconn_id = strdup(id); /* set before the greeting goes out */
    if (!c->dataconn_id) {
        conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
        return AEMP_ENOMEM;
    }
    return 0;
}

static double num_of(const cJSON *cfg, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) return atof(v->valuestring);
    return def;
}

int transport_start(struct transport **out, const struct transport_conf *conf, char *err,
                    size_t errlen)
{
    const cJSON *cfg = conf->cfg;
    struct transport *t = calloc(1, sizeof *t);
    *out = t;
    if (!t) return AEMP_ENOMEM;
    t->base = conf->base;
    t->id = conf->id;
    t->ops = conf->ops;
    t->ctx = conf->ctx;
    t->node = conf->node;
    t->started = now_of(t);
    t->listen_addrs = cJSON_CreateArray();
    t->wflush = event_new(t->base, -1, 0, wflush_cb, t);
    if (!t->listen_addrs || !t->wflush) return AEMP_ENOMEM;
    t->monitor_timeout = num_of(cfg, "monitor_timeout", 30);
    if (t->monitor_timeout <= 0) t->monitor_timeout = 30;
    /* A handshake is a few round trips: strangers may hold a connection
     * for this long, shorter than monitor_timeout. */
    t->handshake_timeout = t->monitor_timeout < 10 ? t->monitor_timeout : 10;
    if (admit_start(t) || flow_start(t) || probe_clock_start(t)) return AEMP_ENOMEM;
    t->connect_interval = num_of(cfg, "connect_interval", 2);
    if (t->connect_interval <= 0) t->connect_interval = 2;
    double mm = num_of(cfg, "max_message_size", DEFAULT_MAX_MESSAGE);
    t->max_msg = mm >= 1024 ? (size_t)mm : DEFAULT_MAX_MESSAGE;
    t->nodelay = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cfg, "nodelay"));
    t->auth_offer = cJSON_GetObjectItemCaseSensitive(cfg, "auth_offer");
    t->auth_accept = cJSON_GetObjectItemCaseSensitive(cfg, "auth_accept");
    /* offered and chosen: only what we read (a peer may pick any we offer) */
    t->framing = config_framings_read(cJSON_GetObjectItemCaseSensitive(cfg, "framing_format"),
                                      err, errlen);
    if (!t->framing) return AEMP_ECONFIG;
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
        t->seed_tick = event_new(t->base, -1, EV_PERSIST, seed_tick_cb, t);
        struct timeval tv = tv_of(t->connect_interval < 1 ? 1 : t->connect_interval);
        if (t->seed_tick) event_add(t->seed_tick, &tv);
        seed_tick_cb(-1, 0, t);
    }
    return 0;
}

void transport_free(struct transport *t)
{
    if (!t) return;
    while (t->conns)
        conn_free_in(t, t->conns);
    admit_free(t);
    flow_free(t);
    probe_clock_free(t);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v))
        peer_free(v);
    strmap_free(&t->peers);
    strmap_free(&t->qb_by);
    for (size_t i = 0; i < t->nlis; i++)
        evconnlistener_free(t->lis[i]);
    free(t->lis);
    for (size_t i = 0; i < t->nseeds; i++) {
        free(t->seeds[i].addr);
        free(t->seeds[i].nodeid);
    }
    free(t->seeds);
    if (t->seed_tick) event_free(t->seed_tick);
    if (t->dns) evdns_base_free(t->dns, 1); /* fail pending look-ups: their bufferevents are released */
    if (t->wflush) event_free(t->wflush);
    tls_creds_free(t->creds);
    cJSON_Delete(t->listen_addrs);
    cJSON_Delete(t->framing);
    free(t->secret);
    free(t->out.data);
    outblocks_free(t);
    free(t->rbuf);
    free(t);
}
