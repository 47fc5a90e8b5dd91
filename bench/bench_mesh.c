/* bench_mesh.c - mesh formation and group propagation between real
 * processes over 127.0.0.1. Measures only; prints "NAME: VALUE UNIT" lines.
 *
 * (1) time to full mesh for 2, 5, 10 and 20 nodes: the parent forks N
 *     children before it creates any node (it never creates one). Child 0 is
 *     the only seed: it configures (binds 127.0.0.1:0), reports its listen
 *     address through a pipe and waits for "go". The others wait for a line
 *     with the seed address (that line is their "go"), then configure with
 *     that seed. Every child polls aemp_up_nodes() every 5 ms and reports
 *     the CLOCK_REALTIME time it saw N-1 up nodes. The figure is the last
 *     of those times minus the time the parent released the children.
 * (2) with 10 nodes, once meshed: every child but the last watches group
 *     "bench" (aemp_grp_mon); the last registers a port (aemp_grp_reg) and
 *     reports when; each watcher reports when it saw the member added. Then
 *     the port is killed and removal is timed the same way.
 *
 * Every process is bounded by alarm(); the parent kills and reaps each child
 * by PID. */
#include "aemp.h"
#include "bench.h"
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXN 20
#define POLL 0.005
#define GROUP "bench"
#define MESH_TIMEOUT 60.0 /* s; a child that is not meshed by then reports F */

static void wr(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wr(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof buf || write(fd, buf, len) != len) _exit(1);
}

/* Blocking line reader over a pipe, one buffer per fd. */
struct lr {
    int fd;
    char buf[1024];
    size_t len;
};

/* Next line (without '\n') into `out`; 0 on EOF or error. */
static int lr_line(struct lr *r, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t l = nl - r->buf;
            snprintf(out, outlen, "%.*s", (int)l, r->buf);
            memmove(r->buf, nl + 1, r->len - l - 1);
            r->len -= l + 1;
            return 1;
        }
        if (r->len == sizeof r->buf) return 0;
        ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        r->len += n;
    }
}

/* ------------------------------------------------------------- child */

struct child_state {
    aemp_node *node;
    struct event_base *base;
    int k, n, rep;
    struct lr ctl;
    struct event *ctl_ev;
    int meshed, seen_add, seen_del;
    double deadline;
    char *port;
};

static void poll_mesh(aemp_node *node, void *ud)
{
    struct child_state *c = ud;
    cJSON *up = aemp_up_nodes(node);
    int size = cJSON_GetArraySize(up);
    cJSON_Delete(up);
    if (size == c->n - 1) {
        c->meshed = 1;
        wr(c->rep, "M %.6f\n", bench_now());
        return;
    }
    if (bench_now() > c->deadline) { /* report the failure instead of hanging */
        wr(c->rep, "F %d\n", size);
        return;
    }
    aemp_after(node, POLL, poll_mesh, c, NULL);
}

static void grp_cb(aemp_node *node, const char *group, const cJSON *members, const cJSON *added,
                   const cJSON *removed, void *ud)
{
    struct child_state *c = ud;
    double t = bench_now();
    if (!c->seen_add && cJSON_GetArraySize(added) > 0) {
        c->seen_add = 1;
        wr(c->rep, "A %.6f\n", t);
    }
    if (c->seen_add && !c->seen_del && cJSON_GetArraySize(removed) > 0) {
        c->seen_del = 1;
        wr(c->rep, "D %.6f\n", t);
    }
}

static void ctl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct child_state *c = arg;
    ssize_t n = read(fd, c->ctl.buf + c->ctl.len, sizeof c->ctl.buf - c->ctl.len);
    if (n <= 0) _exit(0); /* parent gone */
    c->ctl.len += n;
    char *nl;
    while ((nl = memchr(c->ctl.buf, '\n', c->ctl.len))) {
        char cmd = c->ctl.buf[0];
        size_t l = nl - c->ctl.buf;
        memmove(c->ctl.buf, nl + 1, c->ctl.len - l - 1);
        c->ctl.len -= l + 1;
        if (cmd == 'W') { /* watch the group */
            aemp_grp_mon(c->node, GROUP, grp_cb, c, NULL);
            wr(c->rep, "w\n");
        } else if (cmd == 'R') { /* register a port */
            c->port = aemp_port(c->node);
            double t = bench_now();
            int rc = aemp_grp_reg(c->node, GROUP, c->port, NULL);
            wr(c->rep, "R %.6f %d\n", t, rc);
        } else if (cmd == 'K') { /* kill it */
            double t = bench_now();
            aemp_kil(c->node, c->port, NULL);
            wr(c->rep, "K %.6f\n", t);
        }
    }
}

static void child(int k, int n, int ctl, int rep)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(120);
    struct child_state c = {.k = k, .n = n, .rep = rep, .ctl = {.fd = ctl}};
    char id[64], line[256];
    snprintf(id, sizeof id, "bench-mesh-%d", k);
    c.base = event_base_new();
    if (k == 0) {
        c.node = bench_node(c.base, id, 1, NULL, 0);
        cJSON *a = aemp_listen_addrs(c.node);
        wr(rep, "%s\n", cJSON_GetArrayItem(a, 0)->valuestring);
        cJSON_Delete(a);
        if (!lr_line(&c.ctl, line, sizeof line)) _exit(1); /* "go" */
    } else {
        if (!lr_line(&c.ctl, line, sizeof line)) _exit(1); /* seed address = go */
        c.node = bench_node(c.base, id, 1, line, 0);
    }
    c.deadline = bench_now() + MESH_TIMEOUT;
    poll_mesh(c.node, &c);
    c.ctl_ev = event_new(c.base, ctl, EV_READ | EV_PERSIST, ctl_cb, &c);
    event_add(c.ctl_ev, NULL);
    for (;;) event_base_loop(c.base, EVLOOP_ONCE);
}

/* ------------------------------------------------------------ parent */

struct kid {
    pid_t pid; /* 0 once reaped */
    int ctl;   /* write end */
    struct lr rep;
};

/* The children of the round that runs, for die() and the alarm. */
static struct kid kids[MAXN];
static int nkids;

static void reap(void)
{
    for (int k = 0; k < nkids; k++) {
        if (kids[k].pid > 0) {
            kill(kids[k].pid, SIGKILL);
            waitpid(kids[k].pid, NULL, 0);
        }
        kids[k].pid = 0;
        close(kids[k].ctl);
        close(kids[k].rep.fd);
    }
    nkids = 0;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_mesh: %s\n", what);
    reap();
    exit(1);
}

static void on_alarm(int sig)
{
    static const char m[] = "bench_mesh: timed out\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    for (int k = 0; k < nkids; k++)
        if (kids[k].pid > 0) kill(kids[k].pid, SIGKILL);
    for (int k = 0; k < nkids; k++)
        if (kids[k].pid > 0) waitpid(kids[k].pid, NULL, 0);
    _exit(1);
}

static void spawn(int n)
{
    for (int k = 0; k < n; k++) {
        int c[2], r[2];
        if (pipe(c) || pipe(r)) die("pipe failed");
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            /* drop the parent's ends of the earlier children's pipes */
            for (int j = 0; j < k; j++) {
                close(kids[j].ctl);
                close(kids[j].rep.fd);
            }
            close(c[1]);
            close(r[0]);
            child(k, n, c[0], r[1]);
            _exit(0);
        }
        close(c[0]);
        close(r[1]);
        kids[k] = (struct kid){.pid = pid, .ctl = c[1], .rep = {.fd = r[0]}};
        nkids = k + 1;
    }
}

/* Child k's pipe hit EOF: reap it and say how it ended. */
static void lost(int n, int k)
{
    int st = 0;
    waitpid(kids[k].pid, &st, 0);
    kids[k].pid = 0;
    if (WIFSIGNALED(st))
        printf("mesh %d nodes: FAILED, child %d killed by signal %d (%s)\n", n, k, WTERMSIG(st),
               strsignal(WTERMSIG(st)));
    else
        printf("mesh %d nodes: FAILED, child %d exited with status %d\n", n, k,
               WEXITSTATUS(st));
    fflush(stdout);
}

static void send_line(struct kid *kid, const char *s)
{
    size_t len = strlen(s);
    if (write(kid->ctl, s, len) != (ssize_t)len) die("write to child failed");
}

/* Read a line "TAG TIME ..." from kid, with the tag checked. */
static double expect(struct kid *kid, char tag)
{
    char line[256];
    double t;
    char got;
    line[0] = 0;
    if (!lr_line(&kid->rep, line, sizeof line) || sscanf(line, "%c %lf", &got, &t) != 2 ||
        got != tag) {
        fprintf(stderr, "bench_mesh: child %d: expected %c, got \"%s\"\n", (int)kid->pid, tag,
                line);
        exit(1);
    }
    return t;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void delays(const char *what, double t0, int nw, char tag)
{
    double d[MAXN];
    for (int k = 0; k < nw; k++) d[k] = (expect(&kids[k], tag) - t0) * 1e3;
    qsort(d, nw, sizeof *d, cmpd);
    double med = nw % 2 ? d[nw / 2] : (d[nw / 2 - 1] + d[nw / 2]) / 2;
    printf("group %s delay (%d watchers): max %.2f ms, median %.2f ms\n", what, nw, d[nw - 1],
           med);
}

static void run(int n, int group)
{
    if (n < 2 || n > MAXN) die("node count must be 2 .. 20");
    spawn(n);
    char addr[256], line[300];
    if (!lr_line(&kids[0].rep, addr, sizeof addr)) die("seed did not report its address");
    snprintf(line, sizeof line, "%s\n", addr);
    for (int k = 1; k < n; k++) send_line(&kids[k], line);
    send_line(&kids[0], "go\n");
    double start = bench_now(), last = 0;
    /* one report per child, in any order; a child that dies ends the round */
    int left = n, got[MAXN] = {0};
    while (left) {
        struct pollfd pf[MAXN];
        for (int k = 0; k < n; k++) pf[k] = (struct pollfd){got[k] ? -1 : kids[k].rep.fd, POLLIN, 0};
        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll failed");
        }
        for (int k = 0; k < n; k++) {
            if (got[k] || !pf[k].revents) continue;
            if (!lr_line(&kids[k].rep, line, sizeof line)) {
                lost(n, k);
                reap();
                return;
            }
            got[k] = 1, left--;
            double t;
            int up;
            if (sscanf(line, "M %lf", &t) == 1) {
                if (t > last) last = t;
            } else if (sscanf(line, "F %d", &up) == 1) {
                printf("mesh %d nodes: FAILED, child %d saw only %d of %d nodes up after %.0f s\n",
                       n, k, up, n - 1, MESH_TIMEOUT);
                fflush(stdout);
                reap();
                return;
            } else {
                die("unexpected report from child");
            }
        }
    }
    printf("mesh %d nodes: %.1f ms\n", n, (last - start) * 1e3);
    fflush(stdout);

    if (group) {
        int nw = n - 1; /* watchers: children 0 .. n-2; registrar: n-1 */
        for (int k = 0; k < nw; k++) send_line(&kids[k], "W\n");
        for (int k = 0; k < nw; k++)
            if (!lr_line(&kids[k].rep, line, sizeof line) || line[0] != 'w')
                die("watcher did not acknowledge");
        send_line(&kids[n - 1], "R\n");
        double t0 = expect(&kids[n - 1], 'R');
        delays("add", t0, nw, 'A');
        send_line(&kids[n - 1], "K\n");
        double t1 = expect(&kids[n - 1], 'K');
        delays("remove", t1, nw, 'D');
        fflush(stdout);
    }
    reap();
}

/* Arguments: node counts to run (default 2 5 10 20); 10 adds the group
 * figures. */
int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(600);
    static const int sizes[] = {2, 5, 10, 20};
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            int n = atoi(argv[i]);
            if (n < 2 || n > MAXN) die("node count must be 2 .. 20");
            run(n, n == 10);
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) run(sizes[i], sizes[i] == 10);
    return 0;
}
