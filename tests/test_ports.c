/* Tests of the local half of AnyEvent::MP: ports, rcv, snd, kil, the four
 * forms of mon, guards, $SELF, error-kills-port, after, cal and local spawn.
 * One row of the semantics table per test; each uses a real node on a real
 * event loop and real callbacks. */
#include "aemp.h"
#include "nettest.h"
#include "strmap.h"

#include <event2/event.h>
#include <stdarg.h>
#include <sys/time.h>

/* ------------------------------------------------------------ the rows */

static void test_snd_reaches_default_callback_from_loop(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec r = {0};
    CHECK_INT(aemp_rcv(n, p, NULL, rec_rcv, &r), 0);
    CHECK_INT(aemp_snd(n, p, json("[\"hello\",1,{\"a\":[2]}]")), 0);
    CHECK_INT(r.calls, 0); /* never inside snd */
    CHECK(run_until(aemp_node_base(n), &r.calls, 1, 5));
    CHECK(json_is(r.last, "[\"hello\",1,{\"a\":[2]}]"));
    CHECK_STR(r.self, p);
    CHECK(aemp_self(n) == NULL); /* outside callbacks */
    rec_free(&r);
    free(p);
    aemp_node_free(n);
}

static void test_port_ids_have_node_and_name(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n), *q = aemp_port(n);
    char *nodeid = aemp_node_of(p);
    CHECK_STR(nodeid, aemp_node_id(n));
    CHECK(strncmp(aemp_node_id(n), "anon/", 5) == 0);
    CHECK(strchr(p, '#') && strchr(p, '#')[1]);
    CHECK(strcmp(p, q) != 0);
    CHECK(strchr(strchr(p, '#') + 1, '#') == NULL);
    free(nodeid);
    free(p);
    free(q);
    aemp_node_free(n);
}

static void test_tagged_callback_and_default(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec def = {0}, ping = {0};
    aemp_rcv(n, p, NULL, rec_rcv, &def);
    aemp_rcv(n, p, "ping", rec_rcv, &ping);
    aemp_snd(n, p, json("[\"ping\",1]"));
    aemp_snd(n, p, json("[\"pong\",2]"));
    aemp_snd(n, p, json("[3,\"ping\"]"));
    run_until(aemp_node_base(n), &def.calls, 2, 5);
    CHECK_INT(ping.calls, 1);
    CHECK(json_is(ping.last, "[\"ping\",1]"));
    CHECK_INT(def.calls, 2);
    CHECK(json_is(def.last, "[3,\"ping\"]"));
    rec_free(&def);
    rec_free(&ping);
    free(p);
    aemp_node_free(n);
}

static void test_replace_and_remove_callbacks(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec a = {0}, b = {0}, t = {0};
    aemp_rcv(n, p, NULL, rec_rcv, &a);
    aemp_rcv(n, p, NULL, rec_rcv, &b); /* replaces a */
    aemp_rcv(n, p, "x", rec_rcv, &t);
    aemp_rcv(n, p, "x", NULL, NULL); /* removes the tagged one */
    aemp_snd(n, p, json("[\"x\"]"));
    run_until(aemp_node_base(n), &b.calls, 1, 5);
    CHECK_INT(a.calls, 0);
    CHECK_INT(t.calls, 0);
    CHECK_INT(b.calls, 1);
    /* Removing the default callback: the next message kills the port. */
    struct rec m = {0};
    aemp_rcv(n, p, NULL, NULL, NULL);
    aemp_mon(n, p, rec_mon, &m, NULL);
    aemp_snd(n, p, json("[\"y\"]"));
    run_until(aemp_node_base(n), &m.calls, 1, 5);
    CHECK(json_is(m.last, "[\"die\",\"received message on port without callback\"]"));
    CHECK_INT(b.calls, 1);
    rec_free(&a);
    rec_free(&b);
    rec_free(&m);
    free(p);
    aemp_node_free(n);
}

static void test_message_without_callback_kills_port(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec m = {0};
    CHECK_INT(aemp_mon(n, p, rec_mon, &m, NULL), 0);
    aemp_snd(n, p, json("[\"anything\"]"));
    CHECK(run_until(aemp_node_base(n), &m.calls, 1, 5));
    CHECK(json_is(m.last, "[\"die\",\"received message on port without callback\"]"));
    CHECK_STR(m.port, p);
    rec_free(&m);
    free(p);
    aemp_node_free(n);
}

static void test_failing_callback_kills_its_port(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec r = {.fail = 1}, m = {0};
    aemp_rcv(n, p, NULL, rec_rcv, &r);
    aemp_mon(n, p, rec_mon, &m, NULL);
    aemp_snd(n, p, json("[1]"));
    aemp_snd(n, p, json("[2]")); /* arrives at a dead port: dropped */
    CHECK(run_until(aemp_node_base(n), &m.calls, 1, 5));
    run_until(aemp_node_base(n), NULL, 0, 0.05);
    CHECK(json_is(m.last, "[\"die\",\"boom 42\"]"));
    CHECK_INT(r.calls, 1);
    rec_free(&r);
    rec_free(&m);
    free(p);
    aemp_node_free(n);
}

static void test_kil_normal_and_with_reason(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n), *q = aemp_port(n);
    struct rec mp = {0}, mq = {0};
    aemp_mon(n, p, rec_mon, &mp, NULL);
    aemp_mon(n, q, rec_mon, &mq, NULL);
    CHECK_INT(aemp_kil(n, p, NULL), 0);
    CHECK_INT(aemp_kil(n, q, json("[\"my_error\",\"it broke\",7]")), 0);
    run_until(aemp_node_base(n), &mq.calls, 1, 1);
    CHECK(json_is(mp.last, "[]"));
    CHECK(json_is(mq.last, "[\"my_error\",\"it broke\",7]"));
    rec_free(&mp);
    rec_free(&mq);
    free(p);
    free(q);
    aemp_node_free(n);
}

static void test_kil_unknown_ok_node_port_refused(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char unknown[300], nodeport[300];
    snprintf(unknown, sizeof unknown, "%s#nosuchport", aemp_node_id(n));
    snprintf(nodeport, sizeof nodeport, "%s#", aemp_node_id(n));
    CHECK_INT(aemp_kil(n, unknown, NULL), 0);
    CHECK_INT(aemp_kil(n, aemp_node_id(n), NULL), AEMP_EPERM);
    CHECK_INT(aemp_kil(n, nodeport, json("[\"x\"]")), AEMP_EPERM);
    aemp_node_free(n);
}

static void test_monitors_fire_exactly_once(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec m1 = {0}, m2 = {0};
    aemp_guard *g = NULL;
    aemp_mon(n, p, rec_mon, &m1, &g);
    aemp_mon(n, p, rec_mon, &m2, NULL);
    aemp_kil(n, p, json("[\"first\"]"));
    aemp_kil(n, p, json("[\"second\"]"));
    run_until(aemp_node_base(n), NULL, 0, 0.05);
    CHECK_INT(m1.calls, 1);
    CHECK_INT(m2.calls, 1);
    CHECK(json_is(m1.last, "[\"first\"]"));
    aemp_guard_free(g); /* inert now; freeing must not fire or crash */
    CHECK_INT(m1.calls, 1);
    rec_free(&m1);
    rec_free(&m2);
    free(p);
    aemp_node_free(n);
}

static void test_guard_cancels_monitor(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec m = {0}, keep = {0};
    aemp_guard *g;
    aemp_mon(n, p, rec_mon, &m, &g);
    aemp_mon(n, p, rec_mon, &keep, NULL);
    aemp_guard_free(g);
    aemp_kil(n, p, json("[\"x\"]"));
    run_until(aemp_node_base(n), NULL, 0, 0.05);
    CHECK_INT(m.calls, 0);
    CHECK_INT(keep.calls, 1);
    rec_free(&m);
    rec_free(&keep);
    free(p);
    aemp_node_free(n);
}

static void test_mon_nonexistent_port_fires_from_loop(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char id[300], want[400];
    snprintf(id, sizeof id, "%s#ghost", aemp_node_id(n));
    struct rec m = {0};
    CHECK_INT(aemp_mon(n, id, rec_mon, &m, NULL), 0);
    CHECK_INT(m.calls, 0);
    CHECK(run_until(aemp_node_base(n), &m.calls, 1, 5));
    snprintf(want, sizeof want, "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]",
             id);
    CHECK(json_is(m.last, want));
    rec_free(&m);
    aemp_node_free(n);
}

static void test_mon_kil_only_on_abnormal(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *a = aemp_port(n), *b = aemp_port(n), *c = aemp_port(n), *d = aemp_port(n);
    struct rec mb = {0}, md = {0};
    aemp_mon_kil(n, a, b, NULL); /* a dies abnormally -> b too */
    aemp_mon(n, b, rec_mon, &mb, NULL);
    aemp_mon_kil(n, c, d, NULL); /* c dies normally -> d lives */
    aemp_mon(n, d, rec_mon, &md, NULL);
    aemp_kil(n, a, json("[\"crash\",\"why\"]"));
    aemp_kil(n, c, NULL);
    run_until(aemp_node_base(n), NULL, 0, 0.05);
    CHECK_INT(mb.calls, 1);
    CHECK(json_is(mb.last, "[\"crash\",\"why\"]"));
    CHECK_INT(md.calls, 0);
    aemp_kil(n, d, NULL);
    CHECK_INT(md.calls, 1);
    rec_free(&mb);
    rec_free(&md);
    free(a);
    free(b);
    free(c);
    free(d);
    aemp_node_free(n);
}

/* rcv callback that makes its port ($SELF) die with the port in ud. */
static int link_self(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    CHECK_INT(aemp_mon_self(node, ud, NULL), 0);
    return 0;
}

static void test_mon_self_kills_current_port(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *a = aemp_port(n), *b = aemp_port(n);
    struct rec mb = {0};
    CHECK_INT(aemp_mon_self(n, a, NULL), AEMP_ESTATE); /* outside a callback */
    aemp_rcv(n, b, NULL, link_self, a);
    aemp_mon(n, b, rec_mon, &mb, NULL);
    aemp_snd(n, b, json("[\"link\"]"));
    run_until(aemp_node_base(n), NULL, 0, 0.05);
    CHECK_INT(mb.calls, 0);
    aemp_kil(n, a, json("[\"gone\"]"));
    CHECK_INT(mb.calls, 1);
    CHECK(json_is(mb.last, "[\"gone\"]"));
    rec_free(&mb);
    free(a);
    free(b);
    aemp_node_free(n);
}

static void test_mon_snd_appends_reason(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *a = aemp_port(n), *dest = aemp_port(n), *c = aemp_port(n);
    struct rec r = {0};
    aemp_rcv(n, dest, NULL, rec_rcv, &r);
    aemp_mon_snd(n, a, dest, json("[\"died\",\"a\"]"), NULL);
    aemp_mon_snd(n, c, dest, json("[\"died\",\"c\"]"), NULL);
    aemp_kil(n, a, json("[\"oops\",1]"));
    CHECK(run_until(aemp_node_base(n), &r.calls, 1, 5));
    CHECK(json_is(r.last, "[\"died\",\"a\",\"oops\",1]"));
    aemp_kil(n, c, NULL); /* normal death is reported too, with no reason */
    CHECK(run_until(aemp_node_base(n), &r.calls, 2, 5));
    CHECK(json_is(r.last, "[\"died\",\"c\"]"));
    rec_free(&r);
    free(a);
    free(dest);
    free(c);
    aemp_node_free(n);
}

static void count_release(void *ud)
{
    ++*(int *)ud;
}

static void test_mon_guard_releases_once(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *a = aemp_port(n), *b = aemp_port(n);
    int ra = 0, rb = 0;
    aemp_guard *ga, *gb;
    aemp_mon_guard(n, a, count_release, &ra, &ga);
    aemp_mon_guard(n, b, count_release, &rb, &gb);
    aemp_kil(n, a, NULL);        /* death releases */
    CHECK_INT(ra, 1);
    aemp_guard_free(ga);         /* already released: no second call */
    CHECK_INT(ra, 1);
    aemp_guard_free(gb);         /* guard release while the port lives */
    CHECK_INT(rb, 1);
    aemp_kil(n, b, json("[\"x\"]"));
    CHECK_INT(rb, 1);
    free(a);
    free(b);
    aemp_node_free(n);
}

static int order_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    int *next = ud;
    if (cJSON_GetArrayItem(msg, 0)->valueint != *next) *next = -1000000;
    else ++*next;
    return 0;
}

static void test_order_every_message(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    int next = 0;
    aemp_rcv(n, p, NULL, order_rcv, &next);
    for (int i = 0; i < 10000; i++) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateNumber(i));
        aemp_snd(n, p, m);
    }
    run_until(aemp_node_base(n), &next, 10000, 10);
    CHECK_INT(next, 10000);
    free(p);
    aemp_node_free(n);
}

static void after_fired(aemp_node *node, void *ud)
{
    ++*(int *)ud;
}

static void test_after_and_its_guard(void)
{
    aemp_node *n = aemp_node_new(NULL);
    int fired = 0, cancelled = 0;
    aemp_guard *g;
    double t0 = now();
    CHECK_INT(aemp_after(n, 0.05, after_fired, &fired, NULL), 0);
    CHECK_INT(aemp_after(n, 0.01, after_fired, &cancelled, &g), 0);
    aemp_guard_free(g);
    CHECK(run_until(aemp_node_base(n), &fired, 1, 5));
    double dt = now() - t0;
    CHECK(dt >= 0.045);
    run_until(aemp_node_base(n), NULL, 0, 0.03);
    CHECK_INT(fired, 1);
    CHECK_INT(cancelled, 0);
    aemp_node_free(n);
}

/* A server port: replies to the last element with ["re", ARGS...]. */
static int echo_server(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    int n = cJSON_GetArraySize(msg);
    const cJSON *rp = cJSON_GetArrayItem(msg, n - 1);
    cJSON *reply = cJSON_CreateArray();
    cJSON_AddItemToArray(reply, cJSON_CreateString("re"));
    for (int i = 0; i < n - 1; i++)
        cJSON_AddItemToArray(reply, cJSON_Duplicate(cJSON_GetArrayItem(msg, i), 1));
    aemp_snd(node, rp->valuestring, reply);
    return 0;
}

static int ignore_all(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    return 0;
}

static void test_cal_reply_timeout_and_death(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *srv = aemp_port(n), *mute = aemp_port(n), *doomed = aemp_port(n);
    aemp_rcv(n, srv, NULL, echo_server, NULL);
    aemp_rcv(n, mute, NULL, ignore_all, NULL);
    aemp_rcv(n, doomed, NULL, ignore_all, NULL);
    struct calres a = {0}, b = {0}, c = {0};
    CHECK_INT(aemp_cal(n, srv, json("[\"add\",1,2]"), 5, cal_done, &a), 0);
    CHECK_INT(aemp_cal(n, mute, json("[\"x\"]"), 0.05, cal_done, &b), 0);
    CHECK_INT(aemp_cal(n, doomed, json("[\"x\"]"), 0, cal_done, &c), 0);
    CHECK(run_until(aemp_node_base(n), &a.calls, 1, 5));
    CHECK(json_is(a.reply, "[\"re\",\"add\",1,2]"));
    CHECK(run_until(aemp_node_base(n), &b.calls, 1, 5));
    CHECK(json_is(b.error, "[\"timeout\"]"));
    CHECK_INT(c.calls, 0);
    aemp_kil(n, doomed, json("[\"shot\"]"));
    CHECK(run_until(aemp_node_base(n), &c.calls, 1, 5));
    CHECK(json_is(c.error, "[\"shot\"]"));
    run_until(aemp_node_base(n), NULL, 0, 0.1);
    CHECK_INT(a.calls + b.calls + c.calls, 3);
    cJSON_Delete(a.reply);
    cJSON_Delete(b.error);
    cJSON_Delete(c.error);
    free(srv);
    free(mute);
    free(doomed);
    aemp_node_free(n);
}

struct spawned {
    int runs;
    char self[256];
    cJSON *args;
    struct rec r;
};

static int spawn_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    struct spawned *s = ud;
    s->runs++;
    snprintf(s->self, sizeof s->self, "%s", self);
    CHECK_STR(aemp_self(node), self);
    s->args = cJSON_Duplicate(args, 1);
    return aemp_rcv(node, self, NULL, rec_rcv, &s->r);
}

static int spawn_failing(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    aemp_rcv(node, self, NULL, ignore_all, NULL);
    aemp_fail(node, "cannot start: %s", "no config");
    return -1;
}

static void test_spawn_local_from_loop(void)
{
    aemp_node *n = aemp_node_new(NULL);
    struct spawned s = {0};
    CHECK_INT(aemp_register(n, "test::worker", spawn_fn, &s), 0);
    char *id = aemp_spawn(n, aemp_node_id(n), "test::worker", json("[\"arg\",2]"));
    CHECK(id != NULL);
    CHECK_INT(s.runs, 0); /* never inside spawn */
    struct rec m = {0};
    aemp_mon(n, id, rec_mon, &m, NULL); /* the port does not exist yet: fine */
    aemp_snd(n, id, json("[\"work\"]"));
    CHECK(run_until(aemp_node_base(n), &s.r.calls, 1, 5));
    CHECK_INT(s.runs, 1);
    CHECK_STR(s.self, id);
    CHECK(json_is(s.args, "[\"arg\",2]"));
    CHECK(json_is(s.r.last, "[\"work\"]"));
    CHECK_INT(m.calls, 0);
    aemp_kil(n, id, NULL);
    CHECK_INT(m.calls, 1);
    rec_free(&m);
    rec_free(&s.r);
    cJSON_Delete(s.args);
    free(id);
    aemp_node_free(n);
}

static void test_spawn_failure_and_unknown_function(void)
{
    aemp_node *n = aemp_node_new(NULL);
    aemp_register(n, "test::failing", spawn_failing, NULL);
    char *a = aemp_spawn(n, aemp_node_id(n), "test::failing", NULL);
    char *b = aemp_spawn(n, aemp_node_id(n), "not::registered", NULL);
    struct rec ma = {0}, mb = {0};
    aemp_mon(n, a, rec_mon, &ma, NULL);
    aemp_mon(n, b, rec_mon, &mb, NULL);
    CHECK(run_until(aemp_node_base(n), &mb.calls, 1, 5));
    CHECK(run_until(aemp_node_base(n), &ma.calls, 1, 5));
    CHECK(json_is(ma.last, "[\"die\",\"cannot start: no config\"]"));
    CHECK(cJSON_IsString(cJSON_GetArrayItem(mb.last, 0)) &&
          !strcmp(cJSON_GetArrayItem(mb.last, 0)->valuestring, "no_such_port"));
    CHECK(aemp_spawn(n, "bad#node", "test::failing", NULL) == NULL);
    rec_free(&ma);
    rec_free(&mb);
    free(a);
    free(b);
    aemp_node_free(n);
}

/* Node-port requests sent to our own node go through the same code as
 * requests from the network. */
static void test_node_port_requests_locally(void)
{
    aemp_node *n = aemp_node_new(NULL);
    const char *me = aemp_node_id(n);
    char *rp = aemp_port(n), *victim = aemp_port(n);
    struct rec r = {0}, mv = {0};
    aemp_rcv(n, rp, NULL, rec_rcv, &r);
    aemp_mon(n, victim, rec_mon, &mv, NULL);
    char req[600];
    snprintf(req, sizeof req, "[\"info\",\"%s\",\"info-tag\"]", rp);
    aemp_snd(n, me, json(req));
    CHECK(run_until(aemp_node_base(n), &r.calls, 1, 5));
    snprintf(req, sizeof req, "[\"info-tag\",\"%s\"]", me);
    CHECK(json_is(r.last, req));
    snprintf(req, sizeof req, "[\"time\",\"%s\"]", rp);
    aemp_snd(n, me, json(req));
    CHECK(run_until(aemp_node_base(n), &r.calls, 2, 5));
    CHECK(cJSON_IsNumber(cJSON_GetArrayItem(r.last, 0)) &&
          cJSON_GetArrayItem(r.last, 0)->valuedouble > 1.7e9);
    snprintf(req, sizeof req, "[\"snd\",\"%s\",\"relayed\",1]", rp);
    aemp_snd(n, me, json(req));
    CHECK(run_until(aemp_node_base(n), &r.calls, 3, 5));
    CHECK(json_is(r.last, "[\"relayed\",1]"));
    snprintf(req, sizeof req, "[\"snd_multiple\",[\"%s\",\"m1\"],[\"%s\",\"m2\"]]", rp, rp);
    aemp_snd(n, me, json(req));
    CHECK(run_until(aemp_node_base(n), &r.calls, 5, 5));
    CHECK(json_is(r.last, "[\"m2\"]"));
    snprintf(req, sizeof req, "[\"kil\",\"%s\",\"remote\",\"kill\"]", strchr(victim, '#') + 1);
    aemp_snd(n, me, json(req));
    aemp_snd(n, me, json("[\"No::such::function\",1]")); /* logged and dropped */
    aemp_snd(n, me, json("[\"devnull\",1]"));
    aemp_snd(n, me, json("[\"\"]"));
    CHECK(run_until(aemp_node_base(n), &mv.calls, 1, 5));
    CHECK(json_is(mv.last, "[\"remote\",\"kill\"]"));
    snprintf(req, sizeof req, "[\"eval\",\"6*7\",\"%s\"]", rp);
    aemp_snd(n, me, json(req));
    CHECK(run_until(aemp_node_base(n), &r.calls, 6, 5));
    CHECK(json_is(r.last, "[\"eval is not supported\"]"));
    rec_free(&r);
    rec_free(&mv);
    free(rp);
    free(victim);
    aemp_node_free(n);
}

static void test_snd_rejects_bad_arguments(void)
{
    aemp_node *n = aemp_node_new(NULL);
    CHECK_INT(aemp_snd(n, "", json("[1]")), AEMP_EINVAL);
    CHECK_INT(aemp_snd(n, "#x", json("[1]")), AEMP_EINVAL);
    CHECK_INT(aemp_snd(n, "node#p", json("{\"a\":1}")), AEMP_EINVAL);
    CHECK_INT(aemp_snd_json(n, "node#p", "not json"), AEMP_EINVAL);
    CHECK_INT(aemp_rcv(n, "other-node#p", NULL, ignore_all, NULL), AEMP_EINVAL);
    aemp_node_free(n);
}

/* Freeing a node with queued messages, live monitors, timers and guards:
 * no callback runs, and ASan sees no leak or use after free. */
static void test_node_free_with_pending_work(void)
{
    aemp_node *n = aemp_node_new(NULL);
    char *p = aemp_port(n);
    struct rec r = {0}, m = {0};
    int fired = 0;
    aemp_guard *gm, *ga;
    aemp_rcv(n, p, NULL, rec_rcv, &r);
    aemp_snd(n, p, json("[1]"));
    aemp_mon(n, p, rec_mon, &m, &gm);
    aemp_after(n, 10, after_fired, &fired, &ga);
    aemp_after(n, 10, after_fired, &fired, NULL);
    char *srv = aemp_port(n);
    aemp_rcv(n, srv, NULL, ignore_all, NULL);
    struct calres c1 = {0}, c2 = {0};
    aemp_cal(n, srv, json("[1]"), 10, cal_done, &c1);
    aemp_cal(n, srv, json("[2]"), 0, cal_done, &c2);
    aemp_node_free(n);
    CHECK_INT(c1.calls + c2.calls, 0);
    free(srv);
    CHECK_INT(r.calls + m.calls + fired, 0);
    aemp_guard_free(gm); /* inert guards are still freed by their owner */
    aemp_guard_free(ga);
    free(p);
}

/* ------------------------------------------------------ port ID rules */

static void test_million_ports_unique(void)
{
    aemp_node *n = aemp_node_new(NULL);
    strmap seen = STRMAP_INIT;
    int dups = 0;
    for (int i = 0; i < 1000000; i++) {
        char *p = aemp_port(n);
        if (strmap_get(&seen, p)) dups++;
        else strmap_put(&seen, p, &seen, NULL);
        aemp_kil(n, p, NULL); /* a killed port's name is never reused either */
        free(p);
    }
    CHECK_INT(dups, 0);
    CHECK_INT(seen.len, 1000000);
    strmap_free(&seen);
    aemp_node_free(n);
}

static void test_ids_unique_across_node_starts(void)
{
    /* Two starts of a node with the same configured ID. */
    cJSON *cfg = json("{\"nodeid\":\"same-node\",\"binds\":[],\"seeds\":[],\"services\":[]}");
    char err[256];
    aemp_node *a = aemp_node_new(NULL);
    CHECK_INT(aemp_configure_effective(a, cfg, err, sizeof err), 0);
    char *pa = aemp_port(a), *sa = aemp_spawn(a, "x", "f", NULL);
    aemp_node_free(a);
    aemp_node *b = aemp_node_new(NULL);
    CHECK_INT(aemp_configure_effective(b, cfg, err, sizeof err), 0);
    CHECK_STR(aemp_node_id(b), "same-node");
    char *pb = aemp_port(b), *sb = aemp_spawn(b, "x", "f", NULL);
    CHECK(strncmp(pa, "same-node#", 10) == 0);
    CHECK(strcmp(pa, pb) != 0);
    CHECK(strcmp(sa, sb) != 0);
    aemp_node_free(b);
    free(pa);
    free(pb);
    free(sa);
    free(sb);
    cJSON_Delete(cfg);
}

static void test_anon_node_ids(void)
{
    cJSON *cfg = json("{\"nodeid\":\"anon/\",\"binds\":[]}");
    char err[256];
    aemp_node *a = aemp_node_new(NULL), *b = aemp_node_new(NULL);
    CHECK_INT(aemp_configure_effective(a, cfg, err, sizeof err), 0);
    CHECK_INT(aemp_configure_effective(b, cfg, err, sizeof err), 0);
    CHECK(strncmp(aemp_node_id(a), "anon/", 5) == 0 && strlen(aemp_node_id(a)) > 10);
    CHECK(strcmp(aemp_node_id(a), aemp_node_id(b)) != 0);
    CHECK_INT(aemp_configure_effective(a, cfg, err, sizeof err), AEMP_ESTATE);
    cJSON *bad = json("{\"nodeid\":\"bad node#id\"}");
    aemp_node *c = aemp_node_new(NULL);
    CHECK_INT(aemp_configure_effective(c, bad, err, sizeof err), AEMP_ECONFIG);
    CHECK(strstr(err, "bad node#id") != NULL);
    aemp_node_free(a);
    aemp_node_free(b);
    aemp_node_free(c);
    cJSON_Delete(cfg);
    cJSON_Delete(bad);
}

/* configure() from a real config file in a temporary directory: the node
 * ID comes from the profile's nodeid, else from the profile name. */
static void test_configure_from_file(void)
{
    char dir[] = "/tmp/aemp-ports-XXXXXX", path[300], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/rc", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"version\":1,\"secret\":\"s\",\"binds\":[],\"profile\":{"
          "\"named\":{\"nodeid\":\"explicit-id\"},\"plain\":{}}}",
          f);
    fclose(f);
    setenv("PERL_ANYEVENT_MP_RC", path, 1);
    aemp_node *a = aemp_node_new(NULL), *b = aemp_node_new(NULL);
    CHECK_INT(aemp_configure(a, "named", NULL, err, sizeof err), 0);
    CHECK_STR(aemp_node_id(a), "explicit-id");
    CHECK_INT(aemp_configure(b, "plain", NULL, err, sizeof err), 0);
    CHECK_STR(aemp_node_id(b), "plain");
    const cJSON *sec = cJSON_GetObjectItem(aemp_node_config(b), "secret");
    CHECK(cJSON_IsString(sec) && !strcmp(sec->valuestring, "s"));
    aemp_node_free(a);
    aemp_node_free(b);
    unlink(path);
    rmdir(dir);
    unsetenv("PERL_ANYEVENT_MP_RC");
}

T_MAIN(T(test_snd_reaches_default_callback_from_loop), T(test_port_ids_have_node_and_name),
       T(test_tagged_callback_and_default), T(test_replace_and_remove_callbacks),
       T(test_message_without_callback_kills_port), T(test_failing_callback_kills_its_port),
       T(test_kil_normal_and_with_reason), T(test_kil_unknown_ok_node_port_refused),
       T(test_monitors_fire_exactly_once), T(test_guard_cancels_monitor),
       T(test_mon_nonexistent_port_fires_from_loop), T(test_mon_kil_only_on_abnormal),
       T(test_mon_self_kills_current_port), T(test_mon_snd_appends_reason),
       T(test_mon_guard_releases_once), T(test_order_every_message), T(test_after_and_its_guard),
       T(test_cal_reply_timeout_and_death), T(test_spawn_local_from_loop),
       T(test_spawn_failure_and_unknown_function), T(test_node_port_requests_locally),
       T(test_snd_rejects_bad_arguments), T(test_node_free_with_pending_work),
       T(test_million_ports_unique), T(test_ids_unique_across_node_starts),
       T(test_anon_node_ids), T(test_configure_from_file))
