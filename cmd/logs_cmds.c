/* logs_cmds.c - `aemp logs [--level N] [NODE...]`: an anonymous node that
 * catches the log lines of every node of the network (or of the named
 * nodes) through AnyEvent::MP::LogCatcher::connect and prints them on
 * stdout, one "DATE [NODE] <LEVEL> TEXT" line each, flushed at once so a
 * pipe into grep sees them live. Runs until SIGINT, SIGTERM or a closed
 * stdout. */
#include "cmds.h"

#include "aemp.h"
#include "logcatcher.h"
#include "proto.h"

#include <event2/event.h>
#include <errno.h>
#include <stdio_ext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGS_DEFAULT_LEVEL 5

struct logs {
    aemp_node *node;
    int closed;         /* stdout went away */
    struct pst *st;     /* for the failure message */
    const cJSON *nodes; /* the named nodes, or NULL for all (borrowed) */
    int status;         /* EXIT_FAIL once a node could not be reached */
};

static void on_line(aemp_node *node, const char *nodeid, int level, const char *text, void *ud)
{
    struct logs *lg = ud;
    if (logcatcher_print(stdout, nodeid, level, text) < 0 || fflush(stdout)) {
        /* a reader like `head` is done: so are we, successfully; any other
         * write error stays on stdout and fails the command (aemp.c) */
        if (errno == EPIPE) {
            __fpurge(stdout); /* what it could not take is dropped */
            clearerr(stdout);
        }
        lg->closed = 1;
        aemp_node_stop(node);
    }
}

/* --timeout after the start: every named node must be up by now (or, with
 * none named, some node of the network), else waiting would be silent and
 * endless: say what our node saw (fail_no_answer) and end. */
static void reach_timeout(aemp_node *node, void *ud)
{
    struct logs *lg = ud;
    const char *missing = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, lg->nodes) if (!missing && !aemp_node_is_up(node, it->valuestring))
        missing = it->valuestring;
    if (!lg->nodes) {
        cJSON *up = aemp_up_nodes(node);
        int others = 0;
        cJSON_ArrayForEach(it, up) others += strcmp(it->valuestring, aemp_node_id(node)) != 0;
        cJSON_Delete(up);
        if (!others) missing = "the seeds";
    }
    if (!missing) return;
    free(lg->st->target);
    lg->st->target = strdup(missing);
    lg->status = lg->st->target ? fail_no_answer(lg->st) : EXIT_FAIL;
    aemp_node_stop(node);
}

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    aemp_node_stop(ud);
}

static int usage(const char *why, const char *what)
{
    fprintf(stderr, "aemp: logs: %s%s%s%s (usage: aemp logs [--level N] [--timeout S] [NODE...])\n", why,
            what ? " '" : "", what ? what : "", what ? "'" : "");
    return EXIT_USAGE;
}

int cmd_logs(struct cmd_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    int level = LOGS_DEFAULT_LEVEL, i = 1;
    double timeout = DEFAULT_TIMEOUT;
    int verbose = 0;
    cJSON *nodes = NULL;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        /* --level N or --level=N, as the other subcommands take options */
        const char *val;
        char *end;
        if (!strncmp(argv[i], "--timeout", 9) && (!argv[i][9] || argv[i][9] == '=')) {
            if (!argv[i][9] && i + 1 >= argc) return usage("--timeout needs a value in seconds", NULL);
            val = argv[i][9] ? argv[i] + 10 : argv[++i];
            timeout = strtod(val, &end);
            if (*end || end == val || !(timeout > 0) || timeout > 1e6)
                return usage("--timeout wants a positive number of seconds, not", val);
            continue;
        }
        if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
            continue;
        }
        if (!strncmp(argv[i], "--level=", 8)) {
            val = argv[i] + 8;
        } else if (!strcmp(argv[i], "--level")) {
            if (i + 1 >= argc) return usage("--level needs a value from 0 to 9", NULL);
            val = argv[++i];
        } else {
            return usage("unknown option", argv[i]);
        }
        long l = strtol(val, &end, 10);
        if (*end || end == val || l < 0 || l > 9)
            return usage("--level wants a number from 0 to 9, not", val);
        level = (int)l;
    }
    if (i < argc) {
        nodes = cJSON_CreateArray();
        for (; i < argc; i++) {
            if (!*argv[i] || strchr(argv[i], '#')) {
                cJSON_Delete(nodes);
                return usage("NODE must be a node ID, not the port", argv[i]);
            }
            cJSON_AddItemToArray(nodes, cJSON_CreateString(argv[i]));
        }
    }
    struct pst st = {.sub = argv[0], .timeout = timeout, .verbose = verbose};
    struct logs lg = {.st = &st, .nodes = nodes};
    aemp_guard *reach = NULL;
    int rc = start_anon(&st);
    lg.node = st.node;
    struct event *sigs[2] = {NULL, NULL};
    if (rc == EXIT_OK && stop_signals_add(aemp_node_base(lg.node), on_signal, lg.node, sigs))
        rc = msg(&st, EXIT_FAIL, "cannot install the signal handlers");
    if (rc == EXIT_OK) {
        int err = aemp_log_catch(lg.node, level, nodes, on_line, &lg);
        if (err) {
            fprintf(stderr, "aemp: logs: %s\n", aemp_strerror(err));
            rc = EXIT_FAIL;
        }
    }
    if (rc == EXIT_OK) aemp_after(lg.node, timeout, reach_timeout, &lg, &reach);
    if (rc == EXIT_OK && aemp_node_run(lg.node) && !lg.closed) {
        fprintf(stderr, "aemp: logs: the event loop failed\n");
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK) rc = lg.status;
    stop_signals_free(sigs);
    aemp_guard_free(reach);
    aemp_node_free(lg.node);
    free(st.target);
    cJSON_Delete(nodes);
    return rc;
}
