/* conn_hs.c - the handshake of one connection (PROTOCOL.md section 2):
 * our greeting, the remote's greeting lines, TLS (tls.c), the auth lines
 * (the pure parts are in wire/handshake.c), then the connection is a
 * candidate for its node (conn_pick.c) or a data connection handed to
 * dataconn.c. conn_read_cb reads in all these states, and reads a TLS
 * connection once up (its messages then go to conn_in.c). */
#include "transport_int.h"

#include "framing.h"
#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const char *beat = c->l1 ? hostbeat_key(c) : NULL;
    if (beat) {
        char *l1 = hs_greeting_add(c->l1, "beat", beat);
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
        if (c->remote_c && g.beat && !c->beat_key) c->beat_key = strdup(g.beat);
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
 * the socket, the TLS session and what was read past the auth line
 * (decrypted, or the raw bytes behind it without TLS). */
static void dataconn_handoff(struct conn *c)
{
    char err[256];
    if (c->tls && tls_write(c->tls, c->plain_out, err, sizeof err)) {
        conn_close(c, CONN_TLS, 5, "%s", err);
        return;
    }
    struct evbuffer *raw = bufferevent_get_input(c->bev);
    if (!c->tls && evbuffer_get_length(raw)) {
        /* Bytes the peer sent right behind its auth line came in the same
         * read; no read event would tell the filter above of them. */
        c->plain_in = evbuffer_new();
        if (!c->plain_in || evbuffer_add_buffer(c->plain_in, raw)) {
            conn_close(c, CONN_NO_MEMORY, 3, "out of memory");
            return;
        }
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
    if (c->state != C_UP || conn_in_arrived(c)) conn_process(c);
    c->busy--;
    if (c->dead && !c->busy) conn_free(c); /* an outer frame (conn_dial) frees it */
}

