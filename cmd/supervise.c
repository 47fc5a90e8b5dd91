/* supervise.c - `aemp run` under a service manager: tells systemd (through
 * libsystemd's sd_notify, when built with it) that the node is ready once it
 * listens and has configured, that it reloads on SIGHUP (the configuration
 * is read again: seeds, log level, new services) and that it stops. Without
 * $NOTIFY_SOCKET the notifications cost nothing; SIGHUP reloads either way. */
#include "cmds.h"

#include "aemp.h"

#include <event2/event.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef AEMP_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

struct supervisor {
    aemp_node *node;
    const char *profile; /* borrowed from the caller, as kv */
    const cJSON *kv;
    struct event *sighup;
};

/* Send `state` (lines "KEY=VALUE") to the service manager, if any. */
static void notify(const char *state)
{
#ifdef AEMP_HAVE_LIBSYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0) aemp_log(5, "cannot notify the service manager: %s", strerror(-rc));
#else
    static int warned;
    const char *sock = getenv("NOTIFY_SOCKET");
    if (sock && *sock && !warned++)
        aemp_log(5, "NOTIFY_SOCKET is set but this aemp was built without libsystemd: the "
                    "service manager is not told when the node is ready (use Type=simple)");
    (void)state;
#endif
}

/* RELOADING=1 with `status` and the time systemd wants with it. */
static void notify_reloading(const char *status)
{
    char state[160];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof state, "RELOADING=1\nSTATUS=%s\nMONOTONIC_USEC=%llu", status,
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify(state);
}

/* READY=1, the status saying the node runs (and `note`, may be ""). */
static void notify_ready(aemp_node *node, const char *note)
{
    char state[160];
    snprintf(state, sizeof state, "READY=1\nSTATUS=node %s running%s", aemp_node_id(node), note);
    notify(state);
}

static void on_sighup(evutil_socket_t fd, short what, void *ud)
{
    struct supervisor *sv = ud;
    char err[512] = "";
    (void)fd;
    (void)what;
    notify_reloading("reloading the configuration");
    int rc = aemp_reload(sv->node, sv->profile, sv->kv, err, sizeof err);
    if (rc)
        aemp_log(3, "reload of node %s: %s", aemp_node_id(sv->node),
                 *err ? err : aemp_strerror(rc));
    notify_ready(sv->node, rc ? "; the last reload failed (see the log)" : "");
}

static void supervisor_free(struct supervisor *sv)
{
    if (!sv) return;
    if (sv->sighup) event_free(sv->sighup);
    free(sv);
}

struct supervisor *supervise_start(aemp_node *node, const char *profile, const cJSON *kv)
{
    struct supervisor *sv = calloc(1, sizeof *sv);
    if (!sv) return NULL;
    sv->node = node;
    sv->profile = profile;
    sv->kv = kv;
    sv->sighup = evsignal_new(aemp_node_base(node), SIGHUP, on_sighup, sv);
    if (!sv->sighup || evsignal_add(sv->sighup, NULL))
        aemp_log(4, "cannot install the SIGHUP handler: `systemctl reload` will not work");
    notify_ready(node, "");
    return sv;
}

void supervise_restarting(struct supervisor *sv)
{
    /* the same process starts again (aemp restart): READY=1 follows */
    notify_reloading("restarting");
    supervisor_free(sv);
}

void supervise_end(struct supervisor *sv)
{
    notify("STOPPING=1\nSTATUS=stopping");
    supervisor_free(sv);
}
