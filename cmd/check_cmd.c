/* check_cmd.c - `aemp check [PROFILE]`: validate the configuration file and
 * say what a node of PROFILE would do (node ID, binds, seeds, auth,
 * services) without starting it: nothing is opened, resolved or loaded. */
#include "cmds.h"

#include "aemp.h"
#include "config.h"
#include "config_check.h"
#include "core.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct check {
    struct cmd_ctx *ctx;
    cJSON *problems; /* array of strings (owned) */
    aemp_node *node; /* unconfigured, with what `aemp run` registers (owned) */
};

static void add_problem(const char *text, void *ud)
{
    struct check *ck = ud;
    cJSON_AddItemToArray(ck->problems, cJSON_CreateString(text));
}

/* Problems a node of this effective configuration would hit at start that
 * the types alone do not show: no way to authenticate, a certificate that
 * does not load, a service that cannot be found. */
static void check_effective(struct check *ck, const cJSON *eff, int *has_secret, int *has_cert)
{
    char err[1024];
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(eff, "secret");
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive(eff, "cert");
    *has_secret = cJSON_IsString(secret) && *secret->valuestring;
    *has_cert = cJSON_IsString(cert) && *cert->valuestring;
    if (*has_cert) {
        struct tls_creds *creds = NULL;
        if (tls_creds_load(cert->valuestring, &creds, err, sizeof err)) {
            char buf[1100];
            snprintf(buf, sizeof buf, "cert: %s", err);
            add_problem(buf, ck);
        }
        tls_creds_free(creds);
    }
    const cJSON *ff = cJSON_GetObjectItemCaseSensitive(eff, "framing_format");
    if (cJSON_IsArray(ff)) { /* (another type is a problem of the file already) */
        cJSON *fr = config_framings_read(ff, err, sizeof err);
        if (!fr) add_problem(err, ck);
        cJSON_Delete(fr);
    }
    int talks = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(eff, "binds")) > 0 ||
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(eff, "seeds")) > 0;
    if (talks && !*has_secret && !*has_cert)
        add_problem("no shared secret and no certificate: the node would refuse to listen or "
                    "to contact seeds; run `aemp gensecret` (or gencert)",
                    ck);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(eff, "services"))
    {
        const cJSON *name = cJSON_IsArray(s) ? s->child : s;
        if (!cJSON_IsString(name)) continue;
        const char *spec = name->valuestring;
        size_t plen = spawn_so_path_len(spec);
        char buf[1100];
        if (plen) {
            char *path = strndup(spec, plen);
            if (path && access(path, R_OK)) {
                snprintf(buf, sizeof buf, "service %s: cannot read %s", spec, path);
                add_problem(buf, ck);
            }
            free(path);
        } else if (!ck->node || !spawn_is_registered(ck->node, spec)) {
            snprintf(buf, sizeof buf,
                     "service %s: `aemp run` registers no function of that name; give "
                     "PATH.so:SYMBOL (names work in programs that register them)",
                     spec);
            add_problem(buf, ck);
        }
    }
}

static void print_list(const char *label, const cJSON *list, const char *none)
{
    const cJSON *e;
    printf("%s:", label);
    if (!cJSON_GetArraySize(list)) printf(" %s", none);
    cJSON_ArrayForEach(e, list)
    {
        char *s = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
        printf(" %s", s ? s : e->valuestring);
        free(s);
    }
    putchar('\n');
}

static double num(const cJSON *eff, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(eff, key);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsString(v) ? atof(v->valuestring) : 0;
}

/* The report as text (one "key: value" line each, then the problems on
 * stderr) or as one JSON object on one line. */
static void report(struct check *ck, int json, const char *profile, const cJSON *eff,
                   int has_secret, int has_cert)
{
    const cJSON *nodeid = cJSON_GetObjectItemCaseSensitive(eff, "nodeid");
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", ck->ctx->rc_path);
        cJSON_AddStringToObject(o, "profile", profile);
        cJSON_AddBoolToObject(o, "ok", cJSON_GetArraySize(ck->problems) == 0);
        cJSON_AddItemToObject(o, "problems", cJSON_Duplicate(ck->problems, 1));
        if (eff) {
            static const char *const keys[] = {"nodeid",          "binds",           "seeds",
                                               "services",        "monitor_timeout",
                                               "connect_interval", "http"};
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                cJSON_AddItemToObject(
                    o, keys[i], cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eff, keys[i]), 1));
            cJSON *auth = cJSON_AddObjectToObject(o, "auth");
            cJSON_AddBoolToObject(auth, "secret", has_secret);
            cJSON_AddBoolToObject(auth, "cert", has_cert);
            cJSON_AddItemToObject(
                auth, "offer",
                cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eff, "auth_offer"), 1));
            cJSON_AddItemToObject(
                auth, "accept",
                cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eff, "auth_accept"), 1));
        }
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
        return;
    }
    printf("file: %s\n", ck->ctx->rc_path);
    printf("profile: %s\n", profile);
    if (eff) {
        const char *id = cJSON_IsString(nodeid) ? nodeid->valuestring : "?";
        printf("node ID: %s%s\n", id, !strcmp(id, "anon/") ? " (a random one at each start)" : "");
        print_list("binds", cJSON_GetObjectItemCaseSensitive(eff, "binds"),
                   "(none: it does not listen)");
        print_list("seeds", cJSON_GetObjectItemCaseSensitive(eff, "seeds"),
                   "(none: it only meets nodes that contact it)");
        printf("auth: %s, %s\n", has_secret ? "shared secret" : "no shared secret",
               has_cert ? "certificate" : "no certificate");
        print_list("auth offer", cJSON_GetObjectItemCaseSensitive(eff, "auth_offer"), "nothing");
        print_list("auth accept", cJSON_GetObjectItemCaseSensitive(eff, "auth_accept"), "nothing");
        print_list("services", cJSON_GetObjectItemCaseSensitive(eff, "services"), "(none)");
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(eff, "http")) > 0)
            print_list("http", cJSON_GetObjectItemCaseSensitive(eff, "http"), "");
        printf("timing: monitor_timeout %g s, connect_interval %g s\n", num(eff, "monitor_timeout"),
               num(eff, "connect_interval"));
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, ck->problems) fprintf(stderr, "aemp: check: %s\n", p->valuestring);
    if (!cJSON_GetArraySize(ck->problems)) printf("ok\n");
}

/* 1 when `name` is a profile of the file or a shipped one. */
static int profile_exists(const cJSON *rc, const char *name)
{
    cJSON *shipped = config_shipped_profiles();
    /* (one that is not an object is the file check's problem) */
    int yes = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rc, "profile"),
                                               name) ||
              cJSON_GetObjectItemCaseSensitive(shipped, name);
    cJSON_Delete(shipped);
    return yes;
}

int cmd_cfg_check(struct cmd_ctx *ctx, const char *key, int argc, char **argv)
{
    char err[1024], host[256];
    const char *profile = ctx->profile;
    int json = 0, npos = 0;
    (void)key;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "aemp: check: unknown option '%s' (only --json)\n", argv[i]);
            return EXIT_USAGE;
        } else if (npos++) {
            fprintf(stderr, "aemp: check: too many arguments (usage: aemp check [--json] "
                            "[PROFILE])\n");
            return EXIT_USAGE;
        } else {
            profile = argv[i];
        }
    }
    if (!profile) {
        config_nodename(host, sizeof host);
        profile = host;
    }
    struct check ck = {.ctx = ctx, .problems = cJSON_CreateArray()};
    if (!ck.problems) return EXIT_FAIL;
    /* the names a node of `aemp run` serves (the library's and cmd_run's) */
    if ((ck.node = aemp_node_new(NULL))) cmd_put_register(ck.node);
    config_check_file(ctx->rc, add_problem, &ck, err, sizeof err);
    if (profile != host && !profile_exists(ctx->rc, profile)) {
        /* a name typed (here or with `profile NAME`): a typo must not pass */
        char buf[1100];
        snprintf(buf, sizeof buf,
                 "no profile named '%.200s' in %.300s or among the shipped profiles (a node "
                 "of it would run on the global part alone)",
                 profile, ctx->rc_path);
        add_problem(buf, &ck);
    }
    cJSON *eff = NULL;
    int has_secret = 0, has_cert = 0;
    if (config_effective(ctx->rc, profile, NULL, &eff, err, sizeof err)) {
        /* a problem the file check reported already is not repeated */
        int seen = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, ck.problems) seen |= !strcmp(p->valuestring, err);
        if (!seen) add_problem(err, &ck);
    } else {
        check_effective(&ck, eff, &has_secret, &has_cert);
    }
    report(&ck, json, profile, eff, has_secret, has_cert);
    int rc = cJSON_GetArraySize(ck.problems) ? EXIT_FAIL : EXIT_OK;
    cJSON_Delete(eff);
    cJSON_Delete(ck.problems);
    aemp_node_free(ck.node);
    return rc;
}
