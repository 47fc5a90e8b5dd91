/* svc_seq.c - a service for the e2e test remote.sh, loaded with
 *     aemp run services '["PATH/libsvc_seq.so:svc_seq_init"]'
 * It registers two functions:
 *   seq::sink    a spawn target: its $SELF port checks that messages
 *                ["seq", i] arrive with i = 0, 1, 2, ... and answers
 *                ["count", REPLYPORT] with [N_RECEIVED, IN_ORDER] sent to
 *                REPLYPORT (what `aemp cal SINK count` sends).
 *   seq::source  a node-port function called with [DEST_PORT, N] or
 *                [DEST_PORT, N, PAD]: sends N messages ["seq", i] (with
 *                ["seq", i, "xxx..."] of PAD bytes) to DEST_PORT, in batches
 *                from aemp_after() callbacks so the event loop is never
 *                blocked for long, with flow control: when aemp_snd says
 *                AEMP_BUSY it waits for aemp_on_drain; the last log line
 *                (level 6) says how often it waited.
 * Numbers may arrive as JSON numbers or as decimal strings (aemp snd passes
 * plain words as strings). Built as a shared module without libaemp: the
 * aemp_* symbols come from the aemp binary. */
#include "aemp.h"

#include <stdlib.h>
#include <string.h>

int svc_seq_init(aemp_node *node, const cJSON *args);

#define SEQ_BATCH 10000

/* A JSON number or a decimal string as a non-negative integer; -1 otherwise. */
static long long seq_num(const cJSON *j)
{
    if (cJSON_IsNumber(j)) return j->valuedouble >= 0 ? (long long)j->valuedouble : -1;
    if (cJSON_IsString(j) && j->valuestring[0]) {
        char *end;
        long long v = strtoll(j->valuestring, &end, 10);
        return *end || v < 0 ? -1 : v;
    }
    return -1;
}

/* ------------------------------------------------------------------ sink */

typedef struct seq_sink {
    struct seq_sink *next, *prev; /* in the service's list */
    struct seq_svc *svc;
    long long received;
    int in_order;
} seq_sink;

/* The service's state on one node: its live sinks, given back when the
 * sink port dies or when the node is freed (aemp_at_free). */
typedef struct seq_svc {
    seq_sink *sinks;
} seq_svc;

static void sink_release(void *ud)
{
    seq_sink *s = ud;
    if (s->prev) s->prev->next = s->next;
    else s->svc->sinks = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

static void svc_release(void *ud)
{
    seq_svc *svc = ud;
    while (svc->sinks)
        sink_release(svc->sinks);
    free(svc);
}

static int sink_on_seq(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    seq_sink *s = ud;
    (void)node;
    (void)self;
    long long i = seq_num(cJSON_GetArrayItem(msg, 1));
    if (i != s->received) s->in_order = 0;
    s->received++;
    return 0;
}

static int sink_on_count(aemp_node *node, const char *self, const cJSON *msg, void *ud)
{
    seq_sink *s = ud;
    (void)self;
    const cJSON *reply = cJSON_GetArrayItem(msg, 1);
    if (!cJSON_IsString(reply)) return 0;
    cJSON *r = cJSON_CreateArray();
    if (!r) return 0;
    cJSON_AddItemToArray(r, cJSON_CreateNumber((double)s->received));
    cJSON_AddItemToArray(r, cJSON_CreateBool(s->in_order));
    aemp_snd(node, reply->valuestring, r);
    return 0;
}

static int seq_sink_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    (void)args;
    seq_svc *svc = ud;
    if (!self) {
        aemp_fail(node, "seq::sink must be spawned");
        return -1;
    }
    seq_sink *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->in_order = 1;
    s->svc = svc;
    s->next = svc->sinks;
    if (s->next) s->next->prev = s;
    svc->sinks = s;
    if (aemp_rcv(node, self, "seq", sink_on_seq, s) || aemp_rcv(node, self, "count", sink_on_count, s)
        || aemp_mon_guard(node, self, sink_release, s, NULL)) {
        aemp_rcv(node, self, "seq", NULL, NULL);
        aemp_rcv(node, self, "count", NULL, NULL);
        sink_release(s);
        aemp_fail(node, "seq::sink: setup failed");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- source */

typedef struct {
    char *dest;
    char *pad; /* NULL or the padding string */
    long long n, next, waits;
} seq_source;

static void source_batch(aemp_node *node, void *ud);

static void source_drained(aemp_node *node, const char *nodeid, void *ud)
{
    (void)nodeid;
    source_batch(node, ud);
}

static void source_batch(aemp_node *node, void *ud)
{
    seq_source *s = ud;
    long long end = s->next + SEQ_BATCH < s->n ? s->next + SEQ_BATCH : s->n;
    int rc = 0;
    while (s->next < end) {
        cJSON *m = cJSON_CreateArray();
        if (!m) break;
        cJSON_AddItemToArray(m, cJSON_CreateString("seq"));
        cJSON_AddItemToArray(m, cJSON_CreateNumber((double)s->next));
        if (s->pad) cJSON_AddItemToArray(m, cJSON_CreateString(s->pad));
        rc = aemp_snd(node, s->dest, m);
        if (rc < 0) break;
        s->next++;
        if (rc == AEMP_BUSY) break;
    }
    if (s->next < s->n && rc == AEMP_BUSY) { /* queued; go on once it drains */
        s->waits++;
        if (!aemp_on_drain(node, s->dest, source_drained, s)) return;
    } else if (s->next < s->n && rc >= 0 && !aemp_after(node, 0, source_batch, s, NULL)) {
        return;
    }
    aemp_log(6, "seq::source: sent %lld of %lld to %s, waited %lld times for the queue to drain",
             s->next, s->n, s->dest, s->waits);
    free(s->dest);
    free(s->pad);
    free(s);
}

static int seq_source_fn(aemp_node *node, const char *self, const cJSON *args, void *ud)
{
    (void)self;
    (void)ud;
    const cJSON *dest = cJSON_GetArrayItem(args, 0);
    long long n = seq_num(cJSON_GetArrayItem(args, 1));
    const cJSON *pj = cJSON_GetArrayItem(args, 2);
    long long pad = pj ? seq_num(pj) : 0;
    if (!cJSON_IsString(dest) || n < 0 || pad < 0 || pad > (64 << 20)) {
        aemp_log(4, "seq::source: wants [DEST_PORT, N] or [DEST_PORT, N, PAD]");
        return -1;
    }
    seq_source *s = calloc(1, sizeof *s);
    if (!s || !(s->dest = strdup(dest->valuestring)) || (pad && !(s->pad = malloc((size_t)pad + 1)))) {
        if (s) free(s->dest);
        free(s);
        return -1;
    }
    if (s->pad) {
        memset(s->pad, 'x', (size_t)pad);
        s->pad[pad] = 0;
    }
    s->n = n;
    if (aemp_after(node, 0, source_batch, s, NULL)) {
        free(s->dest);
        free(s->pad);
        free(s);
        return -1;
    }
    return 0;
}

int svc_seq_init(aemp_node *node, const cJSON *args)
{
    (void)args;
    seq_svc *svc = calloc(1, sizeof *svc);
    if (!svc) return -1;
    if (aemp_at_free(node, svc_release, svc)) {
        free(svc);
        return -1;
    }
    if (aemp_register(node, "seq::sink", seq_sink_fn, svc)
        || aemp_register(node, "seq::source", seq_source_fn, NULL))
        return -1;
    return 0;
}
