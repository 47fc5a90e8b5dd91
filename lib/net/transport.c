/* transport.c - connections between nodes (PROTOCOL.md sections 2 and 3):
 * transport_start() and transport_free(), and data connection dials. The
 * parts, each its own file: the life of one connection (conn.c: made,
 * events, closed), its handshake (conn_hs.c), the read path of an up
 * connection (conn_in.c), the write path (conn_out.c), which connection to
 * a node survives and announcing it (conn_pick.c), per-node records,
 * queues and sending (peer.c), listeners (listen.c), probes (probe.c). */
#include "transport_int.h"

#include "config.h"
#include "config_check.h"
#include "tls.h"

#include <event2/dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    hostbeat_start(t);
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
    hostbeat_free(t);
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
