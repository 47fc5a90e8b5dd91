/* Tests of the configuration file (config.c) and certificate generation
 * (certgen.c), with real files in a temporary directory. */
#include "aemp.h"
#include "certgen.h"
#include "config.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/stat.h>

static char tmpdir[256];

/* A fresh temporary directory per test; shipped profiles come from an
 * empty directory unless a test sets its own. */
static const char *fresh_dir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aemp-tcfg.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
    char ship[300];
    snprintf(ship, sizeof ship, "%s/noship", tmpdir);
    mkdir(ship, 0700);
    setenv("AEMP_PROFILE_DIR", ship, 1);
    return tmpdir;
}

static void rm_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "# could not remove %s\n", tmpdir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Whole file as a new string, or NULL. */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "# bad JSON in test: %s\n", text);
        exit(1);
    }
    return j;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* First element of array o[k] as a string, or NULL. */
static const char *first_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, k), 0);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_defaults(void)
{
    cJSON *d = config_defaults();
    CHECK_INT(num_of(d, "monitor_timeout"), 30);
    CHECK_INT(num_of(d, "connect_interval"), 2);
    CHECK_STR(first_of(d, "binds"), "*");
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(d, "seeds")), 0);
    CHECK_STR(first_of(d, "framing_format"), "json");
    CHECK_STR(first_of(d, "auth_offer"), "tls_md6_64_256");
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(d, "auth_accept")), 4);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(d, "autocork")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(d, "nodelay")));
    cJSON_Delete(d);
}

/* Each layer sets one key the layers above leave alone, plus one key every
 * layer above overrides, so every level is visible in the result. */
static void test_precedence(void)
{
    fresh_dir();
    cJSON *file = parse("{\"version\":1,"
                        " \"connect_interval\":5, \"monitor_timeout\":11, \"secret\":\"g\","
                        " \"binds\":[\"global:1\"], \"seeds\":[\"global:2\"],"
                        " \"profile\":{"
                        "  \"root\":{\"monitor_timeout\":12, \"secret\":\"root\","
                        "           \"services\":[\"root_svc\"]},"
                        "  \"mid\":{\"parent\":\"root\", \"monitor_timeout\":13,"
                        "          \"seeds\":[\"mid:3\"], \"secret\":\"mid\"},"
                        "  \"leaf\":{\"parent\":\"mid\", \"monitor_timeout\":14}}}");
    cJSON *kv = parse("{\"autocork\":true, \"connect_interval\":3, \"monitor_timeout\":10,"
                      " \"framing_format\":[\"My::Kv\"]}");
    cJSON *eff = NULL;
    char err[256] = "";
    CHECK_INT(config_effective(file, "leaf", kv, &eff, err, sizeof err), 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(eff, "nodelay")));  /* defaults */
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(eff, "autocork"))); /* kv over defaults */
    CHECK_STR(first_of(eff, "framing_format"), "My::Kv");          /* kv over defaults */
    CHECK_INT(num_of(eff, "connect_interval"), 5);             /* global over kv */
    CHECK_STR(first_of(eff, "binds"), "global:1");             /* global over defaults */
    CHECK_STR(first_of(eff, "services"), "root_svc");          /* root over global */
    CHECK_STR(first_of(eff, "seeds"), "mid:3");                /* mid over global */
    CHECK_STR(str_of(eff, "secret"), "mid");                   /* mid over root */
    CHECK_INT(num_of(eff, "monitor_timeout"), 14);             /* leaf over all */
    CHECK_STR(str_of(eff, "nodeid"), "leaf");                  /* profile name */
    CHECK(!cJSON_GetObjectItem(eff, "profile"));
    CHECK(!cJSON_GetObjectItem(eff, "version"));
    cJSON_Delete(eff);

    /* The middle of the chain sees only itself and what lies beneath. */
    CHECK_INT(config_effective(file, "mid", NULL, &eff, err, sizeof err), 0);
    CHECK_INT(num_of(eff, "monitor_timeout"), 13);
    CHECK_INT(num_of(eff, "connect_interval"), 5);
    cJSON_Delete(eff);

    /* No such profile: the global part over the defaults, named after it. */
    CHECK_INT(config_effective(file, "other", kv, &eff, err, sizeof err), 0);
    CHECK_INT(num_of(eff, "monitor_timeout"), 11);
    CHECK_STR(str_of(eff, "secret"), "g");
    CHECK_STR(str_of(eff, "nodeid"), "other");
    cJSON_Delete(eff);
    cJSON_Delete(kv);
    cJSON_Delete(file);
    rm_dir();
}

static void test_nodeid(void)
{
    fresh_dir();
    cJSON *file = parse("{\"profile\":{\"a\":{\"nodeid\":\"anon/\"},\"b\":{\"parent\":\"a\"}}}");
    cJSON *eff = NULL;
    char err[256] = "", host[256];
    CHECK_INT(config_effective(file, "a", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(str_of(eff, "nodeid"), "anon/");
    cJSON_Delete(eff);
    CHECK_INT(config_effective(file, "b", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(str_of(eff, "nodeid"), "anon/"); /* inherited beats the name */
    cJSON_Delete(eff);
    config_nodename(host, sizeof host);
    CHECK(host[0] != 0);
    CHECK_INT(config_effective(file, NULL, NULL, &eff, err, sizeof err), 0);
    CHECK_STR(str_of(eff, "nodeid"), host);
    cJSON_Delete(eff);
    cJSON_Delete(file);
    rm_dir();
}

static void test_cycle(void)
{
    fresh_dir();
    cJSON *file = parse("{\"profile\":{\"a\":{\"parent\":\"b\"},\"b\":{\"parent\":\"a\"},"
                        "\"c\":{\"parent\":\"a\"},\"s\":{\"parent\":\"s\"}}}");
    cJSON *eff = NULL;
    char err[256] = "";
    CHECK_INT(config_effective(file, "a", NULL, &eff, err, sizeof err), AEMP_ECONFIG);
    CHECK(eff == NULL);
    CHECK_STR(err, "profile parent cycle: a -> b -> a");
    CHECK_INT(config_effective(file, "c", NULL, &eff, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "profile parent cycle: a -> b -> a");
    CHECK_INT(config_effective(file, "s", NULL, &eff, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "profile parent cycle: s -> s");
    cJSON_Delete(file);
    rm_dir();
}

static void test_unknown_parent(void)
{
    fresh_dir();
    cJSON *file = parse("{\"profile\":{\"a\":{\"parent\":\"nosuch\"}}}");
    cJSON *eff = NULL;
    char err[256] = "";
    CHECK_INT(config_effective(file, "a", NULL, &eff, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "nosuch") != NULL);
    CHECK(eff == NULL);
    cJSON_Delete(file);
    rm_dir();
}

/* Shipped profiles lie under the user's profile of the same name. */
static void test_shipped(void)
{
    fresh_dir();
    char ship[300], path[400];
    snprintf(ship, sizeof ship, "%s/ship", tmpdir);
    mkdir(ship, 0700);
    snprintf(path, sizeof path, "%s/seed.json", ship);
    write_file(path, "{\"binds\":[\"*:4040\"], \"monitor_timeout\":7}");
    snprintf(path, sizeof path, "%s/broken.json", ship);
    write_file(path, "{not json");
    snprintf(path, sizeof path, "%s/README", ship);
    write_file(path, "not a profile");
    setenv("AEMP_PROFILE_DIR", ship, 1);

    cJSON *all = config_shipped_profiles();
    CHECK_INT(cJSON_GetArraySize(all), 1);
    CHECK(cJSON_GetObjectItem(all, "seed") != NULL);
    cJSON_Delete(all);

    cJSON *file = parse("{\"monitor_timeout\":20, \"profile\":{\"seed\":{\"monitor_timeout\":9},"
                        " \"web\":{\"parent\":\"seed\"}}}");
    cJSON *none = parse("{}");
    cJSON *eff = NULL;
    char err[256] = "";
    CHECK_INT(config_effective(file, "seed", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(first_of(eff, "binds"), "*:4040");  /* shipped */
    CHECK_INT(num_of(eff, "monitor_timeout"), 9); /* user over shipped */
    cJSON_Delete(eff);
    CHECK_INT(config_effective(none, "seed", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(first_of(eff, "binds"), "*:4040"); /* applies without a user profile */
    CHECK_INT(num_of(eff, "monitor_timeout"), 7);
    cJSON_Delete(eff);
    CHECK_INT(config_effective(file, "web", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(first_of(eff, "binds"), "*:4040"); /* a shipped parent */
    CHECK_STR(str_of(eff, "nodeid"), "web");
    cJSON_Delete(eff);
    cJSON_Delete(none);
    cJSON_Delete(file);
    rm_dir();
}

static void test_load_missing(void)
{
    fresh_dir();
    char path[300], err[256] = "";
    snprintf(path, sizeof path, "%s/none", tmpdir);
    cJSON *cfg = NULL;
    CHECK_INT(config_load(path, &cfg, err, sizeof err), 0);
    CHECK_INT(num_of(cfg, "version"), 1);
    CHECK_INT(cJSON_GetArraySize(cfg), 1);
    cJSON_Delete(cfg);
    rm_dir();
}

static void test_load_errors(void)
{
    fresh_dir();
    char path[300], err[256] = "";
    cJSON *cfg = NULL;
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    write_file(path, "{\n   \"version\" : 1,\n   \"secret\" : oops\n}\n");
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK(cfg == NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "line 3") != NULL);
    write_file(path, "[1,2]");
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "object") != NULL);
    write_file(path, "{} trailing");
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    /* A directory where the file should be cannot be read. */
    snprintf(path, sizeof path, "%s/noship", tmpdir);
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "noship") != NULL);
    rm_dir();
}

/* A file as the Perl tool writes it (JSON::XS pretty), with keys we do not
 * know, survives load + save with every key intact. */
static void test_perl_file_roundtrip(void)
{
    fresh_dir();
    static const char perl_rc[] = "{\n"
                                  "   \"profile\" : {\n"
                                  "      \"seed\" : {\n"
                                  "         \"binds\" : [\n"
                                  "            \"*:4040\"\n"
                                  "         ],\n"
                                  "         \"nodeid\" : \"anon/\",\n"
                                  "         \"x_future\" : {\"deep\" : [1, null]}\n"
                                  "      }\n"
                                  "   },\n"
                                  "   \"secret\" : \"s3cr3t\",\n"
                                  "   \"unknown_top\" : 42,\n"
                                  "   \"x_exact\" : [9007199254740993, -9223372036854775808, "
                                  "18446744073709551615, \"a\\u0000b\"],\n"
                                  "   \"version\" : 1\n"
                                  "}\n";
    char path[300], err[256] = "";
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    write_file(path, perl_rc);
    cJSON *cfg = NULL;
    CHECK_INT(config_load(path, &cfg, err, sizeof err), 0);
    cJSON *eff = NULL;
    CHECK_INT(config_effective(cfg, "seed", NULL, &eff, err, sizeof err), 0);
    CHECK_STR(str_of(eff, "secret"), "s3cr3t");
    CHECK_STR(str_of(eff, "nodeid"), "anon/");
    CHECK_STR(first_of(eff, "binds"), "*:4040");
    cJSON_Delete(eff);

    CHECK_INT(config_save(path, cfg, err, sizeof err), 0);
    char *text = read_all(path);
    cJSON *back = text ? aemp_json_parse(text) : NULL;
    CHECK(cJSON_Compare(back, cfg, 1));
    CHECK(text && strstr(text, "\n   \"unknown_top\" : 42"));
    /* written back as they were: every digit, U+0000 as \u0000 */
    CHECK(text && strstr(text, "      9007199254740993,\n      -9223372036854775808,\n"
                               "      18446744073709551615,\n      \"a\\u0000b\"\n"));
    CHECK(text && strstr(text, "\"x_future\""));
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(cfg);
    rm_dir();
}

/* 1.30 reads the file with JSON::XS relaxed: # comments, a comma after the
 * last element, literal TABs in strings. Each case with what JSON::XS
 * 4.04 relaxed decodes it to (NULL: it refuses it too). */
static void test_relaxed_file(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"a\":[1,],}", "{\"a\":[1]}"},
        {"{\"a\":1,}", "{\"a\":1}"},
        {"# top\n{\"a\" # c\n : 1 # c\n}#end", "{\"a\":1}"},
        {"{\"a\":[1,\n# c\n],\n}\n", "{\"a\":[1]}"},
        {"{\"a\":\"x#y\", \"b\":\"q\\\"#\"}", "{\"a\":\"x#y\",\"b\":\"q\\\"#\"}"},
        {"{\"a\":\"x\ty\"}", "{\"a\":\"x\\ty\"}"},
        {"{\"a\":1 # c\r,\"b\":2}", "{\"a\":1,\"b\":2}"},
        {"{\"a\":[,]}", NULL},
        {"{\"a\":[1,,]}", NULL},
        {"{,}", NULL},
        {"{\"a\":1,,}", NULL},
        {"{\"a\":,}", NULL},
    };
    fresh_dir();
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        cJSON *cfg = NULL;
        *err = 0;
        int rc = config_load(path, &cfg, err, sizeof err);
        if (cases[i].want) {
            if (rc) fprintf(stderr, "# case %zu: %s\n", i, err);
            CHECK_INT(rc, 0);
            char *t = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
            CHECK_STR(t, cases[i].want);
            free(t);
        } else {
            CHECK_INT(rc, AEMP_ECONFIG);
        }
        cJSON_Delete(cfg);
    }
    /* the line of an error is the line in the file, comments and all */
    write_file(path, "{ # one\n  \"a\": [1,], # two\n\t\"b\": \"\tx\",\n  \"c\": oops\n}\n");
    cJSON *cfg = NULL;
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "line 4:") != NULL);
    /* written back: normalised (no comments), every key and value kept */
    write_file(path, "# my nodes\n{\n   \"version\" : 1,\n   \"secret\" : \"s\", # shared\n"
                     "   \"profile\" : { \"seed\" : { \"binds\" : [ \"*:4040\", ], }, },\n"
                     "   \"x_mine\" : [ 1, { \"k\" : \"\tv\" }, ],\n}\n");
    CHECK_INT(config_load(path, &cfg, err, sizeof err), 0);
    CHECK_INT(config_save(path, cfg, err, sizeof err), 0);
    char *text = read_all(path);
    cJSON *back = text ? cJSON_Parse(text) : NULL;
    CHECK(back && cJSON_Compare(back, cfg, 1));
    char *t = back ? cJSON_PrintUnformatted(back) : NULL;
    CHECK_STR(t, "{\"version\":1,\"secret\":\"s\",\"profile\":{\"seed\":{\"binds\":[\"*:4040\"]}},"
                 "\"x_mine\":[1,{\"k\":\"\\tv\"}]}");
    free(t);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(cfg);
    rm_dir();
}

/* Saving keeps the previous content as FILE~ and leaves no FILE~new~. */
static void test_atomic_save(void)
{
    fresh_dir();
    char path[300], old[310], tmp[310], err[256] = "";
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    snprintf(old, sizeof old, "%s~", path);
    snprintf(tmp, sizeof tmp, "%s~new~", path);
    cJSON *a = parse("{\"version\":1,\"secret\":\"first\"}");
    cJSON *b = parse("{\"version\":1,\"secret\":\"second\"}");
    CHECK_INT(config_save(path, a, err, sizeof err), 0);
    CHECK_INT(access(old, F_OK), -1); /* first save: nothing to keep */
    char *first = read_all(path);
    CHECK_INT(config_save(path, b, err, sizeof err), 0);
    char *kept = read_all(old), *now = read_all(path);
    CHECK(first && kept && !strcmp(first, kept));
    CHECK(now && strstr(now, "second"));
    CHECK_INT(access(tmp, F_OK), -1);
    free(first);
    free(kept);
    free(now);
    cJSON_Delete(a);
    cJSON_Delete(b);
    rm_dir();
}

/* A save that cannot write leaves the old file byte-identical, and a file
 * that failed to load is never touched by loading. */
static void test_failed_save_keeps_file(void)
{
    fresh_dir();
    char path[300], tmp[310], err[256] = "";
    snprintf(path, sizeof path, "%s/rc", tmpdir);
    snprintf(tmp, sizeof tmp, "%s~new~", path);
    static const char corrupt[] = "{\"version\":1, \"secret\": \"half";
    write_file(path, corrupt);
    cJSON *cfg = NULL;
    CHECK_INT(config_load(path, &cfg, err, sizeof err), AEMP_ECONFIG);
    mkdir(tmp, 0700); /* the temporary file cannot be created */
    cJSON *c = parse("{\"version\":1}");
    err[0] = 0;
    CHECK_INT(config_save(path, c, err, sizeof err), AEMP_EIO);
    CHECK(strstr(err, "~new~") != NULL);
    char *now = read_all(path);
    CHECK(now && !strcmp(now, corrupt));
    free(now);
    cJSON_Delete(c);
    rm_dir();
}

static void test_config_path(void)
{
    setenv("PERL_ANYEVENT_MP_RC", "/x/perl", 1);
    setenv("AEMP_RC", "/x/aemp", 1);
    char *p = aemp_config_path();
    CHECK_STR(p, "/x/perl");
    free(p);
    unsetenv("PERL_ANYEVENT_MP_RC");
    p = aemp_config_path();
    CHECK_STR(p, "/x/aemp");
    free(p);
    unsetenv("AEMP_RC");
    setenv("HOME", "/home/someone", 1);
    p = aemp_config_path();
    CHECK_STR(p, "/home/someone/.perl-anyevent-mp");
    free(p);
}

/* Import the certificate from `pem`; 0 on success. */
static int import_crt(const char *pem, gnutls_x509_crt_t *crt)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    if (gnutls_x509_crt_init(crt)) return -1;
    int rc = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
    if (rc) gnutls_x509_crt_deinit(*crt);
    return rc;
}

static void test_certgen(void)
{
    char *pem = NULL, *other = NULL, err[256] = "";
    CHECK_INT(certgen_selfsigned("node-a", &pem, err, sizeof err), 0);
    CHECK_INT(certgen_selfsigned("node-b", &other, err, sizeof err), 0);
    if (!pem || !other) {
        CHECK(0);
        free(pem);
        free(other);
        return;
    }
    CHECK(strstr(pem, "PRIVATE KEY-----") != NULL);
    CHECK(strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL);

    /* Key and certificate in one PEM load as a TLS credential. */
    gnutls_certificate_credentials_t cred;
    CHECK_INT(gnutls_certificate_allocate_credentials(&cred), 0);
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    CHECK_INT(gnutls_certificate_set_x509_key_mem(cred, &d, &d, GNUTLS_X509_FMT_PEM), 0);
    gnutls_certificate_free_credentials(cred);

    gnutls_x509_crt_t a, b;
    CHECK_INT(import_crt(pem, &a), 0);
    CHECK_INT(import_crt(other, &b), 0);
    char cn[64];
    size_t cnlen = sizeof cn;
    CHECK_INT(gnutls_x509_crt_get_dn_by_oid(a, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cnlen), 0);
    CHECK_STR(cn, "node-a");
    unsigned ca = 0;
    CHECK_INT(gnutls_x509_crt_get_basic_constraints(a, &ca, NULL, NULL), 1);
    CHECK_INT(ca, 1);
    unsigned status = 99;
    CHECK_INT(gnutls_x509_crt_verify(a, &a, 1, 0, &status), 0);
    CHECK_INT(status, 0); /* its own CA */
    status = 0;
    CHECK_INT(gnutls_x509_crt_verify(a, &b, 1, 0, &status), 0);
    CHECK(status & GNUTLS_CERT_INVALID); /* another node's cert is not a CA for it */
    CHECK(gnutls_x509_crt_get_expiration_time(a) > time(NULL) + 9L * 365 * 86400);
    gnutls_x509_crt_deinit(a);
    gnutls_x509_crt_deinit(b);
    free(pem);
    free(other);
}

T_MAIN(T(test_defaults), T(test_precedence), T(test_nodeid), T(test_cycle), T(test_unknown_parent),
       T(test_shipped), T(test_load_missing), T(test_load_errors), T(test_perl_file_roundtrip), T(test_relaxed_file),
       T(test_atomic_save), T(test_failed_save_keeps_file), T(test_config_path), T(test_certgen))
