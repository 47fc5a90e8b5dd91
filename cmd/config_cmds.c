/* config_cmds.c - the configuration subcommands of aemp (PROTOCOL.md
 * section 9): they edit the loaded configuration tree in place, so keys we
 * do not know survive, and leave saving to the dispatcher. */
#include "cmds.h"

#include "aemp.h"
#include "certgen.h"
#include "config.h"
#include "config_check.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print "aemp: SUBCOMMAND: message" and return `status`. */
__attribute__((format(printf, 3, 4))) static int fail(struct cmd_ctx *ctx, int status,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_verror(ctx->cmd ? ctx->cmd : "config", status, fmt, ap);
    va_end(ap);
    return status;
}

/* The value `arg` gives `key` (cmd_config_value()); NULL after printing
 * why (usage error). */
static cJSON *value_for_key(struct cmd_ctx *ctx, const char *key, const char *arg)
{
    char err[512];
    cJSON *v = cmd_config_value(key, arg, err, sizeof err);
    if (!v) fail(ctx, EXIT_USAGE, "%s", err);
    return v;
}

/* The object the subcommands edit into *out: the selected profile (created
 * on demand when `create`) or the global part, borrowed from ctx->rc; NULL
 * when the profile does not exist and `create` is 0. When the file holds
 * something other than an object there, print why and return EXIT_FAIL: we
 * never replace data of the user's that we do not understand. */
static int target(struct cmd_ctx *ctx, int create, cJSON **out)
{
    *out = ctx->rc;
    if (!ctx->profile) return EXIT_OK;
    *out = NULL;
    cJSON *profs = cJSON_GetObjectItemCaseSensitive(ctx->rc, "profile");
    if (profs && !cJSON_IsObject(profs))
        return fail(ctx, EXIT_FAIL, "%s: \"profile\" is not an object; fix the file by hand",
                    ctx->rc_path);
    if (!profs && create) profs = cJSON_AddObjectToObject(ctx->rc, "profile");
    if (!profs) return create ? fail(ctx, EXIT_FAIL, "out of memory") : EXIT_OK;
    cJSON *p = cJSON_GetObjectItemCaseSensitive(profs, ctx->profile);
    if (p && !cJSON_IsObject(p))
        return fail(ctx, EXIT_FAIL, "%s: profile '%s' is not an object; fix the file by hand",
                    ctx->rc_path, ctx->profile);
    if (!p && create && !(p = cJSON_AddObjectToObject(profs, ctx->profile)))
        return fail(ctx, EXIT_FAIL, "out of memory");
    *out = p;
    return EXIT_OK;
}

/* Put `v` (taken) under `key` of `obj`, replacing an older value. */
static void put(cJSON *obj, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
    else
        cJSON_AddItemToObject(obj, key, v);
}

static int set_value(struct cmd_ctx *ctx, const char *key, cJSON *v)
{
    cJSON *t;
    int rc = target(ctx, 1, &t);
    if (rc) {
        cJSON_Delete(v);
        return rc;
    }
    put(t, key, v);
    ctx->rc_dirty = 1;
    return EXIT_OK;
}

/* The parent profile named by profile `name`: the user's own, else the
 * shipped one's (borrowed), or NULL. */
static const char *parent_of(const cJSON *rc, const cJSON *shipped, const char *name)
{
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rc, "profile"), name);
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(user, "parent");
    if (!par) par = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(shipped, name), "parent");
    return cJSON_IsString(par) ? par->valuestring : NULL;
}

/* `setparent P` on the selected profile: P must exist (the user's or a
 * shipped profile), not be the profile itself, and not lead back to it;
 * else every later showconfig, check and run of it would fail. Exit status
 * 2 with the reason, or 0. */
static int check_parent(struct cmd_ctx *ctx, const cJSON *v)
{
    const char *self = ctx->profile, *p = cJSON_IsString(v) ? v->valuestring : NULL;
    if (!p) return EXIT_OK; /* its type is config_check's business */
    cJSON *shipped = config_shipped_profiles();
    int rc = EXIT_OK;
    if (self && !strcmp(p, self)) {
        rc = fail(ctx, EXIT_USAGE, "profile '%s' cannot be its own parent", self);
    } else if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ctx->rc, "profile"), p) &&
               !cJSON_GetObjectItemCaseSensitive(shipped, p)) {
        rc = fail(ctx, EXIT_USAGE, "no profile named '%s' (create it first: aemp profile %s ...)", p, p);
    } else if (self) {
        const char *a = p;
        for (int depth = 0; a && depth < 64; depth++, a = parent_of(ctx->rc, shipped, a)) {
            if (strcmp(a, self)) continue;
            rc = fail(ctx, EXIT_USAGE,
                      "profile '%s' cannot have the parent '%s': '%s' already inherits from '%s' "
                      "(a cycle)",
                      self, p, p, self);
            break;
        }
    }
    cJSON_Delete(shipped);
    return rc;
}

int cmd_cfg_set(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    cJSON *v = value_for_key(ctx, key, argv[0]);
    if (!v) return EXIT_USAGE;
    if (!strcmp(key, "parent")) {
        int rc = check_parent(ctx, v);
        if (rc) {
            cJSON_Delete(v);
            return rc;
        }
    }
    return set_value(ctx, key, v);
}

int cmd_cfg_del(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    cJSON *t;
    int rc = target(ctx, 0, &t);
    if (rc) return rc;
    if (t && cJSON_GetObjectItemCaseSensitive(t, key)) {
        cJSON_DeleteItemFromObjectCaseSensitive(t, key);
        ctx->rc_dirty = 1;
    }
    return EXIT_OK;
}

/* The list under `key` of the edited object; a single value there becomes
 * the first element of a new list rather than being lost. */
static cJSON *list_of(struct cmd_ctx *ctx, const char *key)
{
    cJSON *t;
    if (target(ctx, 1, &t)) return NULL;
    cJSON *a = cJSON_GetObjectItemCaseSensitive(t, key);
    if (cJSON_IsArray(a)) return a;
    cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(t, key);
    a = cJSON_CreateArray();
    if (!a) {
        if (old) cJSON_AddItemToObject(t, key, old);
        fail(ctx, EXIT_FAIL, "out of memory");
        return NULL;
    }
    if (old) cJSON_AddItemToArray(a, old);
    cJSON_AddItemToObject(t, key, a);
    return a;
}

/* Remove entries equal to `v`; only the first one when `once`. */
static int remove_equal(cJSON *list, const cJSON *v, int once)
{
    int removed = 0, i = 0;
    for (cJSON *it = list->child; it;) {
        cJSON *next = it->next;
        if (cJSON_Compare(it, v, 1)) {
            cJSON_DeleteItemFromArray(list, i);
            removed++;
            if (once) break;
        } else {
            i++;
        }
        it = next;
    }
    return removed;
}

/* Services may run more than once, so addservice appends and delservice
 * removes one instance; seeds and binds are sets. */
int cmd_cfg_add(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    char err[256];
    cJSON *v = cmd_arg_is_address(key, argv[0]) ? cJSON_CreateString(argv[0])
                                                : cmd_arg_json(argv[0], err, sizeof err);
    if (!v) return fail(ctx, EXIT_USAGE, "%s", err);
    /* the new element, checked as a one-element list of the key */
    cJSON *one = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(one, v);
    int bad = config_check_value(key, one, err, sizeof err);
    cJSON_Delete(one);
    if (bad) {
        cJSON_Delete(v);
        return fail(ctx, EXIT_USAGE, "%s", err);
    }
    cJSON *list = list_of(ctx, key);
    if (!list) {
        cJSON_Delete(v);
        return EXIT_FAIL;
    }
    if (strcmp(key, "services")) remove_equal(list, v, 0);
    cJSON_AddItemToArray(list, v);
    ctx->rc_dirty = 1;
    return EXIT_OK;
}

int cmd_cfg_remove(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    char err[256];
    cJSON *v = cmd_arg_json(argv[0], err, sizeof err);
    if (!v) return fail(ctx, EXIT_USAGE, "%s", err);
    cJSON *t;
    if (target(ctx, 0, &t)) {
        cJSON_Delete(v);
        return EXIT_FAIL;
    }
    cJSON *list = t ? cJSON_GetObjectItemCaseSensitive(t, key) : NULL;
    if (list && cJSON_IsArray(list) && remove_equal(list, v, !strcmp(key, "services")))
        ctx->rc_dirty = 1;
    cJSON_Delete(v);
    return EXIT_OK;
}

int cmd_cfg_gensecret(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    unsigned char raw[32];
    char text[sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (sodium_init() < 0) return fail(ctx, EXIT_FAIL, "%s", "libsodium failed to initialise");
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text, sizeof text, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return set_value(ctx, "secret", cJSON_CreateString(text));
}

int cmd_cfg_gencert(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    char cn[256], err[512];
    if (ctx->profile)
        snprintf(cn, sizeof cn, "%s", ctx->profile);
    else
        config_nodename(cn, sizeof cn);
    char *pem = NULL;
    if (certgen_selfsigned(cn, &pem, err, sizeof err)) return fail(ctx, EXIT_FAIL, "%s", err);
    int rc = set_value(ctx, "cert", cJSON_CreateString(pem));
    free(pem);
    return rc;
}

int cmd_cfg_setcert(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    FILE *f = fopen(argv[0], "rb");
    if (!f) {
        fprintf(stderr, "aemp: %s: %s: %s\n", ctx->cmd, argv[0], strerror(errno));
        return EXIT_FAIL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    int bad = ferror(f) || !mem;
    fclose(f);
    if (mem) fclose(mem);
    if (bad || !buf) {
        free(buf);
        return fail(ctx, EXIT_FAIL, "%s: cannot read the file", argv[0]);
    }
    if (!strstr(buf, "-----BEGIN")) {
        free(buf);
        return fail(ctx, EXIT_FAIL,
                    "%s: no PEM data (-----BEGIN ...) found; give a file with the key and "
                    "certificate in PEM format",
                    argv[0]);
    }
    int rc = set_value(ctx, "cert", cJSON_CreateString(buf));
    free(buf);
    return rc;
}

int cmd_cfg_profile(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    char *name = strdup(argv[0]);
    if (!name) return fail(ctx, EXIT_FAIL, "%s", "out of memory");
    free(ctx->profile);
    ctx->profile = name;
    return EXIT_OK;
}

int cmd_cfg_delprofile(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    cJSON *profs = cJSON_GetObjectItemCaseSensitive(ctx->rc, "profile");
    if (cJSON_IsObject(profs) && cJSON_GetObjectItemCaseSensitive(profs, argv[0])) {
        cJSON_DeleteItemFromObjectCaseSensitive(profs, argv[0]);
        ctx->rc_dirty = 1;
    }
    return EXIT_OK;
}

/* `v` as the file holds it (config_pretty). */
static int print_json(struct cmd_ctx *ctx, const cJSON *v)
{
    char *s = config_pretty(v);
    if (!s) return fail(ctx, EXIT_FAIL, "%s", "out of memory");
    puts(s);
    free(s);
    return EXIT_OK;
}

/* The profile's own values: the shipped profile with the user's over it. */
int cmd_cfg_showprofile(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    const char *name = argv[0];
    cJSON *shipped = config_shipped_profiles();
    const cJSON *ship = cJSON_GetObjectItemCaseSensitive(shipped, name);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ctx->rc, "profile"), name);
    int rc;
    if (!cJSON_IsObject(ship) && !cJSON_IsObject(user)) {
        rc = fail(ctx, EXIT_FAIL, "no profile named '%s'", name);
    } else {
        cJSON *own = cJSON_CreateObject();
        const cJSON *it;
        for (int pass = 0; pass < 2; pass++) {
            const cJSON *src = pass ? user : ship;
            if (!cJSON_IsObject(src)) continue;
            cJSON_ArrayForEach(it, src) put(own, it->string, cJSON_Duplicate(it, 1));
        }
        rc = print_json(ctx, own);
        cJSON_Delete(own);
    }
    cJSON_Delete(shipped);
    return rc;
}

/* Effective configuration of NAME (default: the selected profile, else the
 * node name) with the given key/values as configure arguments. */
static int effective(struct cmd_ctx *ctx, const char *name, const cJSON *kv, cJSON **out)
{
    char err[512];
    if (config_effective(ctx->rc, name, kv, out, err, sizeof err))
        return fail(ctx, EXIT_FAIL, "%s", err);
    return EXIT_OK;
}

int cmd_cfg_showconfig(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : ctx->profile;
    if (argc > 1 && (argc - 1) % 2)
        return fail(ctx, EXIT_USAGE,
                    "key '%s' has no value (usage: showconfig [NAME [KEY VALUE...]])",
                    argv[argc - 1]);
    cJSON *kv = cJSON_CreateObject();
    for (int i = 1; kv && i + 1 < argc; i += 2) {
        cJSON *v = value_for_key(ctx, argv[i], argv[i + 1]);
        if (!v) {
            cJSON_Delete(kv);
            return EXIT_USAGE;
        }
        put(kv, argv[i], v);
    }
    cJSON *eff = NULL;
    int rc = effective(ctx, name, kv, &eff);
    if (!rc) rc = print_json(ctx, eff);
    cJSON_Delete(eff);
    cJSON_Delete(kv);
    return rc;
}

/* One seed per line; argc 1: the list as one JSON array on one line. */
int cmd_cfg_showseeds(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    cJSON *eff = NULL;
    int rc = effective(ctx, ctx->profile, NULL, &eff);
    if (rc) return rc;
    const cJSON *it;
    if (argc) {
        const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(eff, "seeds");
        char *s = seeds ? aemp_json_print(seeds) : NULL;
        printf("%s\n", s ? s : "[]");
        free(s);
        cJSON_Delete(eff);
        return EXIT_OK;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(eff, "seeds"))
    {
        if (cJSON_IsString(it)) {
            printf("%s\n", it->valuestring);
        } else {
            char *s = aemp_json_print(it);
            if (s) printf("%s\n", s);
            free(s);
        }
    }
    cJSON_Delete(eff);
    return EXIT_OK;
}

int cmd_load_rc(struct cmd_ctx *ctx)
{
    char err[1024];
    if (ctx->rc) return EXIT_OK;
    if (!ctx->rc_path && config_path(&ctx->rc_path, err, sizeof err)) {
        fprintf(stderr, "aemp: %s\n", err);
        return EXIT_FAIL;
    }
    if (config_load(ctx->rc_path, &ctx->rc, err, sizeof err)) {
        fprintf(stderr, "aemp: %s\n", err);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_save_rc(struct cmd_ctx *ctx)
{
    char err[1024];
    if (!ctx->rc || !ctx->rc_dirty) return EXIT_OK;
    if (config_save(ctx->rc_path, ctx->rc, err, sizeof err)) {
        fprintf(stderr, "aemp: %s\n", err);
        return EXIT_FAIL;
    }
    ctx->rc_dirty = 0;
    return EXIT_OK;
}
