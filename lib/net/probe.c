/* probe.c - is the node at the other end of an up connection still there?
 *
 * TCP alone notices a dead peer only when retransmissions give up (about 15
 * minutes), and never notices a stopped process whose kernel still ACKs or
 * an idle link that went away. So, with M = monitor_timeout:
 *  - everything that arrives counts as hearing from the peer, and so does
 *    every write that goes through while the socket was full (a peer busy
 *    reading a long stream from us may answer nothing for a while: that it
 *    makes room shows it reads; a stopped one stops making room);
 *  - after M/2 without hearing from it, we send a node-port request every
 *    1.30 node answers: ["", "time", "OURID#aemp!probe"]; the answer
 *    ["aemp!probe", TIME] is consumed here. One probe per link and period
 *    is enough, since either end hearing the other counts: between two
 *    aemp-c nodes the end with the smaller node ID probes at M/2 and the
 *    other only at 3M/4, which the first end's probe normally prevents
 *    (a 1.30 peer never probes, so we probe it at M/2);
 *  - after M without hearing from it, once our probe had M/2 to be
 *    answered (so at 5M/4 for the end that probes at 3M/4), the
 *    connection is closed and the node reported down with
 *    transport_error NODE "peer timed out" -
 *    unless bytes from it wait unread on the socket: a peer that sends is
 *    alive, answered or not;
 *  - silence is counted in our own running time: a heartbeat timer notes
 *    how late the loop ran it (the machine saturated, the process
 *    stopped), and that time does not count, so a node whose own loop was
 *    late does not declare its peers down for the time it did not run;
 *  - data that shows up after more than M of such silence is not
 *    delivered: the peer has given up on us by then, so the connection is
 *    closed the same way;
 *  - the sockets get TCP_USER_TIMEOUT = M and keepalive timings from M.
 * A peer on this host whose heartbeat page we map (hostbeat.c) is never
 * probed: its beats are what we hear from it, and /proc judges its
 * silence (beat_tick).
 * Nothing new goes on the wire. A second node calling with the ID of a
 * connected one is only warned about when the connected one has been up for
 * a while and answers a probe sent after the call: two live processes. */
#include "transport_int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/ioctl.h>

#define PROBE_PORT "aemp!probe"

static int has_listeners(const struct transport *t)
{
    return t->nlis > 0;
}

/* The heartbeat's period: the loop being later than this counts as not
 * running. */
static double beat_period(const struct transport *t)
{
    double h = t->monitor_timeout / 10;
    return h < 0.1 ? 0.1 : h > 1 ? 1 : h;
}

/* The delay from now until `s` seconds from now rounded up to the next
 * multiple of the heartbeat period in wall-clock time: every probe timer
 * and heartbeat of the node, and of every node of a host, fires on the
 * same grid, so an idle mesh wakes a node a few times per period instead
 * of once per peer (the wakeups, not the probes, cost most). */
static double on_grid(struct transport *t, double s)
{
    double q = beat_period(t), now = now_of(t);
    double due = ceil((now + s) / q) * q;
    return due - now;
}

/* Our own running time: wall-clock time less what the loop was late by
 * (past heartbeats, and the one overdue now). */
double probe_own_now(struct transport *t)
{
    double now = now_of(t), late = now - t->beat_at - 0.05; /* as beat_cb */
    int beating = t->beat && evtimer_pending(t->beat, NULL);
    return now - t->stalled - (beating && late > 0 ? late : 0);
}

/* The heartbeat runs while connections are there (a node without any may
 * leave its loop). */
static void beat_arm(struct transport *t)
{
    if (!t->beat || evtimer_pending(t->beat, NULL)) return;
    double d = on_grid(t, beat_period(t));
    t->beat_at = now_of(t) + d; /* when it is due */
    struct timeval tv = tv_of(d);
    evtimer_add(t->beat, &tv);
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport *t = arg;
    double now = now_of(t), late = now - t->beat_at - 0.05; /* timer slack */
    if (late > 0) t->stalled += late;
    hostbeat_publish(t, beat_period(t));
    if (t->conns) beat_arm(t);
}

int probe_clock_start(struct transport *t)
{
    t->beat = evtimer_new(t->base, beat_cb, t);
    return t->beat ? 0 : AEMP_ENOMEM;
}

void probe_clock_free(struct transport *t)
{
    if (t->beat) event_free(t->beat);
    t->beat = NULL;
}

/* When this end probes after silence: M/2, or 3M/4 for the end of a link
 * between two aemp-c nodes whose peer probes first. */
static double probe_after(const struct conn *c)
{
    double m = c->t->monitor_timeout;
    if (c->remote_c && c->peer_id && strcmp(c->t->id, c->peer_id) > 0) return m * 3 / 4;
    return m / 2;
}

/* Bytes from the peer not yet read (in the socket or the input buffer). */
static int bytes_waiting(struct conn *c)
{
    if (!c->bev) return 0;
    if (evbuffer_get_length(bufferevent_get_input(c->bev))) return 1;
    int n = 0;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

void probe_sockopts(const struct transport *t, int fd)
{
    int one = 1;
    double m = t->monitor_timeout;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_USER_TIMEOUT
    unsigned ms = (unsigned)(m * 1000);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
#endif
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
    int idle = (int)(m / 2) > 0 ? (int)(m / 2) : 1;
    int intvl = (int)(m / 6) > 0 ? (int)(m / 6) : 1;
    int cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#endif
}

static void send_probe(struct conn *c)
{
    struct transport *t = c->t;
    cJSON *m = cJSON_CreateArray();
    char *id = malloc(strlen(t->id) + sizeof PROBE_PORT + 1);
    char *text = NULL;
    if (m && id) {
        sprintf(id, "%s#%s", t->id, PROBE_PORT);
        cJSON_AddItemToArray(m, cJSON_CreateString(""));
        cJSON_AddItemToArray(m, cJSON_CreateString("time"));
        cJSON_AddItemToArray(m, cJSON_CreateString(id));
        text = cJSON_PrintUnformatted(m);
    }
    if (text) {
        conn_write(c, text, strlen(text));
        c->probe_sent = probe_own_now(t);
    }
    cJSON_free(text);
    free(id);
    cJSON_Delete(m);
}

static void arm(struct conn *c, double s)
{
    s = on_grid(c->t, s > 0.01 ? s : 0.01);
    struct timeval tv = tv_of(s > 0.01 ? s : 0.01);
    evtimer_add(c->timer, &tv);
}

void probe_start(struct conn *c)
{
    beat_arm(c->t);
    c->last_heard = probe_own_now(c->t);
    c->probe_sent = 0;
    hostbeat_attach(c);
    arm(c, c->hb ? c->t->monitor_timeout : probe_after(c));
}

void probe_timed_out(struct conn *c)
{
    if (c->hb_why) conn_close(c, CONN_TIMED_OUT, 5, "peer timed out (%s)", c->hb_why);
    else conn_close(c, CONN_TIMED_OUT, 5, "peer timed out");
}

/* A peer on this host (hostbeat.c): its loop beating since we looked last
 * is hearing from it, at the time of that beat. */
static void beat_heard(struct conn *c)
{
    double age = hostbeat_new(c);
    if (age < 0) return;
    double at = probe_own_now(c->t) - age;
    if (at > c->last_heard) c->last_heard = at;
}

/* M, or for a peer on this host that beats less often (its own
 * monitor_timeout is longer), two of its beats. */
static double silent_after(const struct conn *c)
{
    double m = c->t->monitor_timeout, p = 2 * hostbeat_period(c);
    return p > m ? p : m;
}

/* Silent for M of our running time, and (a peer on this host) its
 * process says it is dead, stopped, blocked or stuck, not just starved. */
static int silent(struct conn *c, double idle)
{
    double m = silent_after(c);
    if (idle < m) return 0;
    if (!c->hb) return 1;
    c->hb_why = hostbeat_why_silent(c, m);
    return c->hb_why != NULL;
}

/* How long the peer of `c` has been silent in our running time, its beat
 * and unread bytes counted (past `m`, a peer that sends is alive). */
static double silence(struct conn *c, double m)
{
    beat_heard(c);
    double idle = probe_own_now(c->t) - c->last_heard;
    if (idle >= m && bytes_waiting(c)) {
        probe_heard(c); /* it sends: alive; the read event follows */
        idle = 0;
    }
    return idle;
}

/* The tick of a link to a peer on this host: no probes. */
static void beat_tick(struct conn *c)
{
    struct transport *t = c->t;
    double m = silent_after(c);
    double idle = silence(c, m);
    if (silent(c, idle)) {
        probe_timed_out(c);
        return;
    }
    /* starved peers are looked at again at the next beat */
    arm(c, idle < m ? m - idle : beat_period(t));
}

void probe_tick(struct conn *c)
{
    struct transport *t = c->t;
    if (c->hb && has_listeners(t)) {
        beat_tick(c);
        return;
    }
    double m = t->monitor_timeout, now = now_of(t), after = probe_after(c);
    double idle = silence(c, m);
    /* Down only when silent for M and our probe had M/2 to be answered
     * (the end that probes at 3M/4 waits until 5M/4; the other end, which
     * probed at M/2, has closed by then anyway if the peer is gone). */
    double asked = c->probe_sent > c->last_heard ? probe_own_now(t) - c->probe_sent : 0;
    if (idle >= m && asked >= m / 2) {
        probe_timed_out(c);
        return;
    }
    if (idle >= after && c->probe_sent <= c->last_heard) {
        send_probe(c);
        asked = 0;
    }
    double next = idle < after ? after - idle : m - idle;
    if (idle >= after && m / 2 - asked > next) next = m / 2 - asked;
    /* Listener-less nodes also write "[]" after M of not writing (1.30). */
    if (!has_listeners(t)) {
        double widle = now - c->last_write;
        if (widle >= m - 0.01) {
            conn_write(c, "[]", 2);
            widle = 0;
        }
        if (m - widle < next) next = m - widle;
    }
    arm(c, next);
}

void probe_heard(struct conn *c)
{
    c->last_heard = probe_own_now(c->t);
}

int probe_stale(struct conn *c)
{
    if (c->state != C_UP) return 0;
    beat_heard(c);
    return silent(c, probe_own_now(c->t) - c->last_heard);
}

int probe_is_answer(struct conn *c, const cJSON *msg)
{
    const cJSON *port = cJSON_GetArrayItem(msg, 0);
    if (!cJSON_IsString(port) || strcmp(port->valuestring, PROBE_PORT)) return 0;
    if (c->dup_at && !c->dup_warned && c->probe_sent >= c->dup_at) {
        c->dup_warned = 1;
        aemp_log(4,
                 "a second node called with the node ID %s while the connected %s (%s) "
                 "answers: do two nodes use the node ID %s?",
                 c->peer_id, c->peer_id, c->addr ? c->addr : "?", c->peer_id);
    }
    return 1;
}

void probe_duplicate(struct conn *u)
{
    struct transport *t = u->t;
    double grace = 2 * t->connect_interval > 5 ? 2 * t->connect_interval : 5;
    if (u->dup_warned || now_of(t) - u->peer->up_since < grace) return; /* a routine race */
    if (!u->dup_at) u->dup_at = probe_own_now(t);
    if (u->probe_sent < u->dup_at) send_probe(u);
}
