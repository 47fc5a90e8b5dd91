/* Tests of the 1.30 Kernel/MP helpers (kernel.c, cal.c's after_snd), the log
 * handler (logtap.c) and the configuration API (config_api.c) on a real
 * event loop; snd_on, snd_to_func and aemp_log_catch() against a second
 * node that is a real `aemp run` process. */
#include "aemp.h"
#include "nettest.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------- local */

static aemp_node *local_node(struct event_base *base)
{
    return mknode(base, "kn", 0, NULL, "s3cret", NULL, 5);
}

static void test_port_is_local_and_node_is_known(void)
{
    struct event_base *base = event_base_new();
    aemp_node *n = local_node(base);
    char *p = aemp_port(n);
    CHECK(aemp_port_is_local(n, p));
    CHECK(aemp_port_is_local(n, "kn"));
    CHECK(aemp_port_is_local(n, "kn#whatever"));
    CHECK(!aemp_port_is_local(n, "other#x"));
    CHECK(!aemp_port_is_local(n, "kn2#x"));
    CHECK(!aemp_port_is_local(n, ""));
    CHECK(!aemp_port_is_local(n, NULL));
    CHECK(aemp_node_is_known(n, "kn"));
    CHECK(!aemp_node_is_known(n, "stranger"));
    CHECK(!aemp_node_is_known(n, NULL));
    /* sending to a node makes it known (a record while connecting) */
    aemp_snd_json(n, "stranger#x", "[1]");
    CHECK(aemp_node_is_known(n, "stranger"));
    free(p);
    aemp_node_free(n);
    event_base_free(base);
}

/* grp_reg GROUP => $NODE, as eg/chat_server2 does */
static void test_grp_reg_of_the_node_id(void)
{
    struct event_base *base = event_base_new();
    aemp_node *n = local_node(base);
    aemp_guard *g = NULL;
    CHECK_INT(aemp_grp_reg(n, "eg_chat_server2", "kn", &g), 0);
    CHECK_INT(aemp_grp_reg(n, "eg_chat_server2", "kn#", NULL), AEMP_EINVAL);
    CHECK_INT(aemp_grp_reg(n, "eg_chat_server2", "other", NULL), AEMP_EINVAL);
    run_until(base, NULL, 0, 0.1);
    cJSON *m = aemp_grp_get(n, "eg_chat_server2");
    CHECK(json_is(m, "[\"kn\"]"));
    cJSON_Delete(m);
    aemp_guard_free(g);
    run_until(base, NULL, 0, 0.1);
    m = aemp_grp_get(n, "eg_chat_server2");
    CHECK(!m || cJSON_GetArraySize(m) == 0);
    cJSON_Delete(m);
    aemp_node_free(n);
    event_base_free(base);
}

struct tagrec {
    struct rec dflt, a, b;
};

static void test_rcv_tags_and_port_cb(void)
{
    struct event_base *base = event_base_new();
    aemp_node *n = local_node(base);
    struct tagrec r = {0};
    char *p = aemp_port_cb(n, rec_rcv, &r.dflt);
    CHECK(p != NULL);
    CHECK(aemp_port_cb(n, NULL, NULL) == NULL);
    const struct aemp_rcv_tag tags[] = {{"a", rec_rcv, &r.a}, {"b", rec_rcv, &r.b}};
    CHECK_INT(aemp_rcv_tags(n, p, tags, 2), 0);
    aemp_snd_json(n, p, "[\"a\", 1]");
    aemp_snd_json(n, p, "[\"b\", 2]");
    aemp_snd_json(n, p, "[\"c\", 3]");
    CHECK(run_until(base, &r.dflt.calls, 1, 5));
    CHECK_INT(r.a.calls, 1);
    CHECK_INT(r.b.calls, 1);
    CHECK(json_is(r.a.last, "[\"a\",1]"));
    CHECK(json_is(r.b.last, "[\"b\",2]"));
    CHECK(json_is(r.dflt.last, "[\"c\",3]"));
    /* remove "a" and replace the default in one call: "a" goes to the new default */
    struct rec d2 = {0};
    const struct aemp_rcv_tag t2[] = {{"a", NULL, NULL}, {NULL, rec_rcv, &d2}};
    CHECK_INT(aemp_rcv_tags(n, p, t2, 2), 0);
    aemp_snd_json(n, p, "[\"a\", 4]");
    CHECK(run_until(base, &d2.calls, 1, 5));
    CHECK_INT(r.a.calls, 1);
    CHECK(json_is(d2.last, "[\"a\",4]"));
    /* a remote port or a node port is refused and nothing is set */
    CHECK_INT(aemp_rcv_tags(n, "other#x", tags, 2), AEMP_EINVAL);
    CHECK_INT(aemp_rcv_tags(n, "kn", tags, 2), AEMP_EINVAL);
    rec_free(&r.dflt);
    rec_free(&r.a);
    rec_free(&r.b);
    rec_free(&d2);
    free(p);
    aemp_node_free(n);
    event_base_free(base);
}

static void test_after_snd(void)
{
    struct event_base *base = event_base_new();
    aemp_node *n = local_node(base);
    struct rec r = {0}, never = {0};
    char *p = aemp_port_cb(n, rec_rcv, &r);
    char *q = aemp_port_cb(n, rec_rcv, &never);
    double t0 = now();
    CHECK_INT(aemp_after_snd(n, 0.3, p, json("[\"tick\",7]"), NULL), 0);
    aemp_guard *g = NULL;
    CHECK_INT(aemp_after_snd(n, 0.2, q, json("[\"cancelled\"]"), &g), 0);
    CHECK(g != NULL);
    aemp_guard_free(g); /* cancels that send */
    run_until(base, NULL, 0, 0.1);
    CHECK_INT(r.calls, 0); /* not before its time */
    CHECK(run_until(base, &r.calls, 1, 5));
    CHECK(now() - t0 >= 0.29);
    CHECK(json_is(r.last, "[\"tick\",7]"));
    run_until(base, NULL, 0, 0.3);
    CHECK_INT(never.calls, 0);
    CHECK_INT(aemp_after_snd(n, 1, p, json("{}"), NULL), AEMP_EINVAL);
    CHECK_INT(aemp_after_snd(n, 1, NULL, json("[]"), NULL), AEMP_EINVAL);
    rec_free(&r);
    free(p);
    free(q);
    aemp_node_free(n);
    event_base_free(base);
}

/* ------------------------------------------------------------ peval, psub */

struct pev {
    aemp_node *node;
    char self[128];
    int fail;
    int calls;
    aemp_psub *ps;
};

static int pev_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct pev *e = ud;
    e->calls++;
    snprintf(e->self, sizeof e->self, "%s", aemp_self(node) ? aemp_self(node) : "(none)");
    if (e->fail) {
        aemp_fail(node, "failed on purpose %d", e->calls);
        return -1;
    }
    return 0;
}

/* A port callback that makes a psub of $SELF for later. */
static int make_psub(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct pev *e = ud;
    e->ps = aemp_psub_new(node, NULL, pev_fn, e);
    return 0;
}

static void test_peval_and_psub(void)
{
    struct event_base *base = event_base_new();
    aemp_node *n = local_node(base);
    struct pev e = {n};
    struct rec died = {0};
    char *p = aemp_port_cb(n, rec_rcv, &died); /* any callback keeps it alive */
    aemp_mon(n, p, rec_mon, &died, NULL);
    CHECK(aemp_self(n) == NULL);
    CHECK_INT(aemp_peval(n, p, pev_fn, NULL, &e), 0);
    CHECK_STR(e.self, p);
    CHECK(aemp_self(n) == NULL); /* restored */
    run_until(base, NULL, 0, 0.05);
    CHECK_INT(died.calls, 0);
    CHECK(aemp_psub_new(n, NULL, pev_fn, &e) == NULL); /* no $SELF outside callbacks */
    /* a psub made inside a callback remembers that port */
    char *q = aemp_port_cb(n, make_psub, &e);
    struct rec qdied = {0};
    aemp_mon(n, q, rec_mon, &qdied, NULL);
    aemp_snd_json(n, q, "[\"go\"]");
    run_until(base, NULL, 0, 0.05);
    CHECK(e.ps != NULL);
    CHECK_STR(aemp_psub_port(e.ps), q);
    e.self[0] = 0;
    CHECK_INT(aemp_psub_call(e.ps, NULL), 0);
    CHECK_STR(e.self, q);
    /* failure inside psub kills the remembered port with ["die", MSG] */
    e.fail = 1;
    CHECK_INT(aemp_psub_call(e.ps, NULL), -1);
    CHECK(run_until(base, &qdied.calls, 1, 5));
    CHECK(json_is(qdied.last, "[\"die\",\"failed on purpose 3\"]"));
    /* the port is gone: the psub does not run any more */
    int before = e.calls;
    CHECK_INT(aemp_psub_call(e.ps, NULL), AEMP_ENOENT);
    CHECK_INT(e.calls, before);
    /* peval failure kills its port too */
    CHECK_INT(aemp_peval(n, p, pev_fn, NULL, &e), -1);
    CHECK(run_until(base, &died.calls, 1, 5));
    CHECK(json_is(died.last, "[\"die\",\"failed on purpose 4\"]"));
    CHECK_INT(aemp_peval(n, NULL, pev_fn, NULL, &e), AEMP_EINVAL);
    aemp_psub_free(e.ps);
    rec_free(&died);
    rec_free(&qdied);
    free(p);
    free(q);
    aemp_node_free(n);
    event_base_free(base);
}

/* ------------------------------------------------------------ log handler */

struct loglines {
    int n, max_level_seen, nested;
    char last[256];
};

static void on_log(int level, const char *text, void *ud)
{
    struct loglines *l = ud;
    l->n++;
    if (level > l->max_level_seen) l->max_level_seen = level;
    snprintf(l->last, sizeof l->last, "%s", text);
    aemp_log(1, "logged inside the handler"); /* must not come back to us */
}

static void test_log_set_handler(void)
{
    int old = aemp_log_level();
    struct loglines l = {0};
    aemp_log_set_level(0); /* nothing on stderr: routed to the handler only */
    CHECK_INT(aemp_log_set_handler(on_log, &l, 7), 0);
    aemp_log(7, "seven %d", 7);
    CHECK_INT(l.n, 1);
    CHECK_STR(l.last, "seven 7");
    aemp_log(8, "eight");
    CHECK_INT(l.n, 1); /* above the handler's level */
    aemp_log(2, "two");
    CHECK_INT(l.n, 2);
    CHECK_INT(l.max_level_seen, 7);
    /* a second handler replaces the first */
    struct loglines l2 = {0};
    CHECK_INT(aemp_log_set_handler(on_log, &l2, 9), 0);
    aemp_log(9, "nine");
    CHECK_INT(l.n, 2);
    CHECK_INT(l2.n, 1);
    CHECK_INT(aemp_log_set_handler(NULL, NULL, 0), 0);
    aemp_log(1, "nobody");
    CHECK_INT(l2.n, 1);
    aemp_log_set_level(old);
}

/* --------------------------------------------------------------- config */

static void test_config_api(void)
{
    char dir[] = "/tmp/aemp-kernel-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/rc", dir);
    cJSON *cfg = NULL;
    CHECK_INT(aemp_config_load(path, &cfg, err, sizeof err), 0); /* missing: empty */
    CHECK(json_is(cfg, "{\"version\":1}"));
    cJSON_AddStringToObject(cfg, "secret", "xyz");
    cJSON *prof = cJSON_AddObjectToObject(cfg, "profile");
    cJSON_AddItemToObject(prof, "base", json("{\"binds\":[\"127.0.0.1:1\"],\"monitor_timeout\":9}"));
    cJSON_AddItemToObject(prof, "leaf", json("{\"parent\":\"base\",\"nodeid\":\"leafy\"}"));
    CHECK_INT(aemp_config_save(path, cfg, err, sizeof err), 0);
    cJSON *back = NULL;
    CHECK_INT(aemp_config_load(path, &back, err, sizeof err), 0);
    CHECK(back && cJSON_Compare(back, cfg, 1));
    cJSON *eff = NULL;
    cJSON *kv = json("{\"connect_interval\":3,\"monitor_timeout\":1}");
    CHECK_INT(aemp_config_find_profile(back, "leaf", kv, &eff, err, sizeof err), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(eff, "nodeid")), "leafy");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(eff, "secret")), "xyz");
    CHECK(json_is(cJSON_GetObjectItem(eff, "binds"), "[\"127.0.0.1:1\"]"));
    CHECK_INT(cJSON_GetObjectItem(eff, "monitor_timeout")->valuedouble, 9); /* file over kv */
    CHECK_INT(cJSON_GetObjectItem(eff, "connect_interval")->valuedouble, 3); /* kv over default */
    cJSON_Delete(eff);
    /* errors say what is wrong */
    cJSON_AddItemToObject(prof, "loop", json("{\"parent\":\"loop\"}"));
    eff = NULL;
    CHECK_INT(aemp_config_find_profile(cfg, "loop", NULL, &eff, err, sizeof err), AEMP_ECONFIG);
    CHECK(eff == NULL && strstr(err, "loop"));
    CHECK_INT(aemp_config_find_profile(NULL, "x", NULL, &eff, err, sizeof err), AEMP_EINVAL);
    FILE *f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    cJSON_Delete(back);
    back = NULL;
    CHECK_INT(aemp_config_load(path, &back, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, path) != NULL);
    snprintf(path, sizeof path, "%s/nodir/rc", dir);
    CHECK_INT(aemp_config_save(path, cfg, err, sizeof err), AEMP_EIO);
    cJSON_Delete(kv);
    cJSON_Delete(cfg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

/* 1.30's configure with an odd argument list: the first is the profile. */
static void test_configure_args(void)
{
    char dir[] = "/tmp/aemp-kernel-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/rc", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"version\":1,\"profile\":{\"seed2\":{\"nodeid\":\"s2\",\"binds\":[]},"
          "\"other\":{\"nodeid\":\"o\",\"binds\":[]}}}\n",
          f);
    fclose(f);
    const char *old = getenv("PERL_ANYEVENT_MP_RC");
    char *saved = old ? strdup(old) : NULL;
    setenv("PERL_ANYEVENT_MP_RC", path, 1);
    static const char *const ok[][2] = {
        {"[\"seed2\"]", "s2"},
        {"[\"seed2\",\"monitor_timeout\",7]", "s2"},
        {"[\"profile\",\"seed2\",\"monitor_timeout\",7]", "s2"},
        {"[\"other\",\"profile\",\"seed2\"]", "s2"}, /* the later pair wins */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        aemp_node *n = aemp_node_new(NULL);
        cJSON *args = json(ok[i][0]);
        *err = 0;
        int rc = aemp_configure_args(n, args, err, sizeof err);
        if (rc) fprintf(stderr, "# %s: %s\n", ok[i][0], err);
        CHECK_INT(rc, 0);
        CHECK_STR(aemp_node_id(n), ok[i][1]);
        if (i == 1 || i == 2)
            CHECK_INT(cJSON_GetObjectItem(aemp_node_config(n), "monitor_timeout")->valuedouble, 7);
        cJSON_Delete(args);
        aemp_node_free(n);
    }
    static const char *const bad[] = {"[1]", "[\"seed2\",1,2]", "[\"profile\",3]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aemp_node *n = aemp_node_new(NULL);
        cJSON *args = json(bad[i]);
        *err = 0;
        CHECK_INT(aemp_configure_args(n, args, err, sizeof err), AEMP_EINVAL);
        CHECK(*err != 0);
        cJSON_Delete(args);
        aemp_node_free(n);
    }
    if (saved) setenv("PERL_ANYEVENT_MP_RC", saved, 1);
    else unsetenv("PERL_ANYEVENT_MP_RC");
    free(saved);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------ against an aemp process */

struct remote {
    pid_t pid;
    char dir[64];
};

/* `aemp run nodeid kr seeds ADDR binds []` with the secret, as a child. */
static int remote_start(struct remote *r, const char *seed)
{
    const char *bin = getenv("AEMP_BIN");
    if (!bin) return -1;
    snprintf(r->dir, sizeof r->dir, "/tmp/aemp-kernel-XXXXXX");
    if (!mkdtemp(r->dir)) return -1;
    char rc[128];
    snprintf(rc, sizeof rc, "%s/rc", r->dir);
    FILE *f = fopen(rc, "w");
    if (!f) return -1;
    fputs("{\"version\":1,\"secret\":\"s3cret\"}\n", f);
    fclose(f);
    r->pid = fork();
    if (r->pid == 0) {
        setenv("PERL_ANYEVENT_MP_RC", rc, 1);
        setenv("AEMP_WARNLEVEL", "5", 1);
        execl(bin, bin, "run", "nodeid", "kr", "binds", "[]", "seeds", seed, (char *)NULL);
        _exit(127);
    }
    return r->pid > 0 ? 0 : -1;
}

static void remote_stop(struct remote *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (system(cmd)) fprintf(stderr, "# could not remove %s\n", r->dir);
}

struct caught {
    int n;
    char node[64];
    char text[512];
};

static void on_caught(aemp_node *node, const char *nodeid, int level, const char *text, void *ud)
{
    struct caught *c = ud;
    if (!strstr(text, "kernel_test_mark")) return;
    c->n++;
    snprintf(c->node, sizeof c->node, "%s", nodeid);
    snprintf(c->text, sizeof c->text, "%s", text);
}

static void test_snd_on_snd_to_func_and_catch_with_a_process(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode(base, "ka", 1, NULL, "s3cret", NULL, 5);
    struct remote r = {0};
    CHECK_INT(remote_start(&r, addr_of(a)), 0);
    int up = 0;
    for (double t0 = now(); !up && now() - t0 < 15; run_until(base, NULL, 0, 0.05))
        up = aemp_node_is_up(a, "kr");
    CHECK(up);
    CHECK(aemp_node_is_known(a, "kr"));
    CHECK(!aemp_port_is_local(a, "kr#x"));

    /* snd_on: kr relays the message to our port */
    struct rec got = {0};
    char *p = aemp_port_cb(a, rec_rcv, &got);
    CHECK_INT(aemp_snd_on(a, "kr", p, json("[\"via\",\"kr\"]")), 0);
    CHECK(run_until(base, &got.calls, 1, 10));
    CHECK(json_is(got.last, "[\"via\",\"kr\"]"));
    CHECK_INT(aemp_snd_on(a, "kr#x", p, json("[]")), AEMP_EINVAL);

    /* snd_to_func: call LogCatcher::connect on kr with our port as catcher,
     * then make kr log a line (a request for a function it lacks) */
    struct rec lines = {0};
    char *lp = aemp_port_cb(a, rec_rcv, &lines);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(args, cJSON_CreateString(lp));
    cJSON_AddItemToArray(args, cJSON_CreateNumber(4));
    CHECK_INT(aemp_snd_to_func(a, "kr", "AnyEvent::MP::LogCatcher::connect", args), 0);
    /* no wait: over the one connection kr handles connect before the next request */
    CHECK_INT(aemp_snd_to_func(a, "kr", "kernel_test_mark_func", NULL), 0);
    CHECK(run_until(base, &lines.calls, 1, 10));
    const cJSON *lv = cJSON_GetArrayItem(lines.last, 0), *tx = cJSON_GetArrayItem(lines.last, 1);
    CHECK(cJSON_IsNumber(lv) && lv->valueint == 4);
    CHECK(cJSON_IsString(tx) && strstr(tx->valuestring, "kernel_test_mark_func"));
    CHECK_INT(aemp_snd_to_func(a, "kr#p", "f", NULL), AEMP_EINVAL);

    /* aemp_log_catch of kr only, with a callback */
    struct caught c = {0};
    cJSON *only = json("[\"kr\"]"); /* borrowed by aemp_log_catch() */
    CHECK_INT(aemp_log_catch(a, 5, only, on_caught, &c), 0);
    cJSON_Delete(only);
    aemp_snd_to_func(a, "kr", "kernel_test_mark_again", NULL);
    CHECK(run_until(base, &c.n, 1, 10));
    CHECK_STR(c.node, "kr");
    CHECK(strstr(c.text, "kernel_test_mark_again") != NULL);
    CHECK_INT(aemp_log_catch(a, -1, NULL, NULL, NULL), 0);

    /* snd_to_func on the local node runs from the loop, not inside the call */
    struct pev e = {a};
    aemp_register(a, "test::local", (aemp_func_fn)pev_fn, &e);
    CHECK_INT(aemp_snd_to_func(a, "ka", "test::local", json("[1]")), 0);
    CHECK_INT(e.calls, 0);
    CHECK(run_until(base, &e.calls, 1, 5));

    rec_free(&got);
    rec_free(&lines);
    free(p);
    free(lp);
    remote_stop(&r);
    aemp_node_free(a);
    event_base_free(base);
}

T_MAIN(T(test_port_is_local_and_node_is_known), T(test_grp_reg_of_the_node_id), T(test_rcv_tags_and_port_cb), T(test_after_snd),
       T(test_peval_and_psub), T(test_log_set_handler), T(test_config_api), T(test_configure_args),
       T(test_snd_on_snd_to_func_and_catch_with_a_process))
