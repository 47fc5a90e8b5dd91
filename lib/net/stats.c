/* stats.c - the node's connection counters as JSON (aemp_stats(), the
 * node-port stats request), the names of the causes a connection closes
 * for (conn_cause.h) and how they count as disconnect reasons and handshake
 * failure causes. The increments themselves sit in the transport. */
#include "stats.h"

#include "transport_int.h"

#include <errno.h>
#include <string.h>

static const char *const disc_names[SD_N] = {"closed_by_peer", "timeout", "protocol", "error",
                                             "replaced"};
static const char *const hs_names[SH_N] = {"connect", "protocol",       "auth",     "tls",
                                           "timeout", "closed_by_peer", "duplicate", "refused"};

const char *stats_disc_name(enum stats_disc d)
{
    return (unsigned)d < SD_N ? disc_names[d] : "?";
}

const char *stats_hs_name(enum stats_hs h)
{
    return (unsigned)h < SH_N ? hs_names[h] : "?";
}

static const char *const cause_names[CONN_CAUSE_N] = {
    [CONN_CONNECT_FAILED] = "connect_failed", [CONN_TIMED_OUT] = "timed_out",
    [CONN_PROTOCOL] = "protocol",             [CONN_AUTH_FAILED] = "auth_failed",
    [CONN_TLS] = "tls",                       [CONN_PEER_CLOSED] = "closed_by_peer",
    [CONN_NOT_READING] = "not_reading",       [CONN_REPLACED] = "replaced",
    [CONN_SELF] = "self",                     [CONN_SOCKET_ERROR] = "socket_error",
    [CONN_NO_MEMORY] = "no_memory",           [CONN_REFUSED] = "refused",
};

const char *conn_cause_name(enum conn_cause cause)
{
    return (unsigned)cause < CONN_CAUSE_N ? cause_names[cause] : "?";
}

enum conn_cause conn_cause_of_errno(int e)
{
    if (e == ECONNRESET || e == EPIPE) return CONN_PEER_CLOSED;
    return e == ETIMEDOUT ? CONN_TIMED_OUT : CONN_SOCKET_ERROR; /* TCP_USER_TIMEOUT (probe.c) */
}

/* The reason an authenticated connection ended. */
static enum stats_disc disc_cause(enum conn_cause cause)
{
    switch (cause) {
    case CONN_PEER_CLOSED: return SD_PEER_CLOSED;
    case CONN_REPLACED:
    case CONN_SELF: return SD_REPLACED;
    case CONN_TIMED_OUT: return SD_TIMEOUT;
    case CONN_PROTOCOL: return SD_PROTOCOL;
    default: return SD_ERROR; /* socket, TLS, not reading, no memory */
    }
}

/* The cause of a handshake that failed in `state`. */
static enum stats_hs hs_cause(enum conn_cause cause, int state)
{
    if (state == C_CONNECTING || cause == CONN_CONNECT_FAILED) return SH_CONNECT;
    switch (cause) {
    case CONN_REPLACED:
    case CONN_SELF: return SH_DUPLICATE;
    case CONN_TIMED_OUT: return SH_TIMEOUT;
    case CONN_PEER_CLOSED: return SH_CLOSED;
    case CONN_REFUSED: return SH_REFUSED;
    case CONN_TLS: return SH_TLS;
    default: break;
    }
    if (state == C_TLS) return SH_TLS; /* whatever broke the TLS handshake */
    return cause == CONN_AUTH_FAILED ? SH_AUTH : SH_PROTOCOL;
}

void stats_count_close(struct stats_counts *total, struct stats_counts *peer, int state,
                       enum conn_cause cause)
{
    if ((unsigned)cause < CONN_CAUSE_N) {
        total->closed[cause]++;
        if (peer) peer->closed[cause]++;
    }
    if (state == C_UP) {
        enum stats_disc d = disc_cause(cause);
        total->disc[d]++;
        if (peer) peer->disc[d]++;
    } else {
        enum stats_hs h = hs_cause(cause, state);
        total->hs_fail[h]++;
        if (peer) peer->hs_fail[h]++;
    }
}

/* The counters as JSON members added to `obj` (borrowed). */
static void stats_counts_to_json(const struct stats_counts *c, cJSON *obj)
{
    uint64_t disc = 0, hs = 0;
    cJSON_AddNumberToObject(obj, "msgs_in", (double)c->msgs_in);
    cJSON_AddNumberToObject(obj, "msgs_out", (double)c->msgs_out);
    cJSON_AddNumberToObject(obj, "bytes_in", (double)c->bytes_in);
    cJSON_AddNumberToObject(obj, "bytes_out", (double)c->bytes_out);
    cJSON_AddNumberToObject(obj, "connects", (double)c->connects);
    cJSON *d = cJSON_CreateObject(), *h = cJSON_CreateObject();
    for (int i = 0; i < SD_N; i++) {
        cJSON_AddNumberToObject(d, disc_names[i], (double)c->disc[i]);
        disc += c->disc[i];
    }
    for (int i = 0; i < SH_N; i++) {
        cJSON_AddNumberToObject(h, hs_names[i], (double)c->hs_fail[i]);
        hs += c->hs_fail[i];
    }
    cJSON_AddNumberToObject(obj, "disconnects", (double)disc);
    cJSON_AddItemToObject(obj, "disconnect_reasons", d);
    cJSON_AddNumberToObject(obj, "handshake_failures", (double)hs);
    cJSON_AddItemToObject(obj, "handshake_failure_causes", h);
}

cJSON *stats_json(struct transport *t, const char *id, size_t ports, size_t monitored)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "node", id);
    cJSON_AddNumberToObject(o, "uptime", t ? now_of(t) - t->started : 0);
    cJSON_AddNumberToObject(o, "ports", (double)ports);
    cJSON_AddNumberToObject(o, "monitored_ports", (double)monitored);
    cJSON *listen = transport_listen_addrs(t);
    cJSON_AddItemToObject(o, "listen", listen);
    cJSON *total = cJSON_AddObjectToObject(o, "total");
    cJSON *peers = cJSON_AddObjectToObject(o, "peers");
    if (!t || !total || !peers) {
        if (total) {
            stats_counts_to_json(&(struct stats_counts){0}, total);
            cJSON_AddNumberToObject(total, "queued_bytes", 0);
            cJSON_AddNumberToObject(total, "peers_up", 0);
        }
        return o;
    }
    stats_counts_to_json(&t->stats, total);
    /* every closed connection by the transport's own code (the node's
     * total only: the metrics' aemp_connections_closed_total{cause}) */
    cJSON *cc = cJSON_AddObjectToObject(total, "close_causes");
    for (int i = 0; cc && i < CONN_CAUSE_N; i++)
        cJSON_AddNumberToObject(cc, conn_cause_name((enum conn_cause)i), (double)t->stats.closed[i]);
    size_t it = 0, queued = 0, up = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v)) {
        struct peer *p = v;
        cJSON *po = cJSON_AddObjectToObject(peers, p->id);
        if (!po) continue;
        size_t q = transport_pending(t, p->id);
        queued += q;
        up += p->conn != NULL;
        cJSON_AddBoolToObject(po, "up", p->conn != NULL);
        if (p->conn) {
            cJSON_AddStringToObject(po, "addr", p->conn->addr ? p->conn->addr : "?");
            cJSON_AddBoolToObject(po, "tls", p->conn->tls != NULL);
            cJSON_AddBoolToObject(po, "outgoing", p->conn->outgoing);
        }
        cJSON_AddBoolToObject(po, "seed", p->is_seed);
        cJSON_AddNumberToObject(po, "queued_bytes", (double)q);
        stats_counts_to_json(&p->stats, po);
    }
    cJSON_AddNumberToObject(total, "queued_bytes", (double)queued);
    cJSON_AddNumberToObject(total, "peers_up", (double)up);
    return o;
}
