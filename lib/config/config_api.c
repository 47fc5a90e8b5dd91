/* config_api.c - 1.30's AnyEvent::MP::Config for programs: load the
 * configuration file, find a profile's effective configuration, save. Thin
 * public wrappers around config.c. */
#include "aemp.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

/* `path`, or the default path in *own (caller frees); NULL with *rc and
 * the reason in err when there is none (config_path()). */
static const char *path_or_default(const char *path, char **own, int *rc, char *err,
                                   size_t errlen)
{
    *own = NULL;
    if (path) return path;
    *rc = config_path(own, err, errlen);
    return *own;
}

int aemp_config_load(const char *path, cJSON **out, char *err, size_t errlen)
{
    char *own;
    int rc = 0;
    *out = NULL;
    const char *p = path_or_default(path, &own, &rc, err, errlen);
    if (!p) return rc;
    rc = config_load(p, out, err, errlen);
    free(own);
    return rc;
}

int aemp_config_find_profile(const cJSON *cfg, const char *profile, const cJSON *kv,
                             cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cJSON_IsObject(cfg) || (kv && !cJSON_IsObject(kv))) {
        snprintf(err, errlen, "the configuration and the key/values must be JSON objects");
        return AEMP_EINVAL;
    }
    return config_effective(cfg, profile, kv, out, err, errlen);
}

int aemp_config_save(const char *path, const cJSON *cfg, char *err, size_t errlen)
{
    if (!cJSON_IsObject(cfg)) {
        snprintf(err, errlen, "the configuration must be a JSON object");
        return AEMP_EINVAL;
    }
    char *own;
    int rc = 0;
    const char *p = path_or_default(path, &own, &rc, err, errlen);
    if (!p) return rc;
    rc = config_save(p, cfg, err, errlen);
    free(own);
    return rc;
}
