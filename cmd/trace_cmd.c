/* trace_cmd.c - `aemp trace`: every node reachable from one node and its
 * neighbours (up_nodes of each, asked in turn), as text, JSON lines or a
 * Graphviz graph. */
#include "cmds.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

struct trace_req {
    struct pst *st;
    char *nodeid;
};

static void trace_ask(struct pst *st, const char *nodeid);

static void trace_done(aemp_node *node, const cJSON *reply, const cJSON *error, void *ud)
{
    struct trace_req *rq = ud;
    struct pst *st = rq->st;
    (void)error;
    const char *self = aemp_node_id(node);
    if (reply) {
        cJSON *neigh = cJSON_CreateArray();
        const cJSON *it;
        cJSON_ArrayForEach(it, reply)
        {
            if (!cJSON_IsString(it) || !strcmp(it->valuestring, self)) continue;
            cJSON_AddItemToArray(neigh, cJSON_CreateString(it->valuestring));
        }
        cJSON_ReplaceItemInObjectCaseSensitive(st->results, rq->nodeid, neigh);
        cJSON_ArrayForEach(it, neigh) trace_ask(st, it->valuestring);
    }
    free(rq->nodeid);
    free(rq);
    if (--st->pending == 0) finish(st, EXIT_OK);
}

/* Ask `nodeid` for its up nodes unless it was asked already. */
static void trace_ask(struct pst *st, const char *nodeid)
{
    if (cJSON_GetObjectItemCaseSensitive(st->results, nodeid)) return;
    cJSON_AddItemToObject(st->results, nodeid, cJSON_CreateNull());
    struct trace_req *rq = calloc(1, sizeof *rq);
    if (!rq || !(rq->nodeid = strdup(nodeid))) {
        free(rq);
        return;
    }
    rq->st = st;
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, cJSON_CreateString("up_nodes"));
    st->pending++;
    if (aemp_cal(st->node, nodeid, m, st->timeout, trace_done, rq) < 0) {
        st->pending--;
        free(rq->nodeid);
        free(rq);
    }
}

/* One line per node: "NODE: NEIGHBOUR NEIGHBOUR..." (sorted), or
 * "NODE: (no answer)"; with --json {"node":NODE,"neighbours":[...] or null}. */
static void print_trace(const struct pst *st, const char **nodes, int n)
{
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(st->results, nodes[i]);
        int m = 0;
        const char **nb = cJSON_IsArray(neigh) ? sorted_strings(neigh, 0, &m) : NULL;
        if (st->json) {
            cJSON *line = cJSON_CreateObject();
            cJSON_AddStringToObject(line, "node", nodes[i]);
            cJSON_AddItemToObject(line, "neighbours",
                                  nb ? cJSON_CreateStringArray(nb, m) : cJSON_CreateNull());
            print_json_line(line);
            cJSON_Delete(line);
        } else {
            printf("%s:%s", nodes[i], nb ? "" : " (no answer)");
            for (int j = 0; nb && j < m; j++)
                printf(" %s", nb[j]);
            fputc('\n', stdout);
        }
        free(nb);
    }
}

/* A node ID as a Graphviz string literal. */
static void dot_id(const char *s)
{
    fputc('"', stdout);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', stdout);
        fputc(*s, stdout);
    }
    fputc('"', stdout);
}

/* The mesh as an undirected Graphviz graph: one edge per connected pair
 * (seen from either side), unanswering nodes drawn dashed. */
static void print_dot(const cJSON *results, const char **nodes, int n)
{
    puts("graph aemp {");
    puts("  node [shape=box, style=rounded];");
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(results, nodes[i]);
        fputs("  ", stdout);
        dot_id(nodes[i]);
        puts(cJSON_IsArray(neigh) ? ";" : " [style=\"rounded,dashed\", label=\"(no answer)\"];");
    }
    for (int i = 0; nodes && i < n; i++) {
        const cJSON *neigh = cJSON_GetObjectItemCaseSensitive(results, nodes[i]);
        int m = 0;
        const char **nb = cJSON_IsArray(neigh) ? sorted_strings(neigh, 0, &m) : NULL;
        for (int j = 0; nb && j < m; j++) {
            /* each pair once: from the smaller ID, or from the only side
             * that answered */
            const cJSON *back = cJSON_GetObjectItemCaseSensitive(results, nb[j]), *e;
            int mutual = 0;
            cJSON_ArrayForEach(e, back) mutual |=
                cJSON_IsString(e) && !strcmp(e->valuestring, nodes[i]);
            if (strcmp(nodes[i], nb[j]) > 0 && mutual) continue;
            fputs("  ", stdout);
            dot_id(nodes[i]);
            fputs(" -- ", stdout);
            dot_id(nb[j]);
            puts(";");
        }
        free(nb);
    }
    puts("}");
}

int cmd_trace(struct cmd_ctx *ctx, int argc, char **argv)
{
    struct pst st = {.sub = argv[0], .allowed = OPT_DOT | OPT_JSON};
    const char *node = NULL;
    int rc;
    (void)ctx;
    if ((rc = parse_one(&st, argc, argv, "NODE", &node))) return rc;
    if (st.dot && st.json) return msg(&st, EXIT_USAGE, "--dot and --json exclude each other");
    st.first = aemp_node_of(node);
    st.target = st.first ? strdup(st.first) : NULL;
    st.results = cJSON_CreateObject();
    if (!st.first || !st.target || !st.results)
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "out of memory"));
    if ((rc = start_anon(&st))) return cleanup(&st, NULL, rc);
    trace_ask(&st, st.first);
    if (st.pending == 0)
        return cleanup(&st, NULL, msg(&st, EXIT_FAIL, "cannot send to %s", st.first));
    run_loop(&st);
    if (st.status) return cleanup(&st, NULL, st.status);

    int n = 0;
    const char **nodes = sorted_strings(st.results, 1, &n);
    if (st.dot)
        print_dot(st.results, nodes, n);
    else
        print_trace(&st, nodes, n);
    free(nodes);
    cmd_flush_stdout();
    rc = EXIT_OK;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(st.results, st.first)))
        rc = fail_no_answer(&st);
    return cleanup(&st, NULL, rc);
}
