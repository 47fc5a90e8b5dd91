/* stats.h - what a node counts about its connections (per remote node and
 * in total) and how those counters become the JSON of aemp_stats() and the
 * node-port stats request. The counters are plain integers the transport
 * increments where things happen; everything else here runs only when
 * someone asks. */
#ifndef AEMP_STATS_H
#define AEMP_STATS_H

#include "conn_cause.h"

#include <cjson/cJSON.h>
#include <stdint.h>

struct transport;

/* Why an authenticated connection ended. */
enum stats_disc {
    SD_PEER_CLOSED, /* the other side closed it (or exited) */
    SD_TIMEOUT,     /* silence past monitor_timeout */
    SD_PROTOCOL,    /* it broke the framing or sent garbage */
    SD_ERROR,       /* a socket or TLS error */
    SD_REPLACED,    /* both ends called at once: the other connection won */
    SD_N
};

/* Why a connection ended before it was authenticated. */
enum stats_hs {
    SH_CONNECT,   /* connecting failed (refused, unreachable, name not resolved) */
    SH_PROTOCOL,  /* a bad greeting or auth line, another protocol or framing */
    SH_AUTH,      /* authentication refused (wrong secret, no common method) */
    SH_TLS,       /* the TLS handshake failed (certificate refused) */
    SH_TIMEOUT,   /* no progress within monitor_timeout */
    SH_CLOSED,    /* the other side closed during the handshake */
    SH_DUPLICATE, /* already connected, simultaneous connect, or ourselves */
    SH_REFUSED,   /* the node we dialed closed before it greeted us */
    SH_N
};

/* Counters of one remote node or of all of them. */
struct stats_counts {
    uint64_t msgs_in, msgs_out;   /* messages received / sent (or queued to send) */
    uint64_t bytes_in, bytes_out; /* their JSON bytes */
    uint64_t connects;            /* connections that became authenticated */
    uint64_t disc[SD_N];          /* authenticated connections ended, by reason */
    uint64_t hs_fail[SH_N];       /* connections ended before authentication, by cause */
    uint64_t closed[CONN_CAUSE_N]; /* every connection that ended, by the transport's code */
};

/* The node-port request that returns the stats: ["devnull", STATS_REQUEST,
 * REPLYPORT...]. A Perl node (and an older aemp) discards devnull requests
 * without a word, so asking a mixed network costs nothing there. */
#define STATS_REQUEST "aemp_stats"

/* Count one closed connection, on `total` and on `peer` (NULL when the
 * remote node has no record): a disconnect when `state` (the connection's
 * enum conn_state) is C_UP, else a handshake failure; `cause` (and the
 * state the handshake was in) picks the reason. */
void stats_count_close(struct stats_counts *total, struct stats_counts *peer, int state,
                       enum conn_cause cause);

/* What aemp_stats() returns for node `id` (borrowed) with the kernel's
 * counts of `ports` and `monitored` ports, and the connections of `t`
 * (NULL: not started, all zero). A new object (caller owns) or NULL. */
cJSON *stats_json(struct transport *t, const char *id, size_t ports, size_t monitored);

/* The names aemp stats gives the reasons (static strings). */
const char *stats_disc_name(enum stats_disc d);
const char *stats_hs_name(enum stats_hs h);

#endif
