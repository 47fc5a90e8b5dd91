/* stats.c - the node's connection counters as JSON (aemp_stats(), the
 * node-port stats request) and the classification of closed connections
 * by cause. The increments themselves sit in the transport. */
#include "stats.h"

#include "core.h"
#include "transport_int.h"

#include <string.h>

static const char *const disc_names[SD_N] = {"closed_by_peer", "timeout", "protocol", "error",
                                             "replaced"};
static const char *const hs_names[SH_N] = {"connect", "protocol",       "auth",     "tls",
                                           "timeout", "closed_by_peer", "duplicate"};

/* `why` starts with or contains one of the texts in `keys`. */
static int has(const char *why, const char *const *keys)
{
    for (; *keys; keys++)
        if (strstr(why, *keys)) return 1;
    return 0;
}

/* The texts are the reasons transport.c (and tls.c through it) log when
 * they close a connection. */
static const char *const dup_keys[] = {"simultaneous", "already connected", "another connection",
                                       "myself",       "keeping",           NULL};
static const char *const closed_keys[] = {"closed by the peer", "reset by peer", "Broken pipe",
                                          NULL};
static const char *const timeout_keys[] = {"no progress", "timed out", NULL};

static enum stats_disc disc_cause(const char *why)
{
    static const char *const protocol[] = {"protocol error", "framing", NULL};
    if (has(why, closed_keys)) return SD_PEER_CLOSED;
    if (has(why, dup_keys)) return SD_REPLACED;
    if (has(why, timeout_keys)) return SD_TIMEOUT;
    if (has(why, protocol)) return SD_PROTOCOL;
    return SD_ERROR;
}

static enum stats_hs hs_cause(const char *why, int state)
{
    if (state == C_CONNECTING) return SH_CONNECT;
    if (has(why, dup_keys)) return SH_DUPLICATE;
    if (has(why, timeout_keys)) return SH_TIMEOUT;
    if (has(why, closed_keys)) return SH_CLOSED;
    if (state == C_TLS) return SH_TLS;
    if (strstr(why, "authenticat")) return SH_AUTH;
    return SH_PROTOCOL;
}

void stats_count_close(struct stats_counts *total, struct stats_counts *peer, int state,
                       const char *why)
{
    if (state == C_UP) {
        enum stats_disc d = disc_cause(why);
        total->disc[d]++;
        if (peer) peer->disc[d]++;
    } else {
        enum stats_hs h = hs_cause(why, state);
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

cJSON *aemp_stats(aemp_node *node)
{
    struct transport *t = node->transport;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "node", node->id);
    cJSON_AddNumberToObject(o, "uptime", t ? now_of(t) - t->started : 0);
    cJSON_AddNumberToObject(o, "ports", (double)node->core->ports.len);
    cJSON_AddNumberToObject(o, "monitored_ports", (double)node->core->mons.len);
    cJSON *listen = t ? transport_listen_addrs(node) : cJSON_CreateArray();
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
    size_t it = 0, queued = 0, up = 0;
    const char *k;
    void *v;
    while (strmap_next(&t->peers, &it, &k, &v)) {
        struct peer *p = v;
        cJSON *po = cJSON_AddObjectToObject(peers, p->id);
        if (!po) continue;
        size_t q = transport_pending(node, p->id);
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
