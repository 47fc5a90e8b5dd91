/* meshview.c - this node's view of the network (see meshview.h), from
 * aemp_stats() (its connections), Global's address book and groups, and
 * the nodes the metrics remember going down. */
#include "meshview.h"

#include "global.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int is_anon(const char *id)
{
    return !strncmp(id, "anon/", 5);
}

static cJSON *node_entry(aemp_node *node, const char *id, int up, int self)
{
    cJSON *n = cJSON_CreateObject();
    if (!n) return NULL;
    cJSON_AddStringToObject(n, "id", id);
    cJSON_AddBoolToObject(n, "up", up);
    cJSON_AddBoolToObject(n, "self", self);
    const cJSON *addrs = self ? NULL : global_node_addrs(node, id);
    cJSON *a = self ? aemp_listen_addrs(node) : addrs ? cJSON_Duplicate(addrs, 1) : NULL;
    cJSON_AddItemToObject(n, "addrs", a ? a : cJSON_CreateArray());
    return n;
}

static int has_node(const cJSON *nodes, const char *id)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes)
    {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(n, "id");
        if (cJSON_IsString(i) && !strcmp(i->valuestring, id)) return 1;
    }
    return 0;
}

static void add_link(cJSON *links, const char *self, const char *id, const cJSON *p)
{
    static const char *const keys[] = {"msgs_in",  "msgs_out",     "bytes_in",
                                       "bytes_out", "queued_bytes", NULL};
    cJSON *l = cJSON_CreateObject();
    if (!l) return;
    cJSON_AddStringToObject(l, "a", self);
    cJSON_AddStringToObject(l, "b", id);
    cJSON_AddBoolToObject(l, "up", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "up")));
    cJSON_AddBoolToObject(l, "tls", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "tls")));
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
        cJSON_AddNumberToObject(l, keys[i], cJSON_IsNumber(v) ? v->valuedouble : 0);
    }
    cJSON_AddItemToArray(links, l);
}

struct gacc {
    cJSON *arr;
    int n;
};

static void group_cb(const char *group, const cJSON *members, void *ud)
{
    struct gacc *g = ud;
    if (g->n++ >= MESHVIEW_MAX_GROUPS) return;
    cJSON *o = cJSON_CreateObject();
    cJSON *mem = cJSON_CreateArray();
    if (!o || !mem) {
        cJSON_Delete(o);
        cJSON_Delete(mem);
        return;
    }
    cJSON_AddStringToObject(o, "name", group);
    cJSON_AddNumberToObject(o, "size", cJSON_GetArraySize(members));
    int k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        if (k++ >= MESHVIEW_MAX_MEMBERS) break;
        if (cJSON_IsString(m)) cJSON_AddItemToArray(mem, cJSON_CreateString(m->valuestring));
    }
    cJSON_AddItemToObject(o, "members", mem);
    cJSON_AddItemToArray(g->arr, o);
}

static double monitor_timeout(aemp_node *node)
{
    const cJSON *cfg = aemp_node_config(node);
    const cJSON *mt = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "monitor_timeout") : NULL;
    if (mt && cJSON_IsNumber(mt)) return mt->valuedouble;
    if (mt && cJSON_IsString(mt)) return atof(mt->valuestring);
    return 30;
}

cJSON *meshview_json(aemp_node *node, struct metrics *m)
{
    cJSON *st = aemp_stats(node);
    cJSON *o = cJSON_CreateObject();
    cJSON *nodes = cJSON_CreateArray(), *links = cJSON_CreateArray();
    cJSON *groups = cJSON_CreateArray(), *downs = cJSON_CreateArray();
    if (!st || !o || !nodes || !links || !groups || !downs) {
        cJSON_Delete(st), cJSON_Delete(o), cJSON_Delete(nodes);
        cJSON_Delete(links), cJSON_Delete(groups), cJSON_Delete(downs);
        return NULL;
    }
    const char *self = aemp_node_id(node);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    cJSON_AddStringToObject(o, "self", self);
    cJSON_AddNumberToObject(o, "time", (double)tv.tv_sec + tv.tv_usec / 1e6);
    cJSON_AddNumberToObject(o, "monitor_timeout", monitor_timeout(node));
    cJSON_AddItemToArray(nodes, node_entry(node, self, 1, 1));
    int anon = 0, count = 1;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(st, "peers"))
    {
        if (!p->string) continue;
        if (is_anon(p->string)) {
            anon++;
            continue;
        }
        int up = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "up"));
        if (count >= MESHVIEW_MAX_NODES) break;
        cJSON *n = node_entry(node, p->string, up, 0);
        if (!n) continue;
        cJSON_AddBoolToObject(n, "seed", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "seed")));
        cJSON_AddItemToArray(nodes, n);
        count++;
        if (up || cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "msgs_in")) > 0 ||
            metrics_recently_down(m, p->string))
            add_link(links, self, p->string, p);
    }
    /* nodes gone from the transport's records that went down lately */
    metrics_recent_downs(m, downs);
    const cJSON *d;
    cJSON_ArrayForEach(d, downs)
    {
        if (count >= MESHVIEW_MAX_NODES || has_node(nodes, d->valuestring)) continue;
        cJSON_AddItemToArray(nodes, node_entry(node, d->valuestring, 0, 0));
        count++;
    }
    cJSON_Delete(downs);
    struct gacc g = {groups, 0};
    global_groups_each(node, group_cb, &g);
    cJSON_AddItemToObject(o, "nodes", nodes);
    cJSON_AddNumberToObject(o, "anonymous", anon);
    cJSON_AddItemToObject(o, "links", links);
    cJSON_AddItemToObject(o, "groups", groups);
    cJSON_Delete(st);
    return o;
}

int meshview_ready(aemp_node *node, char *why, size_t len)
{
    const cJSON *cfg = aemp_node_config(node);
    if (!cfg) {
        snprintf(why, len, "not configured");
        return 0;
    }
    const cJSON *binds = cJSON_GetObjectItemCaseSensitive(cfg, "binds");
    cJSON *listen = aemp_listen_addrs(node);
    int listening = cJSON_GetArraySize(listen) > 0;
    if (cJSON_GetArraySize(binds) > 0 && !listening) {
        cJSON_Delete(listen);
        snprintf(why, len, "not listening on its binds");
        return 0;
    }
    cJSON *up = aemp_up_nodes(node);
    int contact = 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, up)
        if (cJSON_IsString(u) && !is_anon(u->valuestring)) contact = 1;
    cJSON_Delete(up);
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(cfg, "seeds");
    if (!contact && cJSON_GetArraySize(seeds) == 0) contact = 1;
    /* a seed node is in contact with the network by being there */
    const cJSON *s, *l;
    cJSON_ArrayForEach(s, seeds)
        cJSON_ArrayForEach(l, listen)
            if (cJSON_IsString(s) && cJSON_IsString(l) && !strcmp(s->valuestring, l->valuestring))
                contact = 1;
    cJSON_Delete(listen);
    if (!contact) {
        snprintf(why, len, "no contact with a seed or another node yet");
        return 0;
    }
    return 1;
}
