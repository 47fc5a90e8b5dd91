/* local_ports.c - a tour of the local half of the libaemp API on one node.
 *
 * The program makes an anonymous node without listeners and walks through:
 *   1. a port with a default and a tagged callback, fed with aemp_snd();
 *   2. a second port that monitors the first (aemp_mon_snd), plus a plain
 *      callback monitor (aemp_mon) holding a guard;
 *   3. aemp_cal() to a server port that replies to the appended reply port;
 *   4. aemp_register() + aemp_spawn() of a function on the local node;
 *   5. aemp_kil() with a reason, and both monitors firing.
 * Each step is started from the callback that ends the step before, so the
 * order of the output is fixed. A 5 second timer stops everything if a step
 * never completes. Exit status: 0 when everything happened, 1 otherwise. */
#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct demo {
    char *worker;   /* port with a default and a "ping" callback */
    char *watcher;  /* port told when the worker dies */
    char *server;   /* port answering "add" requests */
    char *spawned;  /* port created by the spawned function */
    int worker_msgs, pings, replies, spawned_msgs, mon_calls, watcher_msgs;
    int timed_out;
    aemp_guard *mon_guard, *timer_guard;
};

static void print_json(const char *what, const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    printf("  %-28s %s\n", what, s ? s : "?");
    free(s);
}

/* ------------------------------------------------ step 1: the worker port */

static int worker_default(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct demo *d = ud;
    d->worker_msgs++;
    print_json("worker (default callback):", msg);
    return 0;
}

static int worker_ping(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct demo *d = ud;
    d->pings++;
    /* aemp_self() is the port whose callback runs, the same as `self`. */
    print_json("worker (\"ping\" callback):", msg);
    printf("  %-28s %s\n", "  $SELF in the callback:", aemp_self(node));
    return 0;
}

/* ---------------------------------------- step 2: monitors of the worker */

static int watcher_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct demo *d = ud;
    d->watcher_msgs++;
    print_json("watcher got:", msg);
    /* The last thing we wait for: stop the loop. */
    aemp_node_stop(node);
    return 0;
}

static void worker_died(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct demo *d = ud;
    d->mon_calls++;
    printf("  monitor callback: %s died\n", port);
    print_json("  reason:", reason);
}

/* ------------------------------------------- step 3: a server and aemp_cal */

/* ["add", A, B, REPLYPORT] -> sends ["sum", A + B] to REPLYPORT. */
static int server_add(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    const cJSON *a = cJSON_GetArrayItem(msg, 1), *b = cJSON_GetArrayItem(msg, 2);
    const cJSON *rp = cJSON_GetArrayItem(msg, 3);
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !cJSON_IsString(rp)) {
        aemp_fail(node, "server: bad request");
        return -1; /* kills the server port with ["die", "server: bad request"] */
    }
    cJSON *reply = cJSON_CreateArray();
    cJSON_AddItemToArray(reply, cJSON_CreateString("sum"));
    cJSON_AddItemToArray(reply, cJSON_CreateNumber(a->valuedouble + b->valuedouble));
    aemp_snd(node, rp->valuestring, reply); /* reply is taken */
    return 0;
}

/* ------------------------------------------------ step 4: spawn locally */

static int counter_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    struct demo *d = ud;
    d->spawned_msgs++;
    print_json("spawned port got:", msg);

    /* Step 5: kill the worker abnormally. Both monitors fire from the loop. */
    printf("\n5. aemp_kil(worker, [\"demo\", \"finished\"])\n");
    aemp_kil(node, d->worker, cJSON_Parse("[\"demo\",\"finished\"]"));
    return 0;
}

/* The registered function: runs with self = the port aemp_spawn() returned;
 * setting a callback on it is what brings the port to life. */
static int counter_start(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    printf("  spawned function runs as %s\n", self);
    print_json("  with args:", args);
    return aemp_rcv(node, self, NULL, counter_rcv, ud);
}

static void cal_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct demo *d = ud;
    if (error) {
        print_json("cal failed:", error);
        aemp_node_stop(node);
        return;
    }
    d->replies++;
    print_json("cal reply:", reply);

    printf("\n4. aemp_register(\"demo::counter\") + aemp_spawn() on this node\n");
    aemp_register(node, "demo::counter", counter_start, d);
    d->spawned = aemp_spawn(node, aemp_node_id(node), "demo::counter",
                            cJSON_Parse("[\"start\", 10]"));
    if (!d->spawned) {
        aemp_node_stop(node);
        return;
    }
    printf("  aemp_spawn returned %s at once\n", d->spawned);
    aemp_snd_json(node, d->spawned, "[\"count\", 1]");
}

static void timeout(aemp_node *node, void *ud)
{
    struct demo *d = ud;
    d->timed_out = 1;
    fprintf(stderr, "local_ports: timed out, a step did not complete\n");
    aemp_node_stop(node);
}

int main(void)
{
    struct demo d = {0};
    char err[256] = "";
    int ok = 0;

    aemp_node *node = aemp_node_new(NULL);
    if (!node) return 1;

    /* An anonymous node ("anon/" gets a random suffix) that listens nowhere. */
    cJSON *cfg = cJSON_Parse("{\"nodeid\":\"anon/\",\"binds\":[]}");
    int rc = aemp_configure_effective(node, cfg, err, sizeof err);
    cJSON_Delete(cfg);
    if (rc) {
        fprintf(stderr, "local_ports: configure: %s (%s)\n", aemp_strerror(rc), err);
        aemp_node_free(node);
        return 1;
    }
    printf("node %s\n", aemp_node_id(node));

    printf("\n1. a port with a default and a \"ping\" callback\n");
    d.worker = aemp_port(node);
    printf("  worker is %s\n", d.worker);
    aemp_rcv(node, d.worker, NULL, worker_default, &d);
    aemp_rcv(node, d.worker, "ping", worker_ping, &d);
    aemp_snd(node, d.worker, cJSON_Parse("[\"hello\", 1]")); /* message taken */
    aemp_snd_json(node, d.worker, "[\"ping\", \"are you there?\"]");
    printf("  two messages sent; nothing is delivered inside aemp_snd()\n");

    printf("\n2. monitors on the worker\n");
    d.watcher = aemp_port(node);
    aemp_rcv(node, d.watcher, NULL, watcher_rcv, &d);
    /* On death, the watcher gets ["worker_died", REASON...]. */
    aemp_mon_snd(node, d.worker, d.watcher, cJSON_Parse("[\"worker_died\"]"), NULL);
    /* And a plain callback; the guard could cancel it early. */
    aemp_mon(node, d.worker, worker_died, &d, &d.mon_guard);
    printf("  watcher %s monitors the worker\n", d.watcher);

    printf("\n3. aemp_cal() to a server port\n");
    d.server = aemp_port(node);
    aemp_rcv(node, d.server, "add", server_add, &d);
    aemp_cal(node, d.server, cJSON_Parse("[\"add\", 2, 3]"), 5, cal_done, &d);

    aemp_after(node, 5, timeout, &d, &d.timer_guard);

    /* Everything else happens in callbacks until watcher_rcv() stops. */
    printf("\nrunning the event loop: deliveries of steps 1-3 happen now\n");
    if (aemp_node_run(node) != 0) fprintf(stderr, "local_ports: event loop failed\n");

    ok = !d.timed_out && d.worker_msgs == 1 && d.pings == 1 && d.replies == 1 &&
         d.spawned_msgs == 1 && d.mon_calls == 1 && d.watcher_msgs == 1;
    printf("\n%s\n", ok ? "all steps happened" : "some step did not happen");

    /* Guards must be freed even after they fired; the timer guard cancels
     * the still pending timeout. */
    aemp_guard_free(d.mon_guard);
    aemp_guard_free(d.timer_guard);
    aemp_node_free(node);
    free(d.worker);
    free(d.watcher);
    free(d.server);
    free(d.spawned);
    return ok ? 0 : 1;
}
