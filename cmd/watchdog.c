/* watchdog.c - `aemp run` under a supervising parent, and restarts.
 *
 * 1.30's `aemp run` always runs its node under AnyEvent::Watchdog with
 * autorestart(1) and heartbeat(300). Here the configuration key
 * `autorestart` (a boolean, default false) turns that on: the `aemp run`
 * process becomes a small parent that forks the node and restarts it when
 * it crashes (a signal, a non-zero exit status) or hangs (its event loop
 * stops writing a heartbeat byte to a pipe for `heartbeat` seconds, default
 * 300), with back-off (1, 2, 4 ... 60 s; reset after a minute of running),
 * and logs why. SIGTERM/SIGINT/SIGHUP are passed on to the node; a node
 * that stops with status 0, or one that fails before its first heartbeat
 * (a bad configuration), is not restarted.
 *
 * A restart asked for over the network (`aemp restart NODE`, the node-port
 * calls aemp::restart or AnyEvent::Watchdog::Util::restart) stops the node
 * cleanly and executes the same command line again in the same process:
 * same node ID, configuration and services read afresh, same PID (for a
 * service manager and for the watchdog, whose heartbeat pipe survives).
 * Any peer may ask, as in 1.30 (where any peer may eval), but at most once
 * per RESTART_MIN_INTERVAL, never when the configuration key `allow_restart`
 * is false, and the log names the node that asked (for a relayed request
 * the node of its reply port, and the relaying node). */
#include "cmds.h"

#include "aemp.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WD_ENV "AEMP_WATCHDOG_FD"
#define WD_DEFAULT_HEARTBEAT 300.0
#define WD_MAX_BACKOFF 60.0
#define WD_STABLE 60.0 /* seconds of running that reset the back-off */
#define WD_START 60.0  /* seconds a node may take to start before its first beat */
/* A restart request within this many seconds of the last restart is refused;
 * the time of that restart (CLOCK_MONOTONIC) survives the exec in here. */
#define RESTART_MIN_INTERVAL 10.0
#define RESTART_ENV "AEMP_RESTARTED_AT"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Perl's truth of a configuration value. */
static int truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    if (cJSON_IsNumber(v)) return v->valuedouble != 0;
    if (cJSON_IsString(v)) return *v->valuestring && strcmp(v->valuestring, "0");
    return 1;
}

static double watchdog_heartbeat(const cJSON *eff)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(eff, "heartbeat");
    double s = cJSON_IsNumber(h) ? h->valuedouble : cJSON_IsString(h) ? atof(h->valuestring) : 0;
    return s > 0 ? s : WD_DEFAULT_HEARTBEAT;
}

static int watchdog_wanted(const cJSON *eff)
{
    const char *fd = getenv(WD_ENV);
    return !(fd && *fd) && truthy(cJSON_GetObjectItemCaseSensitive(eff, "autorestart"));
}

/* ------------------------------------------------------------- the parent */

static void describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "crashed: killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/* Fork the node again and again; in the node (the child) returns -1 with
 * *restarted set when it is not the first. */
static int watchdog_supervise(const char *label, double heartbeat, int *restarted)
{
    int forks = 0;
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, &old)) return EXIT_FAIL;
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "aemp: run: watchdog: signalfd: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    pid_t me = getpid();
    int crashes = 0, stopping = 0;
    aemp_log(5, "watchdog: supervising node %s (heartbeat %g s)", label, heartbeat);
    for (;;) {
        int hb[2];
        if (pipe2(hb, O_CLOEXEC)) {
            aemp_log(2, "watchdog: pipe: %s", strerror(errno));
            return EXIT_FAIL;
        }
        fflush(NULL);
        pid_t pid = fork();
        forks++;
        if (pid < 0) {
            aemp_log(2, "watchdog: fork: %s", strerror(errno));
            return EXIT_FAIL;
        }
        if (pid == 0) { /* the node: back to cmd_run */
            close(sfd);
            close(hb[0]);
            sigprocmask(SIG_SETMASK, &old, NULL);
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* the watchdog died: stop too */
            if (getppid() != me) _exit(EXIT_FAIL);
            fcntl(hb[1], F_SETFD, 0); /* survives a restart's exec */
            fcntl(hb[1], F_SETFL, O_NONBLOCK);
            char num[16];
            snprintf(num, sizeof num, "%d", hb[1]);
            setenv(WD_ENV, num, 1);
            *restarted = forks > 1;
            return -1;
        }
        close(hb[1]);
        aemp_log(5, "watchdog: node %s started (pid %d)", label, (int)pid);
        double started = mono(), last = started;
        int beaten = 0, hung = 0, status = 0, hb_open = 1;
        for (;;) {
            struct pollfd p[2] = {{sfd, POLLIN, 0}, {hb_open ? hb[0] : -1, POLLIN, 0}};
            int wait_ms = -1;
            if (hb_open && !hung) {
                /* until the first beat the node may still be starting */
                double limit = beaten ? heartbeat : heartbeat > WD_START ? heartbeat : WD_START;
                double left = limit - (mono() - last);
                wait_ms = left > 0 ? (int)(left * 1000) + 1 : 0;
            }
            int n = poll(p, 2, wait_ms);
            if (n < 0 && errno != EINTR) break;
            if (n == 0) { /* no heartbeat in time */
                hung = 1;
                aemp_log(3, "watchdog: node %s (pid %d) hung: no heartbeat for %g s; killing it",
                         label, (int)pid, beaten ? heartbeat : heartbeat > WD_START ? heartbeat : WD_START);
                kill(pid, SIGKILL);
                continue;
            }
            if (p[1].revents) {
                char buf[256];
                ssize_t r = read(hb[0], buf, sizeof buf);
                if (r > 0) {
                    last = mono();
                    beaten = 1;
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    hb_open = 0; /* the node is going: wait for its exit */
                }
            }
            if (p[0].revents) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) != sizeof si) continue;
                if (si.ssi_signo == SIGCHLD) {
                    if (waitpid(pid, &status, WNOHANG) == pid) break;
                } else {
                    if (si.ssi_signo != SIGHUP) stopping = 1;
                    kill(pid, (int)si.ssi_signo); /* pass it on */
                }
            }
        }
        close(hb[0]);
        char why[160];
        describe(status, why, sizeof why);
        if (stopping) {
            aemp_log(6, "watchdog: node %s %s; stopping", label, why);
            return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_OK;
        }
        if (!hung && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            aemp_log(6, "watchdog: node %s stopped (status 0); not restarting", label);
            return EXIT_OK;
        }
        if (!hung && !beaten && WIFEXITED(status)) {
            aemp_log(3, "watchdog: node %s %s before it ran (see above); not restarting", label,
                     why);
            return WEXITSTATUS(status);
        }
        if (mono() - started > WD_STABLE) crashes = 0;
        crashes++;
        double delay = 1;
        for (int i = 1; i < crashes && delay < WD_MAX_BACKOFF; i++)
            delay *= 2;
        if (delay > WD_MAX_BACKOFF) delay = WD_MAX_BACKOFF;
        if (hung) snprintf(why, sizeof why, "hung (no heartbeat for %g s)", heartbeat);
        aemp_log(3, "watchdog: node %s %s; restarting in %g s", label, why, delay);
        /* the back-off, still listening to signals */
        double until = mono() + delay;
        while (mono() < until) {
            struct pollfd p = {sfd, POLLIN, 0};
            if (poll(&p, 1, (int)((until - mono()) * 1000) + 1) > 0) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo != SIGCHLD &&
                    si.ssi_signo != SIGHUP) {
                    aemp_log(6, "watchdog: signal %d during back-off; stopping", (int)si.ssi_signo);
                    return EXIT_OK;
                }
            }
        }
    }
}

/* -------------------------------------------------------------- the node */

struct wd_node {
    aemp_node *node;
    int fd;
    struct event *beat;
    int restart; /* a restart was asked for */
    int allow;   /* allow_restart: restart requests are taken */
};

static struct wd_node wd = {.fd = -1};

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    ssize_t w = write(wd.fd, "b", 1);
    (void)w; /* full (the watchdog is behind) or gone (PR_SET_PDEATHSIG ends us) */
}

static void restart_now(aemp_node *node, void *ud)
{
    (void)ud;
    aemp_node_stop(node);
}

/* Refuse a restart request: the reason goes to the reply port (if any) as
 * ["refused", WHY] and is logged (rate-limited) as the function's failure. */
static int restart_refuse(aemp_node *node, const cJSON *r, const char *who, const char *why)
{
    if (r) {
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("refused"));
        cJSON_AddItemToArray(m, cJSON_CreateString(why));
        aemp_snd(node, r->valuestring, m);
    }
    aemp_fail(node, "restart requested by %s refused: %s", who, why);
    return -1;
}

static int restart_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    (void)self, (void)ud;
    /* `aemp restart` appends a reply port: confirm (1.30's callers pass
     * other arguments, which are ignored) */
    const cJSON *r = cJSON_GetArrayItem(args, 0);
    if (!cJSON_IsString(r) || !strchr(r->valuestring, '#')) r = NULL;
    /* Who asked: the sending node, or, for a request relayed by another
     * node (["", "snd", NODE#, ["aemp::restart", REPLY]]), the node of the
     * reply port, which is where the asker waits. */
    const char *via = aemp_caller(node);
    char *asker = r ? aemp_node_of(r->valuestring) : NULL;
    char who[512];
    if (asker && via && strcmp(asker, via))
        snprintf(who, sizeof who, "%.200s (relayed by %.200s)", asker, via);
    else
        snprintf(who, sizeof who, "%.200s", via ? via : asker ? asker : "this node");
    free(asker);
    if (!wd.allow)
        return restart_refuse(node, r, who,
                              "this node does not take restart requests (allow_restart is "
                              "false); restart it where it runs (systemctl restart, or stop "
                              "and start aemp run)");
    const char *at = getenv(RESTART_ENV);
    double since = at && *at ? mono() - atof(at) : 1e9;
    if (since < RESTART_MIN_INTERVAL) {
        char why[160];
        snprintf(why, sizeof why,
                 "it restarted %.1f s ago; restarts are at most one per %g s, ask again in "
                 "%.1f s",
                 since, RESTART_MIN_INTERVAL, RESTART_MIN_INTERVAL - since);
        return restart_refuse(node, r, who, why);
    }
    if (r) aemp_snd_json(node, r->valuestring, "[\"restarting\"]");
    if (wd.restart) return 0;
    aemp_log(5, "restart requested by %s: stopping node %s to start it again", who,
             aemp_node_id(node));
    wd.restart = 1;
    /* a moment for what came with the request (aemp restart's delivery
     * proof) to be answered */
    aemp_after(node, 0.2, restart_now, NULL, NULL);
    return 0;
}

/* `aemp restart [--timeout S] NODE`: aemp cal NODE aemp::restart, so a node
 * that does not know the function (not started by aemp run) is an error. */
int cmd_restart(struct cmd_ctx *ctx, int argc, char **argv)
{
    char *av[64];
    int ac = 0;
    if (argc < 2 || argc > 60 || argv[argc - 1][0] == '-') {
        fprintf(stderr, "aemp: restart: usage: aemp restart [--timeout S] NODE\n");
        return EXIT_USAGE;
    }
    for (int i = 0; i < argc - 1; i++)
        av[ac++] = argv[i];
    char *node = aemp_node_of(argv[argc - 1]);
    if (!node) return EXIT_FAIL;
    av[ac++] = node;
    av[ac++] = "aemp::restart";
    av[ac] = NULL;
    int rc = cmd_cal(ctx, ac, av);
    free(node);
    return rc;
}

void watchdog_node_start(aemp_node *node, const cJSON *eff)
{
    wd.node = node;
    wd.restart = 0;
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(eff, "allow_restart");
    wd.allow = !allow || truthy(allow);
    aemp_register(node, "aemp::restart", restart_fn, NULL);
    aemp_register(node, "AnyEvent::Watchdog::Util::restart", restart_fn, NULL);
    aemp_register(node, "AnyEvent::Watchdog::restart", restart_fn, NULL);
    const char *fd = getenv(WD_ENV);
    if (!fd || !*fd) return;
    wd.fd = atoi(fd);
    double iv = watchdog_heartbeat(eff) / 5;
    if (iv > 10) iv = 10;
    if (iv < 0.05) iv = 0.05;
    struct timeval tv = {(time_t)iv, (suseconds_t)((iv - (double)(time_t)iv) * 1e6)};
    wd.beat = event_new(aemp_node_base(node), -1, EV_PERSIST, beat_cb, NULL);
    if (wd.beat) event_add(wd.beat, &tv);
    beat_cb(-1, 0, NULL);
}

int watchdog_restart_asked(void)
{
    return wd.restart;
}

int watchdog_node_end(void)
{
    if (wd.beat) event_free(wd.beat);
    wd.beat = NULL;
    wd.node = NULL;
    return wd.restart;
}

/* Execute our own command line again (from /proc/self/cmdline). Returns
 * only on failure. */
void watchdog_reexec(void)
{
    static char buf[65536];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) {
        aemp_log(2, "restart: cannot read /proc/self/cmdline");
        return;
    }
    buf[n] = 0;
    char *argv[1024];
    int argc = 0;
    for (char *p = buf; p < buf + n && argc < 1023; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    char at[32];
    snprintf(at, sizeof at, "%.3f", mono()); /* for the next request's rate limit */
    setenv(RESTART_ENV, at, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    aemp_log(2, "restart: cannot execute %s again: %s", argv[0], strerror(errno));
}

int watchdog_maybe_supervise(const cJSON *eff, const char *profile, int *status, int *restarted)
{
    *restarted = 0;
    const char *fd = getenv(WD_ENV);
    if (fd && *fd) { /* a supervised node (re)starting: alive */
        ssize_t w = write(atoi(fd), "s", 1);
        (void)w; /* nobody listening: the watchdog is gone */
    }
    if (!watchdog_wanted(eff)) return 0;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(eff, "nodeid");
    char label[256];
    snprintf(label, sizeof label, "%s",
             cJSON_IsString(id) && strcmp(id->valuestring, "anon/") ? id->valuestring
             : profile                                                ? profile
                                                                      : "(default profile)");
    double hb = watchdog_heartbeat(eff);
    int rc = watchdog_supervise(label, hb, restarted);
    if (rc < 0) return 0; /* the node */
    *status = rc;
    return 1;
}
