/* metrics.c - the Prometheus exposition of a node (see metrics.h). The
 * figures come from aemp_stats() (the transport's counters, the same as
 * `aemp stats`), the groups, the log catcher and the process; node ups and
 * downs are counted here as they happen. */
#include "metrics.h"

#include "dataconn.h"
#include "logcatcher.h"
#include "global.h"
#include "procstat.h"
#include "strmap.h"

#include <event2/buffer.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct metrics {
    aemp_node *node;
    aemp_guard *nodemon;
    unsigned long long ups, downs, requests;
    /* node ID -> 0 while up, else the monotonic second it went down + 1
     * (uintptr_t); anonymous nodes are not kept, and at most
     * METRICS_MAX_PEERS named ones */
    strmap seen;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_anon(const char *id)
{
    return !strncmp(id, "anon/", 5);
}

/* How long a departed node keeps its series: 5 x monitor_timeout, at
 * least a minute (a few scrapes see it down). */
static double expiry(struct metrics *m)
{
    const cJSON *cfg = aemp_node_config(m->node);
    const cJSON *mt = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "monitor_timeout") : NULL;
    double t = 30;
    if (mt && cJSON_IsNumber(mt) && mt->valuedouble > 0) t = mt->valuedouble;
    else if (mt && cJSON_IsString(mt) && atof(mt->valuestring) > 0) t = atof(mt->valuestring);
    return 5 * t > 60 ? 5 * t : 60;
}

/* The `seen` values: up, or the second it went down. */
#define SEEN_UP ((void *)1)
static void *seen_down(double t)
{
    return (void *)((uintptr_t)t + 2);
}

/* How long ago `v` (a seen value) went down; -1 while it is up. */
static double down_for(void *v, double now)
{
    uintptr_t d = (uintptr_t)v;
    return d < 2 ? -1 : now - (double)(d - 2);
}

/* Forget nodes that have been down longer than the expiry time. */
static void sweep(struct metrics *m)
{
    double now = mono_now(), exp = expiry(m);
    size_t it = 0;
    const char *k;
    void *v;
    while (strmap_next(&m->seen, &it, &k, &v))
        if (down_for(v, now) > exp) strmap_del(&m->seen, k);
}

static void on_node(aemp_node *node, const char *nodeid, int up, const cJSON *reason, void *ud)
{
    struct metrics *m = ud;
    (void)node, (void)reason;
    if (up) m->ups++;
    else m->downs++;
    if (is_anon(nodeid)) return;
    if (!strmap_get(&m->seen, nodeid)) {
        if (m->seen.len >= METRICS_MAX_PEERS) sweep(m);
        if (m->seen.len >= METRICS_MAX_PEERS) return;
    }
    strmap_put(&m->seen, nodeid, up ? SEEN_UP : seen_down(mono_now()), NULL);
}

struct metrics *metrics_new(aemp_node *node)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->node = node;
    m->seen = (strmap)STRMAP_INIT;
    if (aemp_mon_nodes(node, on_node, m, &m->nodemon)) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m) return;
    aemp_guard_free(m->nodemon);
    strmap_free(&m->seen);
    free(m);
}

void metrics_count_request(struct metrics *m)
{
    m->requests++;
}

int metrics_recently_down(struct metrics *m, const char *nodeid)
{
    void *v = strmap_get(&m->seen, nodeid);
    double d = v ? down_for(v, mono_now()) : -1;
    return d >= 0 && d <= expiry(m);
}

void metrics_recent_downs(struct metrics *m, cJSON *arr)
{
    size_t it = 0;
    const char *k;
    void *v;
    double now = mono_now(), exp = expiry(m), d;
    while (strmap_next(&m->seen, &it, &k, &v))
        if ((d = down_for(v, now)) >= 0 && d <= exp) cJSON_AddItemToArray(arr, cJSON_CreateString(k));
}

void metrics_escape(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"') buf[o++] = '\\', buf[o++] = *s;
        else if (*s == '\n') buf[o++] = '\\', buf[o++] = 'n';
        else buf[o++] = *s;
    }
    buf[o] = 0;
}

/* ------------------------------------------------------------ rendering */

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsTrue(v) ? 1 : 0;
}

static void one(struct evbuffer *out, const char *name, const char *type, const char *help,
                double v)
{
    family(out, name, type, help);
    evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

/* A family whose series are the members of a JSON object of counts
 * (`label`="member name"). */
static void by_key(struct evbuffer *out, const char *name, const char *help, const char *label,
                   const cJSON *obj)
{
    family(out, name, "counter", help);
    const cJSON *c;
    char esc[128];
    cJSON_ArrayForEach(c, obj)
    {
        if (!cJSON_IsNumber(c) || !c->string) continue;
        metrics_escape(c->string, esc, sizeof esc);
        evbuffer_add_printf(out, "%s{%s=\"%s\"} %.17g\n", name, label, esc, c->valuedouble);
    }
}

/* What is shown of one peer (or of the anonymous ones together, or of
 * those past the limit). */
enum { P_UP, P_MIN, P_MOUT, P_BIN, P_BOUT, P_QUEUED, P_CONNECTS, P_N };
struct row {
    const char *peer; /* borrowed from the stats tree, the list of downs, or static */
    double v[P_N];
    int gone; /* no longer in the transport's records: aemp_peer_up 0 only */
};

static const struct {
    const char *name, *type, *help;
} peer_families[P_N] = {
    {"aemp_peer_up", "gauge", "1 while an authenticated connection to the node is up."},
    {"aemp_peer_messages_received_total", "counter", "Messages received from the node."},
    {"aemp_peer_messages_sent_total", "counter", "Messages sent (or queued) to the node."},
    {"aemp_peer_received_bytes_total", "counter", "JSON bytes of messages received from the node."},
    {"aemp_peer_sent_bytes_total", "counter", "JSON bytes of messages sent to the node."},
    {"aemp_peer_queued_output_bytes", "gauge", "Bytes waiting to be written to the node."},
    {"aemp_peer_connections_opened_total", "counter",
     "Connections to the node that completed the handshake."},
};

static void row_add(struct row *r, const cJSON *p)
{
    r->v[P_UP] += num(p, "up");
    r->v[P_MIN] += num(p, "msgs_in");
    r->v[P_MOUT] += num(p, "msgs_out");
    r->v[P_BIN] += num(p, "bytes_in");
    r->v[P_BOUT] += num(p, "bytes_out");
    r->v[P_QUEUED] += num(p, "queued_bytes");
    r->v[P_CONNECTS] += num(p, "connects");
}

static int show_peer(struct metrics *m, const char *id, const cJSON *p)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "up")) ||
           metrics_recently_down(m, id);
}

static void render_peers(struct metrics *m, struct evbuffer *out, const cJSON *peers)
{
    cJSON *downs = cJSON_CreateArray();
    if (downs) metrics_recent_downs(m, downs);
    size_t n = (size_t)cJSON_GetArraySize(peers) + (size_t)cJSON_GetArraySize(downs), k = 0;
    struct row *rows = calloc(n + 2, sizeof *rows);
    if (!rows) {
        cJSON_Delete(downs);
        return;
    }
    struct row anon = {"anon/", {0}}, other = {"other", {0}};
    int has_anon = 0, has_other = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, peers)
    {
        if (!p->string) continue;
        if (is_anon(p->string)) {
            row_add(&anon, p);
            has_anon = 1;
        } else if (!show_peer(m, p->string, p)) {
            continue;
        } else if (k >= METRICS_MAX_PEERS) {
            row_add(&other, p);
            has_other = 1;
        } else {
            rows[k].peer = p->string;
            row_add(&rows[k++], p);
        }
    }
    /* departed nodes the transport forgot: their up state until expiry */
    const cJSON *d;
    cJSON_ArrayForEach(d, downs)
    {
        if (k >= METRICS_MAX_PEERS || cJSON_GetObjectItemCaseSensitive(peers, d->valuestring))
            continue;
        rows[k].peer = d->valuestring;
        rows[k++].gone = 1;
    }
    if (has_anon) rows[k++] = anon;
    if (has_other) rows[k++] = other;
    char esc[600];
    for (int f = 0; f < P_N; f++) {
        family(out, peer_families[f].name, peer_families[f].type, peer_families[f].help);
        for (size_t i = 0; i < k; i++) {
            if (rows[i].gone && f != P_UP) continue;
            metrics_escape(rows[i].peer, esc, sizeof esc);
            evbuffer_add_printf(out, "%s{peer=\"%s\"} %.17g\n", peer_families[f].name, esc,
                                rows[i].v[f]);
        }
    }
    free(rows);
    cJSON_Delete(downs);
}

struct groups_acc {
    struct evbuffer *out;
    size_t groups, members, shown;
    int pass; /* 0: count, 1: print the series */
};

static void group_cb(const char *group, const cJSON *members, void *ud)
{
    struct groups_acc *a = ud;
    size_t n = (size_t)cJSON_GetArraySize(members);
    if (a->pass == 0) {
        a->groups++;
        a->members += n;
        return;
    }
    if (a->shown >= METRICS_MAX_GROUPS) return;
    a->shown++;
    char esc[600];
    metrics_escape(group, esc, sizeof esc);
    evbuffer_add_printf(a->out, "aemp_group_members{group=\"%s\"} %zu\n", esc, n);
}

static void render_groups(struct metrics *m, struct evbuffer *out)
{
    struct groups_acc a = {.out = out};
    global_groups_each(m->node, group_cb, &a);
    one(out, "aemp_groups", "gauge", "Port groups with members, network-wide as this node sees them.",
        (double)a.groups);
    one(out, "aemp_group_members_all", "gauge", "Members of all port groups together.",
        (double)a.members);
    family(out, "aemp_group_members", "gauge",
           "Members of a port group (at most 100 groups are listed).");
    a.pass = 1;
    global_groups_each(m->node, group_cb, &a);
}

void metrics_render(struct metrics *m, struct evbuffer *out)
{
    sweep(m);
    cJSON *st = aemp_stats(m->node);
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(st, "total");
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(st, "peers");
    char esc[600];
    family(out, "aemp_build_info", "gauge", "The aemp version serving these metrics.");
    evbuffer_add_printf(out, "aemp_build_info{version=\"%s\"} 1\n", AEMP_VERSION);
    family(out, "aemp_node_info", "gauge", "The node ID of this node.");
    metrics_escape(aemp_node_id(m->node), esc, sizeof esc);
    evbuffer_add_printf(out, "aemp_node_info{node=\"%s\"} 1\n", esc);
    one(out, "aemp_messages_received_total", "counter", "Messages received from other nodes.",
        num(total, "msgs_in"));
    one(out, "aemp_messages_sent_total", "counter", "Messages sent (or queued) to other nodes.",
        num(total, "msgs_out"));
    one(out, "aemp_received_bytes_total", "counter", "JSON bytes of messages received.",
        num(total, "bytes_in"));
    one(out, "aemp_sent_bytes_total", "counter", "JSON bytes of messages sent.",
        num(total, "bytes_out"));
    one(out, "aemp_queued_output_bytes", "gauge", "Bytes waiting to be written to other nodes.",
        num(total, "queued_bytes"));
    one(out, "aemp_connections_opened_total", "counter",
        "Connections that completed the handshake (handshakes that succeeded).",
        num(total, "connects"));
    by_key(out, "aemp_connections_closed_total",
           "Connections that ended (in the handshake or after), by the transport's cause code.",
           "cause", cJSON_GetObjectItemCaseSensitive(total, "close_causes"));
    by_key(out, "aemp_disconnects_total",
           "Authenticated connections that ended, by reason (as aemp stats groups the codes).",
           "reason", cJSON_GetObjectItemCaseSensitive(total, "disconnect_reasons"));
    by_key(out, "aemp_handshake_failures_total",
           "Connections that ended before authentication, by reason (as aemp stats groups the "
           "codes).",
           "reason", cJSON_GetObjectItemCaseSensitive(total, "handshake_failure_causes"));
    one(out, "aemp_node_ups_total", "counter", "Times another node came up (connected).",
        (double)m->ups);
    one(out, "aemp_node_downs_total", "counter", "Times another node went down.",
        (double)m->downs);
    one(out, "aemp_nodes_up", "gauge", "Other nodes connected now.", num(total, "peers_up"));
    one(out, "aemp_nodes_known", "gauge", "Other nodes this node has a record of.",
        (double)cJSON_GetArraySize(peers));
    one(out, "aemp_ports", "gauge", "Local ports.", num(st, "ports"));
    one(out, "aemp_monitors", "gauge", "Local ports with monitors on them.",
        num(st, "monitored_ports"));
    render_groups(m, out);
    unsigned long long dc_open, dc_opened, dc_in, dc_out;
    dataconn_figures(m->node, &dc_open, &dc_opened, &dc_in, &dc_out);
    one(out, "aemp_dataconns", "gauge", "Data connections in use.", (double)dc_open);
    one(out, "aemp_dataconns_opened_total", "counter", "Data connections handed to their users.",
        (double)dc_opened);
    one(out, "aemp_dataconn_received_bytes_total", "counter",
        "Bytes received on data connections (after TLS).", (double)dc_in);
    one(out, "aemp_dataconn_sent_bytes_total", "counter",
        "Bytes sent on data connections (before TLS).", (double)dc_out);
    one(out, "aemp_log_lines_dropped_total", "counter",
        "Log lines the log catcher dropped (queue full or a catcher behind).",
        (double)logcatcher_dropped(m->node));
    one(out, "aemp_http_requests_total", "counter", "Requests to this monitoring listener.",
        (double)m->requests);
    render_peers(m, out, peers);
    procstat_render(out);
    cJSON_Delete(st);
}
