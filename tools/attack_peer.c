/* attack_peer.c - an authenticated node that misbehaves, for tools/attack.sh
 * (built by that script against the build directory's libaemp.a).
 *
 *   attack_peer SECRET TARGET_ADDR MODE ARGS...
 *
 * It joins as node "atk-PID" with TARGET_ADDR as its seed, waits until the
 * target is up, then:
 *   idle                  prints "up" and stays (the script SIGSTOPs it)
 *   ghosts NSPAWN NADDR   spawns NSPAWN Global::connect ports naming ghost
 *                         nodes, then sends one "nodes" message with NADDR
 *                         ghost nodes all at one local listener's address;
 *                         for 10 s measures the target's answer time to a
 *                         node-port "time" request and counts dials arriving
 *                         at that listener
 *   relay DEST N          asks the target to relay N messages of 1 KB to
 *                         port DEST (snd_multiple, 100 per request)
 *   deep                  sends a message nested 1,000 deep, then a "time"
 *                         request, and says whether the link stayed up
 *   stall N               makes N data connections to the target's
 *                         aemp::put (each announcing a 1 MB file) and sends
 *                         nothing on them; counts how many came up, then
 *                         for 5 s measures the target's answer time
 *   i18 lcloop            a log catcher whose reply port is the target's
 *                         node port (issue 18)
 *   i18 forge N           N requests whose name, relay target or text has
 *                         a newline, ESC or CR
 *   i18 eval N            N eval requests
 *   i18 longname N        N calls of unknown functions with 2 KB names
 *   i18 ghostq N SIZE     N relays of SIZE bytes to made-up nodes
 * Figures go to stdout as "# ..." lines. Bounded: at most 60 s. */
#include "aemp.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static aemp_node *node;
static char target[128];

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static void run_for(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (time_t)s) * 1e6)};
    event_base_loopexit(aemp_node_base(node), &tv);
    event_base_dispatch(aemp_node_base(node));
}

struct timing {
    int got;
    double sent;
    double worst, total;
    int n;
};

static void time_reply(aemp_node *n, const cJSON *reply, const cJSON *error, void *ud)
{
    struct timing *t = ud;
    t->got = reply ? 1 : -1;
}

/* One "time" request to the target's node port: the seconds until the
 * answer, or -1 without one within `limit`. */
static double ask_time(double limit)
{
    struct timing t = {0};
    double t0 = now();
    aemp_cal(node, target, cJSON_Parse("[\"time\"]"), limit, time_reply, &t);
    while (!t.got && now() - t0 < limit + 1) run_for(0.01);
    return t.got == 1 ? now() - t0 : -1;
}

static int counter_fd, dials;

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    int c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        dials++;
        close(c);
    }
}

static int mode_ghosts(int nspawn, int naddr)
{
    const char *fn = "AnyEvent::MP::Global::connect";
    char ghost[64];
    for (int i = 0; i < nspawn; i++) {
        snprintf(ghost, sizeof ghost, "[0,\"ghost-%d\"]", i);
        free(aemp_spawn(node, target, fn, cJSON_Parse(ghost)));
        if (i % 1000 == 999) run_for(0.001);
    }
    counter_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    bind(counter_fd, (struct sockaddr *)&sa, sizeof sa);
    listen(counter_fd, 1024);
    getsockname(counter_fd, (struct sockaddr *)&sa, &sl);
    struct event *ev = event_new(aemp_node_base(node), counter_fd, EV_READ | EV_PERSIST,
                                 on_accept, NULL);
    event_add(ev, NULL);
    char args[160];
    snprintf(args, sizeof args, "[0,\"%s\"]", aemp_node_id(node));
    char *rp = aemp_spawn(node, target, fn, cJSON_Parse(args));
    cJSON *nodes = cJSON_CreateObject();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    for (int i = 0; i < naddr; i++) {
        snprintf(ghost, sizeof ghost, "addr-ghost-%d", i);
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateString(addr));
        cJSON_AddItemToObject(nodes, ghost, a);
    }
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("nodes"));
    cJSON_AddItemToArray(m, nodes);
    aemp_snd(node, rp, m);
    free(rp);
    double worst = 0, t0 = now();
    int answered = 0, asked = 0;
    while (now() - t0 < 10) {
        double t = ask_time(5);
        asked++;
        if (t >= 0) answered++;
        if (t < 0 || t > worst) worst = t < 0 ? 5 : t;
        run_for(0.2);
    }
    printf("# ghosts: %d Global::connect spawns naming ghosts, one nodes message with %d "
           "ghosts: target answered %d of %d time requests, slowest %.3f s; %d dials to the "
           "named address in %.1f s\n",
           nspawn, naddr, answered, asked, worst, dials, now() - t0);
    event_free(ev);
    close(counter_fd);
    return 0;
}

static int mode_relay(const char *dest, long n)
{
    char blob[1025];
    memset(blob, 'r', 1024);
    blob[1024] = 0;
    long sent = 0;
    double t0 = now();
    while (sent < n && now() - t0 < 40) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("snd_multiple"));
        for (int i = 0; i < 100 && sent < n; i++, sent++) {
            cJSON *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_CreateString(dest));
            cJSON_AddItemToArray(one, cJSON_CreateString(blob));
            cJSON_AddItemToArray(m, one);
        }
        aemp_snd(node, target, m);
        if (sent % 1000 == 0) { /* about 1 MB: let it go out before more */
            run_for(0.005);
            if (!aemp_node_is_up(node, target)) break;
        }
    }
    run_for(1);
    printf("# relay: we asked the target for %ld relays of 1 KB to %s in %.1f s; target %s\n", sent,
           dest, now() - t0, aemp_node_is_up(node, target) ? "still up" : "went away");
    return 0;
}

static int mode_deep(void)
{
    cJSON *deep = cJSON_CreateArray(), *in = deep;
    for (int i = 0; i < 1000; i++) {
        cJSON *x = cJSON_CreateArray();
        cJSON_AddItemToArray(in, x);
        in = x;
    }
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("deep"));
    cJSON_AddItemToArray(m, deep);
    char port[200];
    snprintf(port, sizeof port, "%s#nosuch", target);
    aemp_snd(node, port, m);
    double t = ask_time(5);
    printf("# deep: a message nested 1,000 deep, then a time request: %s\n",
           t >= 0 && aemp_node_is_up(node, target) ? "answered on the same link (kept)"
                                                     : "no answer (link closed)");
    return 0;
}

struct stalls {
    int up, refused, done;
    char why[256];
};

static void stall_up(aemp_node *n, struct bufferevent *bev, const char *error, void *ud)
{
    (void)n;
    struct stalls *s = ud;
    s->done++;
    if (bev) s->up++; /* kept, silent, until we exit */
    else {
        s->refused++;
        snprintf(s->why, sizeof s->why, "%s", error);
    }
}

static int mode_stall(int n)
{
    struct stalls s = {0};
    double t0 = now();
    /* in rounds of 32, below the per-host cap on connections in their
     * handshake: what bounds them is the data-connection limit */
    for (int i = 0; i < n && now() - t0 < 30; i++) {
        char args[64];
        snprintf(args, sizeof args, "[\"stall-%d.bin\",1000000]", i);
        aemp_dataconn_connect(node, target, 15, "aemp::put", cJSON_Parse(args), stall_up, &s);
        while (i % 32 == 31 && s.done <= i && now() - t0 < 30)
            run_for(0.01);
    }
    while (s.done < n && now() - t0 < 30)
        run_for(0.05);
    printf("# stall: %d data connections to aemp::put sending nothing after their greeting: "
           "%d up, %d refused in %.1f s (%s)\n",
           n, s.up, s.refused, now() - t0, s.refused ? s.why : "none refused");
    fflush(stdout);
    double worst = 0;
    int answered = 0, asked = 0;
    t0 = now();
    while (now() - t0 < 5) {
        double t = ask_time(2);
        asked++;
        if (t >= 0) answered++;
        if (t < 0 || t > worst) worst = t < 0 ? 2 : t;
        run_for(0.2);
    }
    printf("# stall: while they were held the target answered %d of %d time requests, slowest "
           "%.3f s\n",
           answered, asked, worst);
    return 0;
}

/* Send `n` copies of the node-port request `req` (a JSON array text) to the
 * target, letting them go out every 500. */
static void flood(const char *req, long n)
{
    for (long i = 0; i < n; i++) {
        aemp_snd_json(node, target, req);
        if (i % 500 == 499) run_for(0.002);
    }
}

/* The issue-18 attacks: one message or a flood of small ones. */
static int mode_issue18(const char *what, long n, long size)
{
    double t0 = now();
    char req[4096];
    if (!strcmp(what, "lcloop")) { /* a catcher whose reply port is the target's node port */
        snprintf(req, sizeof req, "[\"AnyEvent::MP::LogCatcher::connect\",0,\"%s#\",9]", target);
        flood(req, 1);
        run_for(1);
    } else if (!strcmp(what, "forge")) { /* newlines in a request name and a relay target */
        flood("[\"x\\n2026-12-05 00:00:00 <1> FORGED: request name\"]", n);
        flood("[\"snd\",\"ghost\\n2026-12-05 00:00:00 <1> FORGED: relay target#x\",1]", n);
        flood("[\"\\u001b[2J\\rFORGED-ESC\"]", n);
    } else if (!strcmp(what, "eval")) {
        flood("[\"eval\",\"1\"]", n);
    } else if (!strcmp(what, "longname")) { /* unknown functions with 2 KB names */
        int k = snprintf(req, sizeof req, "[\"");
        memset(req + k, 'f', 2048);
        snprintf(req + k + 2048, sizeof req - (size_t)k - 2048, "\",1]");
        flood(req, n);
    } else if (!strcmp(what, "ghostq")) { /* relays of `size` bytes to `n` made-up nodes */
        char *blob = malloc((size_t)size + 1);
        memset(blob, 'g', (size_t)size);
        blob[size] = 0;
        for (long i = 0; i < n && aemp_node_is_up(node, target); i++) {
            char ghost[64];
            snprintf(ghost, sizeof ghost, "ghostq-%ld#x", i);
            cJSON *m = cJSON_CreateArray();
            cJSON_AddItemToArray(m, cJSON_CreateString("snd"));
            cJSON_AddItemToArray(m, cJSON_CreateString(ghost));
            cJSON_AddItemToArray(m, cJSON_CreateString(blob));
            aemp_snd(node, target, m);
            run_for(0.001);
        }
        free(blob);
    } else {
        return 2;
    }
    double t = ask_time(10);
    printf("# %s: sent in %.1f s; the target answers a time request %s\n", what, now() - t0,
           t >= 0 ? "at once" : "not within 10 s");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: attack_peer SECRET TARGET_ADDR MODE ARGS...\n");
        return 2;
    }
    alarm(90);
    node = aemp_node_new(NULL);
    cJSON *cfg = cJSON_CreateObject();
    char id[64];
    snprintf(id, sizeof id, "atk-%d", (int)getpid());
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON_AddArrayToObject(cfg, "binds");
    cJSON_AddItemToObject(cfg, "seeds", cJSON_CreateStringArray((const char *[]){argv[2]}, 1));
    cJSON_AddStringToObject(cfg, "secret", argv[1]);
    cJSON_AddNumberToObject(cfg, "monitor_timeout", 30);
    char err[256];
    /* the defaults and the configuration file below these keys */
    if (aemp_configure(node, NULL, cfg, err, sizeof err)) {
        fprintf(stderr, "attack_peer: %s\n", err);
        return 1;
    }
    cJSON_Delete(cfg);
    double t0 = now();
    cJSON *up = NULL;
    while (now() - t0 < 10) {
        run_for(0.05);
        up = aemp_up_nodes(node);
        if (cJSON_GetArraySize(up) > 0) break;
        cJSON_Delete(up);
        up = NULL;
    }
    if (!up) {
        fprintf(stderr, "attack_peer: the target did not come up\n");
        return 1;
    }
    snprintf(target, sizeof target, "%s", cJSON_GetArrayItem(up, 0)->valuestring);
    cJSON_Delete(up);
    const char *mode = argv[3];
    int rc = 2;
    if (!strcmp(mode, "idle")) {
        printf("up %s\n", aemp_node_id(node));
        fflush(stdout);
        run_for(55);
        rc = 0;
    } else if (!strcmp(mode, "ghosts") && argc >= 6) {
        rc = mode_ghosts(atoi(argv[4]), atoi(argv[5]));
    } else if (!strcmp(mode, "relay") && argc >= 6) {
        rc = mode_relay(argv[4], atol(argv[5]));
    } else if (!strcmp(mode, "stall") && argc >= 5) {
        rc = mode_stall(atoi(argv[4]));
    } else if (!strcmp(mode, "deep")) {
        rc = mode_deep();
    } else if (!strcmp(mode, "i18") && argc >= 5) {
        rc = mode_issue18(argv[4], argc > 5 ? atol(argv[5]) : 1, argc > 6 ? atol(argv[6]) : 0);
    } else {
        fprintf(stderr, "attack_peer: unknown mode %s\n", mode);
    }
    fflush(stdout);
    aemp_node_free(node);
    return rc;
}
