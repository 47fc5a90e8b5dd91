/* msg_cmds.c - the message subcommands of aemp (PROTOCOL.md section 9):
 * snd (send, prove delivery), cal (send with a reply port, print the reply)
 * and mon (wait for a port's death), each through an anonymous node. */
#include "cmds.h"
#include "proto.h"

#include "framing.h"

#include <stdlib.h>
#include <string.h>

static void on_timeout(aemp_node *node, void *ud)
{
    struct pst *st = ud;
    (void)node;
    st->timer = NULL; /* fired: the guard is inert but still ours to free */
    if (st->done) return;
    finish(st, fail_no_answer(st));
}

/* The message ARG... of snd/cal, JSON-decoded as 1.30 does. */
/* One message element from the command line: JSON (typed elements of the
 * JSON-array form, or text starting with [ { ") parsed the way messages
 * from the network are, so that \u0000 survives (aemp.h); anything else a
 * string. Errors come from cmd_arg_json, which says where the JSON broke. */
static cJSON *msg_arg(const char *arg, char *err, size_t errlen)
{
    const char *json = arg[0] == CMD_JSON_MARK ? arg + 1 : arg[0] && strchr("[{\"", arg[0]) ? arg : NULL;
    cJSON *v = json ? aemp_json_parse(json) : NULL;
    return v ? v : cmd_arg_json(arg, err, errlen);
}

/* Every string (and key) in v is valid UTF-8: a node refuses a message
 * with anything else (a Perl node would close the connection). */
static int utf8_ok(const cJSON *v)
{
    for (; v; v = v->next) {
        if (v->string && !framing_utf8_valid(v->string)) return 0;
        if (cJSON_IsString(v) && !framing_utf8_valid(v->valuestring)) return 0;
        if (!utf8_ok(v->child)) return 0;
    }
    return 1;
}

static cJSON *build_msg(struct pst *st, int argc, char **argv, int *status)
{
    cJSON *m = cJSON_CreateArray();
    char err[512] = "";
    if (!m) {
        *status = msg(st, EXIT_FAIL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < argc; i++) {
        cJSON *v = msg_arg(argv[i], err, sizeof err);
        if (!v) {
            cJSON_Delete(m);
            *status = msg(st, EXIT_USAGE, "%s", err);
            return NULL;
        }
        if (!utf8_ok(v)) {
            cJSON_Delete(v);
            cJSON_Delete(m);
            *status = msg(st, EXIT_USAGE,
                          "argument %d of the message is not valid UTF-8 (a node refuses "
                          "such a message)",
                          i + 1);
            return NULL;
        }
        cJSON_AddItemToArray(m, v);
    }
    return m;
}

/* ------------------------------------------------------------------ snd */

static int snd_reply(aemp_node *node, const char *self, const cJSON *m, void *ud)
{
    struct pst *st = ud;
    const cJSON *it;
    int first = 1;
    aemp_kil(node, self, NULL);
    if (st->done) return 0; /* the monitor reported a failure in this loop turn */
    if (st->json) {
        print_json_line(m);
    } else if (!st->quiet) {
        cJSON_ArrayForEach(it, m)
        {
            if (!first) fputc(' ', stdout);
            first = 0;
            if (cJSON_IsString(it)) {
                put_text(stdout, it->valuestring);
            } else {
                char *s = aemp_json_print(it);
                fputs(s ? s : "", stdout);
                free(s);
            }
        }
        fputc('\n', stdout);
    }
    finish(st, EXIT_OK);
    return 0;
}

static void snd_mon(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    const cJSON *r0 = cJSON_GetArrayItem(reason, 0);
    /* Only a port that never existed means the message was not delivered; a
     * port that died after our message (maybe because of it) got it. */
    if (st->done || !cJSON_IsString(r0) || strcmp(r0->valuestring, "no_such_port")) return;
    fprintf(stderr, "aemp: %s: %s was not delivered: ", st->sub, port);
    print_unbracketed(stderr, reason);
    finish(st, EXIT_FAIL);
}

/* `--WORD` or `--WORD=...`: an option's shape (`--` alone, `-1` are not). */
static int looks_like_option(const char *a)
{
    return a[0] == '-' && a[1] == '-' && ((a[2] >= 'a' && a[2] <= 'z') || (a[2] >= 'A' && a[2] <= 'Z'));
}

/* The common start of snd and cal: options, PORT, the message from the
 * remaining arguments, the anonymous node. Returns the message (taken by the
 * caller) with *port set, or NULL with *rc the exit status. */
static cJSON *port_cmd_start(struct pst *st, int argc, char **argv, const char **port, int *rc)
{
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    cJSON *m = NULL;
    if (!pos) {
        *rc = msg(st, EXIT_FAIL, "out of memory");
        return NULL;
    }
    if ((*rc = parse_opts(st, argc, argv, 0, pos, &npos))) goto out;
    if (st->json && st->quiet) {
        *rc = msg(st, EXIT_USAGE, "--json and --quiet exclude each other");
        goto out;
    }
    if (npos < 1) {
        *rc = msg(st, EXIT_USAGE, "missing PORT (usage: aemp %s PORT ARG...)", st->sub);
        goto out;
    }
    *port = pos[0];
    if ((*rc = check_id(st, *port, "port"))) goto out;
    /* An option word in the message is a misplaced option, not text to
     * send (aemp(1)), unless it follows `--`. */
    for (int k = 1; k < npos && k < st->literal_from; k++) {
        if (!looks_like_option(pos[k])) continue;
        *rc = msg(st, EXIT_USAGE,
                  "options go before PORT (what follows PORT is the message); to send the "
                  "text %s write it after `--` or as JSON: '\"%s\"'",
                  pos[k], pos[k]);
        goto out;
    }
    if (!strcmp(st->sub, "cal") && !strchr(*port, '#')) {
        /* The node port answers requests by name: without one nothing
         * would ever reply. */
        if (npos < 2) {
            *rc = msg(st, EXIT_USAGE,
                      "missing REQUEST: the node port of %s answers named requests (usage: "
                      "aemp cal NODE REQUEST ARG..., e.g. `aemp cal %s info`; every node "
                      "answers info, time, up_nodes, known_nodes)",
                      *port, *port);
            goto out;
        }
        if (pos[1][0] == CMD_JSON_MARK || strchr("[{\"", pos[1][0])) {
            *rc = msg(st, EXIT_USAGE, "the request name must be a plain word, not '%s'",
                      pos[1][0] == CMD_JSON_MARK ? pos[1] + 1 : pos[1]);
            goto out;
        }
        st->request = pos[1];
    }
    if (!(m = build_msg(st, npos - 1, pos + 1, rc))) goto out;
    st->target = strdup(*port);
    if ((*rc = start_anon(st))) {
        cJSON_Delete(m);
        m = NULL;
        *rc = cleanup(st, NULL, *rc);
    }
out:
    free(pos);
    return m;
}

int cmd_snd(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0], .allowed = OPT_JSON | OPT_QUIET};
    const char *port;
    int rc;
    (void)ctx;
    cJSON *m = port_cmd_start(&st, argc, argv, &port, &rc);
    if (!m) return rc;
    aemp_guard *timer = NULL;
    char *nid = aemp_node_of(port);
    char *reply = aemp_port(st.node);
    if (!nid || !reply || !st.target) {
        cJSON_Delete(m);
        free(nid);
        free(reply);
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    }
    if ((rc = aemp_snd(st.node, port, m)) < 0) {
        msg(&st, EXIT_FAIL, "cannot send to %s: %s", port, aemp_strerror(rc));
        st.status = EXIT_FAIL;
        goto out;
    }
    if (strchr(port, '#')) aemp_mon(st.node, port, snd_mon, &st, NULL);
    aemp_rcv(st.node, reply, NULL, snd_reply, &st);
    cJSON *proof = cJSON_CreateArray();
    cJSON_AddItemToArray(proof, cJSON_CreateString("snd"));
    cJSON_AddItemToArray(proof, cJSON_CreateString(reply));
    cJSON_AddItemToArray(proof, cJSON_CreateString("message sent successfully"));
    if ((rc = aemp_snd(st.node, nid, proof)) < 0) {
        msg(&st, EXIT_FAIL, "cannot send to node %s: %s", nid, aemp_strerror(rc));
        st.status = EXIT_FAIL;
        goto out;
    }
    aemp_after(st.node, st.timeout, on_timeout, &st, &timer);
    run_loop(&st);
out:
    free(nid);
    free(reply);
    return cleanup(&st, timer, st.status);
}

/* ------------------------------------------------------------------ cal */

static void cal_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct pst *st = ud;
    (void)node;
    if (st->done) return;
    const cJSON *r0 = cJSON_GetArrayItem(reply, 0), *r1 = cJSON_GetArrayItem(reply, 1);
    if (reply && !strcmp(st->sub, "restart") && cJSON_IsString(r0) &&
        !strcmp(r0->valuestring, "refused")) { /* watchdog.c's refusal */
        finish(st, msg(st, EXIT_FAIL, "%s refused to restart: %s", st->target,
                       cJSON_IsString(r1) ? r1->valuestring : "no reason given"));
        return;
    }
    if (reply) {
        if (st->json)
            print_json_line(reply);
        else
            print_unbracketed(stdout, reply);
        finish(st, EXIT_OK);
        return;
    }
    const cJSON *e0 = cJSON_GetArrayItem(error, 0);
    if (cJSON_IsString(e0) && !strcmp(e0->valuestring, "timeout") &&
        cJSON_GetArraySize(error) == 1) {
        finish(st, fail_no_answer(st));
        return;
    }
    fprintf(stderr, "aemp: %s: %s died: ", st->sub, st->target);
    if (cJSON_GetArraySize(error))
        print_unbracketed(stderr, error);
    else
        fputs("(normal kill)\n", stderr);
    finish(st, EXIT_FAIL);
}

/* An abnormal death of the called port before the reply ends cal (aemp_cal
 * with a timeout does not monitor); after a normal kill a reply may still
 * come from elsewhere, so the timeout decides. */
static void cal_mon(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    if (st->done || cJSON_GetArraySize(reason) == 0) return;
    fprintf(stderr, "aemp: %s: %s died: ", st->sub, port);
    print_unbracketed(stderr, reason);
    finish(st, EXIT_FAIL);
}

int cmd_cal(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0], .allowed = OPT_JSON};
    const char *port;
    int rc;
    (void)ctx;
    cJSON *m = port_cmd_start(&st, argc, argv, &port, &rc);
    if (!m) return rc;
    if ((rc = aemp_cal(st.node, port, m, st.timeout, cal_done, &st)) < 0)
        return cleanup(&st, NULL,
                       msg(&st, EXIT_FAIL, "cannot send to %s: %s", port, aemp_strerror(rc)));
    if (strchr(port, '#')) aemp_mon(st.node, port, cal_mon, &st, NULL);
    run_loop(&st);
    return cleanup(&st, NULL, st.status);
}

/* ------------------------------------------------------------------ mon */

static void mon_done(aemp_node *node, const char *port, const cJSON *reason, void *ud)
{
    struct pst *st = ud;
    (void)node;
    (void)port;
    if (st->done) return;
    if (st->json)
        print_json_line(reason);
    else
        print_unbracketed(stdout, reason);
    finish(st, EXIT_OK);
}

static void mon_timeout(aemp_node *node, void *ud)
{
    struct pst *st = ud;
    char *nid = aemp_node_of(st->target);
    st->timer = NULL;
    if (st->done || !nid) {
        free(nid);
        return;
    }
    /* "Still alive" only when its node is up: then mon1 found the port
     * (a missing one is reported at once as no_such_port). */
    if (aemp_node_is_up(node, nid))
        finish(st, msg(st, EXIT_FAIL, "%s still alive after %g s", st->target, st->timeout));
    else
        finish(st, fail_no_answer(st));
    free(nid);
}

int cmd_mon(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0], .allowed = OPT_JSON};
    const char *port = NULL;
    int rc;
    (void)ctx;
    if ((rc = parse_one(&st, argc, argv, "PORT", &port))) return rc;
    st.target = strdup(port);
    if ((rc = start_anon(&st))) return cleanup(&st, NULL, rc);
    if (!st.target) return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    aemp_guard *timer = NULL;
    if ((rc = aemp_mon(st.node, port, mon_done, &st, NULL)))
        return cleanup(&st, NULL,
                       msg(&st, EXIT_FAIL, "cannot monitor %s: %s", port, aemp_strerror(rc)));
    if (st.timeout_given) aemp_after(st.node, st.timeout, mon_timeout, &st, &timer);
    run_loop(&st);
    return cleanup(&st, timer, st.status);
}
