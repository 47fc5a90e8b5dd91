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
 *    ["aemp!probe", TIME] is consumed here;
 *  - after M without hearing from it, the connection is closed and the
 *    node reported down with transport_error NODE "peer timed out";
 *  - data that shows up after more than M of silence (this node was
 *    stopped or its loop blocked) is not delivered: the peer has given up
 *    on us by then, so the connection is closed the same way;
 *  - the sockets get TCP_USER_TIMEOUT = M and keepalive timings from M.
 * Nothing new goes on the wire. A second node calling with the ID of a
 * connected one is only warned about when the connected one has been up for
 * a while and answers a probe sent after the call: two live processes. */
#include "transport_int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_PORT "aemp!probe"

static int has_listeners(const struct transport *t)
{
    return t->nlis > 0;
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
        c->probe_sent = now_of(t);
    }
    free(text);
    free(id);
    cJSON_Delete(m);
}

static void arm(struct conn *c, double s)
{
    struct timeval tv = tv_of(s > 0.01 ? s : 0.01);
    evtimer_add(c->timer, &tv);
}

void probe_start(struct conn *c)
{
    c->last_heard = now_of(c->t);
    c->probe_sent = 0;
    arm(c, c->t->monitor_timeout / 2);
}

void probe_tick(struct conn *c)
{
    struct transport *t = c->t;
    double m = t->monitor_timeout, now = now_of(t);
    double idle = now - c->last_heard;
    if (idle >= m) {
        conn_close(c, CONN_TIMED_OUT, 5, "peer timed out");
        return;
    }
    if (idle >= m / 2 && c->probe_sent <= c->last_heard) send_probe(c);
    double next = idle < m / 2 ? m / 2 - idle : m - idle;
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
    c->last_heard = now_of(c->t);
}

int probe_stale(struct conn *c)
{
    if (c->state != C_UP || now_of(c->t) - c->last_heard < c->t->monitor_timeout) return 0;
    conn_close(c, CONN_TIMED_OUT, 5, "peer timed out");
    return 1;
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
    if (!u->dup_at) u->dup_at = now_of(t);
    if (u->probe_sent < u->dup_at) send_probe(u);
}
