/* config_check.c - what values the configuration keys may hold (see
 * config_check.h): checked where values come in (the file, configure
 * arguments, the config subcommands), so that a wrong type is reported
 * with its key instead of being used as something else. */
#include "config_check.h"

#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a known key's value must look. This table is the one list of known
 * keys and their types: config_key_kind() reads it too, so the tool reads
 * a typed value the way the checks and the library expect it. */
enum shape {
    S_STRING,   /* a string */
    S_NODEID,   /* a non-empty string of node-ID characters */
    S_CERT,     /* a string, null or false (none) */
    S_PARENT,   /* a profile name or null */
    S_ADDRS,    /* a list of address strings (binds, seeds) */
    S_FRAMINGS, /* a list of framing names (framing_known) */
    S_AUTHS,    /* a list of auth method names (auth_known) */
    S_SERVICES, /* a list of "NAME" or ["NAME", ARGS...] */
    S_SECONDS,  /* a number > 0 (or such a number as a string, as Perl writes it) */
    S_SIZE,     /* a number >= 0, or as a string */
    S_BOOL,     /* true/false, or a number or string as Perl reads it */
    S_LEVEL,    /* a whole number 0..9, or such a number as a string */
};

static const struct {
    const char *key;
    enum shape shape;
    const char *what; /* what it is, for messages */
} known[] = {
    {"nodeid", S_NODEID, "the node ID"},
    {"secret", S_STRING, "the shared secret"},
    {"cert", S_CERT, "the key and certificates in PEM"},
    {"parent", S_PARENT, "a profile name"},
    {"binds", S_ADDRS, "the listen addresses"},
    {"seeds", S_ADDRS, "the seed addresses"},
    {"http", S_ADDRS, "the monitoring HTTP addresses"},
    {"services", S_SERVICES, "the services to start"},
    {"framing_format", S_FRAMINGS, "the framings offered"},
    {"auth_offer", S_AUTHS, "the authentication methods sent"},
    {"auth_accept", S_AUTHS, "the authentication methods accepted"},
    {"monitor_timeout", S_SECONDS, "seconds"},
    {"connect_interval", S_SECONDS, "seconds"},
    {"max_message_size", S_SIZE, "bytes"},
    {"autocork", S_BOOL, "a boolean"},
    {"nodelay", S_BOOL, "a boolean"},
    {"autorestart", S_BOOL, "a boolean"},
    {"allow_restart", S_BOOL, "a boolean"},
    {"heartbeat", S_SECONDS, "seconds"},
    {"loglevel", S_LEVEL, "a log level"},
};

#define N_KNOWN (sizeof known / sizeof known[0])

static int known_index(const char *key)
{
    for (size_t k = 0; k < N_KNOWN; k++)
        if (!strcmp(known[k].key, key)) return (int)k;
    return -1;
}

enum config_kind config_key_kind(const char *key)
{
    int k = known_index(key);
    if (k < 0) return CONFIG_ANY;
    switch (known[k].shape) {
    case S_STRING:
    case S_NODEID:
    case S_CERT:
    case S_PARENT:
        return CONFIG_STRING;
    case S_ADDRS:
    case S_FRAMINGS:
    case S_AUTHS:
    case S_SERVICES:
        return CONFIG_LIST;
    case S_SECONDS:
    case S_SIZE:
    case S_LEVEL:
        return CONFIG_NUMBER;
    case S_BOOL:
        return CONFIG_BOOL;
    }
    return CONFIG_ANY;
}

const char *config_key_at(size_t i)
{
    return i < N_KNOWN ? known[i].key : NULL;
}

const char *config_key_what(const char *key)
{
    int k = known_index(key);
    return k < 0 ? NULL : known[k].what;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "an object";
    return "something else";
}

/* The framings 1.30 nodes know: AnyEvent::Handle's read/write types that
 * need no argument, and a Perl package of the user's ("My::Format",
 * AnyEvent::Handle loads it). Only "json" is read here. */
static const char *const framings[] = {"json", "storable", "cbor", NULL};
#define FRAMING_READ_HERE "json"

static int framing_known(const char *name)
{
    for (const char *const *f = framings; *f; f++)
        if (!strcmp(*f, name)) return 1;
    return strstr(name, "::") != NULL;
}

/* The auth methods of 1.30's handshake (all of them known here). */
static const char *const auths[] = {"tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext",
                                    NULL};

static int auth_known(const char *name)
{
    for (const char *const *a = auths; *a; a++)
        if (!strcmp(*a, name)) return 1;
    return 0;
}

/* A decimal port number 0..65535 in text; -1 when it is not one. */
static long port_number(const char *p)
{
    if (!*p || strspn(p, "0123456789") != strlen(p)) return -1;
    if (strlen(p) > 5) return -2;
    long n = strtol(p, NULL, 10);
    return n <= 65535 ? n : -2;
}

int config_check_addr(const char *key, const char *addr, char *err, size_t errlen)
{
    int http = !strcmp(key, "http"); /* like binds, but the port is needed */
    int bind = http || !strcmp(key, "binds");
    char host[512];
    const char *port = NULL, *colon;
    if (!*addr) {
        snprintf(err, errlen, "%s: an empty address; write host:port", key);
        return AEMP_ECONFIG;
    }
    for (const char *s = addr; *s; s++)
        if ((unsigned char)*s <= ' ') {
            snprintf(err, errlen, "%s: \"%s\" has a space or control character", key, addr);
            return AEMP_ECONFIG;
        }
    if (*addr == '[') {
        const char *end = strchr(addr, ']');
        if (!end || (end[1] && end[1] != ':') || end == addr + 1) {
            snprintf(err, errlen, "%s: \"%s\" is not [ipv6-address]:port", key, addr);
            return AEMP_ECONFIG;
        }
        snprintf(host, sizeof host, "%.*s", (int)(end - addr - 1), addr + 1);
        if (end[1]) port = end + 2;
    } else if (strspn(addr, "0123456789") == strlen(addr)) {
        snprintf(host, sizeof host, "(this host)");
        port = addr;
    } else if ((colon = strrchr(addr, ':')) && strchr(addr, ':') == colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        port = colon + 1;
    } else {
        snprintf(host, sizeof host, "%s", addr); /* default port (or a bare IPv6 address) */
    }
    if (!*host) {
        snprintf(err, errlen, "%s: \"%s\" has no host before the ':'", key, addr);
        return AEMP_ECONFIG;
    }
    if (!bind && !strcmp(host, "*")) {
        snprintf(err, errlen,
                 "seeds: \"%s\": a seed needs a host name or address to connect to, not *", addr);
        return AEMP_ECONFIG;
    }
    if (http && (!port || !*port) && strcmp(host, "(this host)")) {
        snprintf(err, errlen, "http: \"%s\" has no port; write host:port (e.g. 127.0.0.1:9464)",
                 addr);
        return AEMP_ECONFIG;
    }
    if (!port) return 0;
    if (bind && (!strcmp(port, "*") || !*port)) return 0;
    long n = port_number(port);
    if (n < 0 || (n == 0 && !bind)) {
        snprintf(err, errlen,
                 "%s: \"%s\": the port %s%s%s is %s; a port is a number from 1 to "
                 "65535%s",
                 key, addr, *port ? "'" : "", *port ? port : "(empty)", *port ? "'" : "",
                 n == -1 && *port ? "not a number" : "out of range",
                 bind ? " (or 0 or * for any free port)" : "");
        return AEMP_ECONFIG;
    }
    return 0;
}

/* The value of a number, or of a string holding nothing but one, in *d:
 * 1; 0 for anything else. */
static int as_number(const cJSON *v, double *d)
{
    if (cJSON_IsNumber(v)) {
        *d = v->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(v)) return 0;
    char *end = NULL;
    *d = strtod(v->valuestring, &end);
    return *v->valuestring && !*end;
}

/* A number > min_excl (or 0 when allow_zero), or a string holding one. */
static int number_ok(const cJSON *v, double min_excl, int allow_zero)
{
    double d;
    return as_number(v, &d) && (d > min_excl || (allow_zero && d == 0));
}

/* A whole number 0..9, or a string holding one (as lib/mesh/reload.c reads it). */
static int level_ok(const cJSON *v)
{
    double d;
    return as_number(v, &d) && d >= 0 && d <= 9 && d == (int)d;
}

static int bad(char *err, size_t errlen, const char *key, const char *want, const cJSON *v)
{
    snprintf(err, errlen, "\"%s\" must be %s, not %s", key, want, type_name(v));
    return AEMP_ECONFIG;
}

static int check_list(const char *key, enum shape shape, const char *what, const cJSON *v,
                      char *err, size_t errlen)
{
    if (!cJSON_IsArray(v)) {
        if (cJSON_IsString(v)) {
            char *j = cJSON_PrintUnformatted(v);
            snprintf(err, errlen, "\"%s\" must be a list (%s), like [%s], not a string", key, what,
                     j ? j : "...");
            cJSON_free(j);
            return AEMP_ECONFIG;
        }
        char want[128];
        snprintf(want, sizeof want, "a list (%s)", what);
        return bad(err, errlen, key, want, v);
    }
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, v)
    {
        const cJSON *name = shape == S_SERVICES && cJSON_IsArray(e) ? e->child : e;
        if (!cJSON_IsString(name) || !*name->valuestring) {
            snprintf(err, errlen, "\"%s\": element %d must be %s, not %s", key, i + 1,
                     shape == S_SERVICES ? "a service name or [NAME, ARGS...]"
                                         : "a non-empty string",
                     cJSON_IsString(name) ? "empty" : type_name(name));
            return AEMP_ECONFIG;
        }
        if (shape == S_ADDRS && config_check_addr(key, e->valuestring, err, errlen))
            return AEMP_ECONFIG;
        if (shape == S_FRAMINGS && !framing_known(e->valuestring)) {
            snprintf(err, errlen,
                     "\"%s\": \"%s\" is not a framing; this node reads json, 1.30 nodes also "
                     "storable, cbor and Perl::Package formats",
                     key, e->valuestring);
            return AEMP_ECONFIG;
        }
        if (shape == S_AUTHS && !auth_known(e->valuestring)) {
            snprintf(err, errlen,
                     "\"%s\": \"%s\" is not an auth method; the methods are tls_md6_64_256, "
                     "hmac_md6_64_256, tls_anon and cleartext",
                     key, e->valuestring);
            return AEMP_ECONFIG;
        }
        i++;
    }
    return 0;
}

int config_check_value(const char *key, const cJSON *v, char *err, size_t errlen)
{
    int k = known_index(key);
    if (k < 0) return 0;
    const char *what = known[k].what;
    char want[160];
    switch (known[k].shape) {
    case S_STRING:
        if (!cJSON_IsString(v)) {
            snprintf(want, sizeof want, "a string (%s)", what);
            return bad(err, errlen, key, want, v);
        }
        return 0;
    case S_NODEID:
        if (!cJSON_IsString(v) || !*v->valuestring) {
            if (cJSON_IsString(v)) {
                snprintf(err, errlen, "\"nodeid\" must not be empty");
                return AEMP_ECONFIG;
            }
            return bad(err, errlen, key, "a string (the node ID)", v);
        }
        for (const char *s = v->valuestring; *s; s++) {
            if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                strchr("_-.:/", *s))
                continue;
            snprintf(err, errlen,
                     "node ID \"%s\" has the character '%c'; use only letters, digits and "
                     "_ - . : /",
                     v->valuestring, *s);
            return AEMP_ECONFIG;
        }
        return 0;
    case S_CERT:
        if (!cJSON_IsString(v) && !cJSON_IsNull(v) && !cJSON_IsFalse(v))
            return bad(err, errlen, key, "a string (the key and certificates in PEM) or null", v);
        return 0;
    case S_PARENT:
        if (!cJSON_IsString(v) && !cJSON_IsNull(v))
            return bad(err, errlen, key, "a profile name (a string)", v);
        return 0;
    case S_ADDRS:
    case S_FRAMINGS:
    case S_AUTHS:
    case S_SERVICES:
        return check_list(key, known[k].shape, what, v, err, errlen);
    case S_SECONDS:
        if (!number_ok(v, 0, 0)) {
            if (cJSON_IsString(v))
                snprintf(err, errlen, "\"%s\" must be a number of seconds above 0, not \"%s\"", key,
                         v->valuestring);
            else if (cJSON_IsNumber(v))
                snprintf(err, errlen, "\"%s\" must be a number of seconds above 0, not %g", key,
                         v->valuedouble);
            else
                bad(err, errlen, key, "a number of seconds", v);
            return AEMP_ECONFIG;
        }
        return 0;
    case S_SIZE:
        if (!number_ok(v, 0, 1)) return bad(err, errlen, key, "a number of bytes", v);
        return 0;
    case S_BOOL:
        if (!cJSON_IsBool(v) && !cJSON_IsNumber(v) && !cJSON_IsString(v))
            return bad(err, errlen, key, "true or false", v);
        return 0;
    case S_LEVEL:
        if (!level_ok(v)) {
            char *t = cJSON_IsString(v) || cJSON_IsNumber(v) ? cJSON_PrintUnformatted(v) : NULL;
            if (t)
                snprintf(err, errlen,
                         "\"%s\" must be a whole number from 0 (nothing) to 9 (trace), not %s", key,
                         t);
            else
                bad(err, errlen, key, "a log level 0 to 9", v);
            cJSON_free(t);
            return AEMP_ECONFIG;
        }
        return 0;
    }
    return 0;
}

/* Prefix err with "WHERE: " when a place is named. */
static void prefix(char *err, size_t errlen, const char *where)
{
    if (!where || !*where) return;
    char *copy = strdup(err);
    if (copy) snprintf(err, errlen, "%s: %s", where, copy);
    free(copy);
}

int config_check_layer(const cJSON *obj, const char *where, char *err, size_t errlen)
{
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "must be an object {\"KEY\": VALUE, ...}, not %s", type_name(obj));
        prefix(err, errlen, where);
        return AEMP_ECONFIG;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (config_check_value(it->string, it, err, errlen)) {
            prefix(err, errlen, where);
            return AEMP_ECONFIG;
        }
    }
    return 0;
}

/* Report one problem: to each() (and go on), or stop with it in err. */
static int problem(void (*each)(const char *, void *), void *ud, const char *text, int *count)
{
    (*count)++;
    if (each) each(text, ud);
    return each ? 0 : AEMP_ECONFIG;
}

int config_check_file(const cJSON *file, void (*each)(const char *problem, void *ud), void *ud,
                      char *err, size_t errlen)
{
    int count = 0;
    char buf[1024];
    if (!cJSON_IsObject(file)) {
        snprintf(err, errlen, "the top level must be an object {...}, not %s", type_name(file));
        problem(each, ud, err, &count);
        return AEMP_ECONFIG;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, file)
    {
        if (!strcmp(it->string, "profile") || !strcmp(it->string, "version")) continue;
        if (config_check_value(it->string, it, buf, sizeof buf)) {
            snprintf(err, errlen, "global part: %s", buf);
            if (problem(each, ud, err, &count)) return AEMP_ECONFIG;
        }
    }
    const cJSON *profs = cJSON_GetObjectItemCaseSensitive(file, "profile");
    if (profs && !cJSON_IsObject(profs)) {
        snprintf(err, errlen, "\"profile\" must be an object of profiles {\"NAME\": {...}}, not %s",
                 type_name(profs));
        if (problem(each, ud, err, &count)) return AEMP_ECONFIG;
        profs = NULL;
    }
    cJSON_ArrayForEach(it, profs)
    {
        if (!cJSON_IsObject(it)) {
            snprintf(err, errlen, "profile '%s' must be an object {\"KEY\": VALUE, ...}, not %s",
                     it->string, type_name(it));
            if (problem(each, ud, err, &count)) return AEMP_ECONFIG;
            continue;
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, it)
        {
            if (!config_check_value(kv->string, kv, buf, sizeof buf)) continue;
            snprintf(err, errlen, "profile '%s': %s", it->string, buf);
            if (problem(each, ud, err, &count)) return AEMP_ECONFIG;
        }
    }
    if (count) {
        snprintf(err, errlen, "%d problem%s in the configuration", count, count == 1 ? "" : "s");
        return AEMP_ECONFIG;
    }
    return 0;
}

cJSON *config_framings_read(const cJSON *framing_format, char *err, size_t errlen)
{
    cJSON *out = cJSON_CreateArray();
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const cJSON *f;
    if (!framing_format) { /* not configured: the default */
        cJSON *n = cJSON_CreateString(FRAMING_READ_HERE);
        if (!n || !cJSON_AddItemToArray(out, n)) {
            cJSON_Delete(n);
            cJSON_Delete(out);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        return out;
    }
    cJSON_ArrayForEach(f, framing_format)
    {
        if (!cJSON_IsString(f) || strcmp(f->valuestring, FRAMING_READ_HERE)) continue;
        if (cJSON_GetArraySize(out)) continue; /* once */
        cJSON *n = cJSON_CreateString(f->valuestring);
        if (!n || !cJSON_AddItemToArray(out, n)) {
            cJSON_Delete(n);
            cJSON_Delete(out);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    if (!cJSON_GetArraySize(out)) {
        char *j = framing_format ? cJSON_PrintUnformatted(framing_format) : NULL;
        snprintf(err, errlen,
                 "framing_format %s leaves no framing this node reads: it reads only json "
                 "(add \"json\", or remove the key for the default [\"json\"])",
                 j ? j : "(none)");
        cJSON_free(j);
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
