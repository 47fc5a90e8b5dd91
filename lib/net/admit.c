/* admit.c - what strangers and peers may cost a node: connections not yet
 * authenticated are capped in total and per source host, accepting pauses
 * (and says so once) while the process is out of file descriptors instead
 * of spinning on accept(), log lines about refused or failed pre-auth
 * connections are rate-limited, dials to addresses learned from peers share
 * a token bucket, and a peer's unwritten output has a high-water mark
 * (past it, a peer whose socket takes nothing is dropped: conn_out.c).
 *
 * The transport calls in here at accept, at authentication and at close of
 * a connection, before a dial, and when output is added. */
#include "transport_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pre-auth connections: all of them, and from one host. */
#define PREAUTH_TOTAL 512
#define PREAUTH_PER_HOST 64
/* Past a cap a connection is not refused at once: it is held without our
 * greeting (on probation) for PROBATION_GRACE s at most, PROBATION_MAX of
 * them in all, and let in when it greets within that time - our own mesh
 * and clients greet as soon as they are connected, so hundreds of nodes of
 * one host (or behind one NAT) dialing at once, or `aemp cal` while
 * strangers hold the host's slots, get in; idle strangers do not. Those
 * let in count against PREAUTH_TOTAL + PROBATION_MAX in all. */
#define PROBATION_MAX 256
#define PROBATION_GRACE 3.0
/* A stranger that sent no greeting line for this long (at least; half the
 * handshake timeout) gives its slot to a new connection of its host when
 * the cap is reached (OpenSSH's MaxStartups drops new ones instead: that
 * lets idle strangers lock a host out). */
#define EVICT_AGE_MIN 1.0
/* Pre-auth log lines: LOG_BURST at once, then LOG_RATE per second. */
#define LOG_RATE 5.0
#define LOG_BURST 20.0
/* Dials to learned addresses: DIAL_BURST at once, then DIAL_RATE per second
 * (a full mesh of a few hundred nodes forms at this rate within seconds). */
#define DIAL_RATE 20.0
#define DIAL_BURST 100.0
/* Accepting again after running out of descriptors. */
#define ACCEPT_PAUSE 1.0
/* Unwritten output: this many max_message_size, at least OUT_MIN bytes. */
#define OUT_FACTOR 4
#define OUT_MIN (16u * 1024 * 1024)

struct admit {
    strmap hosts;         /* source host -> count of its pre-auth connections */
    size_t preauth;       /* pre-auth incoming connections in all */
    double log_tokens, log_at;
    unsigned long log_suppressed;
    double dial_tokens, dial_at;
    struct event *resume; /* re-enables the listeners after a pause */
    int paused, pause_logged;
    unsigned long refused; /* connections refused by the caps since the last log */
    size_t probation;      /* connections held past a cap until they greet */
    unsigned long evicted; /* idle strangers closed for new ones since the last log */
};

/* Refill a token bucket to now; 1 (and take a token) when one is there. */
static int bucket_take(double *tokens, double *at, double rate, double burst, double now)
{
    if (*at == 0) *tokens = burst;
    else *tokens += (now - *at) * rate;
    if (*tokens > burst) *tokens = burst;
    *at = now;
    if (*tokens < 1) return 0;
    *tokens -= 1;
    return 1;
}

int admit_log_ok(struct transport *t)
{
    struct admit *a = t->admit;
    if (!a) return 1;
    if (!bucket_take(&a->log_tokens, &a->log_at, LOG_RATE, LOG_BURST, now_of(t))) {
        a->log_suppressed++;
        return 0;
    }
    if (a->log_suppressed) {
        aemp_log(5, "%lu more lines about refused or failed connections from unauthenticated "
                 "peers were not logged", a->log_suppressed);
        a->log_suppressed = 0;
    }
    return 1;
}

int admit_dial_ok(struct transport *t)
{
    struct admit *a = t->admit;
    if (t->dials >= ADMIT_DIALS_MAX) return 0;
    return !a || bucket_take(&a->dial_tokens, &a->dial_at, DIAL_RATE, DIAL_BURST, now_of(t));
}

size_t admit_out_limit(const struct transport *t)
{
    size_t lim = OUT_FACTOR * t->max_msg;
    return lim < OUT_MIN ? OUT_MIN : lim;
}

double admit_stall_time(const struct transport *t)
{
    return t->handshake_timeout;
}

/* The host part of a socket address as text. */
static void host_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char full[128];
    addr_text(sa, full, sizeof full);
    char *colon = strrchr(full, ':');
    if (colon) *colon = 0;
    snprintf(buf, len, "%s", full);
}

/* Count `c` as pre-auth under `host`: 0, or -1 without memory. */
static int count_in(struct admit *a, struct conn *c, const char *host)
{
    uintptr_t n = (uintptr_t)strmap_get(&a->hosts, host);
    c->preauth_host = strdup(host);
    if (!c->preauth_host || strmap_put(&a->hosts, host, (void *)(n + 1), NULL)) {
        free(c->preauth_host);
        c->preauth_host = NULL;
        return -1;
    }
    a->preauth++;
    return 0;
}

/* The incoming connection in its handshake that sent no greeting line for
 * the longest time, at least the eviction age, from `host` (NULL: any
 * host); NULL when there is none. */
static struct conn *oldest_silent(struct transport *t, const char *host)
{
    double age = t->handshake_timeout / 2, now = now_of(t);
    struct conn *best = NULL;
    if (age < EVICT_AGE_MIN) age = EVICT_AGE_MIN;
    for (struct conn *o = t->conns; o; o = o->next)
        if (o->preauth_host && !o->probation && !o->dead && o->state == C_GREET && !o->r1 &&
            now - o->since >= age && (!host || !strcmp(o->preauth_host, host)) &&
            (!best || o->since < best->since) && !conn_unread(o))
            best = o; /* unread bytes: it greeted, we are the slow ones */
    return best;
}

int admit_incoming(struct conn *c, const struct sockaddr *sa)
{
    struct transport *t = c->t;
    struct admit *a = t->admit;
    c->since = now_of(t);
    if (!a) return 0;
    if (a->pause_logged) {
        aemp_log(5, "accepting connections again");
        a->pause_logged = 0;
    }
    char host[128];
    host_text(sa, host, sizeof host);
    uintptr_t n = (uintptr_t)strmap_get(&a->hosts, host);
    int total_full = a->preauth >= PREAUTH_TOTAL;
    if (total_full || n >= PREAUTH_PER_HOST) {
        struct conn *old = oldest_silent(t, total_full ? NULL : host);
        if (old) {
            double idle = now_of(t) - old->since;
            admit_done(old); /* before the close, which may free it */
            a->evicted++;
            if (admit_log_ok(t)) {
                aemp_log(5, "connection from %s closed: it sent no greeting for %.0f s and its "
                         "host is at the cap of connections in the handshake, so its slot goes "
                         "to a new one (%lu closed so)", old->addr ? old->addr : host, idle,
                         a->evicted);
                a->evicted = 0;
            }
            conn_close(old, CONN_TIMED_OUT, 7, "no greeting for %.0f s: its slot went to a new connection", idle);
            return count_in(a, c, host);
        }
    }
    if (a->preauth >= PREAUTH_TOTAL || n >= PREAUTH_PER_HOST) {
        if (a->probation < PROBATION_MAX) {
            a->probation++;
            c->probation = 1;
            c->preauth_host = strdup(host); /* for admit_promote; not counted */
            if (!c->preauth_host) {
                a->probation--;
                c->probation = 0;
                return -1;
            }
            return 1;
        }
        a->refused++;
        if (admit_log_ok(t)) {
            aemp_log(5, "connection from %s refused: %s (%lu refused)", host,
                     a->preauth >= PREAUTH_TOTAL
                         ? "too many connections are in the handshake"
                         : "too many connections from that host are in the handshake",
                     a->refused);
            a->refused = 0;
        }
        return -1;
    }
    return count_in(a, c, host);
}

double admit_probation_grace(const struct transport *t)
{
    return PROBATION_GRACE < t->handshake_timeout ? PROBATION_GRACE : t->handshake_timeout;
}

int admit_promote(struct conn *c)
{
    struct admit *a = c->t->admit;
    if (!c->probation || !a) return 0;
    char *host = c->preauth_host;
    c->preauth_host = NULL;
    c->probation = 0;
    a->probation--;
    int rc = a->preauth < PREAUTH_TOTAL + PROBATION_MAX ? count_in(a, c, host) : -1;
    free(host);
    return rc;
}

void admit_done(struct conn *c)
{
    struct admit *a = c->t->admit;
    if (!c->preauth_host) return;
    if (c->probation) {
        if (a) a->probation--;
        c->probation = 0;
    } else if (a) {
        uintptr_t n = (uintptr_t)strmap_get(&a->hosts, c->preauth_host);
        if (n > 1) strmap_put(&a->hosts, c->preauth_host, (void *)(n - 1), NULL);
        else strmap_del(&a->hosts, c->preauth_host);
        a->preauth--;
    }
    free(c->preauth_host);
    c->preauth_host = NULL;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport *t = arg;
    t->admit->paused = 0;
    for (size_t i = 0; i < t->nlis; i++)
        evconnlistener_enable(t->lis[i]);
}

void admit_listener_error(struct evconnlistener *l, void *arg)
{
    struct transport *t = arg;
    struct admit *a = t->admit;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        if (admit_log_ok(t))
            aemp_log(5, "accept: %s", evutil_socket_error_to_string(e));
        return;
    }
    /* Out of descriptors: the pending connection stays in the kernel's
     * queue, so accept() would fail again at once; wait instead. */
    for (size_t i = 0; i < t->nlis; i++)
        evconnlistener_disable(t->lis[i]);
    if (!a || a->paused) return;
    a->paused = 1;
    if (!a->pause_logged) {
        aemp_log(3, "cannot accept connections: %s; accepting pauses for %g s at a time until "
                 "descriptors are free (raise the limit with ulimit -n)",
                 evutil_socket_error_to_string(e), ACCEPT_PAUSE);
        a->pause_logged = 1;
    }
    struct timeval tv = tv_of(ACCEPT_PAUSE);
    evtimer_add(a->resume, &tv);
}

int admit_start(struct transport *t)
{
    struct admit *a = calloc(1, sizeof *a);
    if (!a) return AEMP_ENOMEM;
    a->resume = evtimer_new(t->base, resume_cb, t);
    if (!a->resume) {
        free(a);
        return AEMP_ENOMEM;
    }
    t->admit = a;
    return 0;
}

void admit_free(struct transport *t)
{
    struct admit *a = t->admit;
    if (!a) return;
    t->admit = NULL;
    event_free(a->resume);
    strmap_free(&a->hosts);
    free(a);
}
