/* run_cmd.c - `aemp run`: configure a node from a profile and KEY VALUE
 * pairs (an odd count: the first is the profile, as in 1.30) and run it
 * until SIGINT or SIGTERM. */
#include "cmds.h"
#include "config.h"
#include "proto.h"

#include <event2/event.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    struct pst *st = ud;
    (void)what;
    aemp_log(6, "signal %d: stopping node %s", (int)fd, aemp_node_id(st->node));
    st->done = 1;
    aemp_node_stop(st->node);
}

/* Configure and run the node from ARGV (ARGV[0] the subcommand; no `--`,
 * no misplaced options left). */
static int run_node(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    char err[512] = "";
    int rc;
    const char *profile = ctx ? ctx->profile : NULL;
    int first = 1;
    if ((argc - 1) % 2) {
        /* An odd count starts with the profile, as 1.30's configure reads
         * its arguments (`aemp run seed2` is `aemp run profile seed2`). */
        if (argv[1][0] == CMD_JSON_MARK || !*argv[1])
            return msg(&st, EXIT_USAGE,
                       "the profile must be a name, not '%s' (usage: aemp run [PROFILE] [KEY VALUE...])",
                       argv[1][0] == CMD_JSON_MARK ? argv[1] + 1 : argv[1]);
        profile = argv[1];
        first = 2;
    }
    cJSON *kv = cJSON_CreateObject();
    if (!kv) return msg(&st, EXIT_FAIL, "out of memory");
    for (int i = first; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "profile")) {
            profile = argv[i + 1];
            continue;
        }
        /* read and checked as `aemp setKEY VALUE` does (5 is a number for
         * monitor_timeout, a,b a list for seeds): what the user typed is
         * bad usage, reported before the node starts */
        cJSON *v = cmd_config_value(argv[i], argv[i + 1], err, sizeof err);
        if (!v) {
            cJSON_Delete(kv);
            return msg(&st, EXIT_USAGE, "%s", err);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(kv, argv[i]);
        cJSON_AddItemToObject(kv, argv[i], v);
    }
    /* The configuration file is read and merged once: for the watchdog and
     * for the node (again only in a node the watchdog starts anew). */
    cJSON *eff = NULL;
    rc = config_load_effective(profile, kv, &eff, err, sizeof err);
    if (rc) {
        cJSON_Delete(kv);
        return msg(&st, EXIT_FAIL, "%s", *err ? err : aemp_strerror(rc));
    }
    /* autorestart: this process becomes the node's watchdog (watchdog.c);
     * the node goes on below in a child. */
    int restarted = 0;
    if (watchdog_maybe_supervise(eff, profile, &rc, &restarted)) {
        cJSON_Delete(eff);
        cJSON_Delete(kv);
        return rc;
    }
    if (restarted) {
        cJSON_Delete(eff);
        rc = config_load_effective(profile, kv, &eff, err, sizeof err);
        if (rc) {
            cJSON_Delete(kv);
            return msg(&st, EXIT_FAIL, "%s", *err ? err : aemp_strerror(rc));
        }
    }
    st.node = aemp_node_new(NULL);
    if (!st.node) {
        cJSON_Delete(eff);
        cJSON_Delete(kv);
        return msg(&st, EXIT_FAIL, "out of memory");
    }
    cmd_put_register(st.node);
    struct event_base *base = aemp_node_base(st.node);
    struct event *sigs[2];
    if (stop_signals_add(base, on_signal, &st, sigs)) {
        rc = msg(&st, EXIT_FAIL, "cannot install the signal handlers");
        goto out;
    }
    rc = aemp_configure_effective(st.node, eff, err, sizeof err);
    if (rc) {
        rc = msg(&st, EXIT_FAIL, "%s", *err ? err : aemp_strerror(rc));
        goto out;
    }
    cJSON *addrs = aemp_listen_addrs(st.node);
    char *at = addrs && addrs->child ? cJSON_PrintUnformatted(addrs) : NULL;
    aemp_log(5, "node %s running%s%s", aemp_node_id(st.node), at ? ", listening on " : " (no listeners)",
             at ? at : "");
    free(at);
    cJSON_Delete(addrs);
    watchdog_node_start(st.node, aemp_node_config(st.node)); /* heartbeat, restart */
    struct supervisor *sv = supervise_start(st.node, profile, kv); /* READY=1, SIGHUP */
    rc = aemp_node_run(st.node);
    if (watchdog_restart_asked()) supervise_restarting(sv); /* RELOADING=1 */
    else supervise_end(sv); /* STOPPING=1 */
    if (rc && !st.done)
        rc = msg(&st, EXIT_FAIL, "the event loop failed");
    else
        rc = EXIT_OK;
    if (rc == EXIT_OK) aemp_log(6, "node %s stopped", aemp_node_id(st.node));
out:
    stop_signals_free(sigs);
    aemp_node_free(st.node);
    cJSON_Delete(eff);
    cJSON_Delete(kv);
    if (watchdog_node_end() && rc == EXIT_OK) watchdog_reexec(); /* returns on failure */
    return rc;
}

int cmd_run(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0]};
    /* A word beginning with '-' (not a number) before `--` is a misplaced
     * option, not a profile or value (`aemp run nodeid -x` starts no node
     * named -x); `--` itself is dropped. */
    char **words = calloc((size_t)argc + 1, sizeof *words);
    if (!words) return msg(&st, EXIT_FAIL, "out of memory");
    int n = 0, literal = 0;
    words[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (!literal && !strcmp(argv[i], "--")) {
            literal = 1;
            continue;
        }
        if (!literal && cmd_looks_like_option(argv[i])) {
            free(words);
            return msg(&st, EXIT_USAGE,
                       "'%s' is not an option of run; a profile or value beginning with '-' goes "
                       "after `--` (aemp run -- ... %s)",
                       argv[i], argv[i]);
        }
        words[n++] = argv[i];
    }
    int rc = run_node(ctx, n, words);
    free(words);
    return rc;
}
