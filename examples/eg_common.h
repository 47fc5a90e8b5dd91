/* eg_common.h - the part every example shares: one source file builds either
 * a standalone program (main() below) or, with -DAEMP_SERVICE, a service for
 * `aemp run services '["PATH.so:NAME_init"]'`.
 *
 * An example defines EG_SYMBOL (its name), EG_USAGE (a text for --help) and
 *     static int eg_setup(aemp_node *node, const cJSON *args, int standalone,
 *                         void **state);
 *     static void eg_free(void *state);
 * then includes this header. eg_setup() returns 0 or -1 and may set *state;
 * the standalone program calls eg_free(*state) before aemp_node_free(). A
 * service's state lives as long as the process. The standalone program takes an optional
 * configuration profile as its first argument and any further arguments are
 * passed to eg_setup() as a JSON array of strings; it joins the network
 * through the user's configuration (seeds, secret) with "anon/" as the node
 * ID unless the file sets one. The service gets the arguments of its entry in
 * "services" (for ["PATH.so:SYMBOL", ARG...] the ARGs) and runs on the node of
 * `aemp run`. */
#ifndef EG_COMMON_H
#define EG_COMMON_H

#include "aemp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int eg_setup(aemp_node *node, const cJSON *args, int standalone, void **state);
static void eg_free(void *state);

/* Print a line and flush, so output reaches a pipe or log file at once. */
#define eg_say(...) (printf(__VA_ARGS__), fflush(stdout))

#ifdef AEMP_SERVICE

#define EG_CAT2(a, b) a##b
#define EG_CAT(a, b) EG_CAT2(a, b)
/* The service entry point, e.g. eg_receiver_init. */
int EG_CAT(EG_SYMBOL, _init)(aemp_node *node, const cJSON *args);
int EG_CAT(EG_SYMBOL, _init)(aemp_node *node, const cJSON *args)
{
    void *state = NULL;
    int rc = eg_setup(node, args, 0, &state);
    /* When `aemp run` stops, the node is freed: give the state back then. */
    if (rc == 0 && state) aemp_at_free(node, eg_free, state);
    return rc;
}

#else

#include <signal.h>
#include <event2/event.h>

static void eg_on_signal(evutil_socket_t sig, short what, void *ud)
{
    aemp_node_stop(ud);
}

int main(int argc, char **argv)
{
    const char *profile = NULL;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fprintf(stderr, "usage: %s [PROFILE|- [ARG...]]  (%s)\n", argv[0], EG_USAGE);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "-")) profile = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    aemp_node *node = aemp_node_new(NULL);
    cJSON *kv = cJSON_CreateObject();
    cJSON *args = cJSON_CreateArray();
    if (!node || !kv || !args) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    for (int i = 2; i < argc; i++)
        cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    cJSON_AddStringToObject(kv, "nodeid", "anon/");
    char err[512] = "";
    int rc = aemp_configure(node, profile, kv, err, sizeof err);
    cJSON_Delete(kv);
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[0], *err ? err : aemp_strerror(rc));
        cJSON_Delete(args);
        aemp_node_free(node);
        return 1;
    }
    struct event_base *base = aemp_node_base(node);
    struct event *sint = evsignal_new(base, SIGINT, eg_on_signal, node);
    struct event *sterm = evsignal_new(base, SIGTERM, eg_on_signal, node);
    if (sint) evsignal_add(sint, NULL);
    if (sterm) evsignal_add(sterm, NULL);
    void *state = NULL;
    rc = eg_setup(node, args, 1, &state);
    cJSON_Delete(args);
    if (rc == 0) {
        fprintf(stderr, "%s: node %s running\n", argv[0], aemp_node_id(node));
        rc = aemp_node_run(node);
    }
    if (sint) event_free(sint);
    if (sterm) event_free(sterm);
    eg_free(state);
    aemp_node_free(node);
    return rc ? 1 : 0;
}

#endif
#endif
