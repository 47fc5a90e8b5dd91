/* Tests of the Global service with real processes on 127.0.0.1: the full
 * mesh through one seed, port groups across processes (port kill, node
 * kill -9), a dead seed that comes alive later, a node without listeners.
 *
 * The parent never creates a node or an event_base: every node lives in a
 * fork()ed child with its own event loop. The parent talks to each child
 * over a pipe pair, one command line in, one answer line out:
 *   up            -> "up ID,ID,..."   (sorted up nodes, "-" when none)
 *   get G         -> "get P,P,..."    (sorted members of G, "-" when none)
 *   reg G         -> "reg PORT RC"    (a new port registered in G)
 *   kil PORT      -> "kil RC"
 *   mon G         -> "mon RC"         (grp_mon; events go to the log)
 *   log           -> "log EV EV ..."  (+PORT added, -PORT removed; "-" none)
 *   echo          -> "echo PORT"      (a port answering ["pong", ARGS...])
 *   cal PORT      -> "cal JSON" or "calerr JSON" (aemp_cal with ["info"]
 *                    or ["ping"], timeout 3 s)
 * Every child is bounded by alarm() and exits when its command pipe closes;
 * the parent kills and reaps every child by PID, also on failure and on
 * its own alarm. */
#define T_TIMEOUT 100
#include "aemp.h"
#include "config.h"
#include "t.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define MAXK 8
#define MT 2.0 /* monitor_timeout of every node */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wr(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wr(int fd, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof buf) len = (int)sizeof buf - 1;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(1);
        p += n;
        len -= n;
    }
}

/* Line buffer over a pipe. */
struct lr {
    int fd;
    char buf[4096];
    size_t len;
};

/* Take one complete line out of the buffer into `out`; 0 if none yet. */
static int lr_take(struct lr *r, char *out, size_t outlen)
{
    char *nl = memchr(r->buf, '\n', r->len);
    if (!nl) return 0;
    size_t l = nl - r->buf;
    snprintf(out, outlen, "%.*s", (int)l, r->buf);
    memmove(r->buf, nl + 1, r->len - l - 1);
    r->len -= l + 1;
    return 1;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `v` (n strings) sorted and joined with ',' into out; "-" when n == 0. */
static void joinsorted(char *out, size_t outlen, const char **v, int n)
{
    const char *s[16];
    for (int i = 0; i < n && i < 16; i++) s[i] = v[i];
    qsort(s, n, sizeof *s, cmpstr);
    out[0] = 0;
    if (!n) snprintf(out, outlen, "-");
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, "%s%s", i ? "," : "", s[i]);
    }
}

/* A JSON array of strings, sorted and joined. */
static void joinjson(char *out, size_t outlen, const cJSON *a)
{
    const char *v[16];
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsString(e) && n < 16) v[n++] = e->valuestring;
    joinsorted(out, outlen, v, n);
}

/* ------------------------------------------------------------- child */

struct child {
    aemp_node *node;
    struct event_base *base;
    int rep;
    struct lr ctl;
    char log[2048];
};

static void grp_cb(aemp_node *node, const char *group, const cJSON *members, const cJSON *added,
                   const cJSON *removed, void *ud)
{
    struct child *c = ud;
    const cJSON *e;
    size_t l;
    cJSON_ArrayForEach(e, added)
    {
        l = strlen(c->log);
        snprintf(c->log + l, sizeof c->log - l, " +%s", e->valuestring);
    }
    cJSON_ArrayForEach(e, removed)
    {
        l = strlen(c->log);
        snprintf(c->log + l, sizeof c->log - l, " -%s", e->valuestring);
    }
}

static int ignore(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    return 0;
}

/* ["ping", ..., REPLYPORT] -> REPLYPORT gets ["pong", ...] */
static int echo_rcv(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    int n = cJSON_GetArraySize(msg);
    const cJSON *rp = cJSON_GetArrayItem(msg, n - 1);
    if (!cJSON_IsString(rp)) return 0;
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("pong"));
    for (int i = 1; i < n - 1; i++)
        cJSON_AddItemToArray(m, cJSON_Duplicate(cJSON_GetArrayItem(msg, i), 1));
    aemp_snd(node, rp->valuestring, m);
    return 0;
}

static void cal_cb(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct child *c = ud;
    char *s = cJSON_PrintUnformatted(reply ? reply : error);
    wr(c->rep, "%s %s\n", reply ? "cal" : "calerr", s ? s : "?");
    free(s);
}

static void do_cmd(struct child *c, char *line)
{
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = 0;
    char out[2048];
    if (!strcmp(line, "up")) {
        cJSON *up = aemp_up_nodes(c->node);
        joinjson(out, sizeof out, up);
        cJSON_Delete(up);
        wr(c->rep, "up %s\n", out);
    } else if (!strcmp(line, "get") && arg) {
        cJSON *m = aemp_grp_get(c->node, arg);
        joinjson(out, sizeof out, m);
        cJSON_Delete(m);
        wr(c->rep, "get %s\n", out);
    } else if (!strcmp(line, "reg") && arg) {
        char *p = aemp_port(c->node);
        aemp_rcv(c->node, p, NULL, ignore, NULL);
        int rc = aemp_grp_reg(c->node, arg, p, NULL);
        wr(c->rep, "reg %s %d\n", p, rc);
        free(p);
    } else if (!strcmp(line, "kil") && arg) {
        wr(c->rep, "kil %d\n", aemp_kil(c->node, arg, NULL));
    } else if (!strcmp(line, "mon") && arg) {
        wr(c->rep, "mon %d\n", aemp_grp_mon(c->node, arg, grp_cb, c, NULL));
    } else if (!strcmp(line, "log")) {
        wr(c->rep, "log%s\n", c->log[0] ? c->log : " -");
    } else if (!strcmp(line, "echo")) {
        char *p = aemp_port(c->node);
        aemp_rcv(c->node, p, NULL, echo_rcv, NULL);
        wr(c->rep, "echo %s\n", p);
        free(p);
    } else if (!strcmp(line, "cal") && arg) {
        cJSON *m = cJSON_CreateArray();
        /* the node port (ID ends in '#') gets "info", other ports "ping" */
        cJSON_AddItemToArray(m, cJSON_CreateString(arg[strlen(arg) - 1] == '#' ? "info" : "ping"));
        int rc = aemp_cal(c->node, arg, m, 3, cal_cb, c);
        if (rc) wr(c->rep, "calerr %d\n", rc);
    } else {
        wr(c->rep, "error unknown command %s\n", line);
    }
}

static void ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;
    ssize_t n = read(fd, c->ctl.buf + c->ctl.len, sizeof c->ctl.buf - 1 - c->ctl.len);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) _exit(0); /* parent gone */
    c->ctl.len += n;
    char line[1024];
    while (lr_take(&c->ctl, line, sizeof line)) do_cmd(c, line);
}

/* Configure node `id` listening on 127.0.0.1:port (port 0: no listener)
 * with seeds `seeds` (comma-separated host:port list or ""), then serve
 * commands forever. */
static void child_main(const char *id, int port, const char *seeds, const char *secret, int ctl,
                       int rep)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(T_TIMEOUT + 10);
    static struct child c;
    c.rep = rep;
    c.ctl.fd = ctl;
    c.base = event_base_new();
    cJSON *cfg = config_defaults();
    cJSON *binds = cJSON_CreateArray(), *sl = cJSON_CreateArray();
    char buf[256];
    if (port) {
        snprintf(buf, sizeof buf, "127.0.0.1:%d", port);
        cJSON_AddItemToArray(binds, cJSON_CreateString(buf));
    }
    snprintf(buf, sizeof buf, "%s", seeds);
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(sl, cJSON_CreateString(s));
    cJSON_ReplaceItemInObject(cfg, "binds", binds);
    cJSON_ReplaceItemInObject(cfg, "seeds", sl);
    cJSON_ReplaceItemInObject(cfg, "monitor_timeout", cJSON_CreateNumber(MT));
    cJSON_ReplaceItemInObject(cfg, "connect_interval", cJSON_CreateNumber(0.5));
    cJSON_AddStringToObject(cfg, "nodeid", id);
    cJSON_AddStringToObject(cfg, "secret", secret);
    c.node = aemp_node_new(c.base);
    char err[256] = "";
    if (!c.node || aemp_configure_effective(c.node, cfg, err, sizeof err)) {
        wr(rep, "error configure %s: %s\n", id, err);
        _exit(1);
    }
    cJSON_Delete(cfg);
    wr(rep, "ready\n");
    struct event *ev = event_new(c.base, ctl, EV_READ | EV_PERSIST, ctl_cb, &c);
    event_add(ev, NULL);
    for (;;) event_base_loop(c.base, EVLOOP_ONCE);
}

/* ------------------------------------------------------------ parent */

struct kid {
    pid_t pid; /* 0 when not running */
    int ctl;   /* write end */
    struct lr rep;
    char id[32];
    int port;
};

static struct kid kids[MAXK];
static char secret[64];

static void kill_kid(struct kid *k)
{
    if (k->pid > 0) {
        kill(k->pid, SIGKILL);
        waitpid(k->pid, NULL, 0);
        k->pid = 0;
        close(k->ctl);
        close(k->rep.fd);
    }
}

static void reap_all(void)
{
    for (int i = 0; i < MAXK; i++) kill_kid(&kids[i]);
}

static void on_alarm(int sig)
{
    static const char m[] = "# test_mesh: timed out\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    for (int i = 0; i < MAXK; i++)
        if (kids[i].pid > 0) kill(kids[i].pid, SIGKILL);
    for (int i = 0; i < MAXK; i++)
        if (kids[i].pid > 0) waitpid(kids[i].pid, NULL, 0);
    _exit(1);
}

__attribute__((constructor)) static void setup(void)
{
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(secret, sizeof secret, "mesh-test-%d", (int)getpid());
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
}

/* The socket of a port the test keeps bound for a later kid (hold_port). */
static int port_held = -1;

/* A free TCP port on 127.0.0.1, picked at random below the kernel's
 * ephemeral range (a port from that range can be taken by any outgoing
 * connection before the kid binds it, as in tests/e2e/lib.sh). With
 * `keep`, the socket bound to it stays open in port_held (kids close it);
 * without, it is released at once. */
static int hold_port(int keep)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1) low = 32768;
        fclose(f);
    }
    if (low <= 10001) low = 32768;
    for (int i = 0; i < 400; i++) {
        int port = i < 200 ? 10000 + rand() % (low - 10000) : 0; /* then any */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t l = sizeof a;
        int ok = !bind(s, (struct sockaddr *)&a, sizeof a) && !getsockname(s, (struct sockaddr *)&a, &l);
        if (ok && keep) port_held = s;
        else close(s);
        if (ok) return ntohs(a.sin_port);
    }
    return 0;
}

/* A free port, released at once. */
static int free_port(void)
{
    return hold_port(0);
}

/* Next line from kid `k` within `seconds`; 0 on timeout / EOF. */
static int kid_line(struct kid *k, char *out, size_t outlen, double seconds)
{
    double end = now() + seconds;
    for (;;) {
        if (lr_take(&k->rep, out, outlen)) return 1;
        int ms = (int)((end - now()) * 1000);
        if (ms <= 0) return 0;
        struct pollfd p = {k->rep.fd, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        ssize_t n = read(k->rep.fd, k->rep.buf + k->rep.len, sizeof k->rep.buf - 1 - k->rep.len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        k->rep.len += n;
    }
}

/* Send a command to kid `k` and wait for its answer line (the answer
 * without its first word goes to `out`); 0 on failure. */
static int ask(struct kid *k, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ask(struct kid *k, char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[1024], line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = 0;
    if (k->pid <= 0) return 0;
    size_t l = strlen(cmd);
    cmd[l++] = '\n';
    if (write(k->ctl, cmd, l) != (ssize_t)l) return 0;
    if (!kid_line(k, line, sizeof line, 5)) {
        fprintf(stderr, "# %s: no answer to \"%.*s\"\n", k->id, (int)l - 1, cmd);
        return 0;
    }
    char *sp = strchr(line, ' ');
    snprintf(out, outlen, "%s", sp ? sp + 1 : "");
    if (!strncmp(line, "error", 5)) {
        fprintf(stderr, "# %s: %s\n", k->id, line);
        return 0;
    }
    return 1;
}

/* Start kid slot `i` as node `id` on 127.0.0.1:port (0: no listener) with
 * `seeds`. Returns 1 when the child reported "ready". */
static int start_kid(int i, const char *id, int port, const char *seeds)
{
    struct kid *k = &kids[i];
    int c[2], r[2];
    if (pipe(c) || pipe(r)) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        if (port_held >= 0) close(port_held);
        for (int j = 0; j < MAXK; j++)
            if (kids[j].pid > 0) {
                close(kids[j].ctl);
                close(kids[j].rep.fd);
            }
        close(c[1]);
        close(r[0]);
        child_main(id, port, seeds, secret, c[0], r[1]);
        _exit(0);
    }
    close(c[0]);
    close(r[1]);
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->ctl = c[1];
    k->rep.fd = r[0];
    k->port = port;
    snprintf(k->id, sizeof k->id, "%s", id);
    char line[512];
    if (!kid_line(k, line, sizeof line, 5) || strcmp(line, "ready")) {
        fprintf(stderr, "# %s did not start: %s\n", id, line);
        return 0;
    }
    return 1;
}

/* 1 when kid i's up nodes are exactly the IDs of the kids in `set` (indices,
 * n of them) other than i. */
static int up_is(int i, const int *set, int n, char *got, size_t gotlen)
{
    const char *v[MAXK];
    int m = 0;
    for (int j = 0; j < n; j++)
        if (set[j] != i) v[m++] = kids[set[j]].id;
    char want[512];
    joinsorted(want, sizeof want, v, m);
    if (!ask(&kids[i], got, gotlen, "up")) return 0;
    return !strcmp(got, want);
}

/* Wait until every kid of `set` has exactly the others of `set` up. */
static int wait_mesh(const int *set, int n, double seconds)
{
    double end = now() + seconds;
    char got[512];
    for (;;) {
        int ok = 1, bad = -1;
        for (int j = 0; j < n && ok; j++)
            if (!up_is(set[j], set, n, got, sizeof got)) ok = 0, bad = set[j];
        if (ok) return 1;
        if (now() > end) {
            fprintf(stderr, "# mesh not reached: %s has up [%s]\n", kids[bad].id, got);
            return 0;
        }
        usleep(20000);
    }
}

/* Wait until group `g` is exactly `want` (sorted, "-" for empty) on every kid
 * of `set`. */
static int wait_group(const int *set, int n, const char *g, const char *want, double seconds)
{
    double end = now() + seconds;
    char got[1024];
    for (;;) {
        int ok = 1, bad = -1;
        for (int j = 0; j < n && ok; j++) {
            if (!ask(&kids[set[j]], got, sizeof got, "get %s", g) || strcmp(got, want))
                ok = 0, bad = set[j];
        }
        if (ok) return 1;
        if (now() > end) {
            fprintf(stderr, "# group %s on %s is [%s], want [%s]\n", g, kids[bad].id, got, want);
            return 0;
        }
        usleep(20000);
    }
}

static char seed_list[256];

static const char *addr(int port)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "127.0.0.1:%d", port);
    return buf;
}

/* --------------------------------------------------------------- tests */

static void test_five_processes_one_seed_full_mesh(void)
{
    int set[5] = {0, 1, 2, 3, 4};
    int ps = free_port();
    double t0 = now();
    CHECK(start_kid(0, "m-seed", ps, ""));
    snprintf(seed_list, sizeof seed_list, "%s", addr(ps));
    for (int i = 1; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "m-n%d", i);
        CHECK(start_kid(i, id, free_port(), seed_list));
    }
    int ok = wait_mesh(set, 5, 20);
    CHECK(ok);
    if (ok) printf("# full mesh of 5 processes in %.0f ms\n", (now() - t0) * 1000);
    reap_all();
}

static int log_has(int i, const char *ev)
{
    char got[2048], want[320];
    if (!ask(&kids[i], got, sizeof got, "log")) return 0;
    snprintf(want, sizeof want, " %.300s ", ev);
    char padded[2100];
    snprintf(padded, sizeof padded, " %s ", got);
    if (!strstr(padded, want)) {
        fprintf(stderr, "# %s: log [%s] lacks %s\n", kids[i].id, got, ev);
        return 0;
    }
    return 1;
}

static void test_groups_across_processes(void)
{
    int all[4] = {0, 1, 2, 3};
    int ps = free_port();
    CHECK(start_kid(0, "g-seed", ps, ""));
    snprintf(seed_list, sizeof seed_list, "%s", addr(ps));
    CHECK(start_kid(1, "g-a", free_port(), seed_list));
    CHECK(start_kid(2, "g-b", free_port(), seed_list));
    CHECK(start_kid(3, "g-c", free_port(), seed_list));
    if (!wait_mesh(all, 4, 20)) {
        CHECK(!"mesh of 4");
        reap_all();
        return;
    }
    char out[1024], p[256], q[256];
    int rc = -99;
    CHECK(ask(&kids[3], out, sizeof out, "mon grp") && !strcmp(out, "0"));
    CHECK(ask(&kids[0], out, sizeof out, "mon grp") && !strcmp(out, "0"));
    /* a member registered on g-a is seen everywhere, and only it */
    CHECK(ask(&kids[1], out, sizeof out, "reg grp"));
    CHECK(sscanf(out, "%255s %d", p, &rc) == 2 && rc == 0);
    CHECK(!strncmp(p, "g-a#", 4));
    CHECK(wait_group(all, 4, "grp", p, 5));
    char ev[300];
    snprintf(ev, sizeof ev, "+%s", p);
    CHECK(log_has(3, ev));
    CHECK(log_has(0, ev));
    /* killing the port removes it everywhere; the watchers are told */
    CHECK(ask(&kids[1], out, sizeof out, "kil %s", p) && !strcmp(out, "0"));
    CHECK(wait_group(all, 4, "grp", "-", 5));
    snprintf(ev, sizeof ev, "-%s", p);
    CHECK(log_has(3, ev));
    CHECK(log_has(0, ev));
    /* a member on g-b: kill -9 of g-b removes it everywhere */
    CHECK(ask(&kids[2], out, sizeof out, "reg grp"));
    CHECK(sscanf(out, "%255s %d", q, &rc) == 2 && rc == 0);
    CHECK(wait_group(all, 4, "grp", q, 5));
    double t0 = now();
    kill_kid(&kids[2]);
    int rest[3] = {0, 1, 3};
    int gone = wait_group(rest, 3, "grp", "-", MT + 3);
    CHECK(gone);
    if (gone)
        printf("# member of a kill -9'd node gone everywhere in %.0f ms\n", (now() - t0) * 1000);
    snprintf(ev, sizeof ev, "-%s", q);
    CHECK(log_has(3, ev));
    CHECK(log_has(0, ev));
    CHECK(wait_mesh(rest, 3, MT + 3)); /* and g-b is no longer up anywhere */
    reap_all();
}

static void test_dead_seed_then_alive(void)
{
    /* pd: nobody listens there yet. The port stays bound (not listening:
     * dials to it are refused) until d-late takes it, so that no node of a
     * test running beside this one can take it meanwhile. */
    int pa = free_port(), pd = hold_port(1);
    snprintf(seed_list, sizeof seed_list, "%s,", addr(pa));
    size_t l = strlen(seed_list);
    snprintf(seed_list + l, sizeof seed_list - l, "%s", addr(pd));
    /* every node has both seeds, the live seed too */
    CHECK(start_kid(0, "d-seed", pa, seed_list));
    CHECK(start_kid(1, "d-a", free_port(), seed_list));
    CHECK(start_kid(2, "d-b", free_port(), seed_list));
    int three[3] = {0, 1, 2};
    double t0 = now();
    int ok = wait_mesh(three, 3, 15);
    CHECK(ok);
    if (ok) printf("# mesh of 3 with one dead seed in %.0f ms\n", (now() - t0) * 1000);
    /* the dead seed's address comes alive: a node with no seeds of its own,
     * so it can only join through the others dialing its address */
    close(port_held);
    port_held = -1;
    CHECK(start_kid(3, "d-late", pd, ""));
    int four[4] = {0, 1, 2, 3};
    t0 = now();
    ok = wait_mesh(four, 4, 15);
    CHECK(ok);
    if (ok) printf("# dead seed address alive: joined in %.0f ms\n", (now() - t0) * 1000);
    reap_all();
}

static void test_listenerless_node_reachable(void)
{
    int ps = free_port();
    CHECK(start_kid(0, "l-seed", ps, ""));
    snprintf(seed_list, sizeof seed_list, "%s", addr(ps));
    CHECK(start_kid(1, "l-a", free_port(), seed_list));
    CHECK(start_kid(2, "l-nolisten", 0, seed_list));
    int all[3] = {0, 1, 2};
    if (!wait_mesh(all, 3, 15)) {
        CHECK(!"mesh of 3 with a listener-less node");
        reap_all();
        return;
    }
    char out[1024], echo[256];
    /* the node port of the listener-less node answers "info" with its ID */
    CHECK(ask(&kids[1], out, sizeof out, "cal l-nolisten#"));
    CHECK_STR(out, "[\"l-nolisten\"]");
    CHECK(ask(&kids[0], out, sizeof out, "cal l-nolisten#"));
    CHECK_STR(out, "[\"l-nolisten\"]");
    /* a normal port on it gets a message and answers */
    CHECK(ask(&kids[2], echo, sizeof echo, "echo"));
    CHECK(!strncmp(echo, "l-nolisten#", 11));
    CHECK(ask(&kids[1], out, sizeof out, "cal %s", echo));
    CHECK_STR(out, "[\"pong\"]");
    /* and the other direction */
    CHECK(ask(&kids[2], out, sizeof out, "cal l-a#"));
    CHECK_STR(out, "[\"l-a\"]");
    reap_all();
}

/* kill -9 of the only seed, which holds a group member: the member leaves
 * the group everywhere, the remaining nodes keep their mesh and still
 * propagate group changes among themselves (groups are exchanged pairwise,
 * not through the seed). */
static void test_dead_only_seed(void)
{
    int all[4] = {0, 1, 2, 3};
    int ps = free_port();
    CHECK(start_kid(0, "s-seed", ps, ""));
    snprintf(seed_list, sizeof seed_list, "%s", addr(ps));
    CHECK(start_kid(1, "s-a", free_port(), seed_list));
    CHECK(start_kid(2, "s-b", free_port(), seed_list));
    CHECK(start_kid(3, "s-c", free_port(), seed_list));
    if (!wait_mesh(all, 4, 20)) {
        CHECK(!"mesh of 4");
        reap_all();
        return;
    }
    char out[1024], p[256], q[256], ev[300];
    int rc = -99;
    CHECK(ask(&kids[3], out, sizeof out, "mon sgrp") && !strcmp(out, "0"));
    CHECK(ask(&kids[0], out, sizeof out, "reg sgrp"));
    CHECK(sscanf(out, "%255s %d", p, &rc) == 2 && rc == 0);
    CHECK(wait_group(all, 4, "sgrp", p, 5));
    kill_kid(&kids[0]);
    int rest[3] = {1, 2, 3};
    CHECK(wait_group(rest, 3, "sgrp", "-", MT + 3));
    snprintf(ev, sizeof ev, "-%s", p);
    CHECK(log_has(3, ev));
    CHECK(wait_mesh(rest, 3, MT + 3));
    CHECK(ask(&kids[1], out, sizeof out, "reg sgrp"));
    CHECK(sscanf(out, "%255s %d", q, &rc) == 2 && rc == 0);
    CHECK(wait_group(rest, 3, "sgrp", q, 5));
    snprintf(ev, sizeof ev, "+%s", q);
    CHECK(log_has(3, ev));
    CHECK(ask(&kids[1], out, sizeof out, "kil %s", q) && !strcmp(out, "0"));
    CHECK(wait_group(rest, 3, "sgrp", "-", 5));
    snprintf(ev, sizeof ev, "-%s", q);
    CHECK(log_has(3, ev));
    reap_all();
}

T_MAIN(T(test_five_processes_one_seed_full_mesh), T(test_groups_across_processes),
       T(test_dead_seed_then_alive), T(test_listenerless_node_reachable),
       T(test_dead_only_seed))
