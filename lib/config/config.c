/* config.c - the configuration file shared with the Perl aemp tool: load,
 * layer profiles over their parents, save atomically (see config.h and
 * PROTOCOL.md section 8). */
#include "config.h"
#include "relaxed.h"

#include "aemp.h"
#include "aemp_build.h"
#include "config_check.h"
#include "framing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Longest parent chain we follow; real chains are a few deep, and a longer
 * one can only come from a cycle the name check would also catch. */
#define CONFIG_MAX_CHAIN 64

/* ------------------------------------------------------------ defaults */

cJSON *config_defaults(void)
{
    static const char *const offer[] = {"tls_md6_64_256", "hmac_md6_64_256"};
    static const char *const accept[] = {"tls_md6_64_256", "hmac_md6_64_256", "tls_anon",
                                         "cleartext"};
    static const char *const framing[] = {"json"};
    static const char *const binds[] = {"*"};
    cJSON *d = cJSON_CreateObject();
    if (!d) return NULL;
    cJSON_AddNumberToObject(d, "monitor_timeout", 30);
    cJSON_AddNumberToObject(d, "connect_interval", 2);
    cJSON_AddItemToObject(d, "binds", cJSON_CreateStringArray(binds, 1));
    cJSON_AddItemToObject(d, "seeds", cJSON_CreateArray());
    cJSON_AddItemToObject(d, "services", cJSON_CreateArray());
    cJSON_AddItemToObject(d, "framing_format", cJSON_CreateStringArray(framing, 1));
    cJSON_AddItemToObject(d, "auth_offer", cJSON_CreateStringArray(offer, 2));
    cJSON_AddItemToObject(d, "auth_accept", cJSON_CreateStringArray(accept, 4));
    cJSON_AddFalseToObject(d, "autocork");
    cJSON_AddTrueToObject(d, "nodelay");
    return d;
}

/* ------------------------------------------------------------- loading */

/* Read a whole file into a new NUL-terminated string (caller frees); NULL
 * with errno set on failure. */
static char *slurp(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    if (failed) {
        free(buf);
        errno = saved ? saved : EIO;
        return NULL;
    }
    buf[len] = 0;
    if (lenp) *lenp = len;
    return buf;
}

/* 1-based line number of offset `off` in `text`, for parse errors. */
static int line_of(const char *text, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && text[i]; i++)
        if (text[i] == '\n') line++;
    return line;
}

int config_load(const char *path, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) {
        if (errno == ENOENT) {
            *out = cJSON_CreateObject();
            if (!*out) return AEMP_ENOMEM;
            cJSON_AddNumberToObject(*out, "version", 1);
            return 0;
        }
        snprintf(err, errlen, "%s: cannot read the configuration file: %s", path, strerror(errno));
        return AEMP_ECONFIG;
    }
    /* 1.30 reads the file in JSON::XS's relaxed mode: # comments, trailing
     * commas (relaxed.h); lines stay where they were for the message */
    size_t slen = 0;
    char *strict = config_relaxed_to_strict(text, len, &slen);
    free(text);
    if (!strict) return AEMP_ENOMEM;
    /* Our reader keeps what the file says exactly (integers past 2^53,
     * \u0000), so a save writes it back unchanged; cJSON finds where a bad
     * file goes wrong, and reads what ours refuses (invalid UTF-8). */
    const char *end = NULL;
    cJSON *cfg = framing_parse(strict, slen);
    if (!cfg) cfg = cJSON_ParseWithOpts(strict, &end, 1);
    if (!cfg) {
        size_t off = end ? (size_t)(end - strict) : slen;
        snprintf(err, errlen,
                 "%s: line %d: not valid JSON; fix or remove the file (it was left untouched)",
                 path, line_of(strict, off));
        free(strict);
        return AEMP_ECONFIG;
    }
    free(strict);
    if (!cJSON_IsObject(cfg)) {
        snprintf(err, errlen,
                 "%s: line 1: the top level must be a JSON object {...}; fix or remove the file",
                 path);
        cJSON_Delete(cfg);
        return AEMP_ECONFIG;
    }
    *out = cfg;
    return 0;
}

/* ---------------------------------------------------- shipped profiles */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of the running program (from /proc/self/exe) into buf;
 * 0, or -1 when unknown. */
static int exe_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0 || (size_t)n >= len - 1) return -1;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash) return -1;
    *slash = 0;
    return 0;
}

/* A program that runs from a meson build tree (DIR or up to three folders
 * above it holds meson-info/meson-info.json) uses the profiles of the source
 * tree that build tree names: nothing of the build's paths is compiled in.
 * Writes the folder to `out`; 0 when it exists, -1 otherwise. */
static int build_tree_profiles(const char *dir, char *out, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (int up = 0; up < 4; up++) {
        char info[4200];
        snprintf(info, sizeof info, "%s/meson-info/meson-info.json", path);
        char *text = slurp(info, NULL);
        if (text) {
            cJSON *j = cJSON_Parse(text);
            free(text);
            const cJSON *src =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "directories"),
                                                 "source");
            int ok = cJSON_IsString(src) &&
                     (size_t)snprintf(out, len, "%s/profiles", src->valuestring) < len &&
                     is_dir(out);
            cJSON_Delete(j);
            return ok ? 0 : -1;
        }
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) return -1;
        *slash = 0;
    }
    return -1;
}

/* Where the shipped profiles are: $AEMP_PROFILE_DIR; the installed data
 * directory; the same place relative to the program (an installation that
 * was moved or staged with DESTDIR); the source tree, but only for programs
 * that run from the build tree. NULL (with one warning per process) when
 * none exists. */
static const char *shipped_dir(void)
{
    static char found[4096];
    static int warned;
    const char *env = getenv("AEMP_PROFILE_DIR");
    if (env && *env) {
        if (is_dir(env)) return env;
        if (!warned++)
            aemp_log(5, "AEMP_PROFILE_DIR=%s is not a directory: the shipped profiles (aemp, "
                        "seed) are not used",
                     env);
        return NULL;
    }
    if (is_dir(AEMP_PROFILE_DIR_INSTALLED)) return AEMP_PROFILE_DIR_INSTALLED;
    char exe[3072]; /* room for the suffix in found[] */
    if (exe_dir(exe, sizeof exe) == 0) {
        snprintf(found, sizeof found, "%s/%s", exe, AEMP_PROFILE_DIR_FROM_BIN);
        if (is_dir(found)) return found;
        if (build_tree_profiles(exe, found, sizeof found) == 0) return found;
    }
    if (!warned++)
        aemp_log(5, "the shipped profiles (aemp, seed) are not installed in %s: profile \"aemp\" "
                    "of the protocol subcommands runs as node ID \"aemp\" unless your "
                    "configuration says otherwise; reinstall aemp or set AEMP_PROFILE_DIR",
                 AEMP_PROFILE_DIR_INSTALLED);
    return NULL;
}

/* Add DIR/ENT (a *.json file) to `all` under its base name; files that do
 * not parse as objects are skipped with a warning, never fatal. */
static void add_shipped(cJSON *all, const char *dir, const char *ent)
{
    size_t n = strlen(ent);
    if (n <= 5 || strcmp(ent + n - 5, ".json")) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, ent);
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) return;
    char *strict = config_relaxed_to_strict(text, len, NULL);
    free(text);
    cJSON *p = strict ? cJSON_Parse(strict) : NULL;
    free(strict);
    if (!cJSON_IsObject(p)) {
        aemp_log(5, "shipped profile %s is not a JSON object, ignored", path);
        cJSON_Delete(p);
        return;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), ent);
    cJSON_DeleteItemFromObjectCaseSensitive(all, name);
    cJSON_AddItemToObject(all, name, p);
}

cJSON *config_shipped_profiles(void)
{
    cJSON *all = cJSON_CreateObject();
    if (!all) return NULL;
    const char *dir = shipped_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) return all;
    struct dirent *e;
    while ((e = readdir(d)))
        add_shipped(all, dir, e->d_name);
    closedir(d);
    return all;
}

/* ------------------------------------------------------------ layering */

/* Copy every key of `src` (borrowed) into `dst`, replacing what is there,
 * except the keys in `skip` (NULL-terminated list). */
static void overlay(cJSON *dst, const cJSON *src, const char *const *skip)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src)
    {
        int skipped = 0;
        for (const char *const *s = skip; s && *s; s++)
            if (!strcmp(it->string, *s)) skipped = 1;
        if (skipped) continue;
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (!copy) continue;
        if (cJSON_GetObjectItemCaseSensitive(dst, it->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, copy);
        else
            cJSON_AddItemToObject(dst, it->string, copy);
    }
}

/* Profile `name`'s own values: the shipped one with the user's over it.
 * New object (caller owns), or NULL when neither exists. */
static cJSON *own_profile(const cJSON *file, const cJSON *shipped, const char *name)
{
    const cJSON *user =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(file, "profile"), name);
    const cJSON *ship = cJSON_GetObjectItemCaseSensitive(shipped, name);
    if (!cJSON_IsObject(user)) user = NULL;
    if (!cJSON_IsObject(ship)) ship = NULL;
    if (!user && !ship) return NULL;
    cJSON *p = cJSON_CreateObject();
    if (ship) overlay(p, ship, NULL);
    if (user) overlay(p, user, NULL);
    return p;
}

/* The layers that make up profile `name`'s own values, each checked before
 * it is used: the user's (file) and the shipped one. */
static int check_own(const cJSON *file, const cJSON *shipped, const char *name, char *err,
                     size_t errlen)
{
    char where[300];
    const cJSON *user =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(file, "profile"), name);
    const cJSON *ship = cJSON_GetObjectItemCaseSensitive(shipped, name);
    snprintf(where, sizeof where, "profile '%s'", name);
    if (user && config_check_layer(user, where, err, errlen)) return AEMP_ECONFIG;
    snprintf(where, sizeof where, "shipped profile '%s'", name);
    if (ship && config_check_layer(ship, where, err, errlen)) return AEMP_ECONFIG;
    return 0;
}

/* "a -> b -> a": the chain from index `from` plus the repeated name. */
static void cycle_text(char *buf, size_t len, const char *const *names, int n, int from,
                       const char *again)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = from; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s -> ", names[i]);
    if (off < len) snprintf(buf + off, len - off, "%s", again);
}

/* Collect `name` and its ancestors into chain[] (own values, owned) and
 * names[] (borrowed from `file`/`shipped`, or `name`); *n gets the count. */
static int collect_chain(const cJSON *file, const cJSON *shipped, const char *name, cJSON **chain,
                         const char **names, int *n, char *err, size_t errlen)
{
    *n = 0;
    if (check_own(file, shipped, name, err, errlen)) return AEMP_ECONFIG;
    chain[0] = own_profile(file, shipped, name);
    names[0] = name;
    *n = 1;
    for (;;) {
        const cJSON *par = cJSON_GetObjectItemCaseSensitive(chain[*n - 1], "parent");
        if (!par || cJSON_IsNull(par)) return 0;
        if (!cJSON_IsString(par)) {
            snprintf(err, errlen, "profile '%s': \"parent\" must be a profile name (a string)",
                     names[*n - 1]);
            return AEMP_ECONFIG;
        }
        for (int i = 0; i < *n; i++) {
            if (strcmp(names[i], par->valuestring)) continue;
            char cyc[512];
            cycle_text(cyc, sizeof cyc, names, *n, i, par->valuestring);
            snprintf(err, errlen, "profile parent cycle: %s", cyc);
            return AEMP_ECONFIG;
        }
        if (*n == CONFIG_MAX_CHAIN) {
            snprintf(err, errlen, "profile '%s': parent chain longer than %d", name,
                     CONFIG_MAX_CHAIN);
            return AEMP_ECONFIG;
        }
        if (check_own(file, shipped, par->valuestring, err, errlen)) return AEMP_ECONFIG;
        cJSON *p = own_profile(file, shipped, par->valuestring);
        if (!p) {
            snprintf(err, errlen, "profile '%s': unknown parent profile '%s'", names[*n - 1],
                     par->valuestring);
            return AEMP_ECONFIG;
        }
        chain[*n] = p;
        names[*n] = par->valuestring;
        (*n)++;
    }
}

/* The file's global part (and its "profile" key) and the configure
 * arguments, checked before they are layered. */
static int check_global(const cJSON *file, const cJSON *kv, char *err, size_t errlen)
{
    const cJSON *profs = cJSON_GetObjectItemCaseSensitive(file, "profile");
    if (profs && !cJSON_IsObject(profs)) {
        snprintf(err, errlen, "\"profile\" must be an object of profiles {\"NAME\": {...}}, not %s",
                 cJSON_IsArray(profs) ? "a list" : "a single value");
        return AEMP_ECONFIG;
    }
    /* ("profile" and "version" are no configuration keys: they pass) */
    if (cJSON_IsObject(file) && config_check_layer(file, "global part", err, errlen))
        return AEMP_ECONFIG;
    if (kv && config_check_layer(kv, "configure arguments", err, errlen)) return AEMP_ECONFIG;
    return 0;
}

int config_effective(const cJSON *file, const char *profile, const cJSON *kv, cJSON **out,
                     char *err, size_t errlen)
{
    static const char *const not_global[] = {"profile", "version", NULL};
    static const char *const not_layer[] = {"parent", NULL};
    char host[256];
    *out = NULL;
    if (!profile) {
        config_nodename(host, sizeof host);
        profile = host;
    }
    if (check_global(file, kv, err, errlen)) return AEMP_ECONFIG;
    cJSON *shipped = config_shipped_profiles();
    cJSON *chain[CONFIG_MAX_CHAIN + 1] = {0};
    const char *names[CONFIG_MAX_CHAIN + 1];
    int n = 0;
    int rc = collect_chain(file, shipped, profile, chain, names, &n, err, errlen);
    cJSON *res = NULL;
    if (rc == 0) {
        res = config_defaults();
        if (kv) overlay(res, kv, not_global);
        if (file) overlay(res, file, not_global);
        for (int i = n - 1; i >= 0; i--)
            if (chain[i]) overlay(res, chain[i], not_layer);
        if (!cJSON_GetObjectItemCaseSensitive(res, "nodeid"))
            cJSON_AddStringToObject(res, "nodeid", profile);
        *out = res;
    }
    for (int i = 0; i < n; i++)
        cJSON_Delete(chain[i]);
    cJSON_Delete(shipped);
    return rc;
}

/* -------------------------------------------------------------- saving */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_indent(struct sbuf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        sb_add(b, "   ", 3);
}

/* The item as compact JSON (scalars, and keys through a string item), by
 * our writer: the digits of a big integer, U+0000 as \u0000. */
static void sb_scalar(struct sbuf *b, const cJSON *it)
{
    char *s = framing_encode(it, NULL);
    if (!s) {
        b->oom = 1;
        return;
    }
    sb_str(b, s);
    free(s);
}

/* JSON::XS ->pretty style: 3-space indent, `"key" : value`, empty
 * containers as [] and {}; the style the Perl tool writes. */
static void sb_pretty(struct sbuf *b, const cJSON *it, int depth)
{
    int obj = cJSON_IsObject(it);
    if (!obj && !cJSON_IsArray(it)) {
        sb_scalar(b, it);
        return;
    }
    if (!it->child) {
        sb_str(b, obj ? "{}" : "[]");
        return;
    }
    sb_str(b, obj ? "{\n" : "[\n");
    for (const cJSON *c = it->child; c; c = c->next) {
        sb_indent(b, depth + 1);
        if (obj) {
            cJSON *key = cJSON_CreateString(c->string);
            if (!key)
                b->oom = 1;
            else
                sb_scalar(b, key);
            cJSON_Delete(key);
            sb_str(b, " : ");
        }
        sb_pretty(b, c, depth + 1);
        sb_str(b, c->next ? ",\n" : "\n");
    }
    sb_indent(b, depth);
    sb_str(b, obj ? "}" : "]");
}

/* Pretty JSON text of `v` followed by `tail`; new string, caller frees. */
static char *pretty(const cJSON *v, const char *tail)
{
    struct sbuf b = {0};
    sb_pretty(&b, v, 0);
    sb_str(&b, tail);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *config_pretty(const cJSON *v)
{
    return pretty(v, "");
}

/* Write `text` to a new file `tmp` with mode 0600 (it holds secrets). */
static int write_new(const char *tmp, const char *text, char *err, size_t errlen)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return AEMP_EIO;
    }
    size_t len = strlen(text), off = 0;
    int ok = fchmod(fd, 0600) == 0;
    while (ok && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            ok = 0;
        else
            off += (size_t)w;
    }
    if (ok && fsync(fd) != 0) ok = 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(saved));
        unlink(tmp);
        return AEMP_EIO;
    }
    return 0;
}

int config_save(const char *path, const cJSON *cfg, char *err, size_t errlen)
{
    char *text = pretty(cfg, "\n");
    if (!text) {
        snprintf(err, errlen, "%s: out of memory formatting the configuration", path);
        return AEMP_ENOMEM;
    }
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n), *old = malloc(n);
    int rc = AEMP_ENOMEM;
    if (!tmp || !old) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    snprintf(tmp, n, "%s~new~", path);
    snprintf(old, n, "%s~", path);
    rc = write_new(tmp, text, err, errlen);
    if (rc) goto out;
    /* Keep the previous version as PATH~ (hard link, so PATH never
     * disappears); a missing old file is the first save. */
    if (unlink(old) != 0 && errno != ENOENT) aemp_log(5, "%s: %s", old, strerror(errno));
    if (link(path, old) != 0 && errno != ENOENT)
        aemp_log(5, "%s: cannot keep a backup: %s", old, strerror(errno));
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot replace the configuration file: %s", path,
                 strerror(errno));
        unlink(tmp);
        rc = AEMP_EIO;
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    free(old);
    free(text);
    return rc;
}

int config_load_effective(const char *profile, const cJSON *kv, cJSON **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    char *path;
    int rc = config_path(&path, err, errlen);
    if (rc) return rc;
    cJSON *file = NULL;
    rc = config_load(path, &file, err, errlen);
    free(path);
    if (rc == 0) rc = config_effective(file, profile, kv, out, err, errlen);
    cJSON_Delete(file);
    return rc;
}

/* ---------------------------------------------------------------- misc */

void config_nodename(char *buf, size_t len)
{
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(buf, len, "%s", u.nodename);
    else
        snprintf(buf, len, "localhost");
}

/* Without HOME there is no default: guessing (the current directory)
 * would read and write whatever file happens to be there, as a systemd
 * unit without User= would. */
int config_path(char **out, char *err, size_t errlen)
{
    const char *p = getenv("PERL_ANYEVENT_MP_RC");
    const char *home = getenv("HOME");
    *out = NULL;
    if (!p || !*p) p = getenv("AEMP_RC");
    if (p && *p) {
        *out = strdup(p);
    } else if (!home || !*home) {
        snprintf(err, errlen,
                 "no configuration file: HOME is not set, nor AEMP_RC (or PERL_ANYEVENT_MP_RC); "
                 "set AEMP_RC to the file's path (under systemd: Environment=AEMP_RC=FILE)");
        return AEMP_ECONFIG;
    } else {
        size_t n = strlen(home) + sizeof "/.perl-anyevent-mp";
        if ((*out = malloc(n))) snprintf(*out, n, "%s/.perl-anyevent-mp", home);
    }
    if (*out) return 0;
    snprintf(err, errlen, "out of memory");
    return AEMP_ENOMEM;
}

char *aemp_config_path(void)
{
    char *path, err[256];
    config_path(&path, err, sizeof err);
    return path;
}
