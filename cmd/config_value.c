/* config_value.c - reading a configuration value typed on the command line
 * (`aemp setX VALUE`, `aemp showconfig NAME KEY VALUE`, `aemp run KEY
 * VALUE`): one reading for all of them, by the kind of the key that
 * lib/config/config_check.c's table of known keys gives, then checked by the same
 * table. */
#include "cmds.h"

#include "aemp.h"
#include "config_check.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

cJSON *cmd_arg_json(const char *arg, char *err, size_t errlen)
{
    if (arg[0] == CMD_JSON_MARK)
        arg++; /* typed element of the JSON-array form */
    else if (arg[0] != '[' && arg[0] != '{' && arg[0] != '"') {
        cJSON *s = cJSON_CreateString(arg);
        if (!s) snprintf(err, errlen, "out of memory");
        return s;
    }
    /* ours keeps big integers and \u0000 exactly; cJSON says where a bad
     * argument goes wrong (and reads what ours refuses: invalid UTF-8) */
    cJSON *v = aemp_json_parse(arg);
    const char *end = NULL;
    if (!v) v = cJSON_ParseWithOpts(arg, &end, 1);
    if (!v)
        snprintf(err, errlen, "invalid JSON argument '%s' (near offset %d)", arg,
                 end ? (int)(end - arg) : 0);
    return v;
}

/* A comma list "a,b" as a JSON array of strings; empty pieces are dropped,
 * so "" is the empty list. */
cJSON *cmd_comma_list(const char *arg)
{
    cJSON *a = cJSON_CreateArray();
    const char *p = arg;
    while (a && *p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n) {
            char *piece = strndup(p, n);
            if (piece) cJSON_AddItemToArray(a, cJSON_CreateString(piece));
            free(piece);
        }
        p += n;
        if (*p == ',') p++;
    }
    return a;
}

int cmd_arg_is_address(const char *key, const char *arg)
{
    if (strcmp(key, "binds") && strcmp(key, "seeds")) return 0;
    return arg[0] == '[' && arg[1] != '"' && arg[1] != ']' && arg[1] != '[' && strchr(arg, ']');
}

static cJSON *parse_bool(const char *arg)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    for (const char *const *y = yes; *y; y++)
        if (!strcasecmp(arg, *y)) return cJSON_CreateTrue();
    for (const char *const *n = no; *n; n++)
        if (!strcasecmp(arg, *n)) return cJSON_CreateFalse();
    return NULL;
}

/* Any finite decimal number: its range is the check's business, which
 * says what the key wants. */
static cJSON *parse_number(const char *arg)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(arg, &end);
    if (!*arg || *end || errno || !isfinite(d)) return NULL;
    return cJSON_CreateNumber(d);
}

/* The value before checking: JSON when typed so, else by the key's kind. */
static cJSON *read_value(const char *key, const char *arg, char *err, size_t errlen)
{
    enum config_kind k = config_key_kind(key);
    const char *what = config_key_what(key);
    char jerr[256];
    cJSON *v;
    if (arg[0] == CMD_JSON_MARK ||
        ((arg[0] == '[' || arg[0] == '{' || arg[0] == '"') && !cmd_arg_is_address(key, arg))) {
        if (!(v = cmd_arg_json(arg, jerr, sizeof jerr))) {
            snprintf(err, errlen, "%s: %s", key, jerr);
            return NULL;
        }
        if (k == CONFIG_LIST && cJSON_IsString(v)) { /* "a" alone: the list ["a"] */
            cJSON *a = cJSON_CreateArray();
            if (!a || !cJSON_AddItemToArray(a, v)) {
                cJSON_Delete(v);
                cJSON_Delete(a);
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            v = a;
        }
        return v;
    }
    switch (k) {
    case CONFIG_LIST:
        v = cmd_comma_list(arg);
        break;
    case CONFIG_NUMBER:
        if (!(v = parse_number(arg))) {
            snprintf(err, errlen, "\"%s\" must be a number (%s), not '%s'", key, what, arg);
            return NULL;
        }
        break;
    case CONFIG_BOOL:
        if (!(v = parse_bool(arg))) {
            snprintf(err, errlen,
                     "\"%s\" must be a boolean (true/false, 1/0, yes/no, on/off), not '%s'", key,
                     arg);
            return NULL;
        }
        break;
    default:
        v = cJSON_CreateString(arg);
        break;
    }
    if (!v) snprintf(err, errlen, "out of memory");
    return v;
}

cJSON *cmd_config_value(const char *key, const char *arg, char *err, size_t errlen)
{
    cJSON *v = read_value(key, arg, err, errlen);
    if (v && config_check_value(key, v, err, errlen)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

int cmd_looks_like_option(const char *arg)
{
    char *end = NULL;
    if (arg[0] != '-' || !arg[1]) return 0;
    (void)strtod(arg, &end);
    return *end != '\0'; /* -5 and -0.5 are numbers */
}
