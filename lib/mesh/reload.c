/* reload.c - aemp_reload(): re-read the configuration of a running node.
 * The seeds, the log level and services that are new take effect at once;
 * a change of any other key is logged as waiting for a restart (listeners,
 * secret and certificate belong to connections that already exist). */
#include "reload.h"

#include "aemp.h"
#include "builtin.h"
#include "config.h"
#include "core.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys a reload applies, or that differ between configurations by nature. */
static const char *const live_keys[] = {"seeds", "services", "loglevel", "nodeid", "parent", NULL};

static int env_level_set(void)
{
    const char *a = getenv("AEMP_WARNLEVEL"), *b = getenv("PERL_ANYEVENT_MP_WARNLEVEL");
    return (a && *a) || (b && *b);
}

/* Set the process's log level from the "loglevel" key of `cfg` (borrowed),
 * unless AEMP_WARNLEVEL or PERL_ANYEVENT_MP_WARNLEVEL is set; nothing when
 * the key is absent; a value that is not 0..9 is ignored with a warning. */
static void apply_loglevel(const cJSON *cfg)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "loglevel");
    if (!v || env_level_set()) return;
    double d = -1;
    char *end = NULL;
    if (cJSON_IsNumber(v)) d = v->valuedouble;
    else if (cJSON_IsString(v) && *v->valuestring) d = strtod(v->valuestring, &end);
    if (d < 0 || d > 9 || d != (int)d || (end && *end)) {
        char *t = cJSON_PrintUnformatted(v);
        aemp_log(5, "loglevel %s ignored: use 0 (nothing) to 9 (trace)", t ? t : "?");
        cJSON_free(t);
        return;
    }
    aemp_log_set_level((int)d);
}

/* How many items of `list` equal `item`, counting up to and including
 * `upto` when it is an item of `list` (NULL: the whole list). */
static int count_equal(const cJSON *list, const cJSON *item, const cJSON *upto)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (cJSON_Compare(e, item, 1)) n++;
        if (e == upto) break;
    }
    return n;
}

static int is_live_key(const char *k)
{
    for (const char *const *l = live_keys; *l; l++)
        if (!strcmp(*l, k)) return 1;
    return 0;
}

/* Log every key other than the live ones whose value changed. */
static void report_restart_keys(const cJSON *old, const cJSON *now)
{
    const cJSON *pair[2] = {old, now};
    for (int side = 0; side < 2; side++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, pair[side])
        {
            if (is_live_key(e->string)) continue;
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(pair[!side], e->string);
            if (side == 1 && o) continue; /* seen from the first side */
            if (o && cJSON_Compare(e, o, 1)) continue;
            aemp_log(5, "reload: \"%s\" changed; it takes effect when the node restarts",
                     e->string);
        }
    }
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(now, "nodeid");
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(old, "nodeid");
    if (cJSON_IsString(want) && cJSON_IsString(have) && strcmp(want->valuestring, have->valuestring) &&
        !(!strcmp(want->valuestring, "anon/") && !strncmp(have->valuestring, "anon/", 5)))
        aemp_log(5, "reload: node ID %s configured; this node stays %s until it restarts",
                 want->valuestring, have->valuestring);
}

/* Start the entries of `now` beyond the instances `running` already has;
 * append each one that started to `running`. The first error is returned. */
static int start_new_services(aemp_node *node, cJSON *running, const cJSON *now, char *err,
                              size_t errlen)
{
    int first = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, now)
    {
        if (count_equal(now, e, e) <= count_equal(running, e, NULL)) continue;
        char *name = cJSON_PrintUnformatted(e);
        char why[512] = "";
        int rc = spawn_start_service_entry(node, e, why, sizeof why);
        if (rc) {
            aemp_log(3, "reload: %s", *why ? why : aemp_strerror(rc));
            if (!first) {
                first = rc;
                snprintf(err, errlen, "%s", *why ? why : aemp_strerror(rc));
            }
        } else {
            aemp_log(6, "reload: started service %s", name ? name : "?");
            cJSON_AddItemToArray(running, cJSON_Duplicate(e, 1));
        }
        cJSON_free(name);
    }
    cJSON_ArrayForEach(e, running)
    if (count_equal(running, e, e) > count_equal(now, e, NULL)) {
        char *name = cJSON_PrintUnformatted(e);
        aemp_log(5, "reload: service %s is no longer configured; it runs until the node restarts",
                 name ? name : "?");
        cJSON_free(name);
    }
    return first;
}

/* Replace key `key` of the node's configuration with a copy of `v`. */
static void cfg_set(aemp_node *node, const char *key, const cJSON *v)
{
    cJSON *dup = v ? cJSON_Duplicate(v, 1) : NULL;
    if (cJSON_GetObjectItemCaseSensitive(node->cfg, key)) {
        if (dup) cJSON_ReplaceItemInObjectCaseSensitive(node->cfg, key, dup);
        else cJSON_DeleteItemFromObjectCaseSensitive(node->cfg, key);
    } else if (dup) {
        cJSON_AddItemToObject(node->cfg, key, dup);
    }
}

static int reload_effective(aemp_node *node, const cJSON *now, char *err, size_t errlen)
{
    const cJSON *cfg = node->cfg;
    report_restart_keys(cfg, now);

    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(now, "loglevel");
    if (lv) apply_loglevel(now);
    else if (cJSON_GetObjectItemCaseSensitive(cfg, "loglevel") && !env_level_set())
        aemp_log_set_level(5);
    cfg_set(node, "loglevel", lv);

    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(now, "seeds");
    if (!cJSON_Compare(seeds, cJSON_GetObjectItemCaseSensitive(cfg, "seeds"), 1)) {
        int rc = transport_set_seeds(node->transport, seeds);
        if (rc) {
            snprintf(err, errlen, "cannot change the seeds: %s", aemp_strerror(rc));
            return rc;
        }
        char *s = cJSON_PrintUnformatted(seeds);
        aemp_log(6, "reload: seeds now %s", s ? s : "[]");
        cJSON_free(s);
        cfg_set(node, "seeds", seeds);
    }

    cJSON *running = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cfg, "services"), 1);
    if (!cJSON_IsArray(running)) {
        cJSON_Delete(running);
        running = cJSON_CreateArray();
    }
    if (!running) return AEMP_ENOMEM;
    int rc = start_new_services(node, running, cJSON_GetObjectItemCaseSensitive(now, "services"),
                                err, errlen);
    cfg_set(node, "services", running);
    cJSON_Delete(running);
    aemp_log(6, "reload: node %s reloaded its configuration (log level %d)", node->id,
             aemp_log_level());
    return rc;
}

int aemp_reload(aemp_node *node, const char *profile, const cJSON *kv, char *err, size_t errlen)
{
    if (!node->cfg) {
        snprintf(err, errlen, "the node is not configured yet: nothing to reload");
        return AEMP_ESTATE;
    }
    cJSON *eff = NULL;
    int rc = config_load_effective(profile, kv, &eff, err, errlen);
    if (rc == 0) rc = reload_effective(node, eff, err, errlen);
    cJSON_Delete(eff);
    return rc;
}

static void configure(aemp_node *node, const cJSON *cfg)
{
    apply_loglevel(cfg);
}

const struct core_builtin reload_builtin = {.name = "loglevel", .configure = configure};
