/* test_harden.c - what one authenticated peer's messages may do to a node
 * (issue 18): forge or flood its log, loop it, fill its memory with queues
 * for nodes that do not exist. Nodes talk over real TCP on 127.0.0.1; the
 * log is read back from a file stderr is redirected to. */
#include "nettest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------- log capture */

static char cap_path[64];
static int cap_saved = -1;

/* From here on stderr goes to a temporary file. */
static void capture_start(void)
{
    snprintf(cap_path, sizeof cap_path, "/tmp/aemp-harden-log.XXXXXX");
    int fd = mkstemp(cap_path);
    fflush(stderr);
    cap_saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* stderr back; what was written meanwhile (malloc'd, NUL-terminated). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(cap_saved, 2);
    close(cap_saved);
    cap_saved = -1;
    FILE *f = fopen(cap_path, "r");
    char *buf = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(len + 1);
        if (buf) buf[fread(buf, 1, len, f)] = 0;
        fclose(f);
    }
    unlink(cap_path);
    return buf ? buf : strdup("");
}

/* Lines of `log` that contain `needle`. */
static int count_lines(const char *log, const char *needle)
{
    int n = 0;
    for (const char *l = log; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        const char *hit = strstr(l, needle);
        if (hit && hit < l + len) n++;
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

/* Lines of `log` that begin with `prefix`. */
static int count_starts(const char *log, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *l = log; l && *l;) {
        if (!strncmp(l, prefix, pl)) n++;
        const char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

/* Two nodes: a listens, b connects to it. */
struct pair {
    struct event_base *base;
    aemp_node *a, *b;
    char *pb; /* a port on b */
    struct rec rb;
};

static void pair_up(struct pair *p, const char *ida, const char *idb)
{
    memset(p, 0, sizeof *p);
    p->base = event_base_new();
    p->a = mknode(p->base, ida, 1, NULL, "s3cret", NULL, 5);
    p->b = mknode(p->base, idb, 0, addr_of(p->a), "s3cret", NULL, 5);
    p->pb = aemp_port(p->b);
    aemp_rcv(p->b, p->pb, NULL, rec_rcv, &p->rb);
    /* up: b asks a for its ID */
    char req[256];
    snprintf(req, sizeof req, "[\"info\",\"%s\"]", p->pb);
    char np[128];
    snprintf(np, sizeof np, "%s#", ida);
    aemp_snd_json(p->b, np, req);
    CHECK(run_until(p->base, &p->rb.calls, 1, 10));
}

static void pair_down(struct pair *p)
{
    rec_free(&p->rb);
    free(p->pb);
    aemp_node_free(p->b);
    aemp_node_free(p->a);
    event_base_free(p->base);
}

/* -------------------------------------------------------------- forging */

/* Control characters in any line are escaped: a newline in a request name
 * cannot write a line of its own, ESC and CR reach no terminal. */
static void test_log_escapes_control_characters(void)
{
    struct pair p;
    pair_up(&p, "forge-a", "forge-b");
    capture_start();
    aemp_snd_json(p.b, "forge-a#", "[\"x\\n2026-12-05 00:00:00 <1> FORGED: by a peer\"]");
    char req[256];
    snprintf(req, sizeof req, "[\"info\",\"%s\"]", p.pb);
    aemp_snd_json(p.b, "forge-a#", req); /* after the forging one: its answer says it ran */
    run_until(p.base, &p.rb.calls, 2, 10);
    aemp_log(5, "plain a\x1b[2Jb\rc\xff\xc2\x85 \xc3\xa9 end");
    char *log = capture_end();
    CHECK_INT(count_starts(log, "2026-12-05 00:00:00 <1> FORGED"), 0);
    CHECK_INT(count_lines(log, "x\\n2026-12-05 00:00:00 <1> FORGED"), 1);
    CHECK_INT(count_lines(log, "plain a\\x1b[2Jb\\rc\\xff\\u0085 \xc3\xa9 end"), 1);
    CHECK(!strchr(log, '\r') && !strchr(log, '\x1b'));
    if (t_failed_checks) fprintf(stderr, "# log:\n%s", log);
    free(log);
    pair_down(&p);
}

/* -------------------------------------------------------------- flooding */

/* 3,000 eval requests: each is answered, but at most a few dozen lines are
 * written; the next line after a pause says how many were left out. */
static void test_peer_lines_rate_limited(void)
{
    struct pair p;
    pair_up(&p, "flood-a", "flood-b");
    char req[256];
    snprintf(req, sizeof req, "[\"eval\",\"1\",\"%s\"]", p.pb);
    capture_start();
    p.rb.calls = 0;
    for (int i = 0; i < 3000; i++)
        aemp_snd_json(p.b, "flood-a#", req);
    run_until(p.base, &p.rb.calls, 3000, 20);
    CHECK_INT(p.rb.calls, 3000);
    run_until(p.base, NULL, 0, 0.5); /* tokens come back */
    aemp_snd_json(p.b, "flood-a#", req);
    run_until(p.base, &p.rb.calls, 3001, 10);
    char *log = capture_end();
    int lines = count_lines(log, "eval request from flood-b");
    printf("# 3001 eval requests: %d log lines\n", lines);
    CHECK(lines >= 2 && lines <= 40);
    CHECK_INT(count_lines(log, "similar lines before this one were not logged"), 1);
    free(log);
    pair_down(&p);
}

/* ------------------------------------------------------------- loops */

/* A catcher whose reply port is the victim's own node port (or another
 * port of the victim, or a third node's) is refused: no line makes the
 * node send another to itself. A catcher on the asking node's own port
 * gets the lines. */
static void test_log_catcher_cannot_loop(void)
{
    struct pair p;
    pair_up(&p, "loop-a", "loop-b");
    capture_start();
    aemp_snd_json(p.b, "loop-a#", "[\"AnyEvent::MP::LogCatcher::connect\",0,\"loop-a#\",9]");
    aemp_snd_json(p.b, "loop-a#", "[\"AnyEvent::MP::LogCatcher::connect\",0,\"loop-a#x\",9]");
    aemp_snd_json(p.b, "loop-a#", "[\"AnyEvent::MP::LogCatcher::connect\",0,\"loop-c#x\",9]");
    aemp_snd_json(p.b, "loop-a#", "[\"AnyEvent::MP::LogCatcher::connect\",0,\"loop-b#\",9]");
    char req[256];
    snprintf(req, sizeof req, "[\"AnyEvent::MP::LogCatcher::connect\",0,\"%s\",5]", p.pb);
    aemp_snd_json(p.b, "loop-a#", req);
    p.rb.calls = 0;
    run_until(p.base, NULL, 0, 1.0);
    int before = p.rb.calls;
    aemp_log(5, "a line for the catcher");
    run_until(p.base, &p.rb.calls, before + 1, 5);
    run_until(p.base, NULL, 0, 0.3);
    char *log = capture_end();
    int loops = count_lines(log, "without a tag dropped");
    printf("# %d lines about node-port requests without a tag in 1.3 s, %d lines caught\n", loops,
           p.rb.calls);
    CHECK_INT(loops, 0);
    CHECK_INT(count_lines(log, "the reply port must be a port of the asking node"), 4);
    CHECK(p.rb.calls >= 1 && p.rb.calls < 50);
    CHECK(json_is(p.rb.last, "[5,\"a line for the catcher\"]"));
    free(log);
    pair_down(&p);
}

/* ------------------------------------------------------ ghost queues */

static double queued_bytes(aemp_node *n)
{
    cJSON *st = aemp_stats(n);
    const cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "total"), "queued_bytes");
    double v = cJSON_IsNumber(q) ? q->valuedouble : -1;
    cJSON_Delete(st);
    return v;
}

/* Relays of 256 KiB to 200 made-up nodes (50 MiB): the victim queues at
 * most max(max_message_size, 16 MiB) of them for the asking peer, says so,
 * and still answers that peer. */
static void test_ghost_queues_bounded(void)
{
    struct event_base *base = event_base_new();
    aemp_node *a = mknode_max(base, "ghq-a", NULL, 1 << 20);
    aemp_node *b = mknode_max(base, "ghq-b", addr_of(a), 1 << 20);
    char *pb = aemp_port(b);
    struct rec rb = {0};
    aemp_rcv(b, pb, NULL, rec_rcv, &rb);
    char req[256];
    snprintf(req, sizeof req, "[\"info\",\"%s\"]", pb);
    aemp_snd_json(b, "ghq-a#", req);
    CHECK(run_until(base, &rb.calls, 1, 10));
    char *data = malloc(256 * 1024 + 1);
    memset(data, 'x', 256 * 1024);
    data[256 * 1024] = 0;
    capture_start();
    for (int k = 0; k < 200; k++) {
        char ghost[64];
        snprintf(ghost, sizeof ghost, "ghost%d#x", k);
        cJSON *m = cJSON_CreateArray();
        cJSON_AddItemToArray(m, cJSON_CreateString("snd"));
        cJSON_AddItemToArray(m, cJSON_CreateString(ghost));
        cJSON_AddItemToArray(m, cJSON_CreateString(data));
        aemp_snd(b, "ghq-a#", m);
        if (k % 20 == 19) run_until(base, NULL, 0, 0.05);
    }
    aemp_snd_json(b, "ghq-a#", req); /* answered after all the relays ran */
    CHECK(run_until(base, &rb.calls, 2, 30));
    char *log = capture_end();
    double q = queued_bytes(a);
    printf("# 200 relays of 256 KiB to made-up nodes: %.1f MiB queued\n", q / 1048576);
    CHECK(q > 0 && q <= 16.0 * 1048576);
    CHECK(count_lines(log, "dropped: its messages hold") >= 1);
    if (t_failed_checks) fprintf(stderr, "# log:\n%.3000s", log);
    free(log);
    free(data);
    rec_free(&rb);
    free(pb);
    aemp_node_free(b);
    aemp_node_free(a);
    event_base_free(base);
}

T_MAIN(T(test_log_escapes_control_characters), T(test_peer_lines_rate_limited),
       T(test_log_catcher_cannot_loop), T(test_ghost_queues_bounded))
