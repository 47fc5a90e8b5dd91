/* transport_int.h - the state shared by the transport modules of net/ (not
 * public); each section below names the file whose functions it declares. */
#ifndef AEMP_TRANSPORT_INT_H
#define AEMP_TRANSPORT_INT_H

#include "transport.h"

#include "aemp.h"
#include "framing.h"
#include "handshake.h"
#include "stats.h"
#include "strmap.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DEFAULT_MAX_MESSAGE (64u * 1024 * 1024)
/* Texts longer than this are handed to the socket buffer, not copied. */
#define OUT_COPY_MAX 65536

/* C_HELD: authenticated, waiting until no other connection to the same node
 * is in its handshake, so both ends pick the same one (conn_pick.c). */
enum conn_state { C_CONNECTING, C_GREET, C_TLS, C_AUTH, C_HELD, C_UP };

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
    double timer_own, timer_len; /* handshake: armed at our running time, for */
    double last_write;
    int busy, dead;
    struct conn *dnext, *dprev; /* in the transport's list of unflushed conns */
    int dirty;                   /* output waits for the end-of-turn flush */
    int backlog;                 /* the socket was full: libevent writes the rest */
    size_t refused;              /* messages the reader refused, as last logged */
    size_t refused_utf8;         /* those refused for invalid UTF-8, as last logged */
    struct peer *cand;           /* past the greeting, not yet up: in cand's list */
    struct conn *cnext, *cprev;  /* in that list */
    int remote_c;                /* the remote is an aemp-c node */
    char *dataconn_id;           /* a data connection (dataconn.c): its ID */
    char *preauth_host;          /* incoming, not yet up: counted under this host (admit.c) */
    int probation;               /* past a pre-auth cap: no greeting from us until it greets */
    int hs_extended;             /* the handshake timeout was extended once (we were late) */
    double since;                /* incoming: when it was accepted */
    int doomed;                  /* over the high-water mark, no progress: closes at the flush */
    double progress_at;          /* backlog: when the socket last took STALL_BYTES (conn_out.c) */
    size_t drained;              /* bytes it took since then */
    struct event *stall;         /* looks again when a stall period ends */
    double last_heard;           /* up: when we last heard from the peer (probe.c) */
    double probe_sent;           /* when we last sent a probe, 0: never */
    double dup_at;               /* a second node called with the peer's ID */
    int dup_warned;
    struct event *rev;           /* up, cleartext: our own read event (conn_in.c) */
    char auth_sent[32];          /* the auth method of the auth line we sent, or "" */
    int dial_counted;            /* a peer's dial in flight, in t->dials (peer.c) */
    int on_host;                 /* both ends have one IP address (hostbeat_key) */
    char *beat_key;              /* the peer's beat= greeting value, or NULL (hostbeat.c) */
    struct hb_page *hb;          /* up: the peer's heartbeat page, mapped, or NULL */
    uint64_t hb_seen;            /* the last beat of it we saw */
    const char *hb_why;          /* why its silence is death (a static text) */
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
    struct conn *cands;      /* connections past the greeting, not yet up */
    int settling;            /* pick_settle() is closing the losers */
    double up_since;         /* when conn came up */
    struct stats_counts stats; /* this node's traffic and connections (stats.h) */
    int overflow;            /* the queue hit the high-water mark: fail at the tick */
    struct qcharge *charges; /* who put the bytes of `queue` there (qbudget.c) */
    int waiting;             /* drain waiters wait for it (flow.c) */
    struct conn *dial;       /* our dial to it still in its handshake, or NULL */
    int dialed;              /* a dial started since connect_since */
    int soon;                /* the tick runs early once (a deferred dial) */
};

struct seed {
    char *addr;
    char *nodeid; /* who answered there last */
    int self;     /* it was us: never dial again */
    int dialing;
};

struct transport {
    aemp_node *node;                 /* opaque: for the program's callbacks (flow.c) */
    struct event_base *base;
    const char *id;                  /* our node ID (borrowed) */
    const struct transport_ops *ops; /* to the kernel, with ctx (transport.h) */
    void *ctx;
    const struct transport_dataconn_ops *dcops; /* NULL: no data connections */
    void *dcctx;
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
    const cJSON *auth_offer, *auth_accept; /* borrowed from the configuration */
    cJSON *framing; /* owned: the framings of framing_format we read */
    double monitor_timeout, connect_interval;
    size_t max_msg;
    int nodelay;
    struct evdns_base *dns;
    struct framing_buf out;   /* the encoder's scratch (peer.c) */
    struct framing_ref out_refs[8]; /* its runs written by reference */
    char *rbuf;               /* large reads of up connections (conn_in.c) */
    int rbuf_busy;
    struct conn *dirty;       /* connections with output to write this turn */
    char self_nonce[HS_NONCE_LEN + 1]; /* nonce of our last dial to ourselves */
    struct event *wflush;     /* writes them, once per loop turn */
    struct stats_counts stats; /* all nodes' traffic and connections (stats.h) */
    double started;            /* when transport_start() ran, for the uptime */
    struct admit *admit;      /* caps and rate limits (admit.c) */
    struct peer *from;        /* the peer whose message runs now (conn_in.c), or NULL */
    size_t qb_all;            /* bytes peers' messages hold in queues (qbudget.c) */
    strmap qb_by;             /* peer ID -> those bytes of that peer (uintptr_t) */
    struct flow *flow;        /* water marks, drain waiters (flow.c) */
    struct outblocks *outblocks; /* large output blocks for reuse (outblocks.c) */
    double handshake_timeout; /* min(10 s, monitor_timeout) */
    struct event *beat;       /* heartbeat: how late the loop runs (probe.c) */
    double beat_at, stalled;  /* when it is due; time the loop was late in all */
    size_t dials;             /* dials to peers still in their handshake (peer.c) */
    struct hostbeat *hostbeat; /* our heartbeat page, or NULL (hostbeat.c) */
};

static inline double now_of(struct transport *t)
{
    struct timeval tv;
    event_base_gettimeofday_cached(t->base, &tv);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static inline struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

static inline int has_secret(const struct transport *t)
{
    return t->secret && *t->secret;
}

/* ---- conn.c: the life of one connection; conn_hs.c: its handshake ---- */

/* (Re)start the connection's timer: `s` seconds of handshake or dial. */
void conn_arm_timer(struct conn *c, double s);
/* The connection's bufferevent callbacks and timer (installed by
 * conn_new): reads in the handshake (and of a TLS connection once up),
 * connect/EOF/errors, the handshake timeout or the probe's tick. */
void conn_read_cb(struct bufferevent *bev, void *arg);
void conn_event_cb(struct bufferevent *bev, short what, void *arg);
void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
/* Process what arrived, in whatever state the connection is. */
void conn_process(struct conn *c);

/* A new connection on `bev` (taken), reading, in the transport's list. */
struct conn *conn_new(struct transport *t, struct bufferevent *bev);
/* Start an outgoing connection to `addr`. */
struct conn *conn_dial(struct transport *t, const char *addr, const char *want_id,
                       struct seed *seed);
/* Send our two greeting lines (an accepted connection starts here). */
void send_greeting(struct conn *c);
/* 1 when bytes from the peer wait in the kernel, not yet read by us (our
 * loop is late: the peer is not the slow one). */
int conn_unread(struct conn *c);
/* Close one connection: `cause` (conn_cause.h) is counted, the reason
 * (printf `fmt`) logged at `level` (see conn.c). The one way a
 * connection closes. */
void conn_close(struct conn *c, enum conn_cause cause, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conn_free(struct conn *c);
/* The same for `c` in the list of `t` (its transport: teardown loops). */
void conn_free_in(struct transport *t, struct conn *c);

/* ---- conn_in.c: reading an up connection ---- */

/* Bytes arrived on up connection `c`: 1 when they may be read (the peer
 * was heard, probe.c), 0 when it closed instead (silent for more than
 * monitor_timeout: "peer timed out"). */
int conn_in_arrived(struct conn *c);

/* Feed everything in `in` to the connection's framing reader. */
void conn_read_frames(struct conn *c, struct evbuffer *in);
/* Read what else waits on an up cleartext socket, in large reads. */
void conn_read_more(struct conn *c);
/* The read event of an up cleartext connection (conn_announce). */
void conn_up_read_cb(evutil_socket_t fd, short what, void *arg);

/* ---- conn_out.c: writing ---- */

/* Append `len` bytes of framed output to the connection. */
void conn_write(struct conn *c, const char *data, size_t len);
/* The same for a malloc()ed text the connection takes (no copy). */
void conn_write_owned(struct conn *c, char *data, size_t len);
/* The same for everything in `buf` (moved out of it, references too). */
void conn_write_buffer(struct conn *c, struct evbuffer *buf);
/* Event callback that pushes TLS plaintext output through the session. */
void flush_cb(evutil_socket_t fd, short what, void *arg);
/* Take `c` off the list of connections to flush this turn. */
void dirty_unlink(struct conn *c);
/* Callbacks installed by conn_new() and transport_start(). */
void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);
void write_cb(struct bufferevent *bev, void *arg);
void wflush_cb(evutil_socket_t fd_, short what, void *arg);

/* ---- peer.c: per-node records, queues, dialing, seeds ---- */

struct peer *peer_get(struct transport *t, const char *id, int create);
void peer_stop_connecting(struct peer *p);
void peer_free(struct peer *p);
void peer_maybe_forget(struct transport *t, struct peer *p);
void peer_try(struct peer *p);
/* `c` (a dial of peer_try) is up or closes: no longer in flight. */
void peer_dial_done(struct conn *c);
/* `c` closes (conn_close) for `why`: the node's side of it (a candidate
 * dropped; the node down when `c` was its connection). */
void peer_conn_closed(struct conn *c, const char *why);
/* Dial every configured seed not yet up (the seed_tick timer). */
void seed_tick_cb(evutil_socket_t fd, short what, void *arg);

/* ---- conn_pick.c: which connection to a node survives, announcing it ---- */

/* `c` passed the greeting of node `p`: it is a candidate until it is up or
 * closed. */
void pick_add(struct peer *p, struct conn *c);
/* `c` closes: no longer a candidate; the others may now be decided. */
void pick_drop(struct conn *c);
/* 1 when `p` has a connection that is up or authenticated (held). */
int pick_has_authed(const struct peer *p);
/* 1 when `c`, a candidate in its handshake, has a rival: its node is up
 * through another connection or has another candidate (both ends dialed
 * at once; the peer closing `c` is then routine). */
int pick_lost_race(const struct conn *c);
/* `c` is authenticated: hold it, or announce the winner when no candidate
 * of its node is still in its handshake. */
void pick_authed(struct conn *c);

/* Announce `c` (authenticated, chosen) as the node's connection: queued
 * messages go out, the node is reported up. */
void conn_announce(struct conn *c);

/* ---- hostbeat.c: liveness of peers on this host from their heartbeat page ---- */

/* Make our page (nothing when AEMP_HOSTBEAT=0 or no memfd: then peers on
 * this host probe us as any other); free it. */
void hostbeat_start(struct transport *t);
void hostbeat_free(struct transport *t);
/* Write the time of this heartbeat, our CPU time and the heartbeat's
 * `period` (s) into our page. */
void hostbeat_publish(struct transport *t, double period);
/* How often the peer of `c` beats (s), 0 without its page. */
double hostbeat_period(const struct conn *c);
/* The beat= value for our greeting on `c` (borrowed), or NULL when its two
 * ends are not on one host or we have no page. */
const char *hostbeat_key(struct conn *c);
/* `c` just came up: map the page its c->beat_key names when the peer is an
 * aemp-c node on this host and the page checks out (else c->hb stays NULL
 * and the link is probed). */
void hostbeat_attach(struct conn *c);
void hostbeat_detach(struct conn *c);
/* The age in seconds of the peer's newest beat when it beat since the last
 * call, else -1 (also without a page). */
double hostbeat_new(struct conn *c);
/* The peer has not beaten for `m` of our running time: why that is death (a
 * static text), or NULL when it is only starved (runnable, and has not had
 * `m` of CPU time since its last beat). */
const char *hostbeat_why_silent(struct conn *c, double m);

/* ---- probe.c: is the peer of an up connection still there? ---- */

/* Start and stop the heartbeat that keeps our own running time. */
int probe_clock_start(struct transport *t);
void probe_clock_free(struct transport *t);
/* TCP_USER_TIMEOUT and keepalive timings from monitor_timeout on `fd`. */
void probe_sockopts(const struct transport *t, int fd);
/* Our own running time in seconds: wall-clock time less the time our loop
 * was late (the machine saturated, the process stopped). */
double probe_own_now(struct transport *t);
/* `c` is announced: start watching it. */
void probe_start(struct conn *c);
/* The connection's timer fired while up: probe, time out, keep alive. */
void probe_tick(struct conn *c);
/* Something arrived on `c`. */
void probe_heard(struct conn *c);
/* 1 when `c` is up and was silent for more than monitor_timeout: data
 * arriving now is not delivered (the peer has given up on us; the reader
 * closes, conn_in_arrived). */
int probe_stale(struct conn *c);
/* Close `c` as silent too long (CONN_TIMED_OUT): the one place for that
 * cause, from the probe timer and from the reader (probe_stale). */
void probe_timed_out(struct conn *c);
/* 1 when `msg` is the answer to a probe (consumed by the caller). */
int probe_is_answer(struct conn *c, const cJSON *msg);
/* A second node called with the ID of `u`'s peer while `u` is up. */
void probe_duplicate(struct conn *u);

/* ---- listen.c: addresses and listeners ---- */

/* Split "host:port", "[v6]:port", "*", "*:*", "port" or "host" (see listen.c). */
int addr_split(const char *s, const char *defport, char *host, size_t hl, char *port,
               size_t pl);
/* "host:port" text of a socket address into buf. */
void addr_text(const struct sockaddr *sa, char *buf, size_t len);
/* Append string `s` to array `arr` unless it is there already. */
void addrs_add_unique(cJSON *arr, const char *s);
/* Listen on every bind of `binds`; fills t->lis and t->listen_addrs. */
int start_listeners(struct transport *t, const cJSON *binds, char *err, size_t errlen);

/* ---- qbudget.c: queues for nodes not connected, charged to peers ---- */

/* A peer's messages may hold max(max_message_size, QBUDGET_MIN) bytes in
 * queues for nodes not connected; all peers' QBUDGET_PEERS times that. */
#define QBUDGET_MIN (16u * 1024 * 1024)
#define QBUDGET_PEERS 4
size_t qbudget_peer_limit(const struct transport *t);
size_t qbudget_total_limit(const struct transport *t);
/* `len` more bytes for `p`'s queue, asked by t->from: 0 when they may be
 * queued (charged to t->from), -1 when they are refused (logged). */
int qbudget_take(struct peer *p, size_t len);
/* `p`'s queue was emptied (sent or dropped): its charges are released. */
void qbudget_release(struct peer *p);

/* ---- admit.c: caps and rate limits ---- */

int admit_start(struct transport *t);
void admit_free(struct transport *t);
/* A connection was accepted from `sa`: 0 to go on (counted until
 * admit_done), 1 when it is past a cap and on probation (no greeting from
 * us; admit_promote when it greets within admit_probation_grace), -1 when
 * refused (logged, rate-limited). */
int admit_incoming(struct conn *c, const struct sockaddr *sa);
/* A connection on probation sent its greeting: 0 when let in (counted
 * until admit_done), -1 when even the reserve is full. 0 for others. */
int admit_promote(struct conn *c);
/* How long a connection on probation may take to greet. */
double admit_probation_grace(const struct transport *t);
/* `c` authenticated or closes: it no longer counts as pre-auth. */
void admit_done(struct conn *c);
/* The listener's error callback: pauses accepting when out of descriptors. */
void admit_listener_error(struct evconnlistener *l, void *arg);
/* 1 when a line about an unauthenticated peer may be logged now. */
int admit_log_ok(struct transport *t);
/* 1 when a dial to a learned address may start now: the token bucket has
 * one and fewer than ADMIT_DIALS_MAX (transport.h) dials are in flight. */
int admit_dial_ok(struct transport *t);
/* Bytes of unwritten output (or of a queue while connecting) above which a
 * peer is dropped: a queue at once, a connection only when its socket takes
 * nothing for admit_stall_time() (conn_out.c). */
size_t admit_out_limit(const struct transport *t);
/* Seconds without progress after which a connection over the limit is
 * dropped: min(monitor_timeout, 10 s), as for a handshake. */
double admit_stall_time(const struct transport *t);

/* ---- outblocks.c: large output blocks reused ---- */

/* Give the scratch `b` a reused block when it has none. */
void outblocks_take(struct transport *t, struct framing_buf *b);
/* b's block leaves for a socket buffer: remember it (its capacity). */
void outblocks_lend(struct transport *t, const struct framing_buf *b);
/* evbuffer cleanup (arg: t->outblocks when the reference was added, may be
 * NULL): the block is written; keep it for reuse or free it. */
void outblocks_back(const void *data, size_t len, void *arg);
/* At transport_free, after every connection and queue is gone. */
void outblocks_free(struct transport *t);

/* ---- flow.c: flow control for senders ---- */

int flow_start(struct transport *t);
void flow_free(struct transport *t);
/* Bytes waiting for the node: its queue and its connection's output. */
size_t peer_pending(const struct peer *p);
/* 1 when more than the high-water mark waits for the node. */
int flow_busy(const struct peer *p);
/* What waits for `p` shrank: its drain waiters are due at the low-water
 * mark (called from the loop). */
void flow_check(struct peer *p);

#endif
