/* Tests of config_check.c: which addresses and values each key takes, and
 * the exact sentence for each refusal (a table per key kind). */
#include "aemp.h"
#include "config.h"
#include "config_check.h"
#include "t.h"

static void test_addresses(void)
{
    static const struct {
        const char *key, *addr, *err; /* err NULL: accepted */
    } cases[] = {
        {"binds", "127.0.0.1:4040", NULL},
        {"binds", "*:4040", NULL},
        {"binds", "*", NULL},
        {"binds", "*:*", NULL},
        {"binds", "127.0.0.1:0", NULL},
        {"binds", "4040", NULL},
        {"binds", "[::1]:4040", NULL},
        {"binds", "host", NULL},
        {"seeds", "host1:65535", NULL},
        {"seeds", "[fe80::1]:1", NULL},
        {"binds", "127.0.0.1:70000",
         "binds: \"127.0.0.1:70000\": the port '70000' is out of range; a port is a number "
         "from 1 to 65535 (or 0 or * for any free port)"},
        {"seeds", "host:107576",
         "seeds: \"host:107576\": the port '107576' is out of range; a port is a number from 1 "
         "to 65535"},
        {"seeds", "host:x",
         "seeds: \"host:x\": the port 'x' is not a number; a port is a number from 1 to 65535"},
        {"seeds", "host:0",
         "seeds: \"host:0\": the port '0' is out of range; a port is a number from 1 to 65535"},
        {"seeds", "host:-1",
         "seeds: \"host:-1\": the port '-1' is not a number; a port is a number from 1 to 65535"},
        {"seeds", "*:4040",
         "seeds: \"*:4040\": a seed needs a host name or address to connect to, not *"},
        {"seeds", ":4040", "seeds: \":4040\" has no host before the ':'"},
        {"seeds", "", "seeds: an empty address; write host:port"},
        {"seeds", "a b:1", "seeds: \"a b:1\" has a space or control character"},
        {"binds", "[::1:4040", "binds: \"[::1:4040\" is not [ipv6-address]:port"},
        {"binds", "[::1]:99999",
         "binds: \"[::1]:99999\": the port '99999' is out of range; a port is a number from 1 "
         "to 65535 (or 0 or * for any free port)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        int rc = config_check_addr(cases[i].key, cases[i].addr, err, sizeof err);
        CHECK_INT(rc, cases[i].err ? AEMP_ECONFIG : 0);
        if (cases[i].err) CHECK_STR(err, cases[i].err);
    }
}

static void test_values(void)
{
    static const struct {
        const char *key, *json, *err;
    } cases[] = {
        {"secret", "\"s\"", NULL},
        {"secret", "5", "\"secret\" must be a string (the shared secret), not a number"},
        {"binds", "[\"*:4040\"]", NULL},
        {"binds", "\"x\"",
         "\"binds\" must be a list (the listen addresses), like [\"x\"], not a string"},
        {"binds", "[5]", "\"binds\": element 1 must be a non-empty string, not a number"},
        {"seeds", "{}", "\"seeds\" must be a list (the seed addresses), not an object"},
        {"services", "[\"a.so:f\", [\"b\", 1]]", NULL},
        {"services", "[[1]]",
         "\"services\": element 1 must be a service name or [NAME, ARGS...], not a number"},
        {"monitor_timeout", "30", NULL},
        {"monitor_timeout", "\"30\"", NULL},
        {"monitor_timeout", "0", "\"monitor_timeout\" must be a number of seconds above 0, not 0"},
        {"monitor_timeout", "\"soon\"",
         "\"monitor_timeout\" must be a number of seconds above 0, not \"soon\""},
        {"connect_interval", "[]", "\"connect_interval\" must be a number of seconds, not a list"},
        {"nodelay", "true", NULL},
        {"nodelay", "\"0\"", NULL},
        {"autocork", "{}", "\"autocork\" must be true or false, not an object"},
        {"cert", "null", NULL},
        {"cert", "5",
         "\"cert\" must be a string (the key and certificates in PEM) or null, not a number"},
        {"nodeid", "\"a b\"",
         "node ID \"a b\" has the character ' '; use only letters, digits and _ - . : /"},
        {"nodeid", "\"\"", "\"nodeid\" must not be empty"},
        {"parent", "[]", "\"parent\" must be a profile name (a string), not a list"},
        {"no_such_key", "[1,{}]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        cJSON *v = cJSON_Parse(cases[i].json);
        int rc = config_check_value(cases[i].key, v, err, sizeof err);
        CHECK_INT(rc, cases[i].err ? AEMP_ECONFIG : 0);
        if (cases[i].err) CHECK_STR(err, cases[i].err);
        cJSON_Delete(v);
    }
}

static void collect(const char *problem, void *ud)
{
    cJSON_AddItemToArray(ud, cJSON_CreateString(problem));
}

static void test_file(void)
{
    char err[512] = "";
    cJSON *file = cJSON_Parse("{\"version\":1,\"secret\":5,\"profile\":{\"a\":{\"binds\":\"x\"},"
                              "\"b\":[],\"ok\":{\"seeds\":[\"h:1\"]}}}");
    cJSON *all = cJSON_CreateArray();
    CHECK_INT(config_check_file(file, collect, all, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "3 problems in the configuration");
    char *got = cJSON_PrintUnformatted(all);
    CHECK_STR(got, "[\"global part: \\\"secret\\\" must be a string (the shared secret), not a "
                   "number\",\"profile 'a': \\\"binds\\\" must be a list (the listen addresses), "
                   "like [\\\"x\\\"], not a string\",\"profile 'b' must be an object "
                   "{\\\"KEY\\\": VALUE, ...}, not a list\"]");
    free(got);
    /* without a callback: the first problem */
    CHECK_INT(config_check_file(file, NULL, NULL, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "global part: \"secret\" must be a string (the shared secret), not a number");
    cJSON_Delete(all);
    cJSON_Delete(file);

    /* config_effective names the key and the profile, and refuses a
     * "profile" that is not an object */
    static const struct {
        const char *file, *profile, *err;
    } eff[] = {
        {"{\"profile\":{\"p\":{\"secret\":5}}}", "p",
         "profile 'p': \"secret\" must be a string (the shared secret), not a number"},
        {"{\"profile\":{\"p\":{\"parent\":\"q\"},\"q\":{\"binds\":[\"h:70000\"]}}}", "p",
         "profile 'q': binds: \"h:70000\": the port '70000' is out of range; a port is a "
         "number from 1 to 65535 (or 0 or * for any free port)"},
        {"{\"profile\":[]}", "p",
         "\"profile\" must be an object of profiles {\"NAME\": {...}}, not a list"},
        {"{\"binds\":\"x\"}", "p",
         "global part: \"binds\" must be a list (the listen addresses), like [\"x\"], not a "
         "string"},
    };
    setenv("AEMP_PROFILE_DIR", "/nonexistent-aemp-profiles", 1);
    for (size_t i = 0; i < sizeof eff / sizeof eff[0]; i++) {
        cJSON *f = cJSON_Parse(eff[i].file), *out = NULL;
        CHECK_INT(config_effective(f, eff[i].profile, NULL, &out, err, sizeof err), AEMP_ECONFIG);
        CHECK(out == NULL);
        CHECK_STR(err, eff[i].err);
        cJSON_Delete(f);
    }
    /* configure arguments too */
    cJSON *f = cJSON_Parse("{}"), *kv = cJSON_Parse("{\"seeds\":[\"h:x\"]}"), *out = NULL;
    CHECK_INT(config_effective(f, "p", kv, &out, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "configure arguments: seeds: \"h:x\": the port 'x' is not a number; a port "
                   "is a number from 1 to 65535");
    cJSON_Delete(f);
    cJSON_Delete(kv);
}

static void test_configure_refuses(void)
{
    /* the library entry point checks what a program passes directly */
    char err[512] = "";
    aemp_node *n = aemp_node_new(NULL);
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"x\",\"binds\":[\"127.0.0.1:70000\"]}");
    CHECK_INT(aemp_configure_effective(n, cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "binds: \"127.0.0.1:70000\": the port '70000' is out of range; a port is a "
                   "number from 1 to 65535 (or 0 or * for any free port)");
    cJSON_Delete(cfg);
    aemp_node_free(n);
}

static void test_key_kinds(void)
{
    /* every key the library or the tool reads, and the 1.30 keys
     * (PROTOCOL.md section 8), with the type they are read as */
    static const struct {
        const char *key;
        enum config_kind kind;
    } keys[] = {
        {"nodeid", CONFIG_STRING},
        {"secret", CONFIG_STRING},
        {"cert", CONFIG_STRING},
        {"parent", CONFIG_STRING},
        {"binds", CONFIG_LIST},
        {"seeds", CONFIG_LIST},
        {"http", CONFIG_LIST},
        {"services", CONFIG_LIST},
        {"framing_format", CONFIG_LIST},
        {"auth_offer", CONFIG_LIST},
        {"auth_accept", CONFIG_LIST},
        {"monitor_timeout", CONFIG_NUMBER},
        {"connect_interval", CONFIG_NUMBER},
        {"max_message_size", CONFIG_NUMBER},
        {"heartbeat", CONFIG_NUMBER},
        {"loglevel", CONFIG_NUMBER},
        {"autocork", CONFIG_BOOL},
        {"nodelay", CONFIG_BOOL},
        {"autorestart", CONFIG_BOOL},
        {"allow_restart", CONFIG_BOOL},
        {"no_such_key", CONFIG_ANY},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        CHECK_INT(config_key_kind(keys[i].key), keys[i].kind);
        CHECK(!config_key_what(keys[i].key) == (keys[i].kind == CONFIG_ANY));
    }
    /* the table holds exactly these keys (one entry each) */
    size_t n = 0;
    for (; config_key_at(n); n++)
        CHECK(config_key_kind(config_key_at(n)) != CONFIG_ANY);
    CHECK_INT((int)n, (int)(sizeof keys / sizeof keys[0]) - 1);
    /* loglevel is checked where it comes in, as lib/mesh/reload.c applies it */
    char err[256] = "";
    cJSON *v = cJSON_CreateNumber(7);
    CHECK_INT(config_check_value("loglevel", v, err, sizeof err), 0);
    cJSON_SetNumberValue(v, 10);
    CHECK_INT(config_check_value("loglevel", v, err, sizeof err), AEMP_ECONFIG);
    CHECK_STR(err, "\"loglevel\" must be a whole number from 0 (nothing) to 9 (trace), not 10");
    cJSON_SetNumberValue(v, 2.5);
    CHECK_INT(config_check_value("loglevel", v, err, sizeof err), AEMP_ECONFIG);
    cJSON_Delete(v);
    v = cJSON_CreateString("3");
    CHECK_INT(config_check_value("loglevel", v, err, sizeof err), 0);
    cJSON_Delete(v);
}

/* framing_format and the auth lists take only names that exist (1.30's
 * framings, its four auth methods); the node offers only the framings it
 * reads, and a list without one cannot start. */
static void test_framing_and_auth_names(void)
{
    static const struct {
        const char *key, *json, *err; /* err NULL: accepted */
    } cases[] = {
        {"framing_format", "[\"json\"]", NULL},
        {"framing_format", "[\"storable\",\"json\",\"cbor\",\"My::Format\"]", NULL},
        {"framing_format", "[\"jsn\"]",
         "\"framing_format\": \"jsn\" is not a framing; this node reads json, 1.30 nodes also "
         "storable, cbor and Perl::Package formats"},
        {"auth_offer", "[\"hmac_md6_64_256\",\"tls_md6_64_256\"]", NULL},
        {"auth_accept", "[\"tls_anon\",\"cleartext\"]", NULL},
        {"auth_offer", "[\"hmac\"]",
         "\"auth_offer\": \"hmac\" is not an auth method; the methods are tls_md6_64_256, "
         "hmac_md6_64_256, tls_anon and cleartext"},
        {"auth_accept", "[\"cleartext\",\"md5\"]",
         "\"auth_accept\": \"md5\" is not an auth method; the methods are tls_md6_64_256, "
         "hmac_md6_64_256, tls_anon and cleartext"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        cJSON *v = cJSON_Parse(cases[i].json);
        int rc = config_check_value(cases[i].key, v, err, sizeof err);
        if (cases[i].err) {
            CHECK_INT(rc, AEMP_ECONFIG);
            CHECK_STR(err, cases[i].err);
        } else {
            CHECK_INT(rc, 0);
        }
        cJSON_Delete(v);
    }
    static const struct {
        const char *json, *read; /* read NULL: none left */
    } offers[] = {
        {"[\"json\"]", "[\"json\"]"},
        {"[\"storable\",\"json\"]", "[\"json\"]"},
        {"[\"json\",\"storable\",\"json\"]", "[\"json\"]"},
        {"[\"storable\"]", NULL},
        {"[]", NULL},
    };
    for (size_t i = 0; i < sizeof offers / sizeof offers[0]; i++) {
        char err[512] = "";
        cJSON *v = cJSON_Parse(offers[i].json);
        cJSON *r = config_framings_read(v, err, sizeof err);
        char *t = r ? cJSON_PrintUnformatted(r) : NULL;
        if (offers[i].read) {
            CHECK_STR(t, offers[i].read);
        } else {
            CHECK(r == NULL);
            char want[300];
            snprintf(want, sizeof want,
                     "framing_format %s leaves no framing this node reads: it reads only json "
                     "(add \"json\", or remove the key for the default [\"json\"])",
                     offers[i].json);
            CHECK_STR(err, want);
        }
        free(t);
        cJSON_Delete(r);
        cJSON_Delete(v);
    }
    /* a node configured so does not start, and says why */
    aemp_node *n = aemp_node_new(NULL);
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"x\",\"binds\":[],\"framing_format\":[\"storable\"]}");
    char err[512] = "";
    CHECK_INT(aemp_configure_effective(n, cfg, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "leaves no framing this node reads") != NULL);
    cJSON_Delete(cfg);
    aemp_node_free(n);
}

T_MAIN(T(test_addresses), T(test_values), T(test_file), T(test_configure_refuses),
       T(test_key_kinds), T(test_framing_and_auth_names))
